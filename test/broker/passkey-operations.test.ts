/**
 * Passkey mode beyond opening a session, in real headless Chromium with CDP virtual authenticators on
 * the broker's own page: denying, revoking, each break-glass step (request, confirm, review), adding a
 * second passkey, removing one, and the AAGUID allow-list. Each step needs a user-verified assertion
 * made for exactly that operation; one made for another operation of the same person is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { type BrowserHandle, openBrowser } from '../helpers/browser.js';
import { CHROMIUM, requireComponents } from '../helpers/components.js';
import { type PasskeyChallenge, passkeyModePolicy, passkeyPeople } from '../helpers/passkey.js';

type ErrorBody = { error: { code: string; message: string; details?: { rule?: string } } };
type SessionBody = { session: { id: string; state: string } };
type Passkeys = { passkeys: { id: string; name: string; aaguid: string }[] };

const run = requireComponents(CHROMIUM);
let t: TestBroker;
let browser: BrowserHandle;
let people: ReturnType<typeof passkeyPeople>;

beforeAll(async () => {
  if (!run) return;
  t = await startTestBroker({
    policyYaml: (issuer) => passkeyModePolicy(devPolicyYaml(issuer, 'http://127.0.0.1:9')),
  });
  browser = await openBrowser();
  people = passkeyPeople(t, browser);
  for (const user of ['alice', 'bob', 'carol', 'dave', 'erin']) await people.enrol(user);
}, 90_000);
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

async function lastEvent(type: string) {
  return (await t.store.readAudit({ type })).at(-1);
}

async function credentialOf(user: string): Promise<string> {
  const listed = await t.call<Passkeys>('GET', '/v1/passkeys', await people.login(user));
  return listed.body.passkeys[0]!.id;
}

/** Opens (or requests) a session for `user` with their passkey. */
async function open(user: string, overrides: Record<string, unknown> = {}) {
  const answer = await people.withPasskey<SessionBody>(
    user,
    'POST',
    '/v1/sessions',
    await people.login(user),
    ask(overrides),
  );
  expect([201, 202], JSON.stringify(answer.body)).toContain(answer.status);
  return answer.body.session.id;
}

/** Presents a ceremony made for another operation: refused as operation_mismatch, and audited. */
async function refusedAsOtherOperation(
  method: string,
  path: string,
  token: string,
  body: unknown,
  ceremony: PasskeyChallenge,
) {
  const answer = await t.call<ErrorBody>(method, path, token, body, { 'imp-step-up': ceremony.id });
  expect(answer.status, JSON.stringify(answer.body)).toBe(401);
  expect(await lastEvent('stepup.refused')).toMatchObject({
    data: { rule: 'reauth.passkey.operation_mismatch', ceremony: ceremony.id },
  });
}

async function endSession(user: string, id: string) {
  expect((await t.call('POST', `/v1/sessions/${id}/end`, await people.login(user))).status).toBe(200);
}

