#!/usr/bin/env node
// Thin launcher: all logic lives in dist/cli (built from src/cli by `npm run build`).
import { readFileSync } from 'node:fs';

const argv = process.argv.slice(2);
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
// `imp prompt`, `imp --version` and `imp --help` skip the dispatcher's dozen modules (src/cli/fast-path.ts).
const fast =
  argv.length === 1 ? await (await import('../dist/cli/fast-path.js')).fastPath(argv, version) : undefined;
if (fast !== undefined) process.exitCode = fast;
else {
  const [{ main }, { systemDeps }] = await Promise.all([
    import('../dist/cli/main.js'),
    import('../dist/cli/deps.js'),
  ]);
  process.exitCode = await main(argv, systemDeps(), version);
}
