#!/usr/bin/env node
// Thin launcher: all logic lives in dist/cli (built from src/cli by `npm run build`).
import { readFileSync } from 'node:fs';

const { main } = await import('../dist/cli/main.js');
const { systemDeps } = await import('../dist/cli/deps.js');
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
process.exitCode = await main(process.argv.slice(2), systemDeps(), version);
