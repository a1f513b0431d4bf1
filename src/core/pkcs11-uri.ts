/**
 * RFC 7512 PKCS#11 URIs (`pkcs11:token=…;object=…;id=%01?pin-source=file:…&module-path=…`), parsed
 * into what the audit-key loader matches a token and a key by. Pure: no module loading, no file reads.
 *
 * Unknown attributes (vendor ones included, §2.3 lets an application refuse what it does not
 * understand) are refused rather than ignored: a misspelt `objet=` must not silently match any key.
 */
import { ConfigError } from './errors.js';

/** §2.3 path attributes: which token, slot, library and object. Values are percent-decoded. */
const PATH_ATTRIBUTES = [
  'token',
  'manufacturer',
  'serial',
  'model',
  'library-manufacturer',
  'library-description',
  'library-version',
  'object',
  'type',
  'id',
  'slot-description',
  'slot-manufacturer',
  'slot-id',
] as const;
/** §2.3 query attributes: how to log in and which module to load. */
const QUERY_ATTRIBUTES = ['pin-source', 'pin-value', 'module-name', 'module-path'] as const;

type PathAttribute = (typeof PATH_ATTRIBUTES)[number];
type QueryAttribute = (typeof QUERY_ATTRIBUTES)[number];

/** A parsed PKCS#11 URI; `id` is raw bytes (CKA_ID), every other value text. */
export interface Pkcs11Uri {
  path: Partial<Record<Exclude<PathAttribute, 'id'>, string>>;
  id?: Uint8Array;
  query: Partial<Record<QueryAttribute, string>>;
}

/** True for a string that is meant as a PKCS#11 URI (scheme names are case-insensitive, §3). */
export function isPkcs11Uri(value: string): boolean {
  return /^pkcs11:/i.test(value);
}

/** Parses `uri`; throws ConfigError naming what is wrong. */
export function parsePkcs11Uri(uri: string): Pkcs11Uri {
  if (!isPkcs11Uri(uri)) throw invalid(uri, 'it does not start with pkcs11:');
  const rest = uri.slice('pkcs11:'.length);
  const question = rest.indexOf('?');
  const pathPart = question < 0 ? rest : rest.slice(0, question);
  const queryPart = question < 0 ? '' : rest.slice(question + 1);
  const result: Pkcs11Uri = { path: {}, query: {} };
  const seen = new Set<string>();
  for (const [name, raw] of pairs(uri, pathPart, ';')) {
    if (!(PATH_ATTRIBUTES as readonly string[]).includes(name))
      throw invalid(uri, `the path attribute "${name}" is not one imp understands`);
    // §2.3: "Each attribute name MUST NOT appear more than once in the path."
    if (seen.has(name)) throw invalid(uri, `"${name}" appears twice`);
    seen.add(name);
    const bytes = percentDecode(uri, raw);
    if (name === 'id') result.id = bytes;
    else result.path[name as Exclude<PathAttribute, 'id'>] = utf8(uri, name, bytes);
  }
  for (const [name, raw] of pairs(uri, queryPart, '&')) {
    if (!(QUERY_ATTRIBUTES as readonly string[]).includes(name))
      throw invalid(uri, `the query attribute "${name}" is not one imp understands`);
    if (seen.has(name)) throw invalid(uri, `"${name}" appears twice`);
    seen.add(name);
    result.query[name as QueryAttribute] = utf8(uri, name, percentDecode(uri, raw));
  }
  // §2.3: pin-value and pin-source are mutually exclusive.
  if (result.query['pin-value'] !== undefined && result.query['pin-source'] !== undefined)
    throw invalid(uri, 'it has both pin-value and pin-source');
  const type = result.path.type;
  if (type !== undefined && !['public', 'private', 'cert', 'secret-key', 'data'].includes(type))
    throw invalid(uri, `type=${type} is not one of public, private, cert, secret-key, data`);
  return result;
}

/** The URI with any pin-value masked, for messages and logs. */
export function redactPkcs11Uri(uri: string): string {
  return uri.replace(/([?&]pin-value=)[^&]*/gi, '$1***');
}

/** Splits `part` into name/value pairs; an empty part has none (§3: "pkcs11:" alone is valid). */
function pairs(uri: string, part: string, separator: string): [string, string][] {
  if (part === '') return [];
  return part.split(separator).map((item) => {
    const equals = item.indexOf('=');
    if (equals <= 0) throw invalid(uri, `"${item}" is not name=value`);
    return [item.slice(0, equals).toLowerCase(), item.slice(equals + 1)];
  });
}

/** §2.3: values are percent-encoded octets; anything else is taken as its UTF-8 bytes. */
function percentDecode(uri: string, value: string): Uint8Array {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; ) {
    if (value[i] === '%') {
      const hex = value.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw invalid(uri, `"%${hex}" is not a percent-encoded octet`);
      bytes.push(Number.parseInt(hex, 16));
      i += 3;
    } else {
      const codePoint = value.codePointAt(i)!;
      const char = String.fromCodePoint(codePoint);
      bytes.push(...Buffer.from(char, 'utf8'));
      i += char.length;
    }
  }
  return Uint8Array.from(bytes);
}

function utf8(uri: string, name: string, bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw invalid(uri, `the value of "${name}" is not UTF-8`);
  }
}

function invalid(uri: string, why: string): ConfigError {
  return new ConfigError(`--audit-key ${redactPkcs11Uri(uri)}: not a usable PKCS#11 URI (RFC 7512): ${why}.`);
}
