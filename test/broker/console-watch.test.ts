/**
 * The console's watch at the HTTP level: the page and its stream are the API's watch route run as
 * the viewer — its refusals (rule, audit) on the page, nobody joined by a page load, and on the
 * stream the same supervision.joined / .left, so under `supervision.rules` a console watcher starts
 * the waiting session and, leaving (on_leave: end), ends it. The browser flow is
 * test/e2e/console-replay-watch.test.ts.
 */
import { get as httpGet, type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { consoleState } from '../../src/broker/console/state.js';
import { eventLine, headerLine } from '../../src/core/recording/asciicast.js';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';

let t: TestBroker;
beforeAll(async () => {
  // acme (tier enterprise) sessions must be supervised; the last supervisor leaving ends them. On-call
  // (carol) may supervise but not read standard sessions otherwise.
  t = await startTestBroker({
    policyYaml: (issuer) =>
      `${devPolicyYaml(issuer, 'http://127.0.0.1:9').replace(
        'break_glass: true, break_glass_confirm: true }',
        'break_glass: true, break_glass_confirm: true, supervise: true }',
      )}supervision: { rules: [{ tiers: [enterprise] }], on_leave: end }\n`,
  });
});
afterAll(async () => t?.close());

/** A console session for a dev user as the login callback would create it; its cookie. */
async function consoleCookie(user: 'alice' | 'bob' | 'carol' | 'erin'): Promise<string> {
  const roles = { alice: ['support'], bob: ['lead'], carol: ['oncall'], erin: ['security'] }[user];
  const session = consoleState(t.broker.deps).create({
    token: await t.loginAs(user),
    tokenExpiresAt: t.clock.now() + 3600_000,
    user: { email: `${user}@example.test`, name: user, sub: `user-${user}`, roles },
  });
  return `imp-console=${session.id}`;
}

async function page(path: string, cookie?: string) {
  const response = await fetch(t.broker.url + path, {
    headers: cookie ? { cookie } : {},
    redirect: 'manual',
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** Opens the console's watch stream; resolves once its first bytes arrived. */
function openStream(id: string, cookie: string): Promise<{ response: IncomingMessage; text: () => string }> {
  return new Promise((resolve, reject) => {
    const request = httpGet(`${t.broker.url}/console/sessions/${id}/watch/stream`, { headers: { cookie } });
    request.on('error', reject);
    request.on('response', (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        text += chunk;
        resolve({ response, text: () => text });
      });
    });
  });
}

describe('console watch over HTTP', () => {
  it('refusals are the API watch route’s (rule, audit, nobody joins); a console watcher is the supervisor: the waiting session starts, and ends when they leave', async () => {
    t.clock.advance(1100);
    const token = await t.loginAs('alice');
    const opened = await t.call<{ session: { id: string; expires_at: string | null } }>(
      'POST',
      '/v1/sessions',
      token,
      {
        tenant: 'acme',
        environment: 'prod',
        scope: 'read',
        ticket: 'SUP-18',
        reason: 'Watched from the console',
        ttl: 600,
      },
    );
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    const id = opened.body.session.id;
    const cast = headerLine({ version: 2, width: 80, height: 24 }) + eventLine(0.1, 'o', 'watched <b>\r\n');
    expect((await t.call('POST', `/v1/sessions/${id}/recording`, token, { seq: 0, data: cast })).status).toBe(
      201,
    );
    // Nobody watches yet: the proxy refuses.
    const waiting = await t.call<{ error: { details: { rule: string } } }>(
      'GET',
      `/v1/sessions/${id}/proxy/v1/users`,
      token,
    );
    expect(waiting.body.error.details.rule).toBe('supervision.waiting');

    // No console login: no stream; the page sends to the login.
    expect((await page(`/console/sessions/${id}/watch/stream`)).status).toBe(401);
    expect((await page(`/console/sessions/${id}/watch`)).text).toContain('/console/login?return=');

    // bob (lead, no supervise) and alice (her own session): refused by the route's rules, each audited.
    const bob = await consoleCookie('bob');
    const bobPage = await page(`/console/sessions/${id}/watch`, bob);
    expect(bobPage.status).toBe(403);
    expect(bobPage.text).toContain('Denied by rule role.supervise');
    expect(bobPage.text).not.toContain('data-watch');
    expect((await page(`/console/sessions/${id}/watch/stream`, bob)).status).toBe(403);
    const alice = await consoleCookie('alice');
    expect((await page(`/console/sessions/${id}/watch`, alice)).text).toContain(
      'Denied by rule supervision.self',
    );
    const denied = await t.store.readAudit({ type: 'access.denied', session: id });
    expect(denied.map((e) => [e.actor?.email, e.data.rule, e.data.action])).toEqual([
      ['bob@example.test', 'role.supervise', 'watch a session'],
      ['bob@example.test', 'role.supervise', 'watch a session'],
      ['alice@example.test', 'supervision.self', 'watch a session'],
    ]);

    // erin: the sessions page links the watch; the page itself joins nobody.
    const erin = await consoleCookie('erin');
    expect((await page('/console/sessions', erin)).text).toContain(`href="/console/sessions/${id}/watch"`);
    expect((await page(`/console/sessions/${id}`, erin)).text).toContain(
      `href="/console/sessions/${id}/watch"`,
    );
    expect((await page('/console/sessions', bob)).text).not.toContain('/watch"');
    expect((await page(`/console/sessions/${id}`, bob)).text).not.toContain('/watch"');
    const erinPage = await page(`/console/sessions/${id}/watch`, erin);
    expect(erinPage.status).toBe(200);
    expect(erinPage.text).toContain(`data-watch="/console/sessions/${id}/watch/stream"`);
    expect(erinPage.headers.get('content-security-policy')).toContain(
      "script-src 'self' 'wasm-unsafe-eval';",
    );
    // A role that may supervise but not read the session otherwise still gets the page (like imp watch).
    const carol = await consoleCookie('carol');
    const carolPage = await page(`/console/sessions/${id}/watch`, carol);
    expect(carolPage.status).toBe(200);
    expect(carolPage.text).toContain('Watched from the console');
    // Its time left follows the watch stream, not the session read she may not make.
    expect(carolPage.text).not.toContain('data-live');
    expect(await t.store.readAudit({ type: 'supervision.joined', session: id })).toEqual([]);

    // The stream joins her: the session starts, and its calls go through.
    const stream = await openStream(id, erin);
    expect(stream.response.statusCode).toBe(200);
    expect(stream.response.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    await vi.waitFor(() => expect(stream.text()).toContain('watched <b>'));
    expect(stream.text()).toContain('event: hello');
    const joined = await t.store.readAudit({ type: 'supervision.joined', session: id });
    expect(joined).toMatchObject([{ actor: { email: 'erin@example.test' }, data: { first: true } }]);
    // Forwarded now (nothing listens upstream here, so 502), no longer refused by supervision.waiting.
    const forwarded = await t.call<{ error: { details?: { rule?: string } } }>(
      'GET',
      `/v1/sessions/${id}/proxy/v1/users`,
      token,
    );
    expect(forwarded.status).toBe(502);
    expect(forwarded.body.error.details?.rule).toBeUndefined();

    // She closes the page: supervision.left, and policy (on_leave: end) ends the session.
    stream.response.destroy();
    await vi.waitFor(async () => {
      expect(await t.store.readAudit({ type: 'supervision.left', session: id })).toHaveLength(1);
      const now = await t.call<{ session: { state: string } }>('GET', `/v1/sessions/${id}`, token);
      expect(now.body.session.state).not.toBe('active');
    });
  });
});
