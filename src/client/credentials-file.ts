/** The fallback credential store: one JSON file, mode 0600, written atomically, safe across processes. */
import { randomBytes } from 'node:crypto';
import { type FileHandle, mkdir, open, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { ConfigError, ImpError, TimeoutError } from '../core/errors.js';
import type { CredentialStore } from './credentials.js';
import { describe } from './credentials-keychain.js';

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
  /** Why the keychain was not used, when this file is the `auto` fallback (for `imp doctor`). */
  readonly fallbackReason: string | null;
  private readonly warn: (message: string) => void;

  constructor(
    filePath: string,
    warn: (message: string) => void = writeWarningToStderr,
    fallbackReason: string | null = null,
  ) {
    this.filePath = resolve(filePath);
    this.warn = warn;
    this.fallbackReason = fallbackReason;
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

/** Prints the file store's warning when the caller injected no sink: a silenced security warning is worse. */
function writeWarningToStderr(message: string): void {
  process.stderr.write(`${message}\n`);
}

function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}
