/**
 * Runs the real `imp` binary (bin/imp.js → dist/) as a user would, with an isolated HOME and XDG
 * directories so tests never touch the developer's own config or keychain.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';

import { makeTempDir } from './temp.js';

/** The repository root. */
export const ROOT = resolve(import.meta.dirname, '..', '..');
/** The launcher users run. */
export const IMP_BIN = join(ROOT, 'bin', 'imp.js');

/** A person's machine: their own HOME, config and state. */
export interface UserEnv {
  home: string;
  env: NodeJS.ProcessEnv;
}

/** A fresh, isolated user environment (file credential store unless overridden). */
export function makeUserEnv(extra: NodeJS.ProcessEnv = {}): UserEnv {
  const home = makeTempDir('imp-user-');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_STATE_HOME: join(home, '.local', 'state'),
    IMP_CREDENTIAL_STORE: 'file',
    NO_COLOR: '1',
    LANG: 'C.UTF-8',
    ...extra,
  };
  return { home, env };
}

/** The outcome of one imp run. */
export interface ImpResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs imp to completion. */
export function runImp(
  args: string[],
  env: NodeJS.ProcessEnv,
  options: { input?: string; timeoutMs?: number } = {},
): Promise<ImpResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [IMP_BIN, ...args], { env, cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`imp ${args.join(' ')} timed out\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** A running imp whose stdout JSON lines can be awaited one by one (login, dev, start). */
export class ImpProcess {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = '';
  stderr = '';
  private readonly exited: Promise<number>;

  /** `bin`: another imp to run (an installed one); `cwd` where it runs. */
  constructor(args: string[], env: NodeJS.ProcessEnv, bin = IMP_BIN, cwd = ROOT) {
    this.child = spawn(process.execPath, [bin, ...args], { env, cwd });
    this.child.stdout.on('data', (chunk: Buffer) => (this.stdout += chunk.toString()));
    this.child.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((resolvePromise) =>
      this.child.on('close', (code, signal) => resolvePromise(code ?? (signal ? 128 : 1))),
    );
  }

  /** Resolves with the first JSON line on stdout (or `stream`: exec's events go to stderr) that satisfies `match`. */
  async jsonLine(
    match: (value: Record<string, unknown>) => boolean,
    timeoutMs = 20_000,
    stream: 'stdout' | 'stderr' = 'stdout',
  ): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const line of this[stream].split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const value = JSON.parse(line) as Record<string, unknown>;
          if (match(value)) return value;
        } catch {
          // a partial line; wait for the rest
        }
      }
      if (this.child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no matching JSON line\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
  }

  /** Waits for exit and returns the code. */
  exit(timeoutMs = 20_000): Promise<number> {
    return Promise.race([
      this.exited,
      new Promise<number>((_, reject) =>
        setTimeout(() => reject(new Error(`imp did not exit\nstderr: ${this.stderr}`)), timeoutMs),
      ),
    ]);
  }

  /** Sends a signal (SIGINT = Ctrl-C). */
  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }
}

/** What `imp dev --json` prints when ready. */
export interface DevStackInfo {
  issuer: string;
  broker: string;
  tenant_api: string;
  witnesses: { url: string; key: string }[];
  users: { login: string; password: string; groups: string[] }[];
}

/** Starts `imp dev --port 0 --json` and waits for its ready line. */
export async function startDev(
  extraArgs: string[] = [],
): Promise<{ info: DevStackInfo; process: ImpProcess; stop(): Promise<number> }> {
  const { env } = makeUserEnv();
  const process = new ImpProcess(['dev', '--port', '0', '--json', ...extraArgs], env);
  const info = (await process.jsonLine(
    (v) => typeof v.broker === 'string',
    30_000,
  )) as unknown as DevStackInfo;
  return {
    info,
    process,
    async stop() {
      process.signal('SIGTERM');
      return process.exit();
    },
  };
}
