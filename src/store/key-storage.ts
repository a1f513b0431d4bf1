/**
 * Where the broker's signing keys live: a file in the state directory (one broker, SQLite) or the
 * `broker_keys` table (replicas on PostgreSQL share them; see postgres.ts). The KeyRing
 * (src/broker/keys.ts) decides what keys to make; storage only reads and writes them atomically.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** A key as stored (the keys.json shape; `private_jwk` is a private JWK, secret). */
export interface StoredKey {
  kind: 'login' | 'session' | 'audit';
  kid: string;
  created_at: number;
  /** Milliseconds: after this the key is dropped from the JWKS; null while active. */
  retire_after: number | null;
  private_jwk: Record<string, unknown>;
}

/** Reads and changes a set of stored keys. */
export interface KeyStorage {
  /** Where the keys are, for error messages (never the keys). */
  readonly where: string;
  read(): Promise<StoredKey[]>;
  /**
   * Reads the keys, lets `change` return the full new set (or null for "unchanged") and writes it,
   * atomically with respect to every broker sharing this storage: two brokers starting at once
   * agree on one set. Returns the set as stored.
   */
  update(change: (keys: StoredKey[]) => Promise<StoredKey[] | null>): Promise<StoredKey[]>;
}

/** Keys in a JSON file (mode 0600, written atomically); `null` keeps them in memory only. */
export function fileKeyStorage(file: string | null): KeyStorage {
  let memory: StoredKey[] = [];
  let queue: Promise<unknown> = Promise.resolve();
  const read = async (): Promise<StoredKey[]> => {
    if (!file) return structuredClone(memory);
    try {
      return (JSON.parse(await readFile(file, 'utf8')) as { keys: StoredKey[] }).keys;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new Error(`Cannot read the broker keys at ${file}: ${(error as Error).message}`);
    }
  };
  return {
    where: file ?? 'memory',
    read,
    update(change) {
      // One process owns a keys file; the queue keeps its own updates from interleaving.
      const run = queue.then(async () => {
        const current = await read();
        const next = await change(structuredClone(current));
        if (!next) return current;
        if (!file) memory = structuredClone(next);
        else {
          await mkdir(dirname(file), { recursive: true, mode: 0o700 });
          const temp = `${file}.${randomUUID()}.tmp`;
          await writeFile(temp, JSON.stringify({ keys: next }, null, 2), { mode: 0o600 });
          await rename(temp, file);
        }
        return next;
      });
      queue = run.catch(() => {});
      return run;
    },
  };
}

/** A store whose engine keeps the signing keys too, so replicas sharing it share one set. */
export interface SharedKeyStore {
  keyStorage(): KeyStorage;
}

/** True when `store` can hold the broker's keys (PostgreSQL). */
export function hasSharedKeys<T extends object>(store: T): store is T & SharedKeyStore {
  return typeof (store as Partial<SharedKeyStore>).keyStorage === 'function';
}
