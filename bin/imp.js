#!/usr/bin/env node
// Thin launcher: all logic lives in dist/ (built from src/ by `npm run build`).
//
// CommonJS on purpose (bin/package.json says so): Node 20 starts its ES-module loader only when
// something is imported, and that costs ~4 ms at every start. `imp prompt` (every shell prompt),
// `imp --version` and `imp --help` are answered by dist/cli/fast-path.cjs, one bundled CommonJS file
// (src/cli/fast-path.ts), without it; every other command imports the ES-module CLI.
'use strict';

const argv = process.argv.slice(2);
const { version } = require('../package.json');

async function run() {
  const fast =
    argv.length === 1 ? await require('../dist/cli/fast-path.cjs').fastPath(argv, version) : undefined;
  if (fast !== undefined) return fast;
  const [{ main }, { systemDeps }] = await Promise.all([
    import('../dist/cli/main.js'),
    import('../dist/cli/deps.js'),
  ]);
  return main(argv, systemDeps(), version);
}

// As the ES-module launcher's top-level await did: a process that runs out of work before the command
// settles exits 13 (Node's code for an unsettled top-level await), not 0 as if it had succeeded.
let settled = false;
process.on('exit', () => {
  if (!settled) process.exitCode = 13;
});
run().then(
  (code) => {
    settled = true;
    process.exitCode = code;
  },
  (error) => {
    settled = true;
    throw error; // printed by Node as an uncaught error, exit code 1
  },
);
