/**
 * C2SP signed-note (c2sp.org/signed-note): text signed by one or more keys, with Ed25519 keys
 * (signature type 0x01) and the verifier-key ("vkey") encoding. Other signature types (the
 * tlog-cosignature 0x04) plug in through NoteVerifier, so this file knows only the note format.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';

/** One signature line: key name, 4-byte key id, signature bytes (after the id). */
export interface NoteSignature {
  name: string;
  keyId: number;
  signature: Uint8Array;
}

/** A parsed note: its text (ending in a newline) and its signature lines. */
export interface Note {
  text: string;
  signatures: NoteSignature[];
}

/** Checks one signature of a known key; `name` and `keyId` select it. */
export interface NoteVerifier {
  name: string;
  keyId: number;
  verify(text: string, signature: Uint8Array): boolean;
}

/** Signs note text as one key, returning the signature bytes without the key id. */
export interface NoteSigner {
  name: string;
  keyId: number;
  sign(text: string): Uint8Array | Promise<Uint8Array>;
}

/** Thrown for a note that is not well-formed or does not verify; `reason` names the failure. */
export class NoteError extends Error {
  constructor(
    readonly reason: 'malformed' | 'unverified' | 'bad_signature',
    message: string,
  ) {
    super(message);
  }
}

/** "Signature types" section: the type byte of plain Ed25519 note signatures. */
export const ED25519_TYPE = 0x01;
const EM_DASH = '\u2014';
/** "Format": verifiers must accept up to 16 signatures; more is refused to bound work. */
const MAX_SIGNATURES = 100;

/** "Signatures": key ID = SHA-256(key name || 0x0A || signature type || public key)[:4], big-endian. */
export function keyIdOf(name: string, type: number, publicKey: Uint8Array): number {
  const digest = createHash('sha256')
    .update(name)
    .update(Uint8Array.of(0x0a, type))
    .update(publicKey)
    .digest();
  return digest.readUInt32BE(0);
}

/** "Format": key names are non-empty, without Unicode spaces or '+'. */
export function isKeyName(name: string): boolean {
  return name.length > 0 && !/[\s+\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u.test(name);
}

/** Parses a signed note ("Format"); throws NoteError('malformed'). Signatures are not checked here. */
export function parseNote(message: string): Note {
  // "Signed notes MUST be valid UTF-8 and MUST NOT contain any ASCII control characters other than newline."
  if (/[\u0000-\u0009\u000b-\u001f]/.test(message)) throw malformed('it contains control characters');
  if (!message.endsWith('\n')) throw malformed('it does not end in a newline');
  // The text is separated from the signatures by the last empty line.
  const split = message.lastIndexOf('\n\n');
  if (split < 0) throw malformed('it has no blank line before its signatures');
  const text = message.slice(0, split + 1);
  const lines = message.slice(split + 2, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw malformed('it has too many signatures');
  return { text, signatures: lines.map(parseSignatureLine) };
}

/** Parses "— <key name> base64(key ID || signature)". */
export function parseSignatureLine(line: string): NoteSignature {
  const match = new RegExp(`^${EM_DASH} (\\S+) ([A-Za-z0-9+/]+={0,2})$`).exec(line);
  if (!match || !isKeyName(match[1]!)) throw malformed('a signature line is not "— name base64"');
  const bytes = decodeBase64(match[2]!);
  if (!bytes || bytes.length < 5) throw malformed('a signature is too short');
  return { name: match[1]!, keyId: Buffer.from(bytes).readUInt32BE(0), signature: bytes.subarray(4) };
}

/** Formats one signature line (with its newline). */
export function signatureLine(sig: NoteSignature): string {
  const id = Buffer.alloc(4);
  id.writeUInt32BE(sig.keyId >>> 0);
  return `${EM_DASH} ${sig.name} ${Buffer.concat([id, sig.signature]).toString('base64')}\n`;
}

/** The whole note: text, blank line, signature lines. */
export function formatNote(note: Note): string {
  return `${note.text}\n${note.signatures.map(signatureLine).join('')}`;
}

/** Signs `text` (which must end in a newline) with every signer. */
export async function signNote(text: string, signers: readonly NoteSigner[]): Promise<string> {
  if (!text.endsWith('\n')) throw malformed('note text must end in a newline');
  const signatures: NoteSignature[] = [];
  for (const signer of signers)
    signatures.push({ name: signer.name, keyId: signer.keyId, signature: await signer.sign(text) });
  return formatNote({ text, signatures });
}

/**
 * "Signatures": verifies a note against known keys. Signatures of unknown keys are ignored; one of a
 * known key that fails makes the whole note fail; with none from a known key, the note is refused.
 * Returns the note and the verifiers whose signatures checked out.
 */
export function openNote(
  message: string,
  known: readonly NoteVerifier[],
): { note: Note; verified: NoteVerifier[] } {
  const note = parseNote(message);
  const verified: NoteVerifier[] = [];
  for (const sig of note.signatures) {
    const verifier = known.find((k) => k.name === sig.name && k.keyId === sig.keyId);
    if (!verifier) continue;
    if (!verifier.verify(note.text, sig.signature))
      throw new NoteError('bad_signature', `the signature of ${sig.name} does not verify`);
    if (!verified.includes(verifier)) verified.push(verifier);
  }
  if (verified.length === 0) throw new NoteError('unverified', 'no signature from a known key');
  return { note, verified };
}

/** An Ed25519 key pair for notes, in the forms both sides need. */
export interface Ed25519NoteKey {
  name: string;
  privateKey: KeyObject;
  publicKey: Uint8Array;
}

/** "Verifier keys": <name>+hex(key ID)+base64(type || public key). */
export function formatVerifierKey(name: string, type: number, publicKey: Uint8Array): string {
  const id = keyIdOf(name, type, publicKey).toString(16).padStart(8, '0');
  return `${name}+${id}+${Buffer.concat([Uint8Array.of(type), publicKey]).toString('base64')}`;
}

/** Parses a vkey, checking the key id against the name and key; throws NoteError('malformed'). */
export function parseVerifierKey(vkey: string): {
  name: string;
  keyId: number;
  type: number;
  publicKey: Uint8Array;
} {
  const parts = vkey.trim().split('+');
  // The base64 part may itself contain '+': the name and id are the first two fields.
  if (parts.length < 3) throw malformed('a verifier key is name+id+key');
  const [name, id] = [parts[0]!, parts[1]!];
  const bytes = decodeBase64(parts.slice(2).join('+'));
  if (!isKeyName(name) || !/^[0-9a-f]{8}$/.test(id) || !bytes || bytes.length < 2)
    throw malformed('a verifier key is name+hex(id)+base64(type||key)');
  const type = bytes[0]!;
  const publicKey = bytes.subarray(1);
  const keyId = Number.parseInt(id, 16);
  if (keyIdOf(name, type, publicKey) !== keyId)
    throw malformed(`the key id of ${name} does not match its key`);
  return { name, keyId, type, publicKey };
}

/** A verifier for a plain Ed25519 (type 0x01) vkey. */
export function ed25519Verifier(vkey: string): NoteVerifier {
  const key = parseVerifierKey(vkey);
  if (key.type !== ED25519_TYPE || key.publicKey.length !== 32)
    throw malformed(`${key.name} is not an Ed25519 note key`);
  const publicKey = ed25519PublicKey(key.publicKey);
  return {
    name: key.name,
    keyId: key.keyId,
    verify: (text, signature) =>
      signature.length === 64 && verify(null, Buffer.from(text), publicKey, signature),
  };
}

/** A signer for a plain Ed25519 (type 0x01) note key. */
export function ed25519Signer(key: Ed25519NoteKey): NoteSigner {
  return {
    name: key.name,
    keyId: keyIdOf(key.name, ED25519_TYPE, key.publicKey),
    sign: (text) => sign(null, Buffer.from(text), key.privateKey),
  };
}

/** The raw 32-byte public key of an Ed25519 KeyObject. */
export function rawEd25519PublicKey(key: KeyObject): Uint8Array {
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  return Buffer.from(jwk.x!, 'base64url');
}

/** A KeyObject for a raw 32-byte Ed25519 public key. */
export function ed25519PublicKey(raw: Uint8Array): KeyObject {
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') },
    format: 'jwk',
  });
}

