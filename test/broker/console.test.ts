/**
 * The console's rules at the HTTP level (no browser): strict CSP on every page and asset, the idle
 * timeout measured on the broker's injected clock, the origin / session / CSRF refusals (each
 * audited with its rule), no open redirect after login, and a stale login turned into a fresh IdP
 * login (max_age=0, prompt=login) instead of an approval. The browser flows are test/e2e/console.test.ts.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { safeReturn } from '../../src/broker/console/http.js';
import { REVIEW_CHARTS } from '../../src/broker/console/review-page.js';
import { consoleState } from '../../src/broker/console/state.js';
import { eventLine, headerLine } from '../../src/core/recording/asciicast.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';

let t: TestBroker;
let tenant: Server;
beforeAll(async () => {
  // A tenant API that answers every call, so a session's proxied calls have a status and bytes.
  tenant = createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'),
  );
  await new Promise<void>((resolve) => tenant.listen(0, '127.0.0.1', resolve));
  t = await startTestBroker({ tenantApi: `http://127.0.0.1:${(tenant.address() as AddressInfo).port}` });
});
afterAll(async () => {
  await t?.close();
  await new Promise((resolve) => tenant?.close(resolve));
});

/** A console session for `user` as the callback would create it, and its cookie. */
async function consoleSessionOf(user: string, authAgeSeconds = 0) {
  const token = await t.loginAs(user, { authAgeSeconds });
  const roles =
    user === 'bob'
      ? ['lead']
      : user === 'erin'
        ? ['security']
        : user === 'dave' || user === 'carol'
          ? ['oncall']
          : ['support'];
  const session = consoleState(t.broker.deps).create({
    token,
    tokenExpiresAt: t.clock.now() + 3600_000,
    user: { email: `${user}@example.test`, name: user, sub: `user-${user}`, roles },
  });
  return { session, cookie: `imp-console=${session.id}` };
}

