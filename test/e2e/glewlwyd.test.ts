/**
 * Against a second, independent IdP that does not honour max_age on the device grant (Glewlwyd
 * 2.7.5): in passkey mode the broker asks for the passkey before the second session although the
 * IdP re-issued a login without asking for anything. Real Glewlwyd, real device flow, real Chromium
 * with a virtual authenticator on the broker's page.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDeviceLogin } from '../../src/auth/device-flow.js';
import { glewlwydDeviceLogin } from '../fixtures/glewlwyd/device-login.mjs';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { type BrowserHandle, openBrowser } from '../helpers/browser.js';
import { ImpProcess, makeUserEnv } from '../helpers/cli.js';
import { CHROMIUM, requireComponents } from '../helpers/components.js';
import { GLEWLWYD, type Glewlwyd, startGlewlwyd } from '../helpers/glewlwyd.js';
import { openPasskeyTab, type PasskeyTab } from '../helpers/passkey.js';

const run = requireComponents(CHROMIUM, GLEWLWYD);

type Challenge = { id: string; verification_uri_complete: string };
type ErrorBody = { error: { details?: { passkey?: Challenge } } };

describe.skipIf(!run)('Glewlwyd as the IdP, passkey mode', () => {
  let glew: Glewlwyd;
  let t: TestBroker;
  let browser: BrowserHandle;
  let tab: PasskeyTab;
  beforeAll(async () => {
    glew = await startGlewlwyd();
    t = await startTestBroker({
      policyYaml: () => `
identity: { issuer: ${glew.issuer}, client_id: ${glew.clientId}, groups_claim: groups }
reauth: { method: passkey, max_age: 5m, per_session: true }
roles:
  - { name: support, groups: [support], tenants: ['*'], environments: ['*'], scopes: [read], max_ttl: 1h }
tenants:
  - { id: globex, upstream: { prod: 'http://127.0.0.1:9' } }
  - { id: initech, upstream: { prod: 'http://127.0.0.1:9' } }
`,
    });
    browser = await openBrowser();
    tab = await openPasskeyTab(browser);
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await glew?.stop();
  });

  /** A device-flow login at Glewlwyd (reusing its browser session when given), exchanged at the broker. */
  async function login(storageState?: unknown) {
    let browserSide: Awaited<ReturnType<typeof glewlwydDeviceLogin>> | undefined;
    const result = await runDeviceLogin({
      issuer: glew.issuer,
      clientId: glew.clientId,
      maxAge: 1, // asked for; Glewlwyd ignores it on the device grant
      onCode: async (code) => {
        browserSide = await glewlwydDeviceLogin({
          url: code.verification_uri_complete ?? code.verification_uri,
          userCode: code.user_code,
          login: 'alice',
          password: 'alice',
          ...(storageState ? { storageState } : {}),
        });
      },
    });
    const answer = await t.call<{ token: string }>('POST', '/v1/login', null, { id_token: result.idToken });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    return { token: answer.body.token, browserSide: browserSide! };
  }

  async function openWithPasskey(token: string, tenant: string) {
    const body = {
      tenant,
      environment: 'prod',
      scope: 'read',
      ticket: 'SUP-9',
      reason: 'Checking the IdP',
      ttl: 600,
    };
    const challenged = await t.call<ErrorBody>('POST', '/v1/sessions', token, body);
    expect(challenged.status, JSON.stringify(challenged.body)).toBe(401);
    const challenge = challenged.body.error.details?.passkey;
    expect(challenge).toBeDefined();
    expect((await tab.complete(challenge!.verification_uri_complete)).state).toBe('done');
    const opened = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', token, body, {
      'imp-step-up': challenge!.id,
    });
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    return opened.body.session.id;
  }

  it('asks for the passkey before a second session although the IdP asked for nothing', {
    timeout: 150_000,
  }, async () => {
    const first = await login();
    expect(first.browserSide.passwordPrompted).toBe(true);
    const enrol = await t.call<{ passkey_authorization: Challenge }>('POST', '/v1/passkeys', first.token, {});
    expect(enrol.status, JSON.stringify(enrol.body)).toBe(202);
    expect((await tab.complete(enrol.body.passkey_authorization.verification_uri_complete)).state).toBe(
      'done',
    );
    await openWithPasskey(first.token, 'globex');

    // A second device login with max_age=1: Glewlwyd reuses its session and asks nothing…
    const second = await login(first.browserSide.storageState);
    expect(second.browserSide.passwordPrompted).toBe(false);
    // …and the broker still demands the passkey, made for this second session.
    const id = await openWithPasskey(second.token, 'initech');
    const started = (await t.store.readAudit({ type: 'session.started' })).filter((e) => e.session === id);
    expect(started).toMatchObject([{ data: { reauth: { method: 'passkey' } } }]);
    // The logins keep what Glewlwyd claimed (amr: password) as its claim, not as a fact.
    const logins = await t.store.readAudit({ type: 'auth.login' });
    for (const event of logins) expect(event.data).not.toHaveProperty('amr');
    expect(logins.at(-1)!.data).toHaveProperty('idp_claims');
  });

  it('in idp mode, imp doctor --reauth flags it (auth_time is the token issue time; the IdP asked nothing the second time)', {
    timeout: 150_000,
  }, async () => {
    const idpMode = await startTestBroker({
      policyYaml: () =>
        `identity: { issuer: ${glew.issuer}, client_id: ${glew.clientId}, groups_claim: groups }\n`,
    });
    try {
      const { env } = makeUserEnv({ IMP_BROKER_URL: idpMode.broker.url });
      const doctor = new ImpProcess(['doctor', '--reauth', '--no-browser', '--json'], env);
      const first = await doctor.jsonLine((v) => v.event === 'device_authorization', 60_000);
      const signedIn = await glewlwydDeviceLogin({
        url: String(first.verification_uri_complete ?? first.verification_uri),
        userCode: String(first.user_code),
        login: 'alice',
        password: 'alice',
      });
      const second = await doctor.jsonLine(
        (v) => v.event === 'device_authorization' && v.user_code !== first.user_code,
        60_000,
      );
      const again = await glewlwydDeviceLogin({
        url: String(second.verification_uri_complete ?? second.verification_uri),
        userCode: String(second.user_code),
        login: 'alice',
        password: 'alice',
        storageState: signedIn.storageState,
      });
      expect(again.passwordPrompted).toBe(false);
      expect(await doctor.exit(60_000), doctor.stderr).toBe(1);
      const report = await doctor.jsonLine((v) => Array.isArray(v.checks));
      const checks = report.checks as { name: string; ok: boolean; warn?: boolean; detail: string }[];
      expect(checks.find((c) => c.name === 're-authentication')).toMatchObject({ ok: true, warn: true });
      const probe = checks.find((c) => c.name === 're-authentication at the IdP');
      expect(probe).toMatchObject({ ok: false });
      expect(probe?.detail).toContain('does not prove re-authentication');
      expect(probe?.detail).toContain('issue time (iat)');
    } finally {
      await idpMode.close();
    }
  });
});
