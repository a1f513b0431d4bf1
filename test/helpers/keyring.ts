/**
 * A private, unlocked gnome-keyring for end-to-end tests, never the developer's own.
 *
 * `startKeyringSession()` starts `dbus-run-session -- sh -c '…'` with HOME and every XDG dir under
 * a fresh temp dir. The shell unlocks a new gnome-keyring-daemon (Secret Service only) with a known
 * password, prints the bus address, then blocks on `cat` reading our pipe. Commands run as our own
 * child processes with that bus address in their env, so any number of them (`imp login`, then
 * `imp whoami`, then `secret-tool search service imp`) share one keyring. `close()` ends the pipe:
 * `cat` exits, dbus-run-session tears the bus down, and gnome-keyring-daemon exits with its bus.
 * If the test process dies, the pipe closes just the same.
 *
 * Waiting is bounded everywhere, and always below the test timeout (vitest.config.ts): dbus-daemon and
 * gnome-keyring-daemon inherit our pipes, so a `'close'` event (all pipes shut) can wait forever
 * after the session leader is gone. Waits therefore resolve on `'exit'`, and a session that does
 * not end in time is killed as a whole process group (it is spawned detached, as a group leader).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';

/** What a finished command printed and how it exited (128 + n when killed by signal n). */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Per-command options; `env` is merged over the session's env. */
export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Kill the command and reject after this long (default 15 s). */
  timeoutMs?: number;
  /** Written to the command's stdin, which is then closed. */
  input?: string;
}

/** A running D-Bus session with an unlocked gnome-keyring and an isolated HOME. */
export interface KeyringSession {
  /** The temp HOME; XDG_DATA_HOME, XDG_CONFIG_HOME, XDG_STATE_HOME, XDG_CACHE_HOME and XDG_RUNTIME_DIR live under it. */
  readonly home: string;
  /** The env a process needs to live in this session (for callers that spawn things themselves). */
  readonly env: NodeJS.ProcessEnv;
  /** Runs one command to completion inside the session. */
  run(command: string, args: string[], options?: RunOptions): Promise<RunResult>;
  /** Stops the bus and the keyring and deletes `home`. Safe to call twice. */
  close(): Promise<void>;
}

/** The login keyring's password; a fixed value is fine, the keyring lives and dies with the test. */
const KEYRING_PASSWORD = 'imp-test-keyring';
const READY = 'IMP_KEYRING_READY';

/**
 * Limits, chosen so that start + one command + close (runInKeyringSession) stays well under the
 * 60 s test timeout even when every step hits its limit.
 */
const START_TIMEOUT_MS = 8_000;
const RUN_TIMEOUT_MS = 15_000;
const CLOSE_TIMEOUT_MS = 3_000;
/** After a command has exited, how long its output pipes may stay open (held by a grandchild). */
const DRAIN_MS = 1_000;

// An empty password does not create the login keyring (writes then fail with "no result found"),
// hence a real one. The daemon daemonizes itself once it is serving org.freedesktop.secrets.
const SESSION_SCRIPT = `
set -e
printf '%s' "$IMP_TEST_KEYRING_PASSWORD" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
printf '${READY} %s\\n' "$DBUS_SESSION_BUS_ADDRESS"
exec cat >/dev/null
`;

/** Variables from the outer environment that would point a child at the real session or keyring. */
const LEAKY_VARIABLES = [
  'DBUS_SESSION_BUS_ADDRESS',
  'GNOME_KEYRING_CONTROL',
  'SSH_AUTH_SOCK',
  'XDG_CONFIG_HOME',
  'XDG_DATA_HOME',
  'XDG_STATE_HOME',
  'XDG_CACHE_HOME',
  'XDG_RUNTIME_DIR',
];

