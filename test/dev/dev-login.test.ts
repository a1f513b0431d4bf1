/**
 * `imp dev --login` (npm start): a first login that fails leaves the stack running with a hint;
 * stopping the stack removes the temporary state directory it made (it holds signing keys).
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { TimeoutError } from '../../src/core/errors.js';
import { makeTestDeps } from '../helpers/cli-deps.js';

async function waitFor(read: () => string, text: string, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (!read().includes(text)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for "${text}" in:\n${read()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return read();
}

describe('imp dev --login', () => {
  it('an expired first login prints a hint and the stack keeps serving until Ctrl-C; its temp state goes', async () => {
    const t = makeTestDeps({
      fetch: globalThis.fetch,
      deviceLogin: async () => {
        throw new TimeoutError('The login code expired before it was confirmed. Run: imp login');
      },
    });
    const done = main(['dev', '--port', '0', '--login'], t.deps, 'test');
    const stderr = await waitFor(() => t.io.stderrText(), 'The stack keeps running');
    expect(stderr).toContain('error: the first login did not finish: The login code expired');
    const broker = /broker {13}(http:\/\/\S+)/.exec(stderr)?.[1];
    const stateDir = /state {14}(\S+)/.exec(stderr)?.[1];
    expect(broker).toBeDefined();
    expect(stderr).toContain(`IMP_BROKER_URL=${broker} imp login`);
    expect((await fetch(`${broker}/healthz`)).status).toBe(200);
    expect(existsSync(stateDir!)).toBe(true);

    t.interrupt.abort(new Error('SIGINT'));
    expect(await done).toBe(0);
    expect(t.io.stderrText()).toContain('imp dev stopped.');
    expect(existsSync(stateDir!)).toBe(false);
  }, 40_000);
});