/**
 * Go's note package private key encoding, "PRIVATE+KEY+<name>+hex(id)+base64(type || seed)", so
 * keys move between imp and the Go tools (and a file reads as what it is).
 */
export function formatPrivateNoteKey(key: Ed25519NoteKey, type = ED25519_TYPE): string {
  const jwk = key.privateKey.export({ format: 'jwk' });
  const seed = Buffer.from(jwk.d!, 'base64url');
  const id = keyIdOf(key.name, type, key.publicKey).toString(16).padStart(8, '0');
  return `PRIVATE+KEY+${key.name}+${id}+${Buffer.concat([Uint8Array.of(type), seed]).toString('base64')}`;
}

/** Parses formatPrivateNoteKey's encoding; throws NoteError('malformed'). */
export function parsePrivateNoteKey(text: string): Ed25519NoteKey & { type: number } {
  const parts = text.trim().split('+');
  if (parts.length < 5 || parts[0] !== 'PRIVATE' || parts[1] !== 'KEY')
    throw malformed('a note private key starts PRIVATE+KEY+');
  const name = parts[2]!;
  const bytes = decodeBase64(parts.slice(4).join('+'));
  if (!isKeyName(name) || !bytes || bytes.length !== 33)
    throw malformed('a note private key holds a 32-byte seed');
  const privateKey = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, bytes.subarray(1)]),
    format: 'der',
    type: 'pkcs8',
  });
  const publicKey = rawEd25519PublicKey(privateKey);
  if (keyIdOf(name, bytes[0]!, publicKey).toString(16).padStart(8, '0') !== parts[3])
    throw malformed(`the key id of ${name} does not match its key`);
  return { name, privateKey, publicKey, type: bytes[0]! };
}

// RFC 8410 PKCS#8 wrapping of an Ed25519 seed: the fixed 16-byte prefix before the 32 bytes.
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** Standard base64 (RFC 4648 §4) strictly: returns null unless it round-trips. */
export function decodeBase64(text: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return null;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : null;
}

function malformed(message: string): NoteError {
  return new NoteError('malformed', `malformed note: ${message}`);
}