/** Starts an isolated D-Bus session with an unlocked gnome-keyring; call `close()` when done. */
export async function startKeyringSession(
  options: { startTimeoutMs?: number } = {},
): Promise<KeyringSession> {
  const home = await mkdtemp(join(tmpdir(), 'imp-keyring-'));
  const xdg = {
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local', 'share'),
    XDG_STATE_HOME: join(home, '.local', 'state'),
    XDG_CACHE_HOME: join(home, '.cache'),
    XDG_RUNTIME_DIR: join(home, 'run'),
  };
  for (const dir of Object.values(xdg)) await mkdir(dir, { recursive: true, mode: 0o700 });

  const baseEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const name of LEAKY_VARIABLES) delete baseEnv[name];
  Object.assign(baseEnv, { HOME: home, ...xdg });

  const daemon = spawn('dbus-run-session', ['--', 'sh', '-c', SESSION_SCRIPT], {
    env: { ...baseEnv, IMP_TEST_KEYRING_PASSWORD: KEYRING_PASSWORD },
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true, // its own process group, so close() can end the bus and keyring daemons with it
  });
  const exited = new Promise<void>((done) => {
    if (daemon.exitCode !== null || daemon.signalCode !== null) done();
    else daemon.once('exit', () => done());
  });
  const killGroup = (): void => {
    try {
      if (daemon.pid) process.kill(-daemon.pid, 'SIGKILL');
    } catch {
      // the group is already gone
    }
  };
  let daemonStderr = '';
  daemon.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    daemonStderr += chunk;
  });

  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    daemon.stdin.end();
    const timer = setTimeout(killGroup, CLOSE_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
    killGroup(); // anything of the session still alive (a daemon that outlived its bus) goes too
    daemon.stdout.destroy();
    daemon.stderr.destroy();
    await rm(home, { recursive: true, force: true });
  };

  let busAddress: string;
  try {
    busAddress = await new Promise<string>((done, fail) => {
      let stdout = '';
      const startTimeoutMs = options.startTimeoutMs ?? START_TIMEOUT_MS;
      const timer = setTimeout(
        () => fail(new Error(`keyring session did not start within ${startTimeoutMs} ms: ${daemonStderr}`)),
        startTimeoutMs,
      );
      daemon.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
        const match = new RegExp(`^${READY} (.+)$`, 'm').exec(stdout);
        if (match?.[1]) {
          clearTimeout(timer);
          done(match[1]);
        }
      });
      daemon.once('error', (error) => {
        clearTimeout(timer);
        fail(error);
      });
      daemon.once('exit', (code) => {
        clearTimeout(timer);
        fail(new Error(`keyring session exited early (code ${code}): ${daemonStderr}`));
      });
    });
  } catch (error) {
    await close();
    throw error;
  }

  const env: NodeJS.ProcessEnv = { ...baseEnv, DBUS_SESSION_BUS_ADDRESS: busAddress };
  return {
    home,
    env,
    run: (command, args, runOptions = {}) => {
      if (closed) return Promise.reject(new Error('keyring session is closed'));
      return runCommand(command, args, { ...runOptions, env: { ...env, ...runOptions.env } });
    },
    close,
  };
}

/** Runs one command in a fresh isolated keyring session and tears the session down afterwards. */
export async function runInKeyringSession(
  command: string,
  args: string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const session = await startKeyringSession();
  try {
    return await session.run(command, args, options);
  } finally {
    await session.close();
  }
}

function runCommand(command: string, args: string[], options: RunOptions): Promise<RunResult> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, {
      env: options.env,
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timeoutMs = options.timeoutMs ?? RUN_TIMEOUT_MS;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      fail(error);
    });
    // 'close' waits for every holder of the pipes, and a daemon the command started may hold
    // them forever; so finish on 'exit', after the pipes drained or DRAIN_MS, whichever is first.
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      let finished = false;
      const finish = (): void => {
        if (finished) return;
        finished = true;
        clearTimeout(drainTimer);
        child.stdout.destroy();
        child.stderr.destroy();
        if (timedOut) {
          const shown = [command, ...args].join(' ');
          fail(
            new Error(`timed out after ${timeoutMs} ms: ${shown}\nstdout:\n${stdout}\nstderr:\n${stderr}`),
          );
          return;
        }
        done({ code: code ?? 128 + (signal ? constants.signals[signal] : 0), stdout, stderr });
      };
      const drainTimer = setTimeout(finish, DRAIN_MS);
      if (child.stdout.readableEnded && child.stderr.readableEnded) finish();
      else child.once('close', finish);
    });
    child.stdin.on('error', () => undefined); // a command that never reads its stdin closes it early
    child.stdin.end(options.input ?? '');
  });
}
