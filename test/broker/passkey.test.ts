/**
 * Passkey re-authentication on the broker, end to end in real headless Chromium with CDP virtual
 * authenticators on the broker's own ceremony page; @simplewebauthn/server verifies everything.
 * Happy paths (enrol, open a session, approve, reset) and every refusal the issue lists: another
 * operation, replay, expiry, wrong origin, UV false, someone else's credential, a sign-count
 * regression, enrolment without a fresh login, reset without the capability, reset of one's own.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { type BrowserHandle, openBrowser } from '../helpers/browser.js';
import { CHROMIUM, requireComponents } from '../helpers/components.js';
import { openPasskeyTab, type PasskeyTab } from '../helpers/passkey.js';

type Challenge = { id: string; verification_uri_complete: string; user_code: string; expires_in: number };
type ErrorBody = {
  error: { code: string; message: string; details?: { rule?: string; passkey?: Challenge } };
};
type SessionBody = { session: { id: string; state: string } };

const passkeyPolicy = (issuer: string) =>
  devPolicyYaml(issuer, 'http://127.0.0.1:9')
    .replace(
      'reauth: { max_age: 5m, per_session: true }',
      'reauth: { method: passkey, max_age: 5m, per_session: true }',
    )
    .replace(
      'audit: true, review: true, revoke: true }',
      'audit: true, review: true, revoke: true, passkey_reset: true }',
    );

const run = requireComponents(CHROMIUM);
let t: TestBroker;
let browser: BrowserHandle;
const tabs = new Map<string, PasskeyTab>();

beforeAll(async () => {
  if (!run) return;
  t = await startTestBroker({ policyYaml: passkeyPolicy });
  browser = await openBrowser();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await t?.close();
});

const ask = (overrides: Record<string, unknown> = {}) => ({
  tenant: 'globex',
  environment: 'prod',
  scope: 'read',
  ticket: 'SUP-7',
  reason: 'Customer cannot see their invoices',
  ttl: 1800,
  ...overrides,
});

async function tab(user: string): Promise<PasskeyTab> {
  let found = tabs.get(user);
  if (!found) {
    found = await openPasskeyTab(browser);
    tabs.set(user, found);
  }
  return found;
}

async function login(user: string): Promise<string> {
  t.clock.advance(1100);
  return t.loginAs(user);
}

/** Enrols a passkey for `user` through the real page. */
async function enrol(user: string): Promise<void> {
  const token = await login(user);
  const started = await t.call<{ passkey_authorization: Challenge }>('POST', '/v1/passkeys', token, {
    name: `${user}'s key`,
  });
  expect(started.status, JSON.stringify(started.body)).toBe(202);
  const outcome = await (await tab(user)).complete(
    started.body.passkey_authorization.verification_uri_complete,
  );
  expect(outcome, outcome.status).toMatchObject({ state: 'done' });
}

/** Calls, expects a passkey step-up, and returns its challenge. */
async function challenged(method: string, path: string, token: string, body?: unknown): Promise<Challenge> {
  const answer = await t.call<ErrorBody>(method, path, token, body);
  expect(answer.status, JSON.stringify(answer.body)).toBe(401);
  expect(answer.headers.get('www-authenticate')).toBe(
    'Bearer error="insufficient_user_authentication", error_description="A passkey confirmation is required", acr_values="urn:imp:reauth:passkey"',
  );
  const challenge = answer.body.error.details?.passkey;
  if (!challenge) throw new Error('no passkey challenge in the answer');
  return challenge;
}

/** Step-up, confirm on the page, retry with the verified ceremony: the full round. */
async function withPasskey<T>(user: string, method: string, path: string, token: string, body?: unknown) {
  const challenge = await challenged(method, path, token, body);
  const outcome = await (await tab(user)).complete(challenge.verification_uri_complete);
  expect(outcome, outcome.status).toMatchObject({ state: 'done' });
  return t.call<T>(method, path, token, body, { 'imp-step-up': challenge.id });
}

async function lastEvent(type: string) {
  return (await t.store.readAudit({ type })).at(-1);
}

async function endSession(user: string, id: string) {
  const answer = await t.call('POST', `/v1/sessions/${id}/end`, await login(user));
  expect(answer.status).toBe(200);
}

