// Regression: the checkpointer chained one checkpoint per append made while a checkpoint was being
// written, so under steady load its queue (and the broker's memory: ~1 KB/call of RSS in the
// 16-connection proxy bench) grew without bound. Requests made while one waits must share it.
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/types.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { makeTempDir } from '../helpers/temp.js';

// The real SQLite store; writing a checkpoint's note is held until released, and the checkpoints
// started (each reads the tree head first) are counted.
const dir = makeTempDir('imp-checkpoint-queue-');
const real = openSqliteStore(join(dir, 'imp.db'));
let release: () => void = () => {};
let held = false;
let headReads = 0;
const store = new Proxy(real, {
  get(target, prop) {
    if (prop === 'treeHead')
      return () => {
        headReads++;
        return target.treeHead();
      };
    if (prop === 'insertNote')
      return async (size: number, note: string) => {
        if (held) await new Promise<void>((resolve) => (release = resolve));
        return target.insertNote(size, note);
      };
    const value = Reflect.get(target, prop, target);
    return typeof value === 'function' ? value.bind(target) : value;
  },
}) as Store;

let t: TestBroker;
afterAll(async () => {
  held = false;
  release();
  await t?.close();
});

it('appends made while a checkpoint is being written queue one more checkpoint, not one each', async () => {
  t = await startTestBroker({
    store,
    stateDir: dir,
    policyYaml: (issuer) => `${devPolicyYaml(issuer, 'http://127.0.0.1:9')}audit:\n  checkpoint_every: 1\n`,
  });
  held = true;
  await t.loginAs('alice'); // audited: a checkpoint starts and waits on its note
  await expect.poll(() => headReads, { timeout: 5000 }).toBeGreaterThan(0);
  const before = headReads;
  for (let i = 0; i < 25; i++) await t.loginAs('alice'); // each audited; each asks for a checkpoint
  held = false;
  release();
  await t.call('POST', '/v1/audit/checkpoint', await t.loginAs('erin')); // waits for the queue to drain
  // One checkpoint queued behind the held one, plus the explicit request and its own login's asks;
  // chaining one per append started 25+ more.
  expect(headReads - before).toBeLessThanOrEqual(6);
  expect((await store.listNotes()).at(-1)!.size).toBe((await store.treeHead()).size);
});
