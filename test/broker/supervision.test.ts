/**
 * Live supervision on the broker: GET /v1/sessions/:id/watch streams a live session (its recording
 * and its proxied calls) to a supervisor as Server-Sent Events, joining and leaving audited;
 * POST /v1/sessions/:id/terminate ends it as a revocation by the supervisor. Refused without the
 * supervise role and on one's own session, each refusal naming its rule and audited.
 */
import { type ClientRequest, createServer, get, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WatchEventName } from '../../src/core/api.js';
import { eventLine, headerLine } from '../../src/core/recording/asciicast.js';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';

let t: TestBroker;
let tenant: Server;
beforeAll(async () => {
  tenant = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  await new Promise<void>((resolve) => tenant.listen(0, '127.0.0.1', resolve));
  const api = `http://127.0.0.1:${(tenant.address() as AddressInfo).port}`;
  // Leads also supervise here: bob can open a session and watch others', never his own.
  t = await startTestBroker({
    policyYaml: (issuer) =>
      devPolicyYaml(issuer, api).replace(
        'max_ttl: 1h, approve: true }',
        'max_ttl: 1h, approve: true, supervise: true }',
      ),
  });
});
afterAll(async () => {
  await t?.close();
  await new Promise((resolve) => tenant?.close(resolve));
});

type ErrorBody = { error: { code: string; message: string; details?: { rule?: string } } };

async function open(user: string, tenantId: string): Promise<{ id: string; token: string }> {
  t.clock.advance(1100);
  const token = await t.loginAs(user);
  const answer = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', token, {
    tenant: tenantId,
    environment: 'prod',
    scope: 'read',
    ticket: 'SUP-17',
    reason: 'Supervision tests on the broker',
    ttl: 600,
  });
  expect(answer.status, JSON.stringify(answer.body)).toBe(201);
  return { id: answer.body.session.id, token };
}