describe.runIf(run)('passkey re-authentication (reauth.method: passkey)', () => {
  it('refuses a session until the person has a passkey, saying how to enrol', async () => {
    const answer = await t.call<ErrorBody>('POST', '/v1/sessions', await login('alice'), ask());
    expect(answer.status).toBe(403);
    expect(answer.body.error.details?.rule).toBe('reauth.passkey_enrolment');
    expect(answer.body.error.message).toContain('imp passkey add');
    expect(await lastEvent('access.denied')).toMatchObject({
      actor: { sub: 'user-alice' },
      data: { rule: 'reauth.passkey_enrolment' },
    });
  });

  it('enrolment needs a fresh IdP login', async () => {
    const stale = await t.loginAs('alice', { authAgeSeconds: 3600 });
    const answer = await t.call<ErrorBody>('POST', '/v1/passkeys', stale, {});
    expect(answer.status).toBe(401);
    expect(answer.headers.get('www-authenticate')).toContain('max_age=300');
    expect((await t.call<{ passkeys: unknown[] }>('GET', '/v1/passkeys', stale)).body.passkeys).toEqual([]);
  });

  it('enrols on the broker page, then every session needs a passkey assertion for exactly that session', async () => {
    await enrol('alice');
    const token = await login('alice');
    const listed = await t.call<{ passkeys: { id: string; name: string }[] }>('GET', '/v1/passkeys', token);
    expect(listed.body.passkeys).toMatchObject([{ name: "alice's key" }]);
    const credential = listed.body.passkeys[0]!.id;
    expect(await lastEvent('passkey.added')).toMatchObject({
      actor: { sub: 'user-alice' },
      data: { credential, user_verified: true },
    });

    const challenge = await challenged('POST', '/v1/sessions', token, ask());
    expect(challenge.expires_in).toBeLessThanOrEqual(120);
    const page = await (await tab('alice')).complete(challenge.verification_uri_complete);
    expect(page.state).toBe('done');
    expect(page.what).toBe('alice@example.test → globex/prod READ, ticket SUP-7, 30m');
    expect(page.code).toBe(challenge.user_code);
    // The CSP the page runs under: this origin only, no inline script.
    const head = await fetch(challenge.verification_uri_complete);
    expect(head.headers.get('content-security-policy')).toContain("script-src 'self';");
    const html = await head.text();
    expect(html).not.toMatch(/<script>|<script [^>]*>[^<]/);

    const opened = await t.call<SessionBody>('POST', '/v1/sessions', token, ask(), {
      'imp-step-up': challenge.id,
    });
    expect(opened.status).toBe(201);
    expect(await lastEvent('session.started')).toMatchObject({
      session: opened.body.session.id,
      data: { reauth: { method: 'passkey', credential } },
    });
    expect(await lastEvent('stepup.passkey')).toMatchObject({
      data: { credential, user_verified: true, operation: { op: 'session.open', tenant: 'globex' } },
    });
    await endSession('alice', opened.body.session.id);

    // Replayed: the same confirmation never opens a second session, even the same one again.
    const replay = await t.call<ErrorBody>('POST', '/v1/sessions', token, ask(), {
      'imp-step-up': challenge.id,
    });
    expect(replay.status).toBe(401);
    expect(await lastEvent('stepup.refused')).toMatchObject({
      data: { rule: 'reauth.passkey.replayed', ceremony: challenge.id },
    });
  });

  it('an assertion made for one operation opens no other', async () => {
    const token = await login('alice');
    const forGlobex = await challenged('POST', '/v1/sessions', token, ask());
    expect((await (await tab('alice')).complete(forGlobex.verification_uri_complete)).state).toBe('done');
    const write = await t.call<ErrorBody>(
      'POST',
      '/v1/sessions',
      token,
      ask({ tenant: 'initech', scope: 'write' }),
      {
        'imp-step-up': forGlobex.id,
      },
    );
    expect(write.status).toBe(401);
    expect(await lastEvent('stepup.refused')).toMatchObject({
      data: { rule: 'reauth.passkey.operation_mismatch' },
    });
    expect(await t.store.listSessions({ requesterSub: 'user-alice', tenant: 'initech' })).toEqual([]);
  });

  it('a challenge expires after two minutes, answered or not', async () => {
    const token = await login('alice');
    const unanswered = await challenged('POST', '/v1/sessions', token, ask());
    t.clock.advance(121_000);
    expect((await (await tab('alice')).complete(unanswered.verification_uri_complete)).status).toContain(
      'expired',
    );
    const posted = await t.call<ErrorBody>('POST', `/v1/ceremonies/${unanswered.id}`, null, {
      response: { id: 'x', response: {} },
    });
    expect(posted.status).toBe(410);

    const token2 = await login('alice');
    const answered = await challenged('POST', '/v1/sessions', token2, ask());
    expect((await (await tab('alice')).complete(answered.verification_uri_complete)).state).toBe('done');
    t.clock.advance(121_000);
    const late = await t.call<ErrorBody>('POST', '/v1/sessions', await login('alice'), ask(), {
      'imp-step-up': answered.id,
    });
    expect(late.status).toBe(401);
    expect(await lastEvent('stepup.refused')).toMatchObject({ data: { rule: 'reauth.passkey.expired' } });
  });

  it('refuses an assertion without user verification', async () => {
    const alice = await tab('alice');
    const challenge = await challenged('POST', '/v1/sessions', await login('alice'), ask());
    // A page that asks the authenticator not to verify the user, and an authenticator that does not.
    await alice.page.route('**/v1/ceremonies/*/options', async (route) => {
      const response = await route.fetch();
      const body = await response.json();
      body.options.userVerification = 'discouraged';
      await route.fulfill({ response, json: body });
    });
    await alice.setUserVerified(false);
    try {
      const outcome = await alice.complete(challenge.verification_uri_complete);
      expect(outcome.state).toBe('failed');
      expect(outcome.status).toContain('passkey.user_not_verified');
    } finally {
      await alice.setUserVerified(true);
      await alice.page.unroute('**/v1/ceremonies/*/options');
    }
    expect(await lastEvent('stepup.refused')).toMatchObject({ data: { rule: 'passkey.user_not_verified' } });
  });

  it("refuses someone else's passkey", async () => {
    await enrol('bob');
    const challenge = await challenged('POST', '/v1/sessions', await login('alice'), ask());
    const bob = await tab('bob');
    // Bob's browser, offered no allow-list, answers with his own (discoverable) passkey.
    await bob.page.route('**/v1/ceremonies/*/options', async (route) => {
      const response = await route.fetch();
      const body = await response.json();
      body.options.allowCredentials = [];
      await route.fulfill({ response, json: body });
    });
    try {
      const outcome = await bob.complete(challenge.verification_uri_complete);
      expect(outcome.state).toBe('failed');
      expect(outcome.status).toContain('passkey.credential_not_yours');
    } finally {
      await bob.page.unroute('**/v1/ceremonies/*/options');
    }
  });

  it('refuses an assertion made on another origin (a relayed phishing page)', async () => {
    const alice = await tab('alice');
    const challenge = await challenged('POST', '/v1/sessions', await login('alice'), ask());
    const options = await t.call<{ options: unknown }>('GET', `/v1/ceremonies/${challenge.id}/options`);
    const lookalike = await serveLookalike();
    try {
      await alice.page.goto(`${lookalike.url}/`);
      const response = await alice.page.evaluate(async (json) => {
        const lib = (
          window as unknown as {
            SimpleWebAuthnBrowser: { startAuthentication: (o: unknown) => Promise<unknown> };
          }
        ).SimpleWebAuthnBrowser;
        return lib.startAuthentication({ optionsJSON: json });
      }, options.body.options);
      const relayed = await t.call<ErrorBody>('POST', `/v1/ceremonies/${challenge.id}`, null, { response });
      expect(relayed.status).toBe(401);
      expect(relayed.body.error.details?.rule).toBe('passkey.invalid_assertion');
      expect(relayed.body.error.message).toMatch(/origin/i);
    } finally {
      await lookalike.close();
    }
  });

  it('refuses an enrolment for another relying party (RP ID)', async () => {
    const token = await login('dave');
    const started = await t.call<{ passkey_authorization: Challenge }>('POST', '/v1/passkeys', token, {});
    const id = started.body.passkey_authorization.id;
    const options = await t.call<{ options: { rp: { id: string } } }>('GET', `/v1/ceremonies/${id}/options`);
    const lookalike = await serveLookalike('imp-lookalike.localhost');
    const dave = await tab('dave');
    try {
      await dave.page.goto(`${lookalike.url}/`);
      const response = await dave.page.evaluate(async (json) => {
        const lib = (
          window as unknown as {
            SimpleWebAuthnBrowser: { startRegistration: (o: unknown) => Promise<unknown> };
          }
        ).SimpleWebAuthnBrowser;
        return lib.startRegistration({ optionsJSON: { ...json, rp: { ...json.rp, id: location.hostname } } });
      }, options.body.options);
      const relayed = await t.call<ErrorBody>('POST', `/v1/ceremonies/${id}`, null, { response });
      expect(relayed.status).toBe(401);
      expect(relayed.body.error.message).toMatch(/RP ID|origin/i);
      expect((await t.call<{ passkeys: unknown[] }>('GET', '/v1/passkeys', token)).body.passkeys).toEqual([]);
      expect(await lastEvent('passkey.refused')).toMatchObject({
        data: { rule: 'passkey.invalid_registration' },
      });
    } finally {
      await lookalike.close();
    }
  });

  it('refuses and audits a signature counter that goes backwards (a cloned authenticator)', async () => {
    const alice = await tab('alice');
    expect(await alice.signCount()).toBeGreaterThan(1);
    await alice.setSignCount(0);
    const challenge = await challenged('POST', '/v1/sessions', await login('alice'), ask());
    const outcome = await alice.complete(challenge.verification_uri_complete);
    expect(outcome.state).toBe('failed');
    expect(outcome.status).toContain('passkey.sign_count_regression');
    expect(await lastEvent('passkey.clone_suspected')).toMatchObject({
      actor: { sub: 'user-alice' },
      data: { rule: 'passkey.sign_count_regression', presented_counter: 1 },
    });
  });

  it("an approval needs the approver's passkey, bound to that request", async () => {
    const aliceToken = await login('alice');
    await restoreAliceCounter();
    const pending = await withPasskey<SessionBody>(
      'alice',
      'POST',
      '/v1/sessions',
      aliceToken,
      ask({ tenant: 'acme', scope: 'write' }),
    );
    expect(pending.status).toBe(202);
    const id = pending.body.session.id;
    const approved = await withPasskey<SessionBody>(
      'bob',
      'POST',
      `/v1/requests/${id}/approve`,
      await login('bob'),
      {},
    );
    expect(approved.status).toBe(200);
    expect(await lastEvent('session.approved')).toMatchObject({
      session: id,
      actor: { sub: 'user-bob' },
      data: { reauth: { method: 'passkey' } },
    });
    await endSession('alice', id);
  });

  it("resets: never without passkey_reset, never one's own, otherwise with a fresh login and a passkey", async () => {
    const denied = await t.call<ErrorBody>('POST', '/v1/passkeys/reset', await login('mallory'), {
      user: 'alice',
    });
    expect(denied.status).toBe(403);
    expect(denied.body.error.details?.rule).toBe('role.passkey_reset');
    const own = await t.call<ErrorBody>('POST', '/v1/passkeys/reset', await login('erin'), { user: 'erin' });
    expect(own.status).toBe(403);
    expect(own.body.error.details?.rule).toBe('passkey_reset.not_self');
    await enrol('erin');
    const reset = await withPasskey<{ removed: number }>(
      'erin',
      'POST',
      '/v1/passkeys/reset',
      await login('erin'),
      {
        user: 'alice',
      },
    );
    expect(reset.status).toBe(200);
    expect(reset.body.removed).toBe(1);
    expect(await lastEvent('passkey.reset')).toMatchObject({
      actor: { sub: 'user-erin' },
      data: { target: { sub: 'user-alice' }, removed: 1, reauth: { method: 'idp+passkey' } },
    });
    const after = await t.call<ErrorBody>('POST', '/v1/sessions', await login('alice'), ask());
    expect(after.body.error.details?.rule).toBe('reauth.passkey_enrolment');
  });
});

// After the clone test the broker holds alice's higher counter; bring the authenticator back above it.
async function restoreAliceCounter(): Promise<void> {
  await (await tab('alice')).setSignCount(1000);
}

/** A page on another origin that loads the same WebAuthn helper (a look-alike of the broker's page). */
async function serveLookalike(host = 'localhost'): Promise<{ url: string; close(): Promise<void> }> {
  const helper = await (await fetch(`${t.broker.url}/passkey/assets/webauthn.js`)).text();
  const server: Server = createServer((request, response) => {
    if (request.url === '/webauthn.js') {
      response.writeHead(200, { 'content-type': 'text/javascript' }).end(helper);
      return;
    }
    response
      .writeHead(200, { 'content-type': 'text/html' })
      .end('<!doctype html><title>imp</title><script src="/webauthn.js"></script><p>Sign in</p>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