describe.runIf(run)('passkey mode: every decision needs a passkey made for it', () => {
  it('denying needs the approver’s passkey for that denial; one made to approve it does not deny it', async () => {
    const id = await open('alice', { tenant: 'acme', scope: 'write', ticket: 'SUP-11' });
    const bob = await people.login('bob');
    const toApprove = await people.challenged('POST', `/v1/requests/${id}/approve`, bob, {});
    await people.confirm('bob', toApprove);
    const deny = { reason: 'Not during the freeze, please' };
    await refusedAsOtherOperation('POST', `/v1/requests/${id}/deny`, bob, deny, toApprove);
    expect((await t.store.getSession(id))?.state).toBe('pending');

    const denied = await people.withPasskey<SessionBody>('bob', 'POST', `/v1/requests/${id}/deny`, bob, deny);
    expect(denied.status, JSON.stringify(denied.body)).toBe(200);
    expect(denied.body.session.state).toBe('denied');
    expect(await lastEvent('session.denied')).toMatchObject({
      session: id,
      actor: { sub: 'user-bob' },
      data: { reauth: { method: 'passkey', credential: await credentialOf('bob') } },
    });
    expect(await lastEvent('stepup.passkey')).toMatchObject({
      data: { credential: await credentialOf('bob'), user_verified: true, operation: { op: 'session.deny' } },
    });
  });

  it('revoking needs a passkey made to revoke that very session', async () => {
    const alices = await open('alice', { ticket: 'SUP-12' });
    const bobs = await open('bob', { ticket: 'SUP-13' });
    const erin = await people.login('erin');
    const revoke = { reason: 'Suspicious activity' };
    const forAlice = await people.challenged('POST', `/v1/sessions/${alices}/revoke`, erin, revoke);
    await people.confirm('erin', forAlice);
    await refusedAsOtherOperation('POST', `/v1/sessions/${bobs}/revoke`, erin, revoke, forAlice);
    expect((await t.store.getSession(bobs))?.state).toBe('active');

    const revoked = await t.call<SessionBody>('POST', `/v1/sessions/${alices}/revoke`, erin, revoke, {
      'imp-step-up': forAlice.id,
    });
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    expect(await lastEvent('session.revoked')).toMatchObject({
      session: alices,
      actor: { sub: 'user-erin' },
      data: { reauth: { method: 'passkey', credential: await credentialOf('erin') } },
    });
    await endSession('bob', bobs);
  });

  it('break-glass: request, confirm and review each need their own person’s passkey for that step', async () => {
    const incident = {
      tenant: 'globex',
      environment: 'prod',
      incident: 'INC-21',
      reason: 'Payments queue is stuck; requeue the failed jobs',
      ttl: 600,
    };
    // Request: carol's passkey made to open a read session does not start a break-glass.
    const carol = await people.login('carol');
    const forRead = await people.challenged('POST', '/v1/sessions', carol, ask({ ticket: 'SUP-14' }));
    await people.confirm('carol', forRead);
    await refusedAsOtherOperation('POST', '/v1/break-glass', carol, incident, forRead);
    const requested = await people.withPasskey<{ request: { id: string } }>(
      'carol',
      'POST',
      '/v1/break-glass',
      carol,
      incident,
    );
    expect(requested.status, JSON.stringify(requested.body)).toBe(202);
    const id = requested.body.request.id;
    expect(await lastEvent('breakglass.requested')).toMatchObject({
      session: id,
      data: { reauth: { method: 'passkey', credential: await credentialOf('carol') } },
    });

    // Confirm: dave's passkey made to open his own session does not confirm carol's request.
    const dave = await people.login('dave');
    const forDaves = await people.challenged('POST', '/v1/sessions', dave, ask({ ticket: 'SUP-15' }));
    await people.confirm('dave', forDaves);
    await refusedAsOtherOperation('POST', `/v1/break-glass/${id}/confirm`, dave, {}, forDaves);
    expect((await t.store.getSession(id))?.state).toBe('pending');
    const confirmed = await people.withPasskey<SessionBody>(
      'dave',
      'POST',
      `/v1/break-glass/${id}/confirm`,
      dave,
      {},
    );
    expect(confirmed.status, JSON.stringify(confirmed.body)).toBe(200);
    expect(await lastEvent('breakglass.confirmed')).toMatchObject({
      session: id,
      actor: { sub: 'user-dave' },
      data: { reauth: { method: 'passkey', credential: await credentialOf('dave') } },
    });
    await endSession('carol', id);

    // Review: erin's passkey made for "justified" does not record "unjustified".
    const erin = await people.login('erin');
    const justified = { outcome: 'justified', notes: 'Queue was stuck; jobs requeued as described' };
    const unjustified = { outcome: 'unjustified', notes: 'Queue was stuck; jobs requeued as described' };
    const forJustified = await people.challenged('POST', `/v1/break-glass/${id}/review`, erin, justified);
    await people.confirm('erin', forJustified);
    await refusedAsOtherOperation('POST', `/v1/break-glass/${id}/review`, erin, unjustified, forJustified);
    expect((await t.store.getSession(id))?.review ?? null).toBeNull();
    const reviewed = await t.call<SessionBody>('POST', `/v1/break-glass/${id}/review`, erin, justified, {
      'imp-step-up': forJustified.id,
    });
    expect(reviewed.status, JSON.stringify(reviewed.body)).toBe(200);
    expect(await lastEvent('breakglass.reviewed')).toMatchObject({
      session: id,
      actor: { sub: 'user-erin' },
      data: { outcome: 'justified', reauth: { method: 'passkey', credential: await credentialOf('erin') } },
    });
  });
});

