/**
 * The console's Requests page at the HTTP level: everything an approver decides on. The ticket is a
 * link into the configured ticket system (Redmine /issues/N, Jira /browse/KEY, the `link` template for
 * the generic contract), built from the policy's URL and a checked id only — a hostile ticket gets
 * no link and is shown as text; the requester's recent access lists only their own sessions on that
 * tenant, newest first, with how each came about; untrusted text is escaped (controls, C1, bidi);
 * someone who may not act on a request does not see it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleState } from '../../src/broker/console/state.js';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';

const ROLES: Record<string, string[]> = {
  alice: ['support'],
  bob: ['lead'],
  carol: ['oncall'],
  dave: ['oncall'],
  erin: ['security'],
};

/** The dev policy with a ticket system (unreachable: requests open flagged) and a permissive ticket pattern. */
function policyWith(system: string) {
  return (issuer: string) =>
    devPolicyYaml(issuer, 'http://127.0.0.1:9').replace(
      "tickets: { pattern: '^[A-Z][A-Z0-9]+-[0-9]+$' }",
      // A pattern that lets almost anything through: the link must not rely on it. (A function: `$'` in a replacement string is special.)
      () =>
        `tickets: { pattern: '^.{3,80}$', system: { ${system}, on_unreachable: allow, break_glass: skip, timeout: 1s } }`,
    );
}

type Created = { session: { id: string; state: string } };

/** The helpers of one broker. */
function using(t: TestBroker) {
  const fresh = async (user: string) => {
    t.clock.advance(1100);
    return t.loginAs(user);
  };
  const consoleCookie = async (user: string) => {
    const session = consoleState(t.broker.deps).create({
      token: await fresh(user),
      tokenExpiresAt: t.clock.now() + 3600_000,
      user: { email: `${user}@example.test`, name: user, sub: `user-${user}`, roles: ROLES[user]! },
    });
    return { session, cookie: `imp-console=${session.id}` };
  };
  const page = async (path: string, user: string) => {
    const { cookie } = await consoleCookie(user);
    const response = await fetch(t.broker.url + path, { headers: { cookie }, redirect: 'manual' });
    return { status: response.status, text: await response.text() };
  };
  const request = async (user: string, fields: Record<string, unknown>) => {
    const answer = await t.call<Created>('POST', '/v1/sessions', await fresh(user), {
      environment: 'prod',
      scope: 'read',
      reason: 'Customer cannot see their invoices',
      ttl: 1800,
      ...fields,
    });
    expect([201, 202], JSON.stringify(answer.body)).toContain(answer.status);
    return answer.body.session.id;
  };
  const decide = async (id: string, verb: 'approve' | 'deny', body: Record<string, unknown> = {}) => {
    const answer = await t.call('POST', `/v1/requests/${id}/${verb}`, await fresh('bob'), body);
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  };
  const end = async (user: string, id: string) => {
    const answer = await t.call('POST', `/v1/sessions/${id}/end`, await fresh(user));
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  };
  return { fresh, consoleCookie, page, request, decide, end };
}

/** The HTML of the card (list page) whose heading links to request `id`. */
function cardOf(html: string, id: string): string {
  const start = html.indexOf(`href="/console/requests/${id}"`);
  expect(start, `no card for ${id}`).toBeGreaterThan(-1);
  const end = html.indexOf('</li></ul></section></li>', start);
  const close = html.indexOf('class="card"', start);
  return html.slice(start, Math.min(...[end, close].filter((n) => n > -1), html.length));
}

