/**
 * C2SP tlog-cosignature (c2sp.org/tlog-cosignature), the Ed25519 v1 type (signature type 0x04):
 * a witness's timestamped statement that a checkpoint is the largest consistent tree it has seen.
 */
import { sign, verify } from 'node:crypto';
import {
  type Ed25519NoteKey,
  ed25519PublicKey,
  formatVerifierKey,
  keyIdOf,
  NoteError,
  type NoteSigner,
  type NoteVerifier,
  parseVerifierKey,
} from './signed-note.js';

/** "Format": the signature type byte of Ed25519 cosignatures. */
export const COSIGNATURE_TYPE = 0x04;

/** "Ed25519 signed message": cosignature/v1, time <t>, then the checkpoint body. */
export function cosignedMessage(checkpointText: string, timestamp: number): string {
  return `cosignature/v1\ntime ${timestamp}\n${checkpointText}`;
}

/** "Format": timestamped_signature = u64 big-endian timestamp || 64-byte Ed25519 signature. */
export function cosign(key: Ed25519NoteKey, checkpointText: string, timestamp: number): Uint8Array {
  if (!Number.isSafeInteger(timestamp) || timestamp <= 0)
    throw new NoteError('malformed', 'a cosignature needs a time');
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(BigInt(timestamp));
  return Buffer.concat([
    out,
    sign(null, Buffer.from(cosignedMessage(checkpointText, timestamp)), key.privateKey),
  ]);
}

/** The cosigner as a note signer (its signature lines go after the log's). */
export function cosigner(key: Ed25519NoteKey, now: () => number): NoteSigner {
  return {
    name: key.name,
    keyId: keyIdOf(key.name, COSIGNATURE_TYPE, key.publicKey),
    sign: (text) => cosign(key, text, Math.floor(now() / 1000)),
  };
}

/** The timestamp (POSIX seconds) of a cosignature, or null when it is not one. */
export function cosignatureTime(signature: Uint8Array): number | null {
  if (signature.length !== 72) return null;
  const time = Buffer.from(signature).readBigUInt64BE(0);
  return time > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(time);
}

/** A verifier for an Ed25519 cosigner vkey (type 0x04). */
export function cosignatureVerifier(vkey: string): NoteVerifier {
  const key = parseVerifierKey(vkey);
  if (key.type !== COSIGNATURE_TYPE || key.publicKey.length !== 32)
    throw new NoteError('malformed', `${key.name} is not an Ed25519 cosigner key (type 0x04)`);
  const publicKey = ed25519PublicKey(key.publicKey);
  return {
    name: key.name,
    keyId: key.keyId,
    verify: (text, signature) => {
      const time = cosignatureTime(signature);
      if (time === null || time === 0) return false;
      return verify(null, Buffer.from(cosignedMessage(text, time)), publicKey, signature.subarray(8));
    },
  };
}

/** The vkey a witness publishes for its cosigning key. */
export function cosignerVerifierKey(key: Ed25519NoteKey): string {
  return formatVerifierKey(key.name, COSIGNATURE_TYPE, key.publicKey);
}