async function get(path: string, cookie?: string) {
  const response = await fetch(t.broker.url + path, {
    headers: cookie ? { cookie } : {},
    redirect: 'manual',
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

async function post(path: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  const response = await fetch(t.broker.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
    redirect: 'manual',
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

// alice may have one pending request on acme: the tests share it until one approves it.
let pending: string | undefined;
async function pendingRequest(): Promise<string> {
  if (pending) return pending;
  t.clock.advance(1100);
  const answer = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', await t.loginAs('alice'), {
    tenant: 'acme',
    environment: 'prod',
    scope: 'write',
    ticket: 'SUP-9',
    reason: 'Customer cannot see their invoices',
    ttl: 1800,
  });
  expect(answer.status, JSON.stringify(answer.body)).toBe(202);
  pending = answer.body.session.id;
  return pending;
}

describe('web console over HTTP', () => {
  it('serves pages and assets with a strict CSP: self only, no inline code, never framed', async () => {
    for (const path of ['/console/requests', '/console/assets/console.css', '/console/assets/console.js']) {
      const answer = await get(path);
      expect(answer.status, path).toBe(200);
      const csp = answer.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self';");
      expect(csp).toContain("style-src 'self';");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('unsafe');
      expect(answer.headers.get('x-frame-options')).toBe('DENY');
    }
  });

  it('without a session a page hops (same-site) to the login, which sends the browser to the IdP with PKCE', async () => {
    const page = await get('/console/requests/x');
    expect(page.status).toBe(400); // not a request id: refused before anything else
    const hop = await get('/console/requests');
    expect(hop.text).toContain(
      'http-equiv="refresh" content="0;url=/console/login?return=%2Fconsole%2Frequests"',
    );
    const login = await get('/console/login?return=%2Fconsole%2Frequests');
    expect(login.status).toBe(303);
    const location = new URL(login.headers.get('location') ?? '');
    expect(location.origin).toBe(t.idp.issuer);
    expect(location.searchParams.get('client_id')).toBe('imp-console');
    expect(location.searchParams.get('code_challenge_method')).toBe('S256');
    expect(location.searchParams.get('redirect_uri')).toBe(`${t.broker.url}/console/callback`);
    expect(login.headers.get('set-cookie')).toMatch(
      /^imp-console-login=[\w-]{43}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=600$/,
    );
  });

  it('never redirects off the console after login', () => {
    expect(safeReturn('/console/sessions/abc')).toBe('/console/sessions/abc');
    for (const evil of [
      'https://evil.test/',
      '//evil.test/console/',
      '/console//evil.test',
      '/v1/audit/export',
      42,
    ])
      expect(safeReturn(evil)).toBe('/console/requests');
  });

  it('logs the browser out after the idle timeout on the broker clock, and not before', async () => {
    const { cookie } = await consoleSessionOf('bob');
    const idle = t.broker.deps.policy.console.idleTimeout * 1000;
    t.clock.advance(idle - 1000);
    const still = await get('/console/requests', cookie);
    expect(still.text).toContain('bob@example.test');
    t.clock.advance(idle + 1000);
    const gone = await get('/console/requests', cookie);
    expect(gone.text).toContain('/console/login?return=');
    expect(gone.text).not.toContain('bob@example.test');
  });

  it('refuses a POST from another origin, without a session, or without the form token; each refusal audited', async () => {
    const id = await pendingRequest();
    const { session, cookie } = await consoleSessionOf('bob');
    const path = `/console/requests/${id}/decide`;
    const cases: { rule: string; form: Record<string, string>; headers: Record<string, string> }[] = [
      {
        rule: 'console.origin',
        form: { csrf: session.csrf, decision: 'approve' },
        headers: { cookie, origin: 'http://attacker.test' },
      },
      { rule: 'console.session', form: { csrf: session.csrf, decision: 'approve' }, headers: {} },
      { rule: 'console.csrf', form: { csrf: 'forged', decision: 'approve' }, headers: { cookie } },
      { rule: 'console.csrf', form: { decision: 'approve' }, headers: { cookie } },
    ];
    for (const c of cases) {
      const answer = await post(path, c.form, c.headers);
      expect(answer.status, c.rule).toBe(403);
      expect(answer.headers.get('content-type')).toContain('text/html');
      expect(answer.text).toContain(`Refused by rule ${c.rule}`);
      const events = await t.store.readAudit({ type: 'access.denied' });
      expect(events.at(-1)?.data).toMatchObject({ rule: c.rule });
    }
    const state = await t.call<{ session: { state: string } }>(
      'GET',
      `/v1/sessions/${id}`,
      await t.loginAs('alice'),
    );
    expect(state.body.session.state).toBe('pending');
  });

  it('a stale console login is not enough to approve: the broker asks for a fresh IdP login (max_age=0, prompt=login)', async () => {
    const id = await pendingRequest();
    const { session, cookie } = await consoleSessionOf('bob', 3600);
    const answer = await post(
      `/console/requests/${id}/decide`,
      { csrf: session.csrf, decision: 'approve' },
      { cookie },
    );
    expect(answer.status).toBe(303);
    const location = new URL(answer.headers.get('location') ?? '');
    expect(location.origin).toBe(t.idp.issuer);
    expect(location.searchParams.get('max_age')).toBe('0');
    expect(location.searchParams.get('prompt')).toBe('login');
    const required = (await t.store.readAudit({ type: 'stepup.required' })).at(-1);
    expect(required?.data).toMatchObject({ action: 'approve', why: 'stale' });
    const state = await t.call<{ session: { state: string } }>(
      'GET',
      `/v1/sessions/${id}`,
      await t.loginAs('alice'),
    );
    expect(state.body.session.state).toBe('pending');
  });

  it('approves like the CLI when the login is fresh, with the same audit event', async () => {
    const id = await pendingRequest();
    const { session, cookie } = await consoleSessionOf('bob');
    const answer = await post(
      `/console/requests/${id}/decide`,
      { csrf: session.csrf, decision: 'approve', comment: 'fine' },
      { cookie, origin: t.broker.url },
    );
    expect(answer.status).toBe(200);
    expect(answer.text).toContain('Approved: the session has started.');
    const approved = (await t.store.readAudit({ type: 'session.approved' })).at(-1);
    expect(approved).toMatchObject({ session: id, data: { comment: 'fine', reauth: { method: 'idp' } } });
    expect(approved?.actor).toMatchObject({ email: 'bob@example.test' });
  });

  it('the Audit page searches through the audited API read, shows checkpoint coverage, and exports; others are refused', async () => {
    const { cookie } = await consoleSessionOf('erin');
    const search = await get('/console/audit?type=session.approved&tenant=acme', cookie);
    expect(search.status).toBe(200);
    expect(search.text).toContain('session.approved');
    expect(search.text).toContain('bob@example.test');
    const read = (await t.store.readAudit({ type: 'audit.read' })).at(-1);
    expect(read?.data).toMatchObject({ filters: { type: 'session.approved', tenant: 'acme' } });
    const exported = await get('/console/audit/export', cookie);
    expect(exported.status).toBe(200);
    expect(exported.headers.get('content-disposition')).toContain('attachment');
    expect(exported.text.split('\n').length).toBeGreaterThan(3);
    expect((await t.store.readAudit({ type: 'audit.export' })).length).toBeGreaterThan(0);

    const bob = await consoleSessionOf('bob');
    const refused = await get('/console/audit', bob.cookie);
    expect(refused.status).toBe(403);
    expect(refused.text).toContain('audit');
  });
  it('the Access review page reads the audited report and draws its charts as SVG; a person without audit or review is refused', async () => {
    const { cookie } = await consoleSessionOf('erin');
    const answer = await get('/console/review?since=30d', cookie);
    expect(answer.status).toBe(200);
    for (const title of Object.values(REVIEW_CHARTS)) expect(answer.text).toContain(title);
    expect(answer.text).toContain('<svg role="img"');
    // bob approved one request above: his bar and its median wait.
    expect(answer.text).toMatch(/bob@example\.test: 1 \(median [0-9]+s\)/);
    const read = (await t.store.readAudit({ type: 'audit.read' })).at(-1);
    expect(read?.data).toMatchObject({ report: 'review' });
    expect(read?.actor).toMatchObject({ email: 'erin@example.test' });

    const bad = await get('/console/review?since=<script>', cookie);
    expect(bad.status).toBe(400);
    expect(bad.text).not.toContain('<script>');

    const bob = await consoleSessionOf('bob');
    const refused = await get('/console/review', bob.cookie);
    expect(refused.status).toBe(403);
    const anonymous = await get('/console/review');
    expect(anonymous.text).toContain('/console/login?return=%2Fconsole%2Freview');
  });
  it('break-glass in the console: dave confirms and erin reviews through the API (a stale login is sent to the IdP first); neither is offered to the requester or confirmer', async () => {
    t.clock.advance(1100);
    const asked = await t.call<{ request: { id: string } }>(
      'POST',
      '/v1/break-glass',
      await t.loginAs('carol'),
      {
        tenant: 'globex',
        environment: 'prod',
        incident: 'INC-9',
        reason: 'Payments queue is stuck; requeue the failed jobs',
        ttl: 600,
      },
    );
    expect(asked.status, JSON.stringify(asked.body)).toBe(202);
    const id = asked.body.request.id;
    // dave confirms in the console: offered to him (never to carol); a stale login goes to the IdP first.
    const carol = await consoleSessionOf('carol');
    expect((await get(`/console/requests/${id}`, carol.cookie)).text).not.toContain('Confirm break-glass');
    const daveStale = await consoleSessionOf('dave', 3600);
    expect((await get('/console/requests', daveStale.cookie)).text).toContain(`/console/requests/${id}`);
    expect((await get(`/console/requests/${id}`, daveStale.cookie)).text).toContain('Confirm break-glass');
    const staleConfirm = await post(
      `/console/requests/${id}/decide`,
      { csrf: daveStale.session.csrf, decision: 'confirm' },
      { cookie: daveStale.cookie, origin: t.broker.url },
    );
    expect(staleConfirm.status).toBe(303);
    expect(new URL(staleConfirm.headers.get('location') ?? '').searchParams.get('max_age')).toBe('0');
    expect(await t.store.readAudit({ type: 'breakglass.confirmed', session: id })).toEqual([]);
    t.clock.advance(1100);
    const dave = await consoleSessionOf('dave');
    const confirmed = await post(
      `/console/requests/${id}/decide`,
      { csrf: dave.session.csrf, decision: 'confirm' },
      { cookie: dave.cookie, origin: t.broker.url },
    );
    expect(confirmed.status).toBe(200);
    expect(confirmed.text).toContain('Confirmed: the break-glass session has started.');
    expect(await t.store.readAudit({ type: 'breakglass.confirmed', session: id })).toMatchObject([
      { actor: { email: 'dave@example.test' } },
    ]);
    expect((await t.call('POST', `/v1/sessions/${id}/end`, await t.loginAs('carol'))).status).toBe(200);

    expect((await get(`/console/sessions/${id}`, dave.cookie)).text).not.toContain('Record review');
    const erinStale = await consoleSessionOf('erin', 3600);
    const page = await get(`/console/sessions/${id}`, erinStale.cookie);
    expect(page.text).toContain('Record review');
    const stale = await post(
      `/console/sessions/${id}/review`,
      { csrf: erinStale.session.csrf, outcome: 'justified', notes: 'Checked the incident timeline' },
      { cookie: erinStale.cookie, origin: t.broker.url },
    );
    expect(stale.status).toBe(303);
    expect(new URL(stale.headers.get('location') ?? '').searchParams.get('max_age')).toBe('0');
    expect(await t.store.readAudit({ type: 'breakglass.reviewed', session: id })).toEqual([]);

    const erin = await consoleSessionOf('erin');
    const done = await post(
      `/console/sessions/${id}/review`,
      { csrf: erin.session.csrf, outcome: 'justified', notes: 'Checked the incident timeline' },
      { cookie: erin.cookie, origin: t.broker.url },
    );
    expect(done.status).toBe(200);
    expect(done.text).toContain('Reviewed: justified.');
    const reviewed = await t.store.readAudit({ type: 'breakglass.reviewed', session: id });
    expect(reviewed).toHaveLength(1);
    expect(reviewed[0]?.actor).toMatchObject({ email: 'erin@example.test' });
    // The confirmer forging the form is refused by the API's rule, and nothing more is recorded.
    const forged = await post(
      `/console/sessions/${id}/review`,
      { csrf: dave.session.csrf, outcome: 'unjustified', notes: 'I confirmed it myself' },
      { cookie: dave.cookie, origin: t.broker.url },
    );
    expect(forged.status).toBe(403);
    const denied = (await t.store.readAudit({ type: 'access.denied' })).at(-1);
    expect(denied).toMatchObject({ session: id, actor: { email: 'dave@example.test' } });
    expect(String((denied?.data as { rule?: string } | undefined)?.rule)).toMatch(/confirmer|self/);
    expect(await t.store.readAudit({ type: 'breakglass.reviewed', session: id })).toHaveLength(1);
  });

  it('replays a recording in asciinema-player (served by the broker) for the owner and audit/review roles; others get no player and the cast is refused', async () => {
    for (const [name, type] of [
      ['asciinema-player.js', 'text/javascript; charset=utf-8'],
      ['asciinema-player.css', 'text/css; charset=utf-8'],
    ]) {
      const asset = await get(`/console/assets/${name}`);
      expect(asset.status, name).toBe(200);
      expect(asset.headers.get('content-type')).toBe(type);
      expect(asset.headers.get('content-security-policy')).toBe(
        (await get('/console/assets/console.js')).headers.get('content-security-policy'),
      );
      expect(asset.text.length).toBeGreaterThan(1000);
    }
    expect((await get('/console/assets/asciinema-player.js')).text).toContain('AsciinemaPlayer');
    t.clock.advance(1100);
    const token = await t.loginAs('dave');
    const opened = await t.call<{ session: { id: string; recording: { mode: string } } }>(
      'POST',
      '/v1/sessions',
      token,
      {
        tenant: 'acme',
        environment: 'prod',
        scope: 'read',
        ticket: 'SUP-18',
        reason: 'Replay check',
        ttl: 600,
      },
    );
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    const id = opened.body.session.id;
    const cast = headerLine({ version: 2, width: 80, height: 24 }) + eventLine(0.1, 'o', 'hello <b>\r\n');
    expect((await t.call('POST', `/v1/sessions/${id}/recording`, token, { seq: 0, data: cast })).status).toBe(
      201,
    );
    expect((await t.call('POST', `/v1/sessions/${id}/end`, token)).status).toBe(200);

    const erin = await consoleSessionOf('erin');
    const page = await get(`/console/sessions/${id}`, erin.cookie);
    expect(page.text).toContain(`data-cast="/console/sessions/${id}/cast"`);
    expect(page.text).toContain('<script src="/console/assets/asciinema-player.js" defer>');
    expect(page.text).toContain('href="/console/assets/asciinema-player.css"');
    const replayed = await get(`/console/sessions/${id}/cast`, erin.cookie);
    expect(replayed.status).toBe(200);
    expect(replayed.headers.get('content-type')).toBe('application/x-asciicast; charset=utf-8');
    expect(replayed.text).toBe(cast);
    expect(await t.store.readAudit({ type: 'recording.replayed', session: id })).toMatchObject([
      { actor: { email: 'erin@example.test' } },
    ]);

    const owner = await consoleSessionOf('dave');
    expect((await get(`/console/sessions/${id}`, owner.cookie)).text).toContain('data-cast=');

    const bob = await consoleSessionOf('bob');
    const bobPage = await get(`/console/sessions/${id}`, bob.cookie);
    expect(bobPage.status).toBe(200);
    expect(bobPage.text).toContain('Replay check');
    expect(bobPage.text).not.toContain('data-cast');
    expect(bobPage.text).not.toContain('asciinema-player');
    const refused = await get(`/console/sessions/${id}/cast`, bob.cookie);
    expect(refused.status).toBe(403);
    expect(refused.text).not.toContain('hello');
    const denied = (await t.store.readAudit({ type: 'access.denied', session: id })).at(-1);
    expect(denied).toMatchObject({ actor: { email: 'bob@example.test' } });
    expect(await t.store.readAudit({ type: 'recording.replayed', session: id })).toHaveLength(1);
    expect((await get(`/console/sessions/${id}/cast`)).status).toBe(401);
  });

  it('the session detail shows the timeline from the audit log to audit roles, escaped: who approved, each call with status and bytes, who revoked', async () => {
    // alice's request, approved by bob in the console above.
    const approvedId = await pendingRequest();
    const erin = await consoleSessionOf('erin');
    const approvedPage = await get(`/console/sessions/${approvedId}`, erin.cookie);
    expect(approvedPage.text).toContain('<h2>Timeline</h2>');
    expect(approvedPage.text).toMatch(/session\.requested<\/td><td>alice@example\.test/);
    expect(approvedPage.text).toMatch(
      /session\.approved<\/td><td>bob@example\.test<\/td><td[^>]*>[^<]*comment: fine/,
    );
    expect((await t.store.readAudit({ type: 'audit.read' })).at(-1)?.actor).toMatchObject({
      email: 'erin@example.test',
    });

    t.clock.advance(1100);
    const token = await t.loginAs('dave');
    const opened = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', token, {
      tenant: 'acme',
      environment: 'prod',
      scope: 'read',
      ticket: 'SUP-18',
      reason: 'Timeline check',
      ttl: 600,
    });
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    const id = opened.body.session.id;
    const cast = headerLine({ version: 2, width: 80, height: 24 }) + eventLine(0.1, 'o', 'hi\r\n');
    expect((await t.call('POST', `/v1/sessions/${id}/recording`, token, { seq: 0, data: cast })).status).toBe(
      201,
    );
    expect((await t.call('GET', `/v1/sessions/${id}/proxy/v1/users`, token)).status).toBe(200);
    await vi.waitFor(async () => {
      expect(await t.store.readAudit({ type: 'action.completed', session: id })).toHaveLength(1);
    });
    const revoked = await t.call('POST', `/v1/sessions/${id}/revoke`, await t.loginAs('erin'), {
      reason: 'Stop <script>alert(1)</script> now',
    });
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);

    const page = await get(`/console/sessions/${id}`, erin.cookie);
    expect(page.text).toMatch(
      /action\.completed<\/td><td>dave@example\.test<\/td><td[^>]*>GET \/v1\/users · status 200 · 11 bytes/,
    );
    expect(page.text).toMatch(/session\.revoked<\/td><td>erin@example\.test/);
    expect(page.text).toMatch(
      /session\.revoked<\/td><td>[^<]*<\/td><td[^>]*>revoke_reason: Stop &lt;script>alert\(1\)&lt;\/script> now/,
    );
    expect(page.text).not.toContain('<script>alert(1)');
    // Events come oldest first.
    expect(page.text.indexOf('session.requested</td>')).toBeLessThan(
      page.text.indexOf('action.completed</td>'),
    );
    expect(page.text.indexOf('action.completed</td>')).toBeLessThan(
      page.text.indexOf('session.revoked</td>'),
    );

    // Without the audit role there is no timeline (the audit log is not theirs to read).
    const bob = await consoleSessionOf('bob');
    const bobPage = await get(`/console/sessions/${id}`, bob.cookie);
    expect(bobPage.status).toBe(200);
    expect(bobPage.text).not.toContain('<h2>Timeline</h2>');
    expect(bobPage.text).not.toContain('action.completed');
  });
});
