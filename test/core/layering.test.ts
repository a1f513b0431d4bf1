/**
 * The layout's rules, checked: `core` imports nothing of ours outside core; `cli` and `broker` never
 * import each other; `verify` (shipped to tenant services) depends on core only; `client` knows no server;
 * `serve` (`imp broker serve`, `imp broker rotate-keys`) composes broker and cli, and `dev` composes anything.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

const SRC = join(ROOT, 'src');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? files(join(dir, entry.name))
      : entry.name.endsWith('.ts')
        ? [join(dir, entry.name)]
        : [],
  );
}

/** Every relative import of a file, as the top-level src folder it lands in. */
function importedAreas(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)].map((m) => m[1]!);
  return specifiers.map((spec) => relative(SRC, resolve(dirname(file), spec)).split('/')[0]!);
}

const RULES: Record<string, string[]> = {
  core: ['core'],
  verify: ['core', 'verify'],
  client: ['core', 'client'],
  auth: ['core', 'auth'],
  store: ['core', 'store'],
  runtime: ['core', 'runtime'],
  broker: ['core', 'auth', 'store', 'runtime', 'broker'],
  cli: ['core', 'auth', 'client', 'runtime', 'cli', 'dev', 'serve'],
  // The production server commands compose the broker with the CLI's command plumbing; never the dev stack.
  serve: ['core', 'auth', 'store', 'runtime', 'broker', 'cli', 'serve'],
};

describe('layering', () => {
  const all = files(SRC);
  it('finds the sources', () => expect(all.length).toBeGreaterThan(50));

  for (const [area, allowed] of Object.entries(RULES)) {
    it(`${area}/ imports only from ${allowed.join(', ')}`, () => {
      const offenders = all
        .filter((file) => relative(SRC, file).startsWith(`${area}/`))
        .flatMap((file) =>
          importedAreas(file)
            .filter((target) => !allowed.includes(target))
            .map((target) => `${relative(SRC, file)} → ${target}/`),
        );
      expect(offenders).toEqual([]);
    });
  }

  it('the only cli → dev and cli → serve imports are the lazy loaders of `imp dev` and `imp broker …` in the registry', () => {
    const offenders = all
      .filter((file) => relative(SRC, file).startsWith('cli/') && !file.endsWith('registry.ts'))
      .filter((file) => importedAreas(file).some((area) => area === 'dev' || area === 'serve'));
    expect(offenders.map((f) => relative(SRC, f))).toEqual([]);
  });

  it('production commands live outside the dev stack', () => {
    const registry = readFileSync(join(SRC, 'cli', 'registry.ts'), 'utf8');
    expect(registry).toMatch(/'broker serve'.*import\('\.\.\/serve\/broker-serve\.js'\)/);
    expect(registry).toMatch(/'broker rotate-keys'.*import\('\.\.\/serve\/broker-rotate-keys\.js'\)/);
    expect(all.filter((f) => relative(SRC, f).startsWith('dev/')).map((f) => relative(SRC, f))).not.toContain(
      'dev/commands/broker-serve.ts',
    );
  });
});
