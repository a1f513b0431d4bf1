/** `imp dev` starts one witness and names it in its --json ready line. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cosignatureVerifier } from '../../src/core/audit/tlog-cosignature.js';
import { type DevStackInfo, startDev } from '../helpers/cli.js';

let dev: Awaited<ReturnType<typeof startDev>>;
let info: DevStackInfo;

beforeAll(async () => {
  dev = await startDev();
  info = dev.info;
}, 40_000);

afterAll(async () => {
  await dev?.stop();
});

it('prints witnesses: [{url, key}] in its ready line, and that witness is up with a cosigner key', async () => {
  expect(info.witnesses).toHaveLength(1);
  const [witness] = info.witnesses;
  expect(cosignatureVerifier(witness!.key).name).toBe('witness.imp.dev/w1');
  expect(await (await fetch(`${witness!.url}/healthz`)).text()).toBe('ok\n');
  // The witness refuses what the broker did not sign: a checkpoint of an unknown log is a 404.
  const body =
    'old 0\n\nnobody/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u2014 nobody/log AAAAAAAA\n';
  expect((await fetch(`${witness!.url}/add-checkpoint`, { method: 'POST', body })).status).toBe(404);
});
