/**
 * Reading the policy document: a Reader collects every problem (each at its key path) instead of
 * stopping at the first; validate.ts and the section readers (tickets, machines, notifications) use
 * it. Pure.
 */
import { parseDuration } from '../duration.js';
import { SCOPES, type Scope } from './types.js';

/** One thing wrong with the policy, at a key path such as `roles[2].max_ttl`. */
export interface PolicyProblem {
  path: (string | number)[];
  message: string;
}

/** Formats `['roles', 2, 'max_ttl']` as `roles[2].max_ttl`. */
export function formatPolicyPath(path: readonly (string | number)[]): string {
  return path
    .map((part, i) => (typeof part === 'number' ? `[${part}]` : i === 0 ? part : `.${part}`))
    .join('');
}

/** A mapping of the policy document. */
export type Obj = Record<string, unknown>;
/** A key path into the policy document. */
export type Path = (string | number)[];

/** Reads values out of the policy document, collecting problems instead of stopping at the first. */
export class Reader {
  readonly problems: PolicyProblem[] = [];

  problem(path: Path, message: string): void {
    this.problems.push({ path, message });
  }

  object(value: unknown, path: Path, allowed: readonly string[]): Obj {
    if (value === undefined || value === null) return {};
    if (typeof value !== 'object' || Array.isArray(value)) {
      this.problem(path, 'must be a mapping');
      return {};
    }
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key))
        this.problem([...path, key], `unknown key (expected one of: ${allowed.join(', ')})`);
    }
    return value as Obj;
  }

  string(obj: Obj, key: string, path: Path, fallback?: string): string {
    const value = obj[key];
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value !== 'string' || value.trim() === '') {
      this.problem([...path, key], value === undefined ? 'is required' : 'must be a non-empty string');
      return fallback ?? '';
    }
    return value;
  }

  optionalString(obj: Obj, key: string, path: Path): string | null {
    return obj[key] === undefined || obj[key] === null ? null : this.string(obj, key, path);
  }

  bool(obj: Obj, key: string, path: Path, fallback: boolean): boolean {
    const value = obj[key];
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') {
      this.problem([...path, key], 'must be true or false');
      return fallback;
    }
    return value;
  }

  int(obj: Obj, key: string, path: Path, fallback: number, min = 0): number {
    const value = obj[key];
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
      this.problem([...path, key], `must be a whole number ≥ ${min}`);
      return fallback;
    }
    return value;
  }

  duration(obj: Obj, key: string, path: Path, fallback: number | undefined): number {
    const value = obj[key];
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value !== 'string') {
      this.problem(
        [...path, key],
        value === undefined
          ? 'is required (a duration such as 30m)'
          : 'must be a duration such as 90s, 10m or 1h',
      );
      return fallback ?? 0;
    }
    try {
      return parseDuration(value, key);
    } catch {
      this.problem([...path, key], `"${value}" is not a duration such as 90s, 10m or 1h`);
      return fallback ?? 0;
    }
  }

  strings(obj: Obj, key: string, path: Path, fallback: string[]): string[] {
    const value = obj[key];
    if (value === undefined) return fallback;
    if (!Array.isArray(value) || value.some((item) => typeof item !== 'string' || item === '')) {
      this.problem([...path, key], 'must be a list of non-empty strings');
      return fallback;
    }
    return value as string[];
  }

  scopes(obj: Obj, key: string, path: Path, fallback: Scope[]): Scope[] {
    const list = this.strings(obj, key, path, fallback);
    const bad = list.filter((item) => !(SCOPES as readonly string[]).includes(item));
    if (bad.length > 0) this.problem([...path, key], `unknown scope "${bad[0]}" (expected read or write)`);
    return list.filter((item): item is Scope => (SCOPES as readonly string[]).includes(item));
  }

  list(obj: Obj, key: string, path: Path): unknown[] {
    const value = obj[key];
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) {
      this.problem([...path, key], 'must be a list');
      return [];
    }
    return value;
  }

  url(value: string, path: Path): string {
    try {
      const url = new URL(value);
      if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
        this.problem(path, `must be https (plain http only for loopback): ${value}`);
      }
    } catch {
      this.problem(path, `is not a URL: ${value}`);
    }
    return value.replace(/\/+$/, '');
  }
}

/** Loopback hosts, the only ones allowed over plain http. */
export function isLoopbackHost(hostname: string): boolean {
  return (
    hostname === 'localhost' ||
    hostname === '[::1]' ||
    hostname === '::1' ||
    /^127\.\d+\.\d+\.\d+$/.test(hostname)
  );
}
