/**
 * Where the CLI keeps its broker token: one secret (a JSON string) per broker URL.
 *
 * Preferred home is the OS keychain (macOS Keychain, Windows Credential Manager, the Secret Service
 * on Linux). When none answers, `auto` falls back to a 0600 JSON file and says so once on stderr.
 * Nothing here prints or logs a secret: error messages name the file or the keychain, never values.
 *
 * Linux quirks measured with @napi-rs/keyring 2.1.2 (see openCredentialStore's probe):
 * - `new AsyncEntry()` connects to D-Bus synchronously on the calling thread; against a bus that
 *   accepts the connection but never answers it blocks forever and an AbortSignal cannot help. A
 *   worker thread stuck there also keeps the process from exiting. So the probe runs in a child
 *   process that can be SIGKILLed.
 * - Its default Linux store silently falls back to the kernel keyring (keyutils), which forgets
 *   everything at reboot and, in containers, answers `get` with null but refuses `set`. We pin the
 *   Secret Service so "keychain" means a store that persists.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { type FileHandle, mkdir, open, rename, rm, stat, unlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { ConfigError, ImpError, TimeoutError } from '../core/errors.js';

/** Which backend holds the credentials. */
export type CredentialStoreKind = 'keychain' | 'file' | 'memory';

/** One secret per account (the broker URL); implementations never log the secret. */
export interface CredentialStore {
  readonly kind: CredentialStoreKind;
  /** The stored secret, or null when there is none. */
  get(account: string): Promise<string | null>;
  /** Stores (or replaces) the secret for `account`. */
  set(account: string, secret: string): Promise<void>;
  /** Removes the secret; true when something was removed. */
  delete(account: string): Promise<boolean>;
}

/** The keychain service name every imp credential is filed under. */
export const DEFAULT_KEYCHAIN_SERVICE = 'imp';

/** The account the probe reads; it is never written, so a successful probe leaves no trace. */
const PROBE_ACCOUNT = 'imp-keychain-probe';
/** Long enough for a cold Secret Service activation (~100 ms here), short enough not to stall the CLI. */
const PROBE_TIMEOUT_MS = 1500;

/** Pins Linux to the Secret Service; ignored on macOS and Windows. */
const ENTRY_OPTIONS = { linux: { store: 'secret-service' as const } };

type KeyringModule = typeof import('@napi-rs/keyring');
let keyringModule: Promise<KeyringModule> | undefined;

/** Loaded on first use only: `imp --help` must not pay for (or fail on) the native addon. */
function loadKeyring(): Promise<KeyringModule> {
  keyringModule ??= import('@napi-rs/keyring');
  return keyringModule;
}

/** OS keychain via @napi-rs/keyring (service name 'imp'); on Linux that is the Secret Service (gnome-keyring, KWallet). */
export class KeychainCredentialStore implements CredentialStore {
  readonly kind = 'keychain' as const;
  readonly service: string;

  constructor(service: string = DEFAULT_KEYCHAIN_SERVICE) {
    this.service = service;
  }

  async get(account: string): Promise<string | null> {
    try {
      const entry = await this.entry(account);
      // 2.x resolves null for a missing item (1.x threw NoEntry); `?? null` also covers undefined.
      return (await entry.getPassword()) ?? null;
    } catch (error) {
      throw keychainError('read', error);
    }
  }

  async set(account: string, secret: string): Promise<void> {
    try {
      const entry = await this.entry(account);
      await entry.setPassword(secret);
    } catch (error) {
      throw keychainError('store', error);
    }
  }

  async delete(account: string): Promise<boolean> {
    try {
      const entry = await this.entry(account);
      return await entry.deletePassword();
    } catch (error) {
      throw keychainError('delete', error);
    }
  }

  private async entry(account: string) {
    const { AsyncEntry } = await loadKeyring();
    return new AsyncEntry(this.service, account, ENTRY_OPTIONS);
  }
}

function keychainError(verb: 'read' | 'store' | 'delete', error: unknown): ImpError {
  return new ImpError(
    'IMP_CONFIG',
    `The OS keychain could not ${verb} the imp credential (${describe(error)}). ` +
      'To keep credentials in a file instead, set IMP_CREDENTIAL_STORE=file.',
    { cause: error },
  );
}

