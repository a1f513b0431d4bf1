/**
 * `imp doctor --reauth`'s verdict on an IdP, for each way an IdP can fail to prove re-authentication
 * (the Glewlwyd e2e test covers the first against the real IdP): auth_time that is the token's iat every
 * time, auth_time unchanged although max_age=0 asked again, auth_time moved although the person says
 * nobody asked; and an IdP that does ask passes. The two logins run through the injected device flow.
 */
import { describe, expect, it } from 'vitest';
import { probeReauth } from '../../src/cli/reauth-probe.js';
import { makeTestDeps } from '../helpers/cli-deps.js';

type Stamp = { auth_time: number; iat: number };
const IDP = { issuer: 'http://127.0.0.1:1', clientId: 'imp-cli' };

async function probe(stamps: [Stamp, Stamp], options: { json: boolean; asked?: boolean }) {
  let round = 0;
  const t = makeTestDeps({
    tty: options.asked !== undefined,
    ...(options.asked !== undefined
      ? { answers: [{ match: 'Were you asked for your password', answer: options.asked }] }
      : {}),
    deviceLogin: async () => ({ idToken: 'x', claims: { ...stamps[round++]! } }),
  });
  const verdict = probeReauth(t.deps, IDP, { json: options.json, noBrowser: true });
  // The probe waits a few seconds between its two logins on the injected clock.
  while (round < 2) await t.clock.advance(1000);
  const result = await verdict;
  if (options.asked !== undefined) t.prompter.assertDone();
  return { result, t };
}

describe('imp doctor --reauth: the verdict on the IdP', () => {
  it('flags auth_time that is the issue time every time, and prints each login as device_authorization with --json', async () => {
    const { result, t } = await probe(
      [
        { auth_time: 1000, iat: 1000 },
        { auth_time: 1004, iat: 1004 },
      ],
      { json: true },
    );
    expect(result).toMatchObject({ name: 're-authentication at the IdP', ok: false });
    expect(result.detail).toContain('issue time (iat) every time');
    expect(result.fix).toContain('reauth.method: passkey');
    const lines = t.io
      .stdoutText()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string });
    expect(lines.map((l) => l.event)).toEqual(['device_authorization', 'device_authorization']);
    expect(t.logins.map((l) => l.maxAge)).toEqual([0, 0]);
  });

  it('flags auth_time that did not change although max_age=0 asked the IdP to authenticate again', async () => {
    const { result } = await probe(
      [
        { auth_time: 900, iat: 1000 },
        { auth_time: 900, iat: 1004 },
      ],
      { json: true },
    );
    expect(result.ok).toBe(false);
    expect(result.detail).toContain('did not change although max_age=0');
  });

  it('flags auth_time that moved although the person says nobody asked for the password', async () => {
    const { result } = await probe(
      [
        { auth_time: 998, iat: 1000 },
        { auth_time: 1002, iat: 1004 },
      ],
      { json: false, asked: false },
    );
    expect(result.ok).toBe(false);
    expect(result.detail).toContain('changed although you were not asked');
  });

  it('passes an IdP whose auth_time moves when the person was asked each time', async () => {
    const { result, t } = await probe(
      [
        { auth_time: 998, iat: 1000 },
        { auth_time: 1002, iat: 1004 },
      ],
      { json: false, asked: true },
    );
    expect(result).toMatchObject({ ok: true });
    expect(result.detail).toContain('auth_time 998 then 1002');
    expect(t.io.stderrText()).toContain('login 2 of 2');
  });
});
