/**
 * The audit note key: the Ed25519 key that signs checkpoints (C2SP signed-note, type 0x01).
 *
 * Where it comes from, best first:
 *   --audit-key pkcs11:…   a PKCS#11 token (an HSM; SoftHSM2 in tests) — see pkcs11-key.ts
 *   --audit-key FILE       a PRIVATE+KEY+… file (Go note format) outside --state-dir
 *   neither                derived from the broker's first audit signing key (keys.json or
 *                          broker_keys), so replicas agree — beside the data, which witnesses cover.
 * The key name is the checkpoint origin: policy `audit.origin`, else imp/<hash of the public key>.
 */
import { createHash, createPrivateKey, hkdfSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { relative, resolve } from 'node:path';
import {
  ED25519_TYPE,
  type Ed25519NoteKey,
  ed25519Signer,
  formatVerifierKey,
  type NoteSigner,
  parsePrivateNoteKey,
  rawEd25519PublicKey,
} from '../core/audit/signed-note.js';
import { ConfigError } from '../core/errors.js';
import { isPkcs11Uri } from '../core/pkcs11-uri.js';
import type { KeyRing } from './keys.js';

/** A loaded note key: how to sign, and what to publish. */
export interface AuditNoteKey {
  origin: string;
  signer: NoteSigner;
  /** The verifier key (vkey) witnesses and verifiers are configured with. */
  vkey: string;
  /** Where it lives, for logs (never the key). */
  where: string;
  /** Releases what holds the key (a PKCS#11 session); absent for keys in memory. */
  close?: () => void;
}

// RFC 8410 PKCS#8 prefix for a raw Ed25519 seed.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** Builds an Ed25519 note key from a 32-byte seed and a name. */
export function noteKeyFromSeed(name: string, seed: Uint8Array): Ed25519NoteKey {
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  return { name, privateKey, publicKey: rawEd25519PublicKey(privateKey) };
}

/** The default origin for a public key: stable, unique per key, known before the broker listens. */
export function defaultOrigin(publicKey: Uint8Array): string {
  return `imp/${createHash('sha256').update(publicKey).digest('hex').slice(0, 16)}`;
}

/** Loads the audit note key per the rules above. */
export async function loadAuditNoteKey(options: {
  auditKey: string | undefined;
  stateDir: string;
  origin: string | null;
  keys: KeyRing;
  /** Where IMP_PKCS11_MODULE is read from (a pkcs11: URI without module-path). */
  env?: NodeJS.ProcessEnv;
}): Promise<AuditNoteKey> {
  const { auditKey, origin } = options;
  if (auditKey && isPkcs11Uri(auditKey)) {
    // Loaded only here: the native binding stays off every other start.
    const { loadPkcs11NoteKey } = await import('./pkcs11-key.js');
    return loadPkcs11NoteKey(auditKey, origin, options.env);
  }
  if (auditKey) {
    const inside = relative(resolve(options.stateDir), resolve(auditKey));
    if (!inside.startsWith('..') && !resolve(auditKey).startsWith('/..'))
      throw new ConfigError(
        `--audit-key ${auditKey} is inside --state-dir: keep the audit key away from the data it protects.`,
      );
    const text = await readFile(auditKey, 'utf8').catch((error: Error) =>
      Promise.reject(new ConfigError(`Cannot read --audit-key ${auditKey}: ${error.message}`)),
    );
    let key: Ed25519NoteKey;
    try {
      key = parsePrivateNoteKey(text);
    } catch (error) {
      throw new ConfigError(`--audit-key ${auditKey}: ${(error as Error).message}`);
    }
    if (origin && origin !== key.name)
      throw new ConfigError(`--audit-key names the log ${key.name} but audit.origin is ${origin}`);
    return wrap(key, `file ${auditKey}`);
  }
  // Derived from the oldest audit key, which is never retired: the same on every replica, stable across rotations.
  const audit = options.keys.oldest('audit');
  const d = Buffer.from(String(audit.privateJwk.d), 'base64url');
  const seed = Buffer.from(hkdfSync('sha256', d, Buffer.alloc(0), 'imp audit note key v1', 32));
  const provisional = noteKeyFromSeed('x', seed);
  return wrap(
    noteKeyFromSeed(origin ?? defaultOrigin(provisional.publicKey), seed),
    'derived from the audit key',
  );
}

function wrap(key: Ed25519NoteKey, where: string): AuditNoteKey {
  return {
    origin: key.name,
    signer: ed25519Signer(key),
    vkey: formatVerifierKey(key.name, ED25519_TYPE, key.publicKey),
    where,
  };
}
