/**
 * The generic HTTP contract against a local server, and what the broker does with what a ticket
 * system says: untrusted answers (garbage, wrong shapes, huge or slow bodies, redirects, control
 * characters) never decide anything; an unreachable system refuses or allows-and-flags by policy;
 * break-glass checks, warns or skips; the summary is posted, retried and audited.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TicketSystemError } from '../../src/broker/tickets/http.js';
import { quoteTicketText, ticketAdapter } from '../../src/broker/tickets/service.js';
import type { AuditEvent } from '../../src/core/audit/event.js';
import { decideTicket } from '../../src/core/policy/tickets.js';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { json, startTicketServer, type TicketServer, ticketSystem } from '../helpers/ticket-server.js';

const OPEN_ACME = {
  ticket: 'SUP-1',
  status: 'In progress',
  open: true,
  assignee: { email: 'alice@example.test' },
  reporter: { email: 'bob@example.test' },
  fields: { tenant: 'acme' },
};
const ASK = { email: 'alice@example.test', tenant: { id: 'acme', name: 'Acme Corp' } };

describe('generic HTTP contract: the adapter', () => {
  let server: TicketServer;
  let other: TicketServer;
  beforeAll(async () => {
    server = await startTicketServer();
    other = await startTicketServer();
  });
  afterAll(async () => {
    await server.close();
    await other.close();
  });
  const system = (overrides = {}) =>
    ticketSystem({
      url: server.url,
      tenantField: 'tenant',
      timeout: 1,
      maxBodyBytes: 64 * 1024,
      ...overrides,
    });
  const lookup = (ticket = 'SUP-1', overrides = {}) =>
    ticketAdapter(system(overrides), 'generic-token', fetch).lookup(ticket);

  it('GET {url}/tickets/{ticket} with the bearer token; the documented answer decides', async () => {
    server.handle((_req, res) => json(res, 200, OPEN_ACME));
    const found = await lookup('SUP 1/x');
    expect(decideTicket(system(), 'SUP 1/x', found, ASK, String)).toEqual({
      ok: true,
      status: 'In progress',
    });
    expect(server.received[0]?.path).toBe('/tickets/SUP%201%2Fx');
    expect(server.received[0]?.headers.authorization).toBe('Bearer generic-token');
  });

  it.each([
    ['404', 404, { error: 'nope' }, 'ticket.not_found'],
    ['open: false', 200, { ...OPEN_ACME, open: false, status: 'Resolved' }, 'ticket.closed'],
    [
      'another assignee',
      200,
      { ...OPEN_ACME, assignee: { email: 'bob@example.test' } },
      'ticket.not_assigned',
    ],
    ['no tenant field', 200, { ...OPEN_ACME, fields: {} }, 'ticket.other_tenant'],
    [
      'a list of other tenants',
      200,
      { ...OPEN_ACME, fields: { tenant: ['globex', 'initech'] } },
      'ticket.other_tenant',
    ],
  ])('%s → %s', async (_what, status, body, rule) => {
    server.handle((_req, res) => json(res, status, body));
    expect(decideTicket(system(), 'SUP-1', await lookup(), ASK, String)).toMatchObject({ ok: false, rule });
  });

  it('open_statuses, when listed, decide instead of the system', async () => {
    server.handle((_req, res) =>
      json(res, 200, { ...OPEN_ACME, status: 'Waiting for customer', open: true }),
    );
    const s = system({ openStatuses: ['New', 'In progress'] });
    expect(decideTicket(s, 'SUP-1', await lookup(), ASK, String)).toMatchObject({
      ok: false,
      rule: 'ticket.closed',
    });
  });

  it.each([
    [
      'an HTML error page with 200',
      (res: import('node:http').ServerResponse) =>
        res.writeHead(200, { 'content-type': 'text/html' }).end('<html>Maintenance</html>'),
      /not JSON/,
    ],
    [
      'JSON of the wrong shape',
      (res: import('node:http').ServerResponse) => json(res, 200, { status: 5, open: 'yes' }),
      /expected shape/,
    ],
    [
      'a JSON array',
      (res: import('node:http').ServerResponse) => json(res, 200, [OPEN_ACME]),
      /expected shape/,
    ],
    ['a 500', (res: import('node:http').ServerResponse) => json(res, 500, {}), /HTTP 500/],
    [
      'a 401',
      (res: import('node:http').ServerResponse) => json(res, 401, {}),
      /refused the broker's credential/,
    ],
    [
      'a declared huge body',
      (res: import('node:http').ServerResponse) =>
        res.writeHead(200, { 'content-length': String(50 * 1024 * 1024) }).end(),
      /larger than 65536 bytes/,
    ],
    [
      'a streamed huge body (no length)',
      (res: import('node:http').ServerResponse) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = 'x'.repeat(16 * 1024);
        const write = () => {
          while (res.write(chunk)) {}
          res.once('drain', write);
        };
        write();
      },
      /larger than 65536 bytes/,
    ],
    ['no answer at all', () => {}, /no answer within 1 s/],
    [
      'headers, then a body that never ends',
      (res: import('node:http').ServerResponse) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"ticket":');
      },
      /did not arrive within 1 s/,
    ],
  ])('%s is no answer (TicketSystemError), never a decision', async (_what, answer, message) => {
    server.handle((_req, res) => answer(res));
    const started = Date.now();
    const error = await lookup().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TicketSystemError);
    expect((error as Error).message).toMatch(message);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('a redirect is not followed: the token never travels to another host', async () => {
    other.handle((_req, res) => json(res, 200, OPEN_ACME));
    server.handle((_req, res) => {
      res.writeHead(302, { location: `${other.url}/tickets/SUP-1` }).end();
    });
    await expect(lookup()).rejects.toThrow(/redirect \(not followed\)/);
    expect(other.received).toEqual([]);
  });

  it('control characters in what the system says are escaped in the refusal message', async () => {
    server.handle((_req, res) =>
      json(res, 200, { ...OPEN_ACME, open: false, status: 'Clo\u001b[2Jsed\u202e' }),
    );
    const decision = decideTicket(system(), 'SUP-1', await lookup(), ASK, quoteTicketText);
    expect(decision.ok ? '' : decision.message).toContain('Clo\\x1b[2Jsed\\u202e');
    expect(decision.ok ? '' : decision.message).not.toContain('\u001b');
  });

  it('POST {url}/tickets/{ticket}/comments carries the delivery id, the plain text and the counts', async () => {
    server.handle((_req, res) => json(res, 201, { id: 'c-7' }));
    const adapter = ticketAdapter(system(), 'generic-token', fetch);
    const note = {
      delivery: 'd-1',
      lines: ['title', 'Engineer: a'],
      json: { session: 's-1', summary: { writes: 0 } },
    };
    expect(await adapter.postNote('SUP-1', note, { retry: false })).toEqual({ ref: 'c-7' });
    expect(server.received[0]?.path).toBe('/tickets/SUP-1/comments');
    expect(server.received[0]?.body).toEqual({
      session: 's-1',
      summary: { writes: 0 },
      delivery: 'd-1',
      ticket: 'SUP-1',
      text: 'title\nEngineer: a',
    });
  });
});

/** Replaces the dev policy's tickets line. */
function withTickets(issuer: string, tickets: string): string {
  return devPolicyYaml(issuer, 'http://127.0.0.1:9').replace(/^tickets: .*$/m, () => `tickets: ${tickets}`);
}