describe.runIf(run)('passkey mode: a second passkey, and removing one', () => {
  it('adding a second passkey needs one already held, made for adding it', async () => {
    const alice = await people.login('alice');
    // Without a passkey assertion: a challenge, not an enrolment.
    const unvouched = await people.challenged('POST', '/v1/passkeys', alice, { name: 'spare' });
    expect(unvouched.verification_uri_complete).toContain('/passkey/');
    // A passkey assertion made to open a session does not vouch for a new passkey.
    const forSession = await people.challenged('POST', '/v1/sessions', alice, ask({ ticket: 'SUP-16' }));
    await people.confirm('alice', forSession);
    await refusedAsOtherOperation('POST', '/v1/passkeys', alice, { name: 'spare' }, forSession);
    expect((await t.call<Passkeys>('GET', '/v1/passkeys', alice)).body.passkeys).toHaveLength(1);

    const started = await people.withPasskey<{ passkey_authorization: PasskeyChallenge }>(
      'alice',
      'POST',
      '/v1/passkeys',
      alice,
      { name: 'spare' },
    );
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    // The new passkey lives on another authenticator (tab alice-2).
    await people.confirm('alice-2', started.body.passkey_authorization);
    const listed = (await t.call<Passkeys>('GET', '/v1/passkeys', alice)).body.passkeys;
    expect(listed.map((p) => p.name).sort()).toEqual(["alice's key", 'spare']);
    expect(await lastEvent('passkey.added')).toMatchObject({
      actor: { sub: 'user-alice' },
      data: { credential: listed.find((p) => p.name === 'spare')!.id },
    });
    // The second passkey confirms a session on its own.
    const opened = await people.withPasskey<SessionBody>(
      'alice-2',
      'POST',
      '/v1/sessions',
      await people.login('alice'),
      ask({ ticket: 'SUP-17' }),
    );
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    await endSession('alice', opened.body.session.id);
  });

  it('removing a passkey needs a passkey made to remove that one; someone else’s is not found', async () => {
    const alice = await people.login('alice');
    const listed = (await t.call<Passkeys>('GET', '/v1/passkeys', alice)).body.passkeys;
    const first = listed.find((p) => p.name === "alice's key")!.id;
    const spare = listed.find((p) => p.name === 'spare')!.id;

    const bobs = await credentialOf('bob');
    const foreign = await t.call<ErrorBody>('DELETE', `/v1/passkeys/${encodeURIComponent(bobs)}`, alice);
    expect(foreign.status).toBe(404);

    const forSpare = await people.challenged('DELETE', `/v1/passkeys/${encodeURIComponent(spare)}`, alice);
    await people.confirm('alice', forSpare);
    await refusedAsOtherOperation(
      'DELETE',
      `/v1/passkeys/${encodeURIComponent(first)}`,
      alice,
      undefined,
      forSpare,
    );
    expect((await t.call<Passkeys>('GET', '/v1/passkeys', alice)).body.passkeys).toHaveLength(2);

    const removed = await t.call<{ removed: string }>(
      'DELETE',
      `/v1/passkeys/${encodeURIComponent(spare)}`,
      alice,
      undefined,
      {
        'imp-step-up': forSpare.id,
      },
    );
    expect(removed.status, JSON.stringify(removed.body)).toBe(200);
    expect((await t.call<Passkeys>('GET', '/v1/passkeys', alice)).body.passkeys.map((p) => p.id)).toEqual([
      first,
    ]);
    expect(await lastEvent('passkey.removed')).toMatchObject({
      actor: { sub: 'user-alice' },
      data: { credential: spare, reauth: { method: 'passkey', credential: first } },
    });
    // The removed passkey confirms nothing any more.
    const challenge = await people.challenged(
      'POST',
      '/v1/sessions',
      await people.login('alice'),
      ask({ ticket: 'SUP-18' }),
    );
    const outcome = await (await people.tab('alice-2')).complete(challenge.verification_uri_complete);
    expect(outcome.state).toBe('failed');
    const retry = await t.call<ErrorBody>(
      'POST',
      '/v1/sessions',
      await people.login('alice'),
      ask({ ticket: 'SUP-18' }),
      {
        'imp-step-up': challenge.id,
      },
    );
    expect(retry.status).toBe(401);
  });
});