/** Where another imp process writing the same file leaves its lock; older than this and it crashed. */
const LOCK_STALE_MS = 10_000;
const LOCK_WAIT_MS = 5_000;
const LOCK_RETRY_MS = 25;

/** In-process writers queue per file, so `Promise.all([set(a), set(b)])` keeps both. */
const writeQueues = new Map<string, Promise<unknown>>();

/** Fallback: one JSON file {account: secret}, mode 0600, parent dir 0700, written atomically (temp file + fsync + rename); a group/world-accessible file is reset to 0600 with a warning. */
export class FileCredentialStore implements CredentialStore {
  readonly kind = 'file' as const;
  readonly filePath: string;
  private readonly warn: (message: string) => void;

  constructor(filePath: string, warn: (message: string) => void = writeWarningToStderr) {
    this.filePath = resolve(filePath);
    this.warn = warn;
  }

  async get(account: string): Promise<string | null> {
    return (await this.read()).get(account) ?? null;
  }

  async set(account: string, secret: string): Promise<void> {
    await this.update((all) => {
      all.set(account, secret);
      return true;
    });
  }

  async delete(account: string): Promise<boolean> {
    return this.update((all) => all.delete(account));
  }

  /** Reads the whole file; a missing file is an empty store. */
  private async read(): Promise<Map<string, string>> {
    let text: string;
    try {
      const handle = await open(this.filePath, 'r');
      try {
        await this.checkFile(handle);
        text = await handle.readFile('utf8');
      } finally {
        await handle.close();
      }
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return new Map();
      if (error instanceof ImpError) throw error;
      throw new ConfigError(`Cannot read the credential file ${this.filePath} (${describe(error)}).`);
    }
    return this.parse(text);
  }

  /** A regular file only; it holds live tokens, so if someone loosened its mode, close it again and say so. */
  private async checkFile(handle: FileHandle): Promise<void> {
    const info = await handle.stat();
    if (!info.isFile()) throw new ConfigError(`The credential file ${this.filePath} is not a regular file.`);
    if (process.platform === 'win32') return; // POSIX mode bits mean nothing there; ACLs are inherited.
    const { mode } = info;
    if ((mode & 0o077) === 0) return;
    await handle.chmod(0o600);
    this.warn(
      `warning: credential file ${this.filePath} had mode ${(mode & 0o777).toString(8).padStart(4, '0')} ` +
        '(other users could read it); reset it to 0600',
    );
  }

  private parse(text: string): Map<string, string> {
    // A zero-byte file (touched, or truncated by an editor) holds nothing to lose: treat it as empty.
    if (text.trim() === '') return new Map();
    // The JSON.parse message quotes the file's content, i.e. possibly a token: never surface it.
    const corrupt = (what: string) =>
      new ConfigError(
        `The credential file ${this.filePath} is corrupt (${what}). Delete it and log in again: imp login`,
      );
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw corrupt('not valid JSON');
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw corrupt('expected a JSON object');
    }
    const all = new Map<string, string>();
    for (const [account, secret] of Object.entries(value)) {
      if (typeof secret !== 'string') throw corrupt('every value must be a string');
      all.set(account, secret);
    }
    return all;
  }

  /** Read-modify-write under the in-process queue and a cross-process lock file. */
  private async update<T extends boolean>(mutate: (all: Map<string, string>) => T): Promise<T> {
    const previous = writeQueues.get(this.filePath) ?? Promise.resolve();
    const next = previous.then(
      () => this.lockedUpdate(mutate),
      () => this.lockedUpdate(mutate),
    );
    const settled = next.catch(() => undefined);
    writeQueues.set(this.filePath, settled);
    try {
      return await next;
    } finally {
      if (writeQueues.get(this.filePath) === settled) writeQueues.delete(this.filePath);
    }
  }

  private async lockedUpdate<T extends boolean>(mutate: (all: Map<string, string>) => T): Promise<T> {
    const dir = dirname(this.filePath);
    // 0700 on what we create; a directory that already exists is left alone, since it may be shared
    // (never chmod a directory imp did not make). The file itself is 0600 either way.
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const release = await acquireLock(`${this.filePath}.lock`);
    try {
      const all = await this.read();
      const changed = mutate(all);
      if (!changed) return changed;
      if (all.size === 0) {
        // The last logout leaves no file behind rather than an empty one.
        await rm(this.filePath, { force: true });
      } else {
        await writeFileAtomic(this.filePath, `${JSON.stringify(Object.fromEntries(all), null, 2)}\n`);
      }
      return changed;
    } finally {
      await release();
    }
  }
}

