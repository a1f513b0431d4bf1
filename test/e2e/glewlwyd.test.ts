/**
 * Against a second, independent IdP that does not honour max_age on the device grant (Glewlwyd
 * 2.7.5): in passkey mode the broker asks for the passkey before the second session although the
 * IdP re-issued a login without asking for anything, and before the approval and each break-glass
 * step; the audit of the walkthrough names the passkey for each and never claims a password login.
 * Real Glewlwyd, real device flow, real Chromium with virtual authenticators on the broker's page.
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
  let bobTab: PasskeyTab;
  beforeAll(async () => {
    glew = await startGlewlwyd();
    t = await startTestBroker({
      policyYaml: () => `
identity: { issuer: ${glew.issuer}, client_id: ${glew.clientId}, groups_claim: groups }
reauth: { method: passkey, max_age: 5m, per_session: true }
tickets: { pattern: '^[A-Z][A-Z0-9]+-[0-9]+$' }
break_glass: { confirm_window: 10m, max_ttl: 30m }
roles:
  - { name: support, groups: [support], tenants: ['*'], environments: ['*'], scopes: [read, write], max_ttl: 1h, break_glass: true }
  - { name: lead, groups: [support-leads], tenants: ['*'], environments: ['*'], scopes: [read, write], max_ttl: 1h, approve: true, break_glass_confirm: true }
tenants:
  - { id: globex, upstream: { prod: 'http://127.0.0.1:9' } }
  - { id: initech, upstream: { prod: 'http://127.0.0.1:9' } }
  - { id: umbrella, approval_required: [write], upstream: { prod: 'http://127.0.0.1:9' } }
  - { id: hooli, upstream: { prod: 'http://127.0.0.1:9' } }
`,
    });
    browser = await openBrowser();
    tab = await openPasskeyTab(browser);
    bobTab = await openPasskeyTab(browser);
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await glew?.stop();
  });

  /** A device-flow login at Glewlwyd (reusing its browser session when given), exchanged at the broker. */
  async function login(storageState?: unknown, user = 'alice') {
    let browserSide: Awaited<ReturnType<typeof glewlwydDeviceLogin>> | undefined;
    const result = await runDeviceLogin({
      issuer: glew.issuer,
      clientId: glew.clientId,
      maxAge: 1, // asked for; Glewlwyd ignores it on the device grant
      onCode: async (code) => {
        browserSide = await glewlwydDeviceLogin({
          url: code.verification_uri_complete ?? code.verification_uri,
          userCode: code.user_code,
          login: user,
          password: user,
          ...(storageState ? { storageState } : {}),
        });
      },
    });
    const answer = await t.call<{ token: string }>('POST', '/v1/login', null, { id_token: result.idToken });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    return { token: answer.body.token, browserSide: browserSide! };
  }

  /** Asks, is challenged for the passkey, confirms on the broker's page with `on`, asks again. */
  async function withPasskey(on: PasskeyTab, path: string, token: string, body: unknown, status: number) {
    const challenged = await t.call<ErrorBody>('POST', path, token, body);
    expect(challenged.status, JSON.stringify(challenged.body)).toBe(401);
    const challenge = challenged.body.error.details?.passkey;
    expect(challenge).toBeDefined();
    expect((await on.complete(challenge!.verification_uri_complete)).state).toBe('done');
    const answer = await t.call<{ session?: { id: string }; request?: { id: string } }>(
      'POST',
      path,
      token,
      body,
      {
        'imp-step-up': challenge!.id,
      },
    );
    expect(answer.status, JSON.stringify(answer.body)).toBe(status);
    return (answer.body.session ?? answer.body.request)!.id;
  }

  const ask = (tenant: string, scope = 'read') => ({
    tenant,
    environment: 'prod',
    scope,
    ticket: 'SUP-9',
    reason: 'Checking the IdP',
    ttl: 600,
  });
  const openWithPasskey = (token: string, tenant: string) =>
    withPasskey(tab, '/v1/sessions', token, ask(tenant), 201);

  async function enrol(on: PasskeyTab, token: string) {
    const enrolment = await t.call<{ passkey_authorization: Challenge }>('POST', '/v1/passkeys', token, {});
    expect(enrolment.status, JSON.stringify(enrolment.body)).toBe(202);
    const outcome = await on.complete(enrolment.body.passkey_authorization.verification_uri_complete);
    expect(outcome.state, outcome.status).toBe('done');
  }

  it('asks for the passkey before a second session although the IdP asked for nothing, and before approving and each break-glass step', {
    timeout: 240_000,
  }, async () => {
    const first = await login();
    expect(first.browserSide.passwordPrompted).toBe(true);
    await enrol(tab, first.token);
    await openWithPasskey(first.token, 'globex');

    // A second device login with max_age=1: Glewlwyd reuses its session and asks nothing…
    const second = await login(first.browserSide.storageState);
    expect(second.browserSide.passwordPrompted).toBe(false);
    // …and the broker still demands the passkey, made for this second session.
    const id = await openWithPasskey(second.token, 'initech');
    const started = (await t.store.readAudit({ type: 'session.started' })).filter((e) => e.session === id);
    expect(started).toMatchObject([{ data: { reauth: { method: 'passkey' } } }]);

    // An approval: bob (his own Glewlwyd login and passkey) approves alice's write request.
    const bob = await login(undefined, 'bob');
    await enrol(bobTab, bob.token);
    const pending = await withPasskey(tab, '/v1/sessions', second.token, ask('umbrella', 'write'), 202);
    await withPasskey(bobTab, `/v1/requests/${pending}/approve`, bob.token, {}, 200);
    // Break-glass: alice requests with her passkey, bob confirms with his.
    const incident = {
      tenant: 'hooli',
      environment: 'prod',
      incident: 'INC-9',
      reason: 'Checkout is down for every customer',
      ttl: 600,
    };
    const glass = await withPasskey(tab, '/v1/break-glass', second.token, incident, 202);
    await withPasskey(bobTab, `/v1/break-glass/${glass}/confirm`, bob.token, {}, 200);

    // The audit of the walkthrough names the passkey for every step…
    const credentials = async (token: string) =>
      (await t.call<{ passkeys: { id: string }[] }>('GET', '/v1/passkeys', token)).body.passkeys.map(
        (p) => p.id,
      );
    const [alices] = await credentials(second.token);
    const [bobs] = await credentials(bob.token);
    const steps = await t.store.readAudit({});
    const proofOf = (type: string, session: string) =>
      steps.find((e) => e.type === type && e.session === session)?.data.reauth;
    expect(proofOf('session.started', id)).toMatchObject({ method: 'passkey', credential: alices });
    expect(proofOf('session.approved', pending)).toMatchObject({ method: 'passkey', credential: bobs });
    expect(proofOf('breakglass.requested', glass)).toMatchObject({ method: 'passkey', credential: alices });
    expect(proofOf('breakglass.confirmed', glass)).toMatchObject({ method: 'passkey', credential: bobs });
    // …and never claims a password login: Glewlwyd's amr ["password"] stays inside idp_claims, as its claim.
    const logins = steps.filter((e) => e.type === 'auth.login');
    expect(logins.length).toBeGreaterThanOrEqual(3);
    for (const event of logins) {
      expect(event.data).not.toHaveProperty('amr');
      expect(event.data).toHaveProperty('idp_claims');
    }
    for (const event of steps) {
      const { idp_claims: _claims, ...rest } = event.data as Record<string, unknown>;
      expect(JSON.stringify(rest), event.type).not.toMatch(/password/i);
    }
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
