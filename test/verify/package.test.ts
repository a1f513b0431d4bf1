/**
 * `@imp/verify` is a package of its own, for tenant services: it depends on jose only, imports
 * nothing of imp's but the pure audit core it compiles in (receipts), and its copy of the
 * session-token contract equals the broker's.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as contract from '../../packages/verify/src/token-contract.js';
import * as broker from '../../src/core/session-token.js';
import { ROOT } from '../helpers/cli.js';

const PACKAGE = join(ROOT, 'packages', 'verify');
/** How the package reaches imp's audit core: receipts are checked by the same code as the broker's. */
const AUDIT_CORE = '../../../src/core/audit/';

function importsOf(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*)'([^']+)'/g)].map(
    (m) => m[1]!,
  );
}

describe('@imp/verify as a package', () => {
  it('depends on jose and nothing else', () => {
    const manifest = JSON.parse(readFileSync(join(PACKAGE, 'package.json'), 'utf8'));
    expect(manifest.name).toBe('@imp/verify');
    expect(Object.keys(manifest.dependencies)).toEqual(['jose']);
    expect(manifest.peerDependencies ?? {}).toEqual({});
  });

  it("imports only its own files, jose, node built-ins and imp's pure audit core (compiled in)", () => {
    const sources = readdirSync(join(PACKAGE, 'src')).filter((f) => f.endsWith('.ts'));
    const specifiers = sources.flatMap((file) => importsOf(join(PACKAGE, 'src', file)));
    const foreign = specifiers.filter(
      (s) => !s.startsWith('./') && s !== 'jose' && !s.startsWith('node:') && !s.startsWith(AUDIT_CORE),
    );
    expect(foreign).toEqual([]);
    // What it reaches in core imports nothing but core and node built-ins (no store, no broker, no npm).
    const seen = new Set<string>();
    const queue = specifiers
      .filter((s) => s.startsWith(AUDIT_CORE))
      .map((s) => resolve(PACKAGE, 'src', s.replace(/\.js$/, '.ts')));
    while (queue.length > 0) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      for (const s of importsOf(file)) {
        if (s.startsWith('node:')) continue;
        const target = resolve(dirname(file), s.replace(/\.js$/, '.ts'));
        expect(relative(join(ROOT, 'src', 'core'), target), `${file} imports ${s}`).not.toMatch(/^\.\./);
        queue.push(target);
      }
    }
    expect(seen.size).toBeGreaterThan(3);
  });

  it("carries the broker's session-token contract unchanged", () => {
    expect(contract.SESSION_TOKEN_TYPE).toBe(broker.SESSION_TOKEN_TYPE);
    expect(contract.DEFAULT_SESSION_AUDIENCE).toBe(broker.DEFAULT_SESSION_AUDIENCE);
  });
});