describe.runIf(run)('passkey mode: the AAGUID allow-list (reauth.passkey_aaguids)', () => {
  const OTHER_MODEL = 'ee882879-721c-4913-9775-3dfcce97072a';
  /** A broker whose policy allows only `aaguids` at enrolment; the same browser, a fresh tab. */
  async function withAllowList(
    aaguids: string[],
    work: (b: TestBroker, p: ReturnType<typeof passkeyPeople>) => Promise<void>,
  ) {
    const list = `, passkey_aaguids: [${aaguids.map((a) => `'${a}'`).join(', ')}]`;
    const b = await startTestBroker({
      policyYaml: (issuer) => passkeyModePolicy(devPolicyYaml(issuer, 'http://127.0.0.1:9'), list),
    });
    try {
      await work(b, passkeyPeople(b, browser));
    } finally {
      await b.close();
    }
  }

  it('refuses and audits an authenticator whose model is not listed; enrols one that is', {
    timeout: 60_000,
    // An intermittent 60 s hang here in CI rehearsals was most likely the broker's close() waiting
    // out a keep-alive connection (72 s) whose request was in flight when close began: fixed in
    // server.ts, reproduced by test/broker/shutdown.test.ts. The retry stays as a guard (each attempt
    // starts a broker of its own, so a retry is independent) until rehearsals show it unneeded.
    retry: 1,
  }, async () => {
    let virtualModel = '';
    await withAllowList([OTHER_MODEL], async (b, p) => {
      const token = await p.login('alice');
      const started = await b.call<{ passkey_authorization: PasskeyChallenge }>(
        'POST',
        '/v1/passkeys',
        token,
        {},
      );
      expect(started.status).toBe(202);
      const outcome = await (await p.tab('alice')).complete(
        started.body.passkey_authorization.verification_uri_complete,
      );
      expect(outcome.state).toBe('failed');
      expect(outcome.status).toContain('passkey.aaguid_not_allowed');
      expect((await b.call<Passkeys>('GET', '/v1/passkeys', token)).body.passkeys).toEqual([]);
      const refused = (await b.store.readAudit({ type: 'passkey.refused' })).at(-1);
      expect(refused).toMatchObject({
        actor: { sub: 'user-alice' },
        data: { rule: 'passkey.aaguid_not_allowed' },
      });
      virtualModel = String((refused?.data as { aaguid?: string } | undefined)?.aaguid);
      expect(virtualModel).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(virtualModel).not.toBe(OTHER_MODEL);
    });
    // The same authenticator model, listed: enrolled (attestation `direct`, verified by the broker).
    await withAllowList([OTHER_MODEL, virtualModel], async (b, p) => {
      await p.enrol('alice');
      const token = await p.login('alice');
      expect((await b.call<Passkeys>('GET', '/v1/passkeys', token)).body.passkeys).toMatchObject([
        { aaguid: virtualModel },
      ]);
    });
  });
});

describe.runIf(run)('reauth.method: idp+passkey', () => {
  it('needs both: a fresh IdP login first, then a passkey made for the session', {
    timeout: 60_000,
    // An intermittent 60 s hang here in CI rehearsals was most likely the broker's close() waiting
    // out a keep-alive connection (72 s) whose request was in flight when close began: fixed in
    // server.ts, reproduced by test/broker/shutdown.test.ts. The retry stays as a guard (each attempt
    // starts a broker of its own, so a retry is independent) until rehearsals show it unneeded.
    retry: 1,
  }, async () => {
    const b = await startTestBroker({
      policyYaml: (issuer) =>
        passkeyModePolicy(devPolicyYaml(issuer, 'http://127.0.0.1:9')).replace(
          'method: passkey',
          'method: idp+passkey',
        ),
    });
    try {
      const p = passkeyPeople(b, browser);
      await p.enrol('alice', 'alice-both');
      // A login older than max_age: the IdP step-up (RFC 9470 with max_age), no passkey yet.
      const stale = await b.loginAs('alice', { authAgeSeconds: 3600 });
      const refused = await b.call<ErrorBody & { error: { details?: { passkey?: unknown } } }>(
        'POST',
        '/v1/sessions',
        stale,
        ask(),
      );
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toContain('max_age=300');
      expect(refused.body.error.details?.passkey).toBeUndefined();
      // A fresh login: now the passkey, for this session.
      const opened = await p.withPasskey<SessionBody>(
        'alice-both',
        'POST',
        '/v1/sessions',
        await p.login('alice'),
        ask(),
      );
      expect(opened.status, JSON.stringify(opened.body)).toBe(201);
      expect((await b.store.readAudit({ type: 'session.started' })).at(-1)).toMatchObject({
        session: opened.body.session.id,
        data: { reauth: { method: 'idp+passkey', credential: expect.any(String) } },
      });
    } finally {
      await b.close();
    }
  });
});
