/**
 * The factory of everything a command may touch (gh's cmdutil.Factory). Heavy pieces (keychain,
 * prompts, OIDC, browser opener) are created on first use so `imp --help` loads none of them.
 */

import { createRequire } from 'node:module';
import type { DeviceLoginOptions, DeviceLoginResult } from '../auth/device-flow.js';
import type { CredentialStore } from '../client/credentials.js';
import { execCredentialFrom } from '../client/exec-credential.js';
import { type Paths, resolvePaths } from '../client/paths.js';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../runtime/clock.js';
import { type EventStream, type EventTarget, openEventStream } from './events.js';
import { type IO, systemIO } from './io.js';
import type { Prompter } from './prompter.js';

/** Everything a command may use. Commands take `Pick<Deps, …>` of what they need. */
export interface Deps {
  io: IO;
  env: NodeJS.ProcessEnv;
  clock: Clock;
  fetch: typeof fetch;
  paths: Paths;
  credentials(): Promise<CredentialStore>;
  prompter(): Promise<Prompter>;
  openUrl(url: string): Promise<void>;
  deviceLogin(options: DeviceLoginOptions): Promise<DeviceLoginResult>;
  /** Aborted when the user presses Ctrl-C (SIGINT) or the process gets SIGTERM or SIGHUP. */
  interrupt: AbortSignal;
  /** Subscribes to termination signals (for phases that must not die on Ctrl-C, like a running subshell). */
  onSignal(handler: (signal: TermSignal) => void): () => void;
  /**
   * Starts a child process with inherited stdio (the session subshell, imp exec's command). With
   * `tap`, its stdout and stderr pass through imp on their way to the same streams, and `tap` sees
   * them (imp exec's recording); `exited` then settles once both are drained.
   */
  runChild(command: string, args: string[], env: NodeJS.ProcessEnv, tap?: ChildTap): ChildHandle;
  /** Opens where `--events-fd` / `--events` send JSON events (throws a usage error if it can't). */
  openEvents(target: EventTarget): EventStream;
  /** Reads a small file the user named (an identity token); errors are the caller's to word. */
  readTextFile(path: string): Promise<string>;
  /**
   * Starts a child on a pseudo-terminal of its own, wired to the person's terminal (raw keys in,
   * output out, window size followed), and reports the traffic to `hooks` (session recording).
   */
  runPty(command: string, args: string[], env: NodeJS.ProcessEnv, hooks: PtyHooks): Promise<PtyHandle>;
}

/** Sees a child's output as it passes (stdout and stderr kept apart on the way through). */
export type ChildTap = (stream: 'stdout' | 'stderr', data: string) => void;

/** What passes through a pty, as it passes. */
export interface PtyHooks {
  output(data: string): void;
  input(data: string): void;
  resize(cols: number, rows: number): void;
}

/** A child on its own pty. */
export interface PtyHandle extends ChildHandle {
  /** The window size it started with. */
  readonly cols: number;
  readonly rows: number;
}

/** Signals that end or interrupt imp. */
export type TermSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP';

/** A running child process. */
export interface ChildHandle {
  readonly pid: number | undefined;
  /** Resolves when it exits: its code, or the signal that ended it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
}

/** The real dependencies for the `imp` process. */
export function systemDeps(env: NodeJS.ProcessEnv = process.env): Deps {
  const io = systemIO(env);
  const paths = resolvePaths(env);
  let credentials: Promise<CredentialStore> | undefined;
  const controller = new AbortController();
  const listeners = new Set<(signal: TermSignal) => void>();
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      for (const listener of listeners) listener(signal);
      if (!controller.signal.aborted) controller.abort(new Error(signal));
    });
  }
  const deps: Deps = {
    io,
    env,
    clock: systemClock,
    fetch: globalThis.fetch,
    paths,
    interrupt: controller.signal,
    onSignal(handler) {
      listeners.add(handler);
      return () => listeners.delete(handler);
    },
    runChild(command, args, childEnv, tap) {
      // Loaded here, not at the top: node:child_process costs every `imp` start ~4 ms otherwise.
      const { spawn } = createRequire(import.meta.url)(
        'node:child_process',
      ) as typeof import('node:child_process');
      const child = spawn(command, args, {
        env: childEnv,
        stdio: tap ? ['inherit', 'pipe', 'pipe'] : 'inherit',
      });
      if (tap)
        for (const name of ['stdout', 'stderr'] as const) {
          const out = name === 'stdout' ? process.stdout : process.stderr;
          child[name]?.setEncoding('utf8');
          child[name]?.on('data', (data: string) => {
            out.write(data);
            tap(name, data);
          });
        }
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        child.once('error', () => resolve({ code: 127, signal: null }));
        // 'close' comes after the piped streams have ended: nothing the child printed is left unrecorded.
        child.once(tap ? 'close' : 'exit', (code, signal) => resolve({ code, signal }));
      });
      return { pid: child.pid, exited, kill: (signal) => child.kill(signal) };
    },
    openEvents: openEventStream,
    async readTextFile(path) {
      const { readFile } = await import('node:fs/promises');
      return readFile(path, 'utf8');
    },
    async runPty(command, args, childEnv, hooks) {
      const { startPty } = await import('./pty.js');
      return startPty(command, args, childEnv, hooks);
    },
    // Reads deps.paths when first used: main() may have switched the profile (--profile) by then.
    credentials() {
      // Under `imp exec` the child holds a one-session credential and must not reach the person's store.
      credentials ??= import('../client/credentials.js').then(async (m) =>
        execCredentialFrom(env)
          ? new m.MemoryCredentialStore()
          : m.profileStore(
              await m.openCredentialStore({
                mode: m.credentialStoreModeFromEnv(env.IMP_CREDENTIAL_STORE),
                filePath: deps.paths.credentialsFile,
                noticeFile: deps.paths.noticeFile,
                warn: (message) => io.err(message),
              }),
              deps.paths.profile,
            ),
      );
      return credentials;
    },
    async prompter() {
      const { systemPrompter } = await import('./prompter.js');
      return systemPrompter(io);
    },
    async openUrl(url) {
      const { default: open } = await import('open');
      const child = await open(url, { wait: false });
      child.on('error', () => {});
      child.unref();
    },
    async deviceLogin(options) {
      const { runDeviceLogin } = await import('../auth/device-flow.js');
      return runDeviceLogin(options);
    },
  };
  return deps;
}