/** Reads an SSE stream; `next(name)` resolves with the data of the next event of that name. */
async function watchOn(b: TestBroker, id: string, token: string) {
  const seen: { name: WatchEventName; data: Record<string, unknown> }[] = [];
  let buffer = '';
  const url = new URL(`${b.broker.url}/v1/sessions/${id}/watch`);
  const { request, response } = await new Promise<{ request: ClientRequest; response: IncomingMessage }>(
    (resolve, reject) => {
      const request = get(url, { headers: { authorization: `Bearer ${token}` } }, (response) =>
        resolve({ request, response }),
      );
      request.on('error', reject);
    },
  );
  response.setEncoding('utf8');
  response.on('data', (text: string) => {
    buffer += text;
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const name = /^event: (.+)$/m.exec(block)?.[1];
      const data = /^data: (.+)$/m.exec(block)?.[1];
      if (name && data) seen.push({ name: name as WatchEventName, data: JSON.parse(data) });
      end = buffer.indexOf('\n\n');
    }
  });
  const ended = new Promise<void>((resolve) => response.once('close', resolve));
  let read = 0;
  return {
    response,
    async next(name: WatchEventName, timeoutMs = 5000): Promise<Record<string, unknown>> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const index = seen.findIndex((e, i) => i >= read && e.name === name);
        if (index >= 0) {
          read = index + 1;
          return seen[index]!.data;
        }
        if (Date.now() > deadline)
          throw new Error(`no ${name} event; saw ${seen.map((e) => e.name).join(', ')}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    /** Resolves once the broker has closed the stream. */
    ended,
    close() {
      request.destroy();
    },
  };
}

describe('live supervision', () => {
  it('a supervisor sees the recording and the calls live, terminates the session; all audited', async () => {
    const { id, token } = await open('alice', 'globex');
    await t.call('POST', `/v1/sessions/${id}/recording`, token, {
      seq: 0,
      data: headerLine({ version: 2, width: 80, height: 24 }) + eventLine(0.1, 'o', 'before-watch\r\n'),
    });
    const erin = await t.loginAs('erin');
    const stream = await watchOn(t, id, erin);
    expect(stream.response.statusCode).toBe(200);
    expect(stream.response.headers['content-type']).toContain('text/event-stream');
    const hello = await stream.next('hello');
    expect(hello).toMatchObject({
      watcher: 'erin@example.test',
      supervisors: ['erin@example.test'],
      session: {
        id,
        tenant: 'globex',
        environment: 'prod',
        scope: 'read',
        requester: { email: 'alice@example.test' },
      },
    });
    // What was recorded before joining comes first, then what arrives after.
    expect((await stream.next('output')).events).toEqual([[0.1, 'o', 'before-watch\r\n']]);
    await t.call('POST', `/v1/sessions/${id}/recording`, token, {
      seq: 1,
      data: eventLine(0.5, 'o', 'typed-live\r\n'),
    });
    expect(await stream.next('output')).toMatchObject({ seq: 1, events: [[0.5, 'o', 'typed-live\r\n']] });
    expect((await t.call('GET', `/v1/sessions/${id}/proxy/v1/users`, token)).status).toBe(200);
    expect(await stream.next('action')).toMatchObject({
      type: 'action.requested',
      method: 'GET',
      path: '/v1/users',
    });
    expect(await stream.next('action')).toMatchObject({ type: 'action.completed', status: 200 });
    const joined = await t.store.readAudit({ type: 'supervision.joined', session: id });
    expect(joined).toMatchObject([
      { actor: { email: 'erin@example.test' }, data: { supervisor: 'erin@example.test' } },
    ]);

    const ended = await t.call('POST', `/v1/sessions/${id}/terminate`, erin);
    expect(ended.status).toBe(200);
    expect(await stream.next('end')).toEqual({
      state: 'revoked',
      by: 'erin@example.test',
      comment: 'Terminated by supervisor erin@example.test while watching.',
    });
    // The broker closes the stream itself once the session is over.
    await stream.ended;
    const revoked = await t.store.readAudit({ type: 'session.revoked', session: id });
    expect(revoked).toMatchObject([{ actor: { email: 'erin@example.test' }, data: { via: 'watch' } }]);
    await expect
      .poll(async () => (await t.store.readAudit({ type: 'supervision.left', session: id })).length)
      .toBe(1);
    // The session is over for its owner: the proxy refuses, and the summary names the supervisor.
    expect((await t.call('GET', `/v1/sessions/${id}/proxy/v1/users`, token)).status).toBe(410);
    const summary = await t.call<{ supervised_by: string[] }>('GET', `/v1/sessions/${id}/summary`, token);
    expect(summary.body.supervised_by).toEqual(['erin@example.test']);
  });

  it('refuses a watcher without the supervise role (role.supervise) and one watching their own session (supervision.self), audited', async () => {
    const { id: bobs } = await open('bob', 'initech');
    const bob = await t.loginAs('bob');
    const own = await t.call<ErrorBody>('GET', `/v1/sessions/${bobs}/watch`, bob);
    expect(own.status).toBe(403);
    expect(own.body.error.details?.rule).toBe('supervision.self');
    expect(
      (await t.call<ErrorBody>('POST', `/v1/sessions/${bobs}/terminate`, bob)).body.error.details?.rule,
    ).toBe('supervision.self');
    const { id: carols } = await open('carol', 'initech');
    const alice = await t.loginAs('alice');
    const none = await t.call<ErrorBody>('GET', `/v1/sessions/${carols}/watch`, alice);
    expect(none.status).toBe(403);
    expect(none.body.error.details?.rule).toBe('role.supervise');
    expect(
      (await t.call<ErrorBody>('POST', `/v1/sessions/${carols}/terminate`, alice)).body.error.details?.rule,
    ).toBe('role.supervise');
    const denied = await t.store.readAudit({ type: 'access.denied' });
    expect(denied.filter((e) => e.session === bobs).map((e) => e.data.rule)).toEqual([
      'supervision.self',
      'supervision.self',
    ]);
    expect(denied.filter((e) => e.session === carols).map((e) => e.data.rule)).toEqual([
      'role.supervise',
      'role.supervise',
    ]);
    // Nobody joined either session.
    expect(await t.store.readAudit({ type: 'supervision.joined', session: bobs })).toHaveLength(0);
    expect(await t.store.readAudit({ type: 'supervision.joined', session: carols })).toHaveLength(0);
  });

  it('a finished session is not watched live (supervision.not_live)', async () => {
    const { id, token } = await open('dave', 'acme');
    expect((await t.call('POST', `/v1/sessions/${id}/end`, token)).status).toBe(200);
    const erin = await t.loginAs('erin');
    const answer = await t.call<ErrorBody>('GET', `/v1/sessions/${id}/watch`, erin);
    expect(answer.status).toBe(409);
    expect(answer.body.error.details?.rule).toBe('supervision.not_live');
  });
});

describe('supervision: required', () => {
  let s: TestBroker;
  let api: string;
  beforeAll(async () => {
    api = `http://127.0.0.1:${(tenant.address() as AddressInfo).port}`;
    // initech (standard) must be supervised and pauses; acme (enterprise) ends when the last one leaves.
    const policy = (onLeave: string) => (issuer: string) =>
      `${devPolicyYaml(issuer, api)}supervision:\n  rules: [{ tiers: [standard], environments: [prod] }]\n  on_leave: ${onLeave}\n`;
    s = await startTestBroker({ policyYaml: policy('pause') });
  });
  afterAll(async () => {
    await s?.close();
  });

  async function openOn(b: TestBroker, user: string, tenantId: string, ttl = 600) {
    b.clock.advance(1100);
    const token = await b.loginAs(user);
    const answer = await b.call<{
      session: {
        id: string;
        expires_at: string;
        supervision: { required: boolean; on_leave: string; supervisors: string[] };
      };
    }>('POST', '/v1/sessions', token, {
      tenant: tenantId,
      environment: 'prod',
      scope: 'read',
      ticket: 'SUP-17',
      reason: 'Supervised session test',
      ttl,
    });
    expect(answer.status, JSON.stringify(answer.body)).toBe(201);
    return { ...answer.body.session, token };
  }

  async function upload0(b: TestBroker, id: string, token: string) {
    const data = headerLine({ version: 2, width: 80, height: 24 }) + eventLine(0, 'o', '$ ');
    expect((await b.call('POST', `/v1/sessions/${id}/recording`, token, { seq: 0, data })).status).toBe(201);
  }

  it('waits for a supervisor (supervision.waiting), its time starts on join, pauses when the last one leaves (supervision.paused), resumes on rejoin', async () => {
    const opened = await openOn(s, 'alice', 'initech');
    expect(opened.supervision).toEqual({ required: true, on_leave: 'pause', supervisors: [] });
    await upload0(s, opened.id, opened.token);
    const waiting = await s.call<ErrorBody>('GET', `/v1/sessions/${opened.id}/proxy/v1/users`, opened.token);
    expect(waiting.status).toBe(403);
    expect(waiting.body.error.details?.rule).toBe('supervision.waiting');
    expect(waiting.body.error.message).toContain(`imp watch ${opened.id}`);

    // Nobody came for a while: the session's time had not started.
    s.clock.advance(120_000);
    const erin = await s.loginAs('erin');
    const first = await watchOn(s, opened.id, erin);
    const hello = await first.next('hello');
    const expires = Date.parse((hello.session as { expires_at: string }).expires_at);
    expect(expires).toBeGreaterThan(Date.parse(opened.expires_at) + 100_000);
    const view = await s.call<{ session: { supervision: { supervisors: string[] } } }>(
      'GET',
      `/v1/sessions/${opened.id}`,
      opened.token,
    );
    expect(view.body.session.supervision.supervisors).toEqual(['erin@example.test']);
    expect((await s.call('GET', `/v1/sessions/${opened.id}/proxy/v1/users`, opened.token)).status).toBe(200);

    first.close();
    await expect
      .poll(async () => (await s.store.readAudit({ type: 'supervision.left', session: opened.id })).length)
      .toBe(1);
    const paused = await s.call<ErrorBody>('GET', `/v1/sessions/${opened.id}/proxy/v1/users`, opened.token);
    expect(paused.body.error.details?.rule).toBe('supervision.paused');
    const denied = await s.store.readAudit({ type: 'action.denied', session: opened.id });
    expect(denied.map((e) => e.data.rule)).toEqual(['supervision.waiting', 'supervision.paused']);

    const again = await watchOn(s, opened.id, erin);
    await again.next('hello');
    expect((await s.call('GET', `/v1/sessions/${opened.id}/proxy/v1/users`, opened.token)).status).toBe(200);
    again.close();
  });

  it('a session that needs no supervisor is not gated', async () => {
    const opened = await openOn(s, 'bob', 'acme');
    expect(opened.supervision.required).toBe(false);
    await upload0(s, opened.id, opened.token);
    expect((await s.call('GET', `/v1/sessions/${opened.id}/proxy/v1/users`, opened.token)).status).toBe(200);
  });

  it('on_leave: end — the last supervisor leaving ends the session, audited', async () => {
    const e = await startTestBroker({
      policyYaml: (issuer) =>
        `${devPolicyYaml(issuer, api)}supervision:\n  rules: [{ environments: [prod], scopes: [read] }]\n  on_leave: end\n`,
    });
    try {
      const opened = await openOn(e, 'carol', 'globex');
      const erin = await e.loginAs('erin');
      const watcher = await watchOn(e, opened.id, erin);
      await watcher.next('hello');
      watcher.close();
      await expect
        .poll(
          async () =>
            (await e.call<{ session: { state: string } }>('GET', `/v1/sessions/${opened.id}`, opened.token))
              .body.session.state,
        )
        .toBe('revoked');
      const revoked = await e.store.readAudit({ type: 'session.revoked', session: opened.id });
      expect(revoked).toMatchObject([{ actor: null, data: { rule: 'supervision.on_leave' } }]);
      const view = await e.call<{ session: { decision_comment: string } }>(
        'GET',
        `/v1/sessions/${opened.id}`,
        opened.token,
      );
      expect(view.body.session.decision_comment).toContain('The last supervisor left');
    } finally {
      await e.close();
    }
  });
});