async function eventsOf(t: TestBroker, type: string): Promise<AuditEvent[]> {
  return t.store.readAudit({ type });
}

const SESSION = {
  tenant: 'acme',
  environment: 'prod',
  ticket: 'SUP-1',
  reason: 'Customer reports missing invoices',
};
/** A fresh login each time: per-session re-authentication needs a newer auth_time. */
async function fresh(t: TestBroker, user: string): Promise<string> {
  t.clock.advance(1100);
  return t.loginAs(user);
}

const BREAK_GLASS = {
  tenant: 'acme',
  environment: 'prod',
  incident: 'INC-9',
  reason: 'Checkout is down for every acme user',
};

describe('the broker and an unreachable or refusing ticket system', () => {
  let server: TicketServer;
  let strict: TestBroker;
  let lenient: TestBroker;
  let skipping: TestBroker;
  beforeAll(async () => {
    server = await startTicketServer();
    const system = (extra: string) =>
      `{ pattern: '^[A-Z][A-Z0-9]+-[0-9]+$', system: { type: http, url: ${JSON.stringify(server.url)}, require_person: assignee, tenant_field: tenant, timeout: 1s, ${extra} } }`;
    [strict, lenient, skipping] = await Promise.all([
      startTestBroker({
        policyYaml: (issuer) => withTickets(issuer, system('on_unreachable: refuse, break_glass: check')),
      }),
      startTestBroker({
        policyYaml: (issuer) => withTickets(issuer, system('on_unreachable: allow, break_glass: warn')),
        ticketSettings: { delaysMs: [0, 10, 10] },
      }),
      startTestBroker({ policyYaml: (issuer) => withTickets(issuer, system('break_glass: skip')) }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([strict?.close(), lenient?.close(), skipping?.close()]);
    await server.close();
  });

  it('on_unreachable: refuse — a session is refused by rule ticket.unreachable (502, audited), without asking for a fresh login', async () => {
    server.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html>');
    });
    const token = await strict.loginAs('alice', { authAgeSeconds: 3600 });
    const answer = await strict.call<{ error: { code: string; message: string; details: { rule: string } } }>(
      'POST',
      '/v1/sessions',
      token,
      SESSION,
    );
    expect(answer.status).toBe(502);
    expect(answer.body.error.code).toBe('IMP_UNREACHABLE');
    expect(answer.body.error.details.rule).toBe('ticket.unreachable');
    expect(answer.body.error.message).toMatch(
      /could not be asked about ticket SUP-1: HTTP 200 with a body that is not JSON/,
    );
    const [refused] = await eventsOf(strict, 'session.refused');
    expect(refused?.data).toMatchObject({
      rule: 'ticket.unreachable',
      error: 'HTTP 200 with a body that is not JSON',
    });
    expect(await eventsOf(strict, 'stepup.required')).toEqual([]);
  });

  it('approval re-checks the ticket: closed or reassigned while the request waited, it opens nothing (refused by rule, audited)', async () => {
    server.handle((_req, res) => json(res, 200, OPEN_ACME));
    const asked = await strict.call<{ session: { id: string; state: string } }>(
      'POST',
      '/v1/sessions',
      await fresh(strict, 'alice'),
      { ...SESSION, scope: 'write', ticket: 'SUP-41' },
    );
    expect(asked.status, JSON.stringify(asked.body)).toBe(202);
    const id = asked.body.session.id;
    const approve = async () =>
      strict.call<{ error: { code: string; details: { rule: string } } }>(
        'POST',
        `/v1/requests/${id}/approve`,
        await fresh(strict, 'bob'),
        { comment: 'ok' },
      );
    const deniedRules = async () =>
      (await strict.store.readAudit({ session: id, type: 'access.denied' })).map((e) => [
        e.actor?.email,
        e.data.rule,
        e.data.action,
      ]);

    server.handle((_req, res) => json(res, 200, { ...OPEN_ACME, open: false, status: 'Done' }));
    const closed = await approve();
    expect(closed.status).toBe(403);
    expect(closed.body.error.details.rule).toBe('ticket.closed');
    // The person rule is the requester's, not the approver's: reassigned away from alice, refused.
    server.handle((_req, res) => json(res, 200, { ...OPEN_ACME, assignee: { email: 'carol@example.test' } }));
    const reassigned = await approve();
    expect(reassigned.status).toBe(403);
    expect(reassigned.body.error.details.rule).toBe('ticket.not_assigned');
    expect(await deniedRules()).toEqual([
      ['bob@example.test', 'ticket.closed', 'approve'],
      ['bob@example.test', 'ticket.not_assigned', 'approve'],
    ]);
    const still = await strict.call<{ session: { state: string } }>(
      'GET',
      `/v1/sessions/${id}`,
      await fresh(strict, 'alice'),
    );
    expect(still.body.session.state).toBe('pending');

    // Open and alice's again: approved, and the approval records what the ticket system said.
    server.handle((_req, res) => json(res, 200, OPEN_ACME));
    expect((await approve()).status).toBe(200);
    const [approved] = await strict.store.readAudit({ session: id, type: 'session.approved' });
    expect(approved?.data.ticket_check).toEqual({
      system: 'http',
      outcome: 'verified',
      status: 'In progress',
    });
    await strict.call('POST', `/v1/sessions/${id}/end`, await fresh(strict, 'alice'), {});
  });

  it('on_unreachable: allow — the session opens, flagged in its events and the answer', async () => {
    server.handle(() => {});
    const token = await fresh(lenient, 'alice');
    const answer = await lenient.call<{ session: { id: string }; ticket_warning: string }>(
      'POST',
      '/v1/sessions',
      token,
      SESSION,
    );
    expect(answer.status).toBe(201);
    expect(answer.body.ticket_warning).toMatch(
      /could not be asked about ticket SUP-1 \(no answer within 1 s\); allowed by policy, and flagged/,
    );
    const [started] = (await lenient.store.readAudit({ session: answer.body.session.id })).filter(
      (e) => e.type === 'session.started',
    );
    expect(started?.data.ticket_check).toEqual({
      system: 'http',
      flagged: true,
      outcome: 'unverified',
      error: 'no answer within 1 s',
    });
    await lenient.call('POST', `/v1/sessions/${answer.body.session.id}/end`, token, {});
  });

  it('break_glass: check — an incident the ticket system does not know refuses break-glass, audited as breakglass.refused', async () => {
    server.handle((_req, res) => json(res, 404, {}));
    const token = await fresh(strict, 'carol');
    const answer = await strict.call<{ error: { details: { rule: string } } }>(
      'POST',
      '/v1/break-glass',
      token,
      BREAK_GLASS,
    );
    expect(answer.status).toBe(403);
    expect(answer.body.error.details.rule).toBe('ticket.not_found');
    expect((await eventsOf(strict, 'breakglass.refused')).map((e) => e.data.rule)).toContain(
      'ticket.not_found',
    );
  });

  it('break_glass: warn — the same incident goes on, warned and recorded', async () => {
    server.handle((_req, res) => json(res, 404, {}));
    const token = await fresh(lenient, 'carol');
    const answer = await lenient.call<{ request: { id: string }; ticket_warning: string }>(
      'POST',
      '/v1/break-glass',
      token,
      BREAK_GLASS,
    );
    expect(answer.status).toBe(202);
    expect(answer.body.ticket_warning).toMatch(/incident check failed \(rule ticket.not_found/);
    const [requested] = await eventsOf(lenient, 'breakglass.requested');
    expect(requested?.data.ticket_check).toMatchObject({
      outcome: 'warned',
      rule: 'ticket.not_found',
      flagged: true,
    });
  });

  it('break_glass: skip — the ticket system is not asked at all', async () => {
    server.handle((_req, res) => json(res, 500, {}));
    const token = await fresh(skipping, 'carol');
    const answer = await skipping.call('POST', '/v1/break-glass', token, BREAK_GLASS);
    expect(answer.status).toBe(202);
    expect(server.received).toEqual([]);
    const [requested] = await eventsOf(skipping, 'breakglass.requested');
    expect(requested?.data.ticket_check).toEqual({ system: 'http', outcome: 'skipped' });
  });

  it('imp end --post: posted on request (policy post_summary off), retried through 503s, audited with the attempts', async () => {
    let posts = 0;
    server.handle((req, res) => {
      if (req.method === 'GET') return json(res, 200, OPEN_ACME);
      posts++;
      return posts < 3 ? json(res, 503, {}) : json(res, 201, { id: 'c-1' });
    });
    const token = await fresh(lenient, 'alice');
    const opened = await lenient.call<{ session: { id: string } }>('POST', '/v1/sessions', token, SESSION);
    const id = opened.body.session.id;
    const ended = await lenient.call<{ ticket_note: string | null }>(
      'POST',
      `/v1/sessions/${id}/end`,
      token,
      { post_summary: true },
    );
    expect(ended.body.ticket_note).toBe('posting');
    await lenient.broker.deps.tickets?.idle();
    const posted = (await lenient.store.readAudit({ session: id })).find(
      (e) => e.type === 'ticket.summary_posted',
    );
    expect(posted?.data).toMatchObject({ system: 'http', attempts: 3, trigger: 'requested', ref: 'c-1' });
    const comment = server.received.filter((r) => r.method === 'POST').at(-1)?.body as Record<
      string,
      unknown
    >;
    expect(comment.ticket).toBe('SUP-1');
    expect(comment.session).toBe(id);
    // Counts, never the proxied paths or the reason.
    expect(comment.summary).not.toHaveProperty('calls');
    expect(JSON.stringify(comment)).not.toContain('missing invoices');
    // The same delivery id on every try, so the receiver can de-duplicate.
    const deliveries = new Set(
      server.received
        .filter((r) => r.method === 'POST')
        .map((r) => (r.body as { delivery: string }).delivery),
    );
    expect(deliveries.size).toBe(1);
  });

  it('a refused post (400) is not retried and is audited as ticket.summary_failed; without post_summary nothing is posted', async () => {
    const refusing = (req: { method: string }, res: import('node:http').ServerResponse) =>
      req.method === 'GET' ? json(res, 200, OPEN_ACME) : json(res, 400, { error: 'bad' });
    server.handle(refusing);
    const token = await fresh(lenient, 'alice');
    const first = await lenient.call<{ session: { id: string } }>('POST', '/v1/sessions', token, SESSION);
    await lenient.call('POST', `/v1/sessions/${first.body.session.id}/end`, token, { post_summary: true });
    await lenient.broker.deps.tickets?.idle();
    const failed = (await lenient.store.readAudit({ session: first.body.session.id })).find(
      (e) => e.type === 'ticket.summary_failed',
    );
    expect(failed?.data).toMatchObject({ attempts: 1, error: 'HTTP 400' });

    server.handle(refusing);
    const again = await fresh(lenient, 'alice');
    const second = await lenient.call<{ session: { id: string } }>('POST', '/v1/sessions', again, SESSION);
    const ended = await lenient.call<{ ticket_note: string | null }>(
      'POST',
      `/v1/sessions/${second.body.session.id}/end`,
      again,
      {},
    );
    expect(ended.body.ticket_note).toBeNull();
    expect(server.received.filter((r) => r.method === 'POST')).toEqual([]);
  });
});

describe('a broker without a ticket system', () => {
  let t: TestBroker;
  beforeAll(async () => {
    t = await startTestBroker();
  });
  afterAll(() => t.close());

  it('refuses post_summary with a clear message and leaves the session running', async () => {
    const token = await fresh(t, 'alice');
    const opened = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', token, SESSION);
    const answer = await t.call<{ error: { code: string; message: string } }>(
      'POST',
      `/v1/sessions/${opened.body.session.id}/end`,
      token,
      { post_summary: true },
    );
    expect(answer.status).toBe(400);
    expect(answer.body.error.message).toContain('no ticket system (policy tickets.system)');
    const session = await t.call<{ session: { state: string } }>(
      'GET',
      `/v1/sessions/${opened.body.session.id}`,
      token,
    );
    expect(session.body.session.state).toBe('active');
  });
});

describe("a runbook's ticket (machine identity)", () => {
  let server: TicketServer;
  let issuerServer: import('node:http').Server;
  let t: TestBroker;
  let issuer = '';
  let key: CryptoKey;
  const SUBJECT = 'repo:org/runbooks:ref:refs/heads/main';

  beforeAll(async () => {
    server = await startTicketServer();
    const pair = await generateKeyPair('ES256');
    key = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    issuerServer = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(req.url === '/jwks' ? { keys: [jwk] } : { issuer, jwks_uri: `${issuer}/jwks` }));
    });
    await new Promise<void>((resolve) => issuerServer.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(issuerServer.address() as AddressInfo).port}`;
    t = await startTestBroker({
      policyYaml: (idp) => `
identity: { issuer: ${idp}, client_id: imp-cli }
tickets: { pattern: '^[A-Z][A-Z0-9]+-[0-9]+$', system: { type: http, url: ${JSON.stringify(server.url)}, require_person: assignee, tenant_field: tenant } }
roles:
  - { name: support, groups: [support], tenants: ['*'], environments: ['*'], scopes: [read], max_ttl: 1h }
tenants:
  - { id: acme, upstream: { prod: http://127.0.0.1:9 } }
machines:
  - { name: ci-diag, issuer: ${issuer}, subject: '${SUBJECT}', tenants: [acme], allow: ['GET /v1/queue/*'] }
`,
    });
  });
  afterAll(async () => {
    await t?.close();
    issuerServer?.close();
    await server.close();
  });

  async function exchange(ticket: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' })
      .setIssuer(issuer)
      .setSubject(SUBJECT)
      .setAudience(t.broker.url)
      .setIssuedAt()
      .setExpirationTime('5m')
      .setJti(randomUUID())
      .sign(key);
    const response = await fetch(`${t.broker.url}/v1/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
        assertion: token,
        tenant: 'acme',
        ticket,
        reason: 'Nightly queue diagnostics',
      }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it('is checked too, without the person rule (a runbook is nobody’s assignee)', async () => {
    server.handle((_req, res) => json(res, 200, { ...OPEN_ACME, assignee: { email: 'bob@example.test' } }));
    const opened = await exchange('SUP-1');
    expect(opened.status).toBe(200);
    const id = (opened.body.session as { id: string }).id;
    const [requested] = (await t.store.readAudit({ session: id })).filter(
      (e) => e.type === 'session.requested',
    );
    expect(requested?.data.ticket_check).toEqual({
      system: 'http',
      outcome: 'verified',
      status: 'In progress',
    });
  });

  it("a closed ticket refuses the runbook's session, audited with the rule", async () => {
    server.handle((_req, res) => json(res, 200, { ...OPEN_ACME, open: false, status: 'Done' }));
    const refused = await exchange('SUP-2');
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({
      code: 'IMP_POLICY_DENIED',
      details: { rule: 'ticket.closed' },
    });
    const [event] = (await t.store.readAudit({ type: 'session.refused' })).filter(
      (e) => e.ticket === 'SUP-2',
    );
    expect(event?.actor?.roles).toEqual(['machine:ci-diag']);
    expect(event?.data).toMatchObject({ rule: 'ticket.closed', machine: 'ci-diag' });
  });
});

describe('a credential a header cannot carry', () => {
  it('is not used (nor quoted anywhere): the system refuses the broker, and the session is refused by rule', async () => {
    const server = await startTicketServer();
    const secret = 'tok\r\nX-Injected: 1';
    server.handle((req, res) => (req.headers.authorization ? json(res, 200, OPEN_ACME) : json(res, 401, {})));
    const t = await startTestBroker({
      policyYaml: (issuer) =>
        withTickets(
          issuer,
          `{ pattern: '^[A-Z][A-Z0-9]+-[0-9]+$', system: { type: http, url: ${JSON.stringify(server.url)}, token_env: IMP_TEST_NOT_READ } }`,
        ),
      ticketSettings: { secret: () => secret },
    });
    try {
      const token = await t.loginAs('alice');
      const answer = await t.call<{ error: { message: string; details: { rule: string } } }>(
        'POST',
        '/v1/sessions',
        token,
        SESSION,
      );
      expect(answer.body.error.details.rule).toBe('ticket.unreachable');
      expect(server.received[0]?.headers['x-injected']).toBeUndefined();
      expect(JSON.stringify(answer.body)).not.toContain('tok');
      expect(JSON.stringify(await t.store.readAudit())).not.toContain('X-Injected');
    } finally {
      await t.close();
      await server.close();
    }
  });
});
