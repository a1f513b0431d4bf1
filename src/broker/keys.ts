/**
 * The broker's signing keys, one set per token kind (a leaked key of one kind opens nothing else):
 *   login   — broker tokens held by CLIs; verified only here, never published.
 *   session — session JWTs for tenant APIs; published in the JWKS.
 *   audit   — audit checkpoints; published in the JWKS so exports verify offline.
 * Keys persist in <state-dir>/keys.json (mode 0600). Rotation keeps the old public key in the
 * JWKS until `retire_after`, so tokens it signed stay verifiable until they expire.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';

/** The kinds of key the broker holds. */
export type KeyKind = 'login' | 'session' | 'audit';
const KINDS: KeyKind[] = ['login', 'session', 'audit'];
/** The one algorithm the broker signs with. */
export const BROKER_ALG = 'ES256';

interface StoredKey {
  kind: KeyKind;
  kid: string;
  created_at: number;
  /** Milliseconds: after this the key is dropped from the JWKS; null while active or not yet scheduled. */
  retire_after: number | null;
  private_jwk: JWK;
}

/** A usable key. */
export interface SigningKey {
  kid: string;
  kind: KeyKind;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

/** All keys of one broker. */
export class KeyRing {
  private constructor(
    private readonly keys: (SigningKey & { retireAfter: number | null; createdAt: number })[],
    private readonly stored: StoredKey[],
    private readonly file: string | null,
  ) {}

  /** Loads keys from a file, creating any kind that is missing (atomically, mode 0600). */
  static async load(file: string | null, now: number): Promise<KeyRing> {
    let stored: StoredKey[] = [];
    if (file) {
      try {
        stored = (JSON.parse(await readFile(file, 'utf8')) as { keys: StoredKey[] }).keys;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
          throw new Error(`Cannot read the broker keys at ${file}: ${(error as Error).message}`);
      }
    }
    let changed = false;
    for (const kind of KINDS) {
      if (!stored.some((key) => key.kind === kind && key.retire_after === null)) {
        stored.push(await newKey(kind, now));
        changed = true;
      }
    }
    const ring = new KeyRing(await Promise.all(stored.map(toSigningKey)), stored, file);
    if (changed) await ring.save();
    return ring;
  }

  /** The active key of a kind (the newest one not scheduled for retirement). */
  active(kind: KeyKind): SigningKey {
    const candidates = this.keys.filter((key) => key.kind === kind && key.retireAfter === null);
    const newest = candidates.sort((a, b) => b.createdAt - a.createdAt)[0];
    if (!newest) throw new Error(`No active ${kind} key`);
    return newest;
  }

  /** Keys of a kind that may still verify (active or not yet retired). */
  verifying(kind: KeyKind, now: number): SigningKey[] {
    return this.keys.filter(
      (key) => key.kind === kind && (key.retireAfter === null || key.retireAfter > now),
    );
  }

  /** The public JWKS: session and audit keys only. */
  jwks(now: number): { keys: JWK[] } {
    return {
      keys: [...this.verifying('session', now), ...this.verifying('audit', now)].map((key) => key.publicJwk),
    };
  }

  /** Starts a new key of a kind; the old one keeps verifying for `overlapMs` (its tokens' lifetime). */
  async rotate(kind: KeyKind, now: number, overlapMs: number): Promise<SigningKey> {
    for (const key of this.stored)
      if (key.kind === kind && key.retire_after === null) key.retire_after = now + overlapMs;
    for (const key of this.keys)
      if (key.kind === kind && key.retireAfter === null) key.retireAfter = now + overlapMs;
    const fresh = await newKey(kind, now);
    this.stored.push(fresh);
    const signing = await toSigningKey(fresh);
    this.keys.push(signing);
    await this.save();
    return signing;
  }

  private async save(): Promise<void> {
    if (!this.file) return;
    await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
    const temp = `${this.file}.${randomUUID()}.tmp`;
    await writeFile(temp, JSON.stringify({ keys: this.stored }, null, 2), { mode: 0o600 });
    await rename(temp, this.file);
  }
}

async function newKey(kind: KeyKind, now: number): Promise<StoredKey> {
  const { privateKey } = await generateKeyPair(BROKER_ALG, { extractable: true });
  const jwk = await exportJWK(privateKey);
  return {
    kind,
    kid: `${kind}-${randomUUID().slice(0, 8)}`,
    created_at: now,
    retire_after: null,
    private_jwk: jwk,
  };
}

async function toSigningKey(
  stored: StoredKey,
): Promise<SigningKey & { retireAfter: number | null; createdAt: number }> {
  const privateKey = (await importJWK({ ...stored.private_jwk, alg: BROKER_ALG }, BROKER_ALG)) as CryptoKey;
  const { d: _private, ...publicPart } = stored.private_jwk;
  const publicKey = (await importJWK({ ...publicPart, alg: BROKER_ALG }, BROKER_ALG)) as CryptoKey;
  return {
    kid: stored.kid,
    kind: stored.kind,
    privateKey,
    publicKey,
    publicJwk: { ...publicPart, kid: stored.kid, alg: BROKER_ALG, use: 'sig' },
    retireAfter: stored.retire_after,
    createdAt: stored.created_at,
  };
}