describe.each([
  {
    system: 'redmine',
    yaml: 'type: redmine, url: http://127.0.0.1:9/redmine, token_env: IMP_TEST_UNSET_KEY',
    ticket: 'RM-42',
    link: 'http://127.0.0.1:9/redmine/issues/42',
    hostile: '"><script>alert(1)</script>',
    shown: '&quot;>&lt;script>alert(1)&lt;/script>',
  },
  {
    system: 'jira',
    yaml: 'type: jira, url: http://127.0.0.1:9, api: datacenter, token_env: IMP_TEST_UNSET_KEY',
    ticket: 'SUP-7',
    link: 'http://127.0.0.1:9/browse/SUP-7',
    hostile: 'javascript:alert(1)',
    shown: 'javascript:alert(1)',
  },
  {
    system: 'http with a link template',
    yaml: "type: http, url: http://127.0.0.1:9, link: 'https://tickets.example/t/{ticket}?view=1'",
    ticket: 'SUP-8',
    link: 'https://tickets.example/t/SUP-8?view=1',
    hostile: 'javascript:alert(1)//SUP-8',
    shown: 'javascript:alert(1)//SUP-8',
  },
])('the ticket links into $system', ({ yaml, ticket, link, hostile, shown }) => {
  let t: TestBroker;
  beforeAll(async () => {
    t = await startTestBroker({ policyYaml: policyWith(yaml) });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('on the list and the request page, built from the policy URL and the ticket id; a hostile ticket is text', async () => {
    const h = using(t);
    const plain = await h.request('alice', { tenant: 'acme', scope: 'write', ticket });
    // An incident id the ticket system is not asked about (break_glass: skip), with a pattern that allows it.
    const glass = await t.call<{ request: { id: string } }>(
      'POST',
      '/v1/break-glass',
      await h.fresh('dave'),
      {
        tenant: 'globex',
        incident: hostile,
        reason: 'Payments queue is stuck; requeue the failed jobs',
        ttl: 600,
      },
    );
    expect(glass.status, JSON.stringify(glass.body)).toBe(202);
    const list = await h.page('/console/requests', 'bob');
    expect(list.status).toBe(200);
    expect(cardOf(list.text, plain)).toContain(`<a class="ticket" href="${link.replace(/&/g, '&amp;')}"`);
    const confirmer = await h.page('/console/requests', 'carol');
    const bad = cardOf(confirmer.text, glass.body.request.id);
    expect(bad).toContain(`Incident <span class="ticket">${shown}</span>`);
    expect(bad).not.toContain('class="ticket" href');
    expect(confirmer.text).not.toContain('<script>alert');
    expect(confirmer.text).not.toContain('href="javascript');

    const one = await h.page(`/console/requests/${plain}`, 'bob');
    expect(one.text).toContain(`href="${link.replace(/&/g, '&amp;')}"`);
  });
});

describe('the Requests page: recent access, escaping, who sees what', () => {
  let t: TestBroker;
  let h: ReturnType<typeof using>;
  const ids: Record<string, string> = {};
  beforeAll(async () => {
    t = await startTestBroker({
      policyYaml: policyWith('type: redmine, url: http://127.0.0.1:9, token_env: IMP_TEST_UNSET_KEY'),
    });
    h = using(t);
    // alice's history on acme: a read session (no approval needed), an approved write, a denied one.
    ids.read = await h.request('alice', { tenant: 'acme', ticket: 'SUP-1' });
    await h.end('alice', ids.read);
    ids.approved = await h.request('alice', { tenant: 'acme', scope: 'write', ticket: 'SUP-2' });
    await h.decide(ids.approved, 'approve', { comment: 'ok' });
    await h.end('alice', ids.approved);
    ids.denied = await h.request('alice', { tenant: 'acme', scope: 'write', ticket: 'SUP-3' });
    await h.decide(ids.denied, 'deny', { reason: 'Not during the freeze' });
    // Not hers on acme: her globex session, and carol's acme session.
    ids.globex = await h.request('alice', { tenant: 'globex', ticket: 'SUP-5' });
    ids.carols = await h.request('carol', { tenant: 'acme', ticket: 'SUP-6' });
    // What bob is asked to decide.
    ids.pending = await h.request('alice', { tenant: 'acme', scope: 'write', ticket: 'SUP-4' });
  }, 60_000);
  afterAll(async () => {
    await t?.close();
  });

  it("lists only the requester's own earlier sessions on that tenant, newest first, with how each came about", async () => {
    const list = await h.page('/console/requests', 'bob');
    const card = cardOf(list.text, ids.pending!);
    expect(card).toContain('Recent access by alice@example.test to acme');
    const order = ['SUP-3', 'SUP-2', 'SUP-1'].map((ticket) => card.indexOf(`>${ticket}<`));
    expect(
      order.every((at) => at > -1),
      card,
    ).toBe(true);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(card).toContain('denied by bob@example.test');
    expect(card).toContain('approved by bob@example.test');
    expect(card).toMatch(/no approval needed · ended after (under a minute|\d+ min)/);
    // Neither her other tenant nor another person's session, nor the request itself.
    for (const other of ['SUP-5', 'SUP-6', 'SUP-4<'])
      expect(card.split('Recent access')[1]).not.toContain(other);
    // The request page shows the same list.
    const one = await h.page(`/console/requests/${ids.pending}`, 'bob');
    expect(one.text).toContain('<h2 id="recent-');
    expect(one.text).toContain('denied by bob@example.test');
    expect(one.text).not.toContain('>SUP-6<');
  });

  it('the API lists it too with recent=N, newest first, and refuses a bad N', async () => {
    const bob = await h.fresh('bob');
    const answer = await t.call<{
      requests: { id: string; recent_access: { id: string; state: string }[] }[];
    }>('GET', '/v1/requests?state=pending&recent=2', bob);
    const mine = answer.body.requests.find((r) => r.id === ids.pending);
    expect(mine?.recent_access.map((r) => [r.id, r.state])).toEqual([
      [ids.denied, 'denied'],
      [ids.approved, 'ended'],
    ]);
    const plain = await t.call<{ requests: Record<string, unknown>[] }>(
      'GET',
      '/v1/requests?state=pending',
      bob,
    );
    expect(plain.body.requests[0]).not.toHaveProperty('recent_access');
    expect((await t.call('GET', '/v1/requests?state=pending&recent=99', bob)).status).toBe(400);
  });

  it('someone who may not act on a request does not see it, nor its requester’s access', async () => {
    for (const user of ['carol', 'erin', 'alice']) {
      const list = await h.page('/console/requests', user);
      expect(list.status, user).toBe(200);
      expect(list.text, user).not.toContain(`/console/requests/${ids.pending}`);
      expect(list.text, user).not.toContain('Recent access');
    }
    const refused = await h.page(`/console/requests/${ids.pending}`, 'carol');
    expect(refused.status).toBe(403);
    expect(refused.text).not.toContain('SUP-4');
    expect(refused.text).not.toContain('Recent access');
    // alice sees her own request, without decision buttons and without the approver's view of her history.
    const own = await h.page(`/console/requests/${ids.pending}`, 'alice');
    expect(own.text).toContain('it is your own');
    expect(own.text).not.toContain('value="approve"');
    expect(own.text).not.toContain('Recent access');
  });

  it('a break-glass request shows its incident and the requester’s access to the confirmer, not to bob', async () => {
    const earlier = await h.request('dave', { tenant: 'globex', ticket: 'INC-1' });
    await h.end('dave', earlier);
    const dave = await h.fresh('dave');
    const started = await t.call<{ request: { id: string } }>('POST', '/v1/break-glass', dave, {
      tenant: 'globex',
      environment: 'prod',
      incident: 'INC-9',
      reason: 'Payments queue is stuck; requeue the failed jobs',
      ttl: 600,
    });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    const id = started.body.request.id;
    const carols = await h.page('/console/requests', 'carol');
    const card = cardOf(carols.text, id);
    expect(card).toContain('break-glass');
    expect(card).toContain('Incident <a class="ticket" href="http://127.0.0.1:9/issues/9"');
    expect(card).toContain('Recent access by dave@example.test to globex');
    expect(card).toContain('>INC-1<');
    const bobs = await h.page('/console/requests', 'bob');
    expect(bobs.text).not.toContain(`/console/requests/${id}`);
  });

  it('shows stored control, C1 and bidi characters escaped, never raw', async () => {
    // The API refuses such text; a record from elsewhere (an older broker, a restored backup) may hold it.
    const base = (await t.store.getSession(ids.pending!))!;
    const id = '00000000-0000-4000-8000-0000000000aa';
    await t.store.transaction((tx) =>
      tx.insertSession({
        ...base,
        id,
        tenant: 'initech',
        ticket: 'SUP-\u202e77',
        reason: 'Refund\u0007 the \u009b31m order \u202egnp.exe\u2066 now',
        createdAt: t.clock.now(),
        requestExpiresAt: t.clock.now() + 600_000,
      }),
    );
    const list = await h.page('/console/requests', 'bob');
    const card = cardOf(list.text, id);
    expect(card).toContain('Refund\\x07 the \\x9b31m order \\u202egnp.exe\\u2066 now');
    expect(card).toContain('<span class="ticket">SUP-\\u202e77</span>');
    expect(list.text).not.toMatch(/[\u0007\u009b\u202e\u2066]/);
    // The viewer's own name in the page header comes from the IdP: escaped too.
    const odd = consoleState(t.broker.deps).create({
      token: await h.fresh('bob'),
      tokenExpiresAt: t.clock.now() + 3600_000,
      user: { email: 'bob\u202e@example.test', name: 'bob', sub: 'user-bob', roles: ['lead'] },
    });
    const mine = await fetch(`${t.broker.url}/console/requests`, {
      headers: { cookie: `imp-console=${odd.id}` },
    });
    const text = await mine.text();
    expect(text).toContain('<span>bob\\u202e@example.test</span>');
    expect(text).not.toContain('\u202e');
  });

  it('the session page shows the same stored text escaped (facts, ticket, reason), never raw', async () => {
    const id = '00000000-0000-4000-8000-0000000000aa'; // stored by the test above
    const detail = await h.page(`/console/sessions/${id}`, 'erin');
    expect(detail.text).toContain('Refund\\x07 the \\x9b31m order \\u202egnp.exe\\u2066 now');
    expect(detail.text).toContain('SUP-\\u202e77');
    expect(detail.text).not.toMatch(/[\u0007\u009b\u202e\u2066]/);
  });

  it('deny from the console needs a reason, which the API records', async () => {
    const { session, cookie } = await h.consoleCookie('bob');
    const post = (form: Record<string, string>) =>
      fetch(`${t.broker.url}/console/requests/${ids.pending}/decide`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie, origin: t.broker.url },
        body: new URLSearchParams({ csrf: session.csrf, ...form }).toString(),
        redirect: 'manual',
      });
    expect((await post({ decision: 'deny' })).status).toBe(400);
    const denied = await post({ decision: 'deny', comment: 'Use the staging copy first' });
    expect(denied.status).toBe(200);
    expect(await denied.text()).toContain('Denied.');
    expect((await t.store.readAudit({ type: 'session.denied' })).at(-1)).toMatchObject({
      session: ids.pending,
      actor: { email: 'bob@example.test' },
      data: { denial_reason: 'Use the staging copy first' },
    });
  });
});
