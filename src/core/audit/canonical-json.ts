/**
 * RFC 8785 (JCS) canonical JSON: the exact text the audit chain hashes and checkpoints sign.
 *
 * Written here instead of using the `canonicalize` package: that package turns `undefined` inside
 * arrays into `null`, emits the bare text `undefined` for a function-valued property and loops
 * forever on cycles, and any of those would hash something other than what gets stored.
 *
 * Numbers and strings go through JSON.stringify, whose output is exactly the ECMAScript
 * Number::toString and string escaping RFC 8785 prescribes (-0 → 0, 1e+21, 1e-7, lowercase \u001f,
 * U+2028 left literal). Keys sort by UTF-16 code units, which is what Array#sort does by default.
 *
 * One deliberate deviation: a lone surrogate is escaped as \udxxx (as JSON.stringify does) rather
 * than rejected, so an odd character in a user-supplied reason cannot make an audit write, and with
 * it the operation, fail. The output is still well-formed UTF-8 and round-trips through JSON.parse.
 */

/** Serialises a JSON value canonically (RFC 8785); throws a TypeError for anything JSON cannot carry. */
export function canonicalJson(value: unknown): string {
  // JSON.stringify (native, no sorting) already writes the canonical text of a value whose objects
  // list their keys in sorted order — as every value parsed back from canonical JSON does — so such
  // values skip the writer below. Verifying a million events spends a third of its time here.
  if (typeof value === 'object' && value !== null && isStringifyCanonical(value, 0))
    return JSON.stringify(value);
  return write(value, null);
}

/**
 * True when JSON.stringify(value) is byte for byte canonicalJson(value): plain objects and arrays
 * only, every object's keys already in UTF-16 order (integer-like keys, which JavaScript enumerates
 * first, fail this), finite numbers, no undefined array items, no functions, symbols, bigints or
 * toJSON. Anything else — including what canonicalJson refuses — takes the careful path.
 */
export function isStringifyCanonical(value: object, depth = 0): boolean {
  if (depth > 32 || typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!isStringifyValue(value[i], depth)) return false;
    return true;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const record = value as Record<string, unknown>;
  let previous: string | null = null;
  for (const key in record) {
    if (!Object.hasOwn(record, key)) return false;
    if (previous !== null && !(previous < key)) return false;
    previous = key;
    const item = record[key];
    if (item !== undefined && !isStringifyValue(item, depth)) return false;
  }
  return true;
}

function isStringifyValue(item: unknown, depth: number): boolean {
  switch (typeof item) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(item);
    case 'object':
      return item === null || isStringifyCanonical(item, depth + 1);
    default:
      return false;
  }
}

// Characters JSON must escape, plus surrogates (paired or not) which JSON.stringify sorts out.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** canonicalJson of a string. */
export function canonicalString(value: string): string {
  // Skipping JSON.stringify for plain strings is what makes verifying a million events fast.
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : '"' + value + '"';
}

function write(value: unknown, ancestors: object[] | null): string {
  switch (typeof value) {
    case 'string':
      return canonicalString(value);
    case 'number':
      // JSON has no NaN or Infinity; silently writing null (as JSON.stringify does) would hash a lie.
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON cannot represent the number ${value}`);
      return String(value); // Number::toString, as RFC 8785 requires; -0 becomes "0".
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      // The ancestor list exists only once there is an object: most calls serialise a lone string.
      return value === null ? 'null' : writeObject(value, ancestors ?? []);
    default:
      throw new TypeError(`canonical JSON cannot represent a value of type ${typeof value}`);
  }
}

function writeObject(value: object, ancestors: object[]): string {
  if (ancestors.includes(value)) throw new TypeError('canonical JSON cannot represent a circular structure');
  const toJSON: unknown = (value as { toJSON?: unknown }).toJSON;
  // Dates and other toJSON holders serialise as JSON.stringify would store them.
  if (typeof toJSON === 'function') return write(toJSON.call(value, ''), ancestors);
  ancestors.push(value);
  const out = Array.isArray(value) ? writeArray(value, ancestors) : writePlainObject(value, ancestors);
  ancestors.pop();
  return out;
}

function writeArray(value: readonly unknown[], ancestors: object[]): string {
  let out = '[';
  for (let i = 0; i < value.length; i++) {
    const item = value[i];
    // JSON.stringify would write null here, so the stored array would differ from the caller's.
    if (item === undefined)
      throw new TypeError(`canonical JSON cannot represent undefined (array index ${i})`);
    out += (i === 0 ? '' : ',') + write(item, ancestors);
  }
  return out + ']';
}

function writePlainObject(value: object, ancestors: object[]): string {
  const proto: unknown = Object.getPrototypeOf(value);
  // A Map, Set or class instance would serialise as {} or a subset of its state: refuse instead.
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`canonical JSON cannot represent a ${value.constructor?.name ?? 'non-plain'} object`);
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  let out = '{';
  for (const key of keys) {
    const item = record[key];
    // An absent optional property, exactly as JSON.stringify (and so the store) drops it.
    if (item === undefined) continue;
    out += (out.length === 1 ? '' : ',') + write(key, ancestors) + ':' + write(item, ancestors);
  }
  return out + '}';
}
