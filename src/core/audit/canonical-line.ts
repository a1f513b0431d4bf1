/**
 * Reads one export line that claims to be an audit event's RFC 8785 canonical JSON — the exact
 * bytes of its tree leaf — straight from the bytes, without parsing it into objects or writing it
 * back out: the fast path of verifying an export whose header says `canonical: true`.
 *
 * The reader accepts a strict subset of canonical JSON and nothing else: the thirteen event
 * members in RFC 8785 order with the types auditEventProblem requires, no whitespace, strings with
 * only the escapes JSON.stringify writes, well-formed UTF-8, integers without leading zeros or a
 * sign on zero, other numbers only as Number::toString spells them, object keys strictly
 * increasing (so no duplicates). Every such line is what canonicalJson(JSON.parse(line)) gives back
 * byte for byte, so every JSON parser reads it the same way and the fields reported (seq, prev,
 * hash, type) are the ones the leaf hash covers. Anything it is not sure of (escaped or non-ASCII
 * object keys, a \u escape of a surrogate, deep nesting) it declines, and the caller checks that
 * line the exact way: parse, re-serialise, compare bytes (isCanonicalLine).
 */
import { canonicalJson } from './canonical-json.js';

/** Where the parts of an accepted event line are (byte offsets into the bytes given). */
export interface CanonicalEventFields {
  seq: number;
  /** The "," that starts the `"hash":"…"` member; the chain hash input leaves out [hashCut, hashAt + 65). */
  hashCut: number;
  /** The first of the 64 hex digits of `hash`. */
  hashAt: number;
  /** The first of the 64 hex digits of `prev`. */
  prevAt: number;
  /** `type`'s string, quotes included. */
  typeAt: number;
  typeEnd: number;
}

/** A reusable result record (one per scanner: no allocation per line). */
export function canonicalEventFields(): CanonicalEventFields {
  return { seq: 0, hashCut: 0, hashAt: 0, prevAt: 0, typeAt: 0, typeEnd: 0 };
}

const bytesOf = (text: string) => Uint8Array.from(Buffer.from(text, 'latin1'));
const ACTOR = bytesOf('{"actor":');
const ACTOR_EMAIL = bytesOf('{"email":');
const ACTOR_ISS = bytesOf(',"iss":');
const ACTOR_ROLES = bytesOf(',"roles":[');
const ACTOR_SUB = bytesOf(',"sub":');
const DATA = bytesOf(',"data":');
const ENVIRONMENT = bytesOf(',"environment":');
const HASH = bytesOf(',"hash":"');
const ID = bytesOf('","id":');
const PREV = bytesOf(',"prev":"');
const REASON = bytesOf('","reason":');
const SEQ = bytesOf(',"seq":');
const SESSION = bytesOf(',"session":');
const TENANT = bytesOf(',"tenant":');
const TICKET = bytesOf(',"ticket":');
const TS = bytesOf(',"ts":"');
const TYPE = bytesOf('","type":');
const NULL = bytesOf('null');
const TRUE = bytesOf('true');
const FALSE = bytesOf('false');

/** Objects and arrays nested deeper than this are left to the exact check. */
const MAX_DEPTH = 32;

/**
 * True when bytes[start, end) is an audit event in the canonical form described above; fills
 * `out`. False means "not vouched for", not "invalid": the caller then checks the line exactly.
 */
