/**
 * Break-glass on the broker: two people (never one), inside the window, each with a fresh login;
 * a write session that opens at once, signed alerts that are retried and audited without blocking
 * it, and a review by a third person that the access review tracks until it is recorded.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReviewReport } from '../../src/core/api.js';
import { eventLine, headerLine } from '../../src/core/recording/asciicast.js';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';

const SECRET = 'test-webhook-secret-0123456789';

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A local HTTP server that records every request and answers with `status`. */
async function recorder(status: number): Promise<{ server: Server; url: string; seen: Received[] }> {
  const seen: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      res.writeHead(status, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

/** What a receiver does: recompute the HMAC of "t.body" and compare in constant time. */
function signatureValid(header: string | undefined, body: string, secret: string): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!match) return false;
  const expected = createHmac('sha256', secret).update(`${match[1]}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(match[2]!, 'hex'));
}

let t: TestBroker;
let receiver: Awaited<ReturnType<typeof recorder>>;
let down: Awaited<ReturnType<typeof recorder>>;
let upstream: Awaited<ReturnType<typeof recorder>>;

beforeAll(async () => {
  receiver = await recorder(200);
  down = await recorder(503);
  upstream = await recorder(201);
  t = await startTestBroker({
    policyYaml: (issuer) =>
      devPolicyYaml(issuer, upstream.url, {
        alerts: [
          { url: `${receiver.url}/hooks/imp?token=not-for-the-log`, secretEnv: 'IMP_TEST_ALERT_SECRET' },
          { url: `${down.url}/down` },
          { url: `${receiver.url}/unsigned`, secretEnv: 'IMP_TEST_UNSET_SECRET' },
        ],
      }),
    alertSettings: {
      delaysMs: [0, 10, 20, 40, 80],
      secret: (name) => (name === 'IMP_TEST_ALERT_SECRET' ? SECRET : undefined),
    },
  });
});
afterAll(async () => {
  await t?.close();
  for (const r of [receiver, down, upstream]) r?.server.close();
});

type ErrorBody = { error: { code: string; message: string; details?: { rule?: string } } };
type SessionBody = {
  session: {
    id: string;
    state: string;
    mode: string;
    scope: string;
    review_required: boolean;
    decided_by: { sub: string } | null;
    review: { outcome: string } | null;
  };
};
type RequestBody = {
  request: { id: string; state: string; mode: string; scope: string; ticket: string; confirm_by: string };
  confirm_command: string;
};

const ask = (overrides: Record<string, unknown> = {}) => ({
  tenant: 'globex',
  environment: 'prod',
  incident: 'INC-123',
  reason: 'Payments queue is stuck; requeue the failed jobs',
  ttl: 600,
  ...overrides,
});

/** A fresh login each time: per-session re-authentication needs a newer auth_time. */
async function freshLogin(user: string): Promise<string> {
  t.clock.advance(1100);
  return t.loginAs(user);
}

async function request(user = 'carol', overrides: Record<string, unknown> = {}): Promise<string> {
  const answer = await t.call<RequestBody>('POST', '/v1/break-glass', await freshLogin(user), ask(overrides));
  expect(answer.status, JSON.stringify(answer.body)).toBe(202);
  return answer.body.request.id;
}

async function eventsOf(session: string, type: string) {
  return (await t.store.readAudit({ session })).filter((e) => e.type === type);
}

async function review(token: string): Promise<ReviewReport> {
  const answer = await t.call<ReviewReport>('GET', '/v1/review?since=1d', token);
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer.body;
}

describe('break-glass needs two people', () => {
  it('carol asks, dave confirms: a write session opens, alerts go out signed, and it waits for review', async () => {
    const carol = await freshLogin('carol');
    const asked = await t.call<RequestBody>('POST', '/v1/break-glass', carol, ask());
    expect(asked.status).toBe(202);
    expect(asked.body.request).toMatchObject({
      state: 'pending',
      mode: 'break_glass',
      scope: 'write',
      ticket: 'INC-123',
    });
    const id = asked.body.request.id;
    expect(asked.body.confirm_command).toBe(`imp break-glass confirm ${id}`);
    expect(Date.parse(asked.body.request.confirm_by) - t.clock.now()).toBeGreaterThan(590_000);
    expect(await eventsOf(id, 'breakglass.requested')).toHaveLength(1);

    const dave = await freshLogin('dave');
    const shown = await t.call<{ request: { requester: { email: string }; reason: string } }>(
      'GET',
      `/v1/break-glass/${id}`,
      dave,
    );
    expect(shown.status).toBe(200);
    expect(shown.body.request.requester.email).toBe('carol@example.test');

    const waiting = t.call<SessionBody>('GET', `/v1/sessions/${id}?wait=20s`, carol);
    const confirmed = await t.call<SessionBody>('POST', `/v1/break-glass/${id}/confirm`, dave);
    expect(confirmed.status, JSON.stringify(confirmed.body)).toBe(200);
    expect(confirmed.body.session).toMatchObject({
      state: 'active',
      mode: 'break_glass',
      scope: 'write',
      review_required: true,
      decided_by: { sub: 'user-dave' },
    });
    expect((await waiting).body.session.state).toBe('active');
    expect(await eventsOf(id, 'breakglass.confirmed')).toMatchObject([{ actor: { sub: 'user-dave' } }]);

    // Write-capable: a POST goes through the proxy with a break-glass session token, once its
    // required recording has started (chunk 0, as imp's recorded shell sends it first).
    const recorded = await t.call('POST', `/v1/sessions/${id}/recording`, carol, {
      seq: 0,
      data: `${headerLine({ version: 2, width: 80, height: 24 })}${eventLine(0, 'o', '$ ')}`,
    });
    expect(recorded.status).toBe(201);
    const before = upstream.seen.length;
    const call = await t.call('POST', `/v1/sessions/${id}/proxy/v1/queue/requeue`, carol, { job: 7 });
    expect(call.status).toBe(201);
    const forwarded = upstream.seen[before]!;
    expect(forwarded.method).toBe('POST');
    const claims = decodeJwt(String(forwarded.headers.authorization).replace(/^Bearer /, ''));
    expect(claims).toMatchObject({ mode: 'break_glass', sid: id, ticket: 'INC-123' });
    expect(String(claims.scope)).toContain('tenant:write');

    // Alerts: the receiver gets one signed POST; the one that is down is retried, then audited as failed.
    await t.broker.deps.alerts!.idle();
    const delivered = receiver.seen.filter((r) => JSON.parse(r.body).session_id === id);
    expect(delivered).toHaveLength(1);
    const alert = delivered[0]!;
    expect(alert.headers['content-type']).toBe('application/json');
    expect(signatureValid(alert.headers['x-imp-signature'] as string, alert.body, SECRET)).toBe(true);
    expect(signatureValid(alert.headers['x-imp-signature'] as string, alert.body, 'wrong-secret')).toBe(
      false,
    );
    expect(JSON.parse(alert.body)).toMatchObject({
      event: 'break_glass.started',
      session_id: id,
      tenant: 'globex',
      environment: 'prod',
      incident: 'INC-123',
      reason: 'Payments queue is stuck; requeue the failed jobs',
      requester: { sub: 'user-carol', email: 'carol@example.test' },
      confirmer: { sub: 'user-dave', email: 'dave@example.test' },
    });
    expect(Date.parse(JSON.parse(alert.body).expires_at)).toBeGreaterThan(t.clock.now());
    const retried = down.seen.filter((r) => JSON.parse(r.body).session_id === id);
    expect(retried).toHaveLength(5);
    expect(retried.every((r) => r.headers['x-imp-signature'] === undefined)).toBe(true);
    expect(await eventsOf(id, 'alert.delivered')).toMatchObject([
      { data: { url: `${receiver.url}/hooks/imp`, attempts: 1, status: 200 } },
    ]);
    // A secret_env that is not set fails the delivery (never sent unsigned), visibly.
    expect(receiver.seen.some((r) => r.url === '/unsigned')).toBe(false);
    const failed = await eventsOf(id, 'alert.failed');
    expect(failed.map((e) => e.data)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ url: `${down.url}/down`, attempts: 5, error: 'HTTP 503' }),
        expect.objectContaining({
          url: `${receiver.url}/unsigned`,
          attempts: 0,
          error: 'secret_env IMP_TEST_UNSET_SECRET is not set on the broker',
        }),
      ]),
    );
    expect(failed).toHaveLength(2);

    // The access review shows it awaiting review, and the failed alert.
    const erin = await freshLogin('erin');
    let report = await review(erin);
    expect(report.awaiting_review.map((s) => s.id)).toContain(id);
    expect(report.alert_failures).toContainEqual(
      expect.objectContaining({ session: id, url: `${down.url}/down`, attempts: 5 }),
    );
    expect(report.break_glass_sessions.find((s) => s.id === id)).toMatchObject({
      requester: { sub: 'user-carol' },
      decided_by: { sub: 'user-dave' },
      ticket: 'INC-123',
    });

    // Not reviewable while it runs; then neither requester nor confirmer may review it; erin may, once.
    const early = await t.call<ErrorBody>('POST', `/v1/break-glass/${id}/review`, erin, {
      outcome: 'justified',
      notes: 'Checked the incident timeline',
    });
    expect(early.status).toBe(409);
    expect((await t.call('POST', `/v1/sessions/${id}/end`, carol)).status).toBe(200);
    const verdict = { outcome: 'justified', notes: 'INC-123 timeline matches the calls made' };
    for (const [who, token] of [
      ['carol', await freshLogin('carol')],
      ['dave', await freshLogin('dave')],
    ] as const) {
      const self = await t.call<ErrorBody>('POST', `/v1/break-glass/${id}/review`, token, verdict);
      expect(self.status, who).toBe(403);
      expect(self.body.error.details?.rule).toBe('break_glass.review_self');
    }
    expect((await eventsOf(id, 'access.denied')).map((e) => e.actor?.sub)).toEqual([
      'user-carol',
      'user-dave',
    ]);
    const reviewed = await t.call<SessionBody>('POST', `/v1/break-glass/${id}/review`, erin, verdict);
    expect(reviewed.status, JSON.stringify(reviewed.body)).toBe(200);
    expect(reviewed.body.session.review).toMatchObject({ outcome: 'justified', by: { sub: 'user-erin' } });
    expect(await eventsOf(id, 'breakglass.reviewed')).toMatchObject([
      { actor: { sub: 'user-erin' }, data: { outcome: 'justified' } },
    ]);
    expect((await t.call('POST', `/v1/break-glass/${id}/review`, erin, verdict)).status).toBe(409);

    report = await review(erin);
    expect(report.awaiting_review.map((s) => s.id)).not.toContain(id);
    expect(report.break_glass_sessions.find((s) => s.id === id)?.review).toMatchObject({
      outcome: 'justified',
    });
    expect((await t.store.readAudit({ type: 'audit.read' })).at(-1)).toMatchObject({
      actor: { sub: 'user-erin' },
      data: { report: 'review' },
    });
  });

  it('the requester cannot confirm their own request (break_glass.self), audited; nothing opens', async () => {
    const id = await request('carol');
    const again = await freshLogin('carol');
    for (const [method, path] of [
      ['GET', `/v1/break-glass/${id}`],
      ['POST', `/v1/break-glass/${id}/confirm`],
    ] as const) {
      const answer = await t.call<ErrorBody>(method, path, again);
      expect(answer.status).toBe(403);
      expect(answer.body.error.details?.rule).toBe('break_glass.self');
    }
    expect(await eventsOf(id, 'breakglass.refused')).toMatchObject([
      { actor: { sub: 'user-carol' }, data: { rule: 'break_glass.self' } },
      { actor: { sub: 'user-carol' }, data: { rule: 'break_glass.self' } },
    ]);
    expect((await t.call<SessionBody>('GET', `/v1/sessions/${id}`, again)).body.session.state).toBe(
      'pending',
    );
    await t.call('POST', `/v1/sessions/${id}/end`, again);
  });

  it('a confirmer without break_glass_confirm is refused (role.break_glass_confirm), audited; an approver cannot approve it either', async () => {
    const id = await request('dave');
    for (const user of ['alice', 'erin']) {
      const answer = await t.call<ErrorBody>('POST', `/v1/break-glass/${id}/confirm`, await freshLogin(user));
      expect(answer.status).toBe(403);
      expect(answer.body.error.details?.rule).toBe('role.break_glass_confirm');
      expect(answer.headers.get('www-authenticate')).toBeNull();
    }
    expect((await eventsOf(id, 'breakglass.refused')).map((e) => e.data.rule)).toEqual([
      'role.break_glass_confirm',
      'role.break_glass_confirm',
    ]);
    // bob may approve write sessions, but a break-glass request is not his to open (or list).
    const bob = await freshLogin('bob');
    const approve = await t.call<ErrorBody>('POST', `/v1/requests/${id}/approve`, bob);
    expect(approve.status).toBe(403);
    expect(approve.body.error.details?.rule).toBe('break_glass.confirm_only');
    const list = await t.call<{ requests: { id: string }[] }>('GET', '/v1/requests', bob);
    expect(list.body.requests.map((r) => r.id)).not.toContain(id);
    // Withdrawn by the requester: nothing left to confirm.
    const dave = await freshLogin('dave');
    expect((await t.call<SessionBody>('POST', `/v1/sessions/${id}/end`, dave)).body.session.state).toBe(
      'cancelled',
    );
    expect((await t.call('POST', `/v1/break-glass/${id}/confirm`, await freshLogin('carol'))).status).toBe(
      409,
    );
  });

  it('a confirmation after the window is refused and the request is expired (breakglass.expired)', async () => {
    const id = await request('carol', { tenant: 'initech' });
    t.clock.advance(601_000); // dev policy: confirm_window 10m
    const dave = await freshLogin('dave');
    const late = await t.call<ErrorBody>('POST', `/v1/break-glass/${id}/confirm`, dave);
    expect(late.status).toBe(403);
    expect(late.body.error.details?.rule).toBe('break_glass.confirm_window');
    expect(await eventsOf(id, 'breakglass.expired')).toHaveLength(1);
    expect(await eventsOf(id, 'breakglass.refused')).toMatchObject([
      { actor: { sub: 'user-dave' }, data: { rule: 'break_glass.confirm_window' } },
    ]);
    const seen = await t.call<SessionBody>('GET', `/v1/sessions/${id}`, dave);
    expect(seen.body.session.state).toBe('request_expired');
    expect(await eventsOf(id, 'session.started')).toHaveLength(0);
  });
});

describe('fresh logins and refusals', () => {
  it('a stale requester gets RFC 9470 step-up and nothing is requested', async () => {
    const stale = await t.loginAs('carol', { authAgeSeconds: 400 });
    const before = (await t.store.readAudit({ type: 'breakglass.requested' })).length;
    const answer = await t.call<ErrorBody>('POST', '/v1/break-glass', stale, ask({ tenant: 'acme' }));
    expect(answer.status).toBe(401);
    expect(answer.headers.get('www-authenticate')).toBe(
      'Bearer error="insufficient_user_authentication", error_description="A fresh login is required", max_age=300',
    );
    expect((await t.store.readAudit({ type: 'breakglass.requested' })).length).toBe(before);
    expect((await t.store.readAudit({ type: 'stepup.required' })).at(-1)).toMatchObject({
      actor: { sub: 'user-carol' },
      data: { why: 'stale' },
    });
  });

  it('one login never opens two break-glass requests (per-session login: step-up with max_age=1)', async () => {
    const carol = await freshLogin('carol');
    const first = await t.call<RequestBody>('POST', '/v1/break-glass', carol, ask({ tenant: 'acme' }));
    expect(first.status).toBe(202);
    const second = await t.call('POST', '/v1/break-glass', carol, ask({ tenant: 'globex' }));
    expect(second.status).toBe(401);
    expect(second.headers.get('www-authenticate')).toContain('max_age=1');
    await t.call('POST', `/v1/sessions/${first.body.request.id}/end`, carol);
  });

  it('a stale confirmer gets step-up; the request stays pending; a fresh login then confirms', async () => {
    const id = await request('carol', { tenant: 'acme', ttl: 60 });
    const staleDave = await t.loginAs('dave', { authAgeSeconds: 400 });
    // Looking at the request needs no fresh login; confirming does.
    expect((await t.call('GET', `/v1/break-glass/${id}`, staleDave)).status).toBe(200);
    const stale = await t.call<ErrorBody>('POST', `/v1/break-glass/${id}/confirm`, staleDave);
    expect(stale.status).toBe(401);
    expect(stale.headers.get('www-authenticate')).toMatch(
      /error="insufficient_user_authentication".*max_age=300/,
    );
    expect(await eventsOf(id, 'stepup.required')).toMatchObject([
      { actor: { sub: 'user-dave' }, data: { action: 'confirm', why: 'stale' } },
    ]);
    expect(await eventsOf(id, 'breakglass.confirmed')).toHaveLength(0);
    const confirmed = await t.call<SessionBody>(
      'POST',
      `/v1/break-glass/${id}/confirm`,
      await freshLogin('dave'),
    );
    expect(confirmed.body.session.state).toBe('active');
    await t.call('POST', `/v1/sessions/${id}/end`, await freshLogin('carol'));
  });

  it.each([
    [
      'an incident id not matching the ticket pattern',
      'carol',
      { incident: 'incident 5' },
      400,
      'ticket.pattern',
    ],
    ['a reason too short', 'carol', { reason: 'fire' }, 400, 'reason.min_length'],
    ['a TTL over break_glass.max_ttl', 'carol', { ttl: 3600 }, 403, 'break_glass.max_ttl'],
    ['an unknown tenant', 'carol', { tenant: 'nosuch' }, 403, 'tenant.unknown'],
    ['someone without the break_glass role', 'alice', {}, 403, 'role.break_glass'],
    ['someone with no role at all', 'mallory', {}, 403, 'role.break_glass'],
  ])(
    'refuses %s at once — even with a stale login — and audits it',
    async (_name, user, overrides, status, rule) => {
      const stale = await t.loginAs(user, { authAgeSeconds: 4000 });
      const answer = await t.call<ErrorBody>('POST', '/v1/break-glass', stale, ask(overrides));
      expect(answer.status).toBe(status);
      expect(answer.body.error.message).toContain(rule);
      expect(answer.headers.get('www-authenticate')).toBeNull();
      expect((await t.store.readAudit({ type: 'breakglass.refused' })).at(-1)).toMatchObject({
        actor: { sub: `user-${user}` },
        data: { rule },
      });
    },
  );
});

describe('the access review', () => {
  it('is for audit or review roles only, and lists roles nobody used', async () => {
    const alice = await freshLogin('alice');
    const denied = await t.call<ErrorBody>('GET', '/v1/review', alice);
    expect(denied.status).toBe(403);
    expect(denied.body.error.details?.rule).toBe('role.audit');
    expect(
      (await t.call<ErrorBody>('GET', '/v1/review?since=nonsense', await freshLogin('erin'))).status,
    ).toBe(400);

    const report = await review(await freshLogin('erin'));
    const unused = report.unused_roles.map((u) => `${u.person.sub}:${u.role}`);
    // bob (lead) only ever tried to approve a break-glass request, which was refused; alice never opened a session.
    expect(unused).toContain('user-bob:lead');
    expect(unused).toContain('user-alice:support');
    expect(unused).not.toContain('user-carol:oncall');
    expect(unused).not.toContain('user-dave:oncall');
    expect(unused.some((u) => u.startsWith('user-mallory'))).toBe(false);
    expect(report.by_person.find((p) => p.person.sub === 'user-carol')).toMatchObject({ break_glass: 2 });
    expect(report.totals.break_glass).toBeGreaterThanOrEqual(1);
    expect(report.denials.some((d) => d.rule === 'break_glass.self')).toBe(true);
    expect(report.step_ups.some((s) => s.why === 'stale')).toBe(true);
  });
});
