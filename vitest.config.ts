import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // The verify package's sources, as tsconfig.json's paths say (built code links its dist instead).
  resolve: {
    alias: { '@imp/verify': fileURLToPath(new URL('./packages/verify/src/index.ts', import.meta.url)) },
  },
  test: {
    include: ['test/**/*.test.ts'],
    // End-to-end tests log people in through a real browser (several seconds each); on a loaded
    // 2-core machine a test with two logins can pass 30 s. Hangs are still caught.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two files at a time: most of an e2e file's time is spent waiting on other processes (IdP,
    // browser, PostgreSQL, Redmine), and one at a time (vitest's default on 2 cores) took CI past
    // 13 minutes. Every test already waits on conditions, never on the clock, so contention only
    // slows it.
    maxWorkers: 2,
    // Temporary directories (keys, credentials, databases) are removed after each file.
    setupFiles: ['./test/helpers/cleanup.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