export function readCanonicalEvent(
  b: Uint8Array,
  start: number,
  end: number,
  out: CanonicalEventFields,
): boolean {
  // Every helper returns −1 for "not this" and passes a −1 it is given straight on.
  let i = literal(b, start, end, ACTOR);
  i = b[i] === 0x6e ? literal(b, i, end, NULL) : actor(b, i, end);
  i = literal(b, i, end, DATA);
  i = b[i] === 0x7b ? object(b, i, end, 0) : -1;
  i = nullableString(b, literal(b, i, end, ENVIRONMENT), end);
  out.hashCut = i;
  i = literal(b, i, end, HASH);
  if (!isHex64(b, i, end)) return false;
  out.hashAt = i;
  i = nonEmptyString(b, literal(b, i + 64, end, ID), end);
  i = literal(b, i, end, PREV);
  if (!isHex64(b, i, end)) return false;
  out.prevAt = i;
  i = nullableString(b, literal(b, i + 64, end, REASON), end);
  i = literal(b, i, end, SEQ);
  if (i < 0) return false;
  // seq: a positive safe integer, no leading zero (at most 16 digits; 2^53 − 1 has 16).
  let seq = 0;
  const digits = i;
  // (digit value first: seq * 10 + byte could pass 2^53 and round before the − 0x30.)
  for (; i < end && b[i]! >= 0x30 && b[i]! <= 0x39; i++) seq = seq * 10 + (b[i]! - 0x30);
  if (i === digits || i - digits > 16 || b[digits] === 0x30 || !Number.isSafeInteger(seq)) return false;
  out.seq = seq;
  i = nullableString(b, literal(b, i, end, SESSION), end);
  i = nullableString(b, literal(b, i, end, TENANT), end);
  i = nullableString(b, literal(b, i, end, TICKET), end);
  i = literal(b, i, end, TS);
  if (!isIsoUtcMs(b, i, end)) return false;
  out.typeAt = i + 24 + TYPE.length;
  i = nonEmptyString(b, literal(b, i + 24, end, TYPE), end);
  out.typeEnd = i;
  return i === end - 1 && b[i] === 0x7d; // "}" and nothing after it
}

/** The exact check: bytes are canonicalJson of what they parse to (slow; for what the reader declined). */
export function isCanonicalLine(bytes: Uint8Array, value: unknown): boolean {
  let canonical: string;
  try {
    canonical = canonicalJson(value);
  } catch {
    return false;
  }
  return Buffer.from(canonical, 'utf8').equals(bytes);
}

/** `{"email":…,"iss":…,"roles":[…],"sub":…}`; the index after it, or −1. */
function actor(b: Uint8Array, i: number, end: number): number {
  i = nullableString(b, literal(b, i, end, ACTOR_EMAIL), end);
  i = nullableString(b, literal(b, i, end, ACTOR_ISS), end);
  i = literal(b, i, end, ACTOR_ROLES);
  if (i < 0) return -1;
  if (b[i] !== 0x5d) {
    i = string(b, i, end);
    while (i >= 0 && b[i] === 0x2c) i = string(b, i + 1, end);
    if (i < 0 || b[i] !== 0x5d) return -1;
  }
  i = string(b, literal(b, i + 1, end, ACTOR_SUB), end);
  return i >= 0 && i < end && b[i] === 0x7d ? i + 1 : -1;
}

/** Any canonical JSON value starting at i; the index after it, or −1. */
function value(b: Uint8Array, i: number, end: number, depth: number): number {
  switch (b[i]) {
    case 0x22:
      return string(b, i, end);
    case 0x7b:
      return object(b, i, end, depth + 1);
    case 0x5b:
      return array(b, i, end, depth + 1);
    case 0x6e:
      return literal(b, i, end, NULL);
    case 0x74:
      return literal(b, i, end, TRUE);
    case 0x66:
      return literal(b, i, end, FALSE);
    default:
      return number(b, i, end);
  }
}

/** `{}` or members with plain ASCII keys in strictly increasing order (b[i] is "{"). */
function object(b: Uint8Array, i: number, end: number, depth: number): number {
  if (depth > MAX_DEPTH) return -1;
  i++;
  if (b[i] === 0x7d) return i + 1;
  let previous = -1;
  let previousEnd = -1;
  for (;;) {
    const key = i;
    const keyEnd = plainKey(b, i, end);
    if (keyEnd < 0 || b[keyEnd] !== 0x3a) return -1;
    // Plain ASCII keys: byte order is UTF-16 code unit order (RFC 8785 §3.2.3); equal is a duplicate.
    if (previous >= 0 && compare(b, previous, previousEnd, key, keyEnd) >= 0) return -1;
    previous = key;
    previousEnd = keyEnd;
    i = value(b, keyEnd + 1, end, depth);
    if (i < 0 || i >= end) return -1;
    if (b[i] === 0x7d) return i + 1;
    if (b[i] !== 0x2c) return -1;
    i++;
  }
}

