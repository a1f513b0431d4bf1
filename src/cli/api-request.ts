/**
 * Building `imp api`'s request the way `gh api` does: `-f key=value` string fields and `-F key=value`
 * typed fields (true, false, null and numbers become JSON; `@file` reads a file, `@-` stdin) go to
 * the query string of GET/HEAD/OPTIONS and to a JSON body otherwise; `--data` sends a body as given.
 */
import { readFile } from 'node:fs/promises';
import { UsageError } from '../core/errors.js';
import { escapeUntrusted } from '../core/escape.js';
import type { Deps } from './deps.js';

/** One `-f` or `-F` field as given. */
export interface ApiField {
  key: string;
  value: string;
  typed: boolean;
}

/** Splits `key=value`; a usage error otherwise. */
export function parseField(text: string, typed: boolean): ApiField {
  const at = text.indexOf('=');
  if (at <= 0)
    throw new UsageError(
      `Field "${escapeUntrusted(text)}" must look like key=value (-${typed ? 'F' : 'f'}).`,
    );
  return { key: text.slice(0, at), value: text.slice(at + 1), typed };
}

/** The path with query fields added, and the body to send. */
export interface BuiltRequest {
  path: string;
  body: string | undefined;
}

/** Puts fields into the query (read methods) or a JSON body, or reads --data. */
export async function buildRequest(
  deps: Pick<Deps, 'io'>,
  method: string,
  path: string,
  fields: ApiField[],
  data: string | undefined,
): Promise<BuiltRequest> {
  if (fields.length > 0 && data !== undefined)
    throw new UsageError('Use either --data or -f/-F fields, not both.');
  if (data !== undefined) return { path, body: await readSource(deps, data, '--data') };
  if (fields.length === 0) return { path, body: undefined };
  const values: [string, unknown][] = [];
  for (const field of fields) values.push([field.key, await fieldValue(deps, field)]);
  if (['GET', 'HEAD', 'OPTIONS'].includes(method)) {
    const query = new URLSearchParams();
    for (const [key, value] of values)
      query.append(key, typeof value === 'string' ? value : JSON.stringify(value));
    return { path: `${path}${path.includes('?') ? '&' : '?'}${query.toString()}`, body: undefined };
  }
  return { path, body: JSON.stringify(nest(values)) };
}

// `a[b]=1` nests as gh does: {"a":{"b":1}}; `a[]=1` appends to an array.
function nest(values: [string, unknown][]): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [key, value] of values) {
    const parts = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(key);
    if (!parts) throw new UsageError(`Field name "${escapeUntrusted(key)}" is not valid.`);
    const path = [parts[1]!, ...[...parts[2]!.matchAll(/\[([^[\]]*)\]/g)].map((m) => m[1]!)];
    let node: Record<string, unknown> | unknown[] = root;
    for (let i = 0; i < path.length; i++) {
      const name = path[i]!;
      const last = i === path.length - 1;
      const nextIsArray = !last && path[i + 1] === '';
      if (Array.isArray(node)) {
        if (last) node.push(value);
        else {
          const child = nextIsArray ? [] : {};
          node.push(child);
          node = child;
        }
        continue;
      }
      if (['__proto__', 'constructor', 'prototype'].includes(name))
        throw new UsageError(`Field name "${escapeUntrusted(key)}" is not allowed.`);
      if (last) node[name] = value;
      else {
        node[name] ??= nextIsArray ? [] : {};
        node = node[name] as Record<string, unknown> | unknown[];
      }
    }
  }
  return root;
}

async function fieldValue(deps: Pick<Deps, 'io'>, field: ApiField): Promise<unknown> {
  if (!field.typed) return field.value;
  if (field.value.startsWith('@')) return readSource(deps, field.value, `-F ${field.key}`);
  if (field.value === 'true') return true;
  if (field.value === 'false') return false;
  if (field.value === 'null') return null;
  if (/^-?\d+(\.\d+)?$/.test(field.value) && Number.isFinite(Number(field.value))) return Number(field.value);
  return field.value;
}

/** Text given inline, `@file`, or `-`/`@-` for stdin. */
async function readSource(deps: Pick<Deps, 'io'>, source: string, what: string): Promise<string> {
  if (source === '-' || source === '@-') {
    const chunks: Buffer[] = [];
    for await (const chunk of deps.io.stdin) chunks.push(Buffer.from(chunk as Buffer));
    return Buffer.concat(chunks).toString('utf8');
  }
  if (!source.startsWith('@')) return source;
  const file = source.slice(1);
  return readFile(file, 'utf8').catch((error: Error) =>
    Promise.reject(new UsageError(`Cannot read ${escapeUntrusted(file)} for ${what}: ${error.message}`)),
  );
}
