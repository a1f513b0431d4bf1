/**
 * `@imp/verify` is a package of its own, for tenant services: it depends on jose only, imports
 * nothing of imp's, and its copy of the session-token contract equals the broker's.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as contract from '../../packages/verify/src/token-contract.js';
import * as broker from '../../src/core/session-token.js';
import { ROOT } from '../helpers/cli.js';

const PACKAGE = join(ROOT, 'packages', 'verify');

describe('@imp/verify as a package', () => {
  it('depends on jose and nothing else', () => {
    const manifest = JSON.parse(readFileSync(join(PACKAGE, 'package.json'), 'utf8'));
    expect(manifest.name).toBe('@imp/verify');
    expect(Object.keys(manifest.dependencies)).toEqual(['jose']);
    expect(manifest.peerDependencies ?? {}).toEqual({});
  });

  it('imports only its own files, jose and node built-ins', () => {
    const sources = readdirSync(join(PACKAGE, 'src')).filter((f) => f.endsWith('.ts'));
    const specifiers = sources.flatMap((file) =>
      [...readFileSync(join(PACKAGE, 'src', file), 'utf8').matchAll(/from '([^']+)'/g)].map((m) => m[1]!),
    );
    const foreign = specifiers.filter((s) => !s.startsWith('./') && s !== 'jose' && !s.startsWith('node:'));
    expect(foreign).toEqual([]);
  });

  it("carries the broker's session-token contract unchanged", () => {
    expect(contract.SESSION_TOKEN_TYPE).toBe(broker.SESSION_TOKEN_TYPE);
    expect(contract.DEFAULT_SESSION_AUDIENCE).toBe(broker.DEFAULT_SESSION_AUDIENCE);
  });
});