/** `[]` or values separated by commas (b[i] is "["). */
function array(b: Uint8Array, i: number, end: number, depth: number): number {
  if (depth > MAX_DEPTH) return -1;
  i++;
  if (b[i] === 0x5d) return i + 1;
  for (;;) {
    i = value(b, i, end, depth);
    if (i < 0 || i >= end) return -1;
    if (b[i] === 0x5d) return i + 1;
    if (b[i] !== 0x2c) return -1;
    i++;
  }
}

/** A key of printable ASCII other than " and \ (anything else is left to the exact check). */
function plainKey(b: Uint8Array, i: number, end: number): number {
  if (b[i] !== 0x22) return -1;
  for (i++; i < end; i++) {
    const c = b[i]!;
    if (c === 0x22) return i + 1;
    if (c < 0x20 || c > 0x7e || c === 0x5c) return -1;
  }
  return -1;
}

/** Byte order of the contents of the keys [a, aEnd) and [c, cEnd) (quotes included); a prefix sorts first. */
function compare(b: Uint8Array, a: number, aEnd: number, c: number, cEnd: number): number {
  const n = Math.min(aEnd - a, cEnd - c) - 1;
  for (let k = 1; k < n; k++) {
    const x = b[a + k]!;
    const y = b[c + k]!;
    if (x !== y) return x - y;
  }
  return aEnd - a - (cEnd - c);
}

/** How a byte inside a string is read: 0 as it is, 1 the closing quote, 2 an escape, 3 UTF-8, 4 refused. */
const IN_STRING = new Uint8Array(256);
IN_STRING.fill(4, 0, 0x20); // raw control characters
IN_STRING[0x22] = 1;
IN_STRING[0x5c] = 2;
IN_STRING.fill(3, 0x80, 0x100);

/** A string as JSON.stringify writes it; the index after its closing quote, or −1. */
function string(b: Uint8Array, i: number, end: number): number {
  if (i < 0 || b[i] !== 0x22) return -1;
  for (i++; i >= 0; ) {
    while (i < end && IN_STRING[b[i]!] === 0) i++;
    if (i >= end) return -1;
    const kind = IN_STRING[b[i]!];
    if (kind === 1) return i + 1;
    if (kind === 2) i = escapeSequence(b, i, end);
    else if (kind === 3) i = utf8(b, i, end);
    else return -1;
  }
  return -1;
}

function nonEmptyString(b: Uint8Array, i: number, end: number): number {
  return i >= 0 && b[i + 1] !== 0x22 ? string(b, i, end) : -1;
}

function nullableString(b: Uint8Array, i: number, end: number): number {
  return i >= 0 && b[i] === 0x6e ? literal(b, i, end, NULL) : string(b, i, end);
}

/** The escapes JSON.stringify writes: \" \\ \b \f \n \r \t, and \u00xx (lowercase) for other controls. */
function escapeSequence(b: Uint8Array, i: number, end: number): number {
  if (i + 1 >= end) return -1;
  const c = b[i + 1]!;
  if (c === 0x22 || c === 0x5c || c === 0x62 || c === 0x66 || c === 0x6e || c === 0x72 || c === 0x74)
    return i + 2;
  if (c !== 0x75 || i + 6 > end || b[i + 2] !== 0x30 || b[i + 3] !== 0x30) return -1; // \ud8xx etc.: declined
  const hi = b[i + 4]!;
  const lo = b[i + 5]!;
  const low = lo >= 0x30 && lo <= 0x39 ? lo - 0x30 : lo >= 0x61 && lo <= 0x66 ? lo - 0x57 : -1;
  if ((hi !== 0x30 && hi !== 0x31) || low < 0) return -1;
  const code = (hi - 0x30) * 16 + low;
  // \b \t \n \f \r have short forms, which JSON.stringify uses.
  return code === 8 || code === 9 || code === 10 || code === 12 || code === 13 ? -1 : i + 6;
}

