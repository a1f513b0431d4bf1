/**
 * The broker's signing keys, one set per token kind (a leaked key of one kind opens nothing else):
 *   login   — broker tokens held by CLIs; verified only here, never published.
 *   session — session JWTs for tenant APIs; published in the JWKS.
 *   audit   — audit checkpoints; published in the JWKS so exports verify offline.
 * Every kid is `<kind>-…` and every published key `use: sig`: imp/verify accepts session tokens
 * only from `session-…` keys, so this naming is a contract, not decoration.
 * Keys persist in a KeyStorage: <state-dir>/keys.json (mode 0600) for one broker, or the
 * `broker_keys` table when replicas share PostgreSQL, so a token one replica signed verifies at
 * every other. Rotation keeps the old public key in the JWKS until `retire_after`, so tokens it
 * signed stay verifiable until they expire.
 */
import { randomUUID } from 'node:crypto';
import { type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { fileKeyStorage, type KeyStorage, type StoredKey } from '../store/key-storage.js';

/** The kinds of key the broker holds. */
export type KeyKind = 'login' | 'session' | 'audit';
const KINDS: KeyKind[] = ['login', 'session', 'audit'];
/** The one algorithm the broker signs with. */
export const BROKER_ALG = 'ES256';

/** A usable key. */
export interface SigningKey {
  kid: string;
  kind: KeyKind;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

type HeldKey = SigningKey & { retireAfter: number | null; createdAt: number; privateJwk: JWK };

/** All keys of one broker. */
export class KeyRing {
  private constructor(
    private keys: HeldKey[],
    private readonly storage: KeyStorage,
  ) {}

  /** Loads keys from a file (`null`: memory only), creating any kind that is missing (atomically, mode 0600). */
  static load(file: string | null, now: number): Promise<KeyRing> {
    return KeyRing.open(fileKeyStorage(file), now);
  }

  /**
   * Loads keys from any storage, creating any kind that is missing. The storage makes the
   * read-create-write atomic, so replicas starting together end up with one set of keys.
   */
  static async open(storage: KeyStorage, now: number): Promise<KeyRing> {
    const stored = await storage.update(async (keys) => {
      const missing = KINDS.filter(
        (kind) => !keys.some((key) => key.kind === kind && key.retire_after === null),
      );
      if (missing.length === 0) return null;
      return [...keys, ...(await Promise.all(missing.map((kind) => newKey(kind, now))))];
    });
    return new KeyRing(await Promise.all(stored.map(toSigningKey)), storage);
  }

  /** Re-reads the storage (a rotation made by another replica); keys already held are kept as they are. */
  async refresh(): Promise<void> {
    const stored = await this.storage.read();
    if (!KINDS.every((kind) => stored.some((key) => key.kind === kind && key.retire_after === null))) return;
    const held = new Map(this.keys.map((key) => [key.kid, key]));
    this.keys = await Promise.all(
      stored.map(async (key) => {
        const known = held.get(key.kid);
        return known ? { ...known, retireAfter: key.retire_after } : toSigningKey(key);
      }),
    );
  }

  /** The active key of a kind (the newest one not scheduled for retirement). */
  active(kind: KeyKind): SigningKey {
    const candidates = this.keys.filter((key) => key.kind === kind && key.retireAfter === null);
    const newest = candidates.sort((a, b) => b.createdAt - a.createdAt)[0];
    if (!newest) throw new Error(`No active ${kind} key`);
    return newest;
  }

  /**
   * The first key ever made of a kind, with its private JWK: the audit note key is derived from the
   * oldest audit key, so it stays the same across rotations and on every replica.
   */
  oldest(kind: KeyKind): SigningKey & { privateJwk: JWK } {
    const oldest = this.keys.filter((key) => key.kind === kind).sort((a, b) => a.createdAt - b.createdAt)[0];
    if (!oldest) throw new Error(`No ${kind} key`);
    return oldest;
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
  /**
   * Adds a new key of `kind` and retires the current ones after `overlapMs`. `beforeStoring` runs
   * with the new key's kid before anything is stored (imp audits the rotation there: fail closed, a
   * rotation the log does not hold never happened).
   */
  async rotate(
    kind: KeyKind,
    now: number,
    overlapMs: number,
    beforeStoring: (kid: string) => Promise<void> = async () => {},
  ): Promise<SigningKey> {
    const fresh = await newKey(kind, now);
    await beforeStoring(fresh.kid);
    const stored = await this.storage.update(async (keys) => [
      ...keys.map((key) =>
        key.kind === kind && key.retire_after === null ? { ...key, retire_after: now + overlapMs } : key,
      ),
      fresh,
    ]);
    const held = new Map(this.keys.map((key) => [key.kid, key]));
    this.keys = await Promise.all(
      stored.map(async (key) => {
        const known = held.get(key.kid);
        return known ? { ...known, retireAfter: key.retire_after } : toSigningKey(key);
      }),
    );
    return this.keys.find((key) => key.kid === fresh.kid)!;
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
    private_jwk: jwk as Record<string, unknown>,
  };
}

async function toSigningKey(stored: StoredKey): Promise<HeldKey> {
  const jwk = stored.private_jwk as JWK;
  const privateKey = (await importJWK({ ...jwk, alg: BROKER_ALG }, BROKER_ALG)) as CryptoKey;
  const { d: _private, ...publicPart } = jwk;
  const publicKey = (await importJWK({ ...publicPart, alg: BROKER_ALG }, BROKER_ALG)) as CryptoKey;
  return {
    kid: stored.kid,
    kind: stored.kind,
    privateKey,
    publicKey,
    publicJwk: { ...publicPart, kid: stored.kid, alg: BROKER_ALG, use: 'sig' },
    retireAfter: stored.retire_after,
    createdAt: stored.created_at,
    privateJwk: jwk,
  };
}