/**
 * Writes next to the target and renames over it, so a reader (or a crash) sees the old file or the
 * new one, never half of one. The temp file is created 0600 with O_EXCL, so the secret is never
 * briefly readable by others.
 */
async function writeFileAtomic(filePath: string, data: string): Promise<void> {
  const dir = dirname(filePath);
  const temp = join(dir, `.${basename(filePath)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    try {
      await handle.writeFile(data, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, filePath);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await syncDirectory(dir);
}

/** Makes the rename itself durable; best effort, since not every platform can fsync a directory. */
async function syncDirectory(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Durability of the directory entry is a bonus; the data itself was fsynced.
  }
}

/**
 * O_EXCL lock file so two imp processes (say, logins to two brokers) do not lose each other's
 * write. A lock older than LOCK_STALE_MS is from a crashed process and is broken; writes take
 * milliseconds, so the window where two breakers race is negligible.
 */
async function acquireLock(lockPath: string): Promise<() => Promise<void>> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const handle = await open(lockPath, 'wx', 0o600);
      // The pid is for a human wondering who holds the lock; staleness goes by mtime.
      await handle.writeFile(String(process.pid)).finally(() => handle.close());
      return () => unlink(lockPath).catch(() => undefined);
    } catch (error) {
      if (!isErrno(error, 'EEXIST')) throw error;
    }
    const age = await stat(lockPath).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    if (age > LOCK_STALE_MS) {
      await unlink(lockPath).catch(() => undefined);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new TimeoutError(
        `Another imp process is writing the credential file (lock ${lockPath}). ` +
          'Try again; if no other imp is running, delete the lock file.',
      );
    }
    await new Promise((done) => setTimeout(done, LOCK_RETRY_MS));
  }
}

/** For tests. */
export class MemoryCredentialStore implements CredentialStore {
  readonly kind = 'memory' as const;
  private readonly secrets = new Map<string, string>();

  async get(account: string): Promise<string | null> {
    return this.secrets.get(account) ?? null;
  }

  async set(account: string, secret: string): Promise<void> {
    this.secrets.set(account, secret);
  }

  async delete(account: string): Promise<boolean> {
    return this.secrets.delete(account);
  }
}

/** Options for {@link openCredentialStore}. */
export interface OpenCredentialStoreOptions {
  mode: 'auto' | 'keychain' | 'file';
  /** The fallback (or forced) file, from client/paths.ts. */
  filePath: string;
  /** One line to stderr; used once, when `auto` falls back to the file. */
  warn: (message: string) => void;
  /** Keychain service name; 'imp' unless a test isolates itself. */
  service?: string;
}

/** Picks the store: 'keychain' (IMP_CONFIG if none works), 'file', or 'auto' = probe the keychain (bounded to ~1.5 s) and fall back to the file with one warning. */
export async function openCredentialStore(options: OpenCredentialStoreOptions): Promise<CredentialStore> {
  if (options.mode === 'file') return new FileCredentialStore(options.filePath, options.warn);
  const service = options.service ?? DEFAULT_KEYCHAIN_SERVICE;
  const probe = await probeKeychain(service);
  if (probe.ok) return new KeychainCredentialStore(service);
  if (options.mode === 'keychain') {
    throw new ConfigError(
      `No OS keychain is available (${probe.reason}). On Linux, run a Secret Service (gnome-keyring or ` +
        'KWallet) in your session, or set IMP_CREDENTIAL_STORE=file to keep credentials in a file.',
    );
  }
  options.warn(
    `warning: no OS keychain available (${probe.reason}); storing credentials in ${options.filePath} (mode 0600)`,
  );
  return new FileCredentialStore(options.filePath, options.warn);
}

type ProbeResult = { ok: true } | { ok: false; reason: string };

/**
 * Runs in a child `node -e` (CommonJS, so it needs no file on disk): loads the addon by absolute
 * path, does one real read, prints one JSON line. A real read, not just loading the addon, because
 * a locked or half-started keyring only fails (or hangs) once asked.
 */
const PROBE_SCRIPT = `
const [, addonPath, service, account] = process.argv;
const say = (result) => process.stdout.write(JSON.stringify(result) + '\\n');
try {
  const { AsyncEntry } = require(addonPath);
  new AsyncEntry(service, account, ${JSON.stringify(ENTRY_OPTIONS)}).getPassword().then(
    () => say({ ok: true }),
    (error) => say({ ok: false, reason: String((error && error.message) || error) }),
  );
} catch (error) {
  say({ ok: false, reason: String((error && error.message) || error) });
}
`;

/** Can the keychain answer a read within PROBE_TIMEOUT_MS? Costs one short-lived node (~90 ms). */
async function probeKeychain(service: string): Promise<ProbeResult> {
  const noBus = missingLinuxSessionBus();
  if (noBus) return { ok: false, reason: noBus };
  let addonPath: string;
  try {
    addonPath = createRequire(import.meta.url).resolve('@napi-rs/keyring');
  } catch (error) {
    return { ok: false, reason: `the @napi-rs/keyring module cannot be found: ${describe(error)}` };
  }
  // NODE_OPTIONS could preload the user's hooks into the probe; it needs none of them.
  const { NODE_OPTIONS: _ignored, ...env } = process.env;
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['-e', PROBE_SCRIPT, addonPath, service, PROBE_ACCOUNT],
      { env, timeout: PROBE_TIMEOUT_MS, killSignal: 'SIGKILL', windowsHide: true, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error && (error.killed || error.signal === 'SIGKILL')) {
          done({ ok: false, reason: `the keychain did not answer within ${PROBE_TIMEOUT_MS / 1000} s` });
          return;
        }
        const answer = parseProbeAnswer(stdout);
        if (answer) {
          done(answer.ok ? answer : { ok: false, reason: oneLine(answer.reason) });
          return;
        }
        done({
          ok: false,
          // Not error.message: it quotes the whole command line, probe script included.
          reason: `the keychain probe failed: ${oneLine(stderr) || (error ? `exit code ${error.code}` : 'no answer')}`,
        });
      },
    );
  });
}

function parseProbeAnswer(stdout: string): ProbeResult | undefined {
  try {
    const value: unknown = JSON.parse(stdout.trim().split('\n').at(-1) ?? '');
    if (typeof value !== 'object' || value === null || !('ok' in value)) return undefined;
    if (value.ok === true) return { ok: true };
    const reason = 'reason' in value && typeof value.reason === 'string' ? value.reason : 'unknown error';
    return { ok: false, reason };
  } catch {
    return undefined;
  }
}

/**
 * The common headless case, answered without spawning anything: libdbus finds the session bus via
 * DBUS_SESSION_BUS_ADDRESS or, failing that, $XDG_RUNTIME_DIR/bus (X11 autolaunch is compiled out).
 */
function missingLinuxSessionBus(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  if (process.env.DBUS_SESSION_BUS_ADDRESS) return undefined;
  const runtimeDir = process.env.XDG_RUNTIME_DIR;
  if (runtimeDir && existsSync(join(runtimeDir, 'bus'))) return undefined;
  return 'no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is not set';
}

const CREDENTIAL_STORE_MODES = ['auto', 'keychain', 'file'] as const;

/** Parses IMP_CREDENTIAL_STORE (keychain|file|auto, default auto); anything else is an IMP_CONFIG error naming the allowed values. */
export function credentialStoreModeFromEnv(value: string | undefined): 'auto' | 'keychain' | 'file' {
  const mode = (value ?? '').trim();
  if (mode === '') return 'auto';
  for (const allowed of CREDENTIAL_STORE_MODES) if (mode === allowed) return allowed;
  throw new ConfigError(
    `IMP_CREDENTIAL_STORE must be one of keychain, file, auto (got ${JSON.stringify(mode.slice(0, 40))}).`,
  );
}

/** Prints the file store's warning when the caller injected no sink: a silenced security warning is worse. */
function writeWarningToStderr(message: string): void {
  process.stderr.write(`${message}\n`);
}

function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}

function describe(error: unknown): string {
  return oneLine(error instanceof Error ? error.message : String(error));
}

/** Keychain and D-Bus messages can span lines; the warning must stay one line and short. */
function oneLine(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}