/** One well-formed UTF-8 character starting at i (no overlongs, no surrogates, ≤ U+10FFFF). */
function utf8(b: Uint8Array, i: number, end: number): number {
  const c = b[i]!;
  if (c >= 0xc2 && c <= 0xdf) return continues(b, i + 1, end, 0x80) ? i + 2 : -1;
  if (c >= 0xe0 && c <= 0xef) {
    const [lo, hi] = [c === 0xe0 ? 0xa0 : 0x80, c === 0xed ? 0x9f : 0xbf];
    return continues(b, i + 1, end, lo, hi) && continues(b, i + 2, end, 0x80) ? i + 3 : -1;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const [lo, hi] = [c === 0xf0 ? 0x90 : 0x80, c === 0xf4 ? 0x8f : 0xbf];
    const rest = continues(b, i + 2, end, 0x80) && continues(b, i + 3, end, 0x80);
    return continues(b, i + 1, end, lo, hi) && rest ? i + 4 : -1;
  }
  return -1;
}

/** A continuation byte in [lo, hi] at i (< end). */
function continues(b: Uint8Array, i: number, end: number, lo: number, hi = 0xbf): boolean {
  return i < end && b[i]! >= lo && b[i]! <= hi;
}

/** A number as Number::toString spells it: integers of up to 15 digits here, others by round trip. */
function number(b: Uint8Array, i: number, end: number): number {
  const start = i;
  if (b[i] === 0x2d) i++;
  if (b[i] === 0x30) {
    i++;
  } else {
    const first = i;
    while (i < end && b[i]! >= 0x30 && b[i]! <= 0x39) i++;
    if (i === first || b[first] === 0x30) return -1;
  }
  const next = b[i];
  // Up to 15 digits every integer is exact and Number::toString writes its digits.
  const simple =
    next !== 0x2e && next !== 0x65 && next !== 0x45 && i - start - (b[start] === 0x2d ? 1 : 0) <= 15;
  // "0" is canonical, "-0" is not (Number::toString(-0) is "0").
  if (simple) return b[start] === 0x2d && b[start + 1] === 0x30 ? -1 : i;
  while (i < end && isNumberByte(b[i]!)) i++;
  const token = Buffer.from(b.buffer, b.byteOffset + start, i - start).toString('latin1');
  const parsed = Number(token);
  return Number.isFinite(parsed) && String(parsed) === token ? i : -1;
}

function isNumberByte(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d || c === 0x2b || c === 0x65;
}

/** The index after `lit` if bytes at i spell it, else −1 (and −1 stays −1). */
function literal(b: Uint8Array, i: number, end: number, lit: Uint8Array): number {
  if (i < 0 || i + lit.length > end) return -1;
  for (let k = 0; k < lit.length; k++) if (b[i + k] !== lit[k]) return -1;
  return i + lit.length;
}

/** Lowercase hex digits (1) and every other byte (0). */
const IS_HEX = new Uint8Array(256);
for (const c of Buffer.from('0123456789abcdef', 'latin1')) IS_HEX[c] = 1;

/** 64 lowercase hex digits at i. */
function isHex64(b: Uint8Array, i: number, end: number): boolean {
  if (i < 0 || i + 64 > end) return false;
  let all = 1;
  for (let k = i; k < i + 64; k++) all &= IS_HEX[b[k]!]!;
  return all === 1;
}

/** YYYY-MM-DDTHH:MM:SS.mmmZ with the ranges event.ts's ISO_UTC_MS allows, then the closing quote. */
function isIsoUtcMs(b: Uint8Array, i: number, end: number): boolean {
  if (i < 0 || i + 25 > end || b[i + 24] !== 0x22) return false;
  for (const k of TS_DIGITS) if (b[i + k]! < 0x30 || b[i + k]! > 0x39) return false;
  for (let k = 0; k < TS_SEPARATORS.length; k++)
    if (TS_SEPARATORS[k] !== 0 && b[i + k] !== TS_SEPARATORS[k]) return false;
  const month = twoDigits(b, i + 5);
  const day = twoDigits(b, i + 8);
  return (
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= 31 &&
    twoDigits(b, i + 11) <= 23 &&
    twoDigits(b, i + 14) <= 59 &&
    twoDigits(b, i + 17) <= 59
  );
}

function twoDigits(b: Uint8Array, i: number): number {
  return (b[i]! - 0x30) * 10 + (b[i + 1]! - 0x30);
}

/** The positions of digits in a ts, and its separators (0 where a digit goes). */
const TS_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22];
const TS_SEPARATORS = Uint8Array.from(Buffer.from('0000-00-00T00:00:00.000Z', 'latin1'), (c) =>
  c === 0x30 ? 0 : c,
);
