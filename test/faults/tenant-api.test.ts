/**
 * The tenant API is slow or down: the proxy gives up after the policy's `proxy.timeout`, audits the
 * failure as `action.failed`, answers with a coded error that says what happened, and `imp api`
 * (the real CLI) prints it and exits non-zero.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { makeUserEnv, runImp } from '../helpers/cli.js';
import { storeCliLogin } from '../helpers/id-tokens.js';

let t: TestBroker;
let slow: Server;
let downUrl: string;
const held: ServerResponse[] = [];
const sockets = new Set<Socket>();

beforeAll(async () => {
  // /stall-headers never answers; /stall-body sends headers and a first chunk, then nothing;
  // /stall-sized does the same with a Content-Length (a small answer the broker reads whole).
  slow = createServer((req, res) => {
    held.push(res);
    if (req.url?.includes('stall-body')) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first chunk;');
    }
    if (req.url?.includes('stall-sized')) {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' });
      res.write('first chunk;');
    }
  });
  slow.on('connection', (socket) => sockets.add(socket));
  await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
  // A port nothing listens on: bind one, note it, close it.
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  downUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const slowUrl = `http://127.0.0.1:${(slow.address() as AddressInfo).port}`;
  t = await startTestBroker({
    policyYaml: (issuer) => `
identity: { issuer: ${issuer}, client_id: imp-cli }
proxy: { timeout: 1s }
roles:
  - { name: support, groups: [support], tenants: ['*'], environments: ['*'], scopes: [read], max_ttl: 1h }
tenants:
  - { id: slowpoke, upstream: { prod: ${slowUrl} } }
  - { id: gone, upstream: { prod: ${downUrl} } }
`,
  });
});

afterAll(async () => {
  await t?.close();
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => (slow ? slow.close(() => resolve()) : resolve()));
});

async function openSession(tenant: string): Promise<{ token: string; id: string }> {
  t.clock.advance(1100); // a login of its own for each session
  const token = await t.loginAs('alice');
  // One active session per person and tenant: end what the previous test left open.
  const open = await t.call<{ sessions: { id: string }[] }>('GET', '/v1/sessions?state=active', token);
  for (const s of open.body.sessions) await t.call('POST', `/v1/sessions/${s.id}/end`, token);
  const answer = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', token, {
    tenant,
    environment: 'prod',
    ticket: 'SUP-9',
    reason: 'The tenant API seems to hang',
    ttl: 600,
  });
  expect(answer.status).toBe(201);
  return { token, id: answer.body.session.id };
}

async function proxied(token: string, id: string, path: string) {
  const started = Date.now();
  const response = await fetch(`${t.broker.url}/v1/sessions/${id}/proxy${path}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  let text = '';
  let aborted = false;
  try {
    text = await response.text();
  } catch {
    aborted = true;
  }
  return { status: response.status, text, aborted, ms: Date.now() - started };
}

const outcomes = async (id: string) =>
  (await t.store.readAudit({ session: id })).filter((e) => e.type.startsWith('action.'));

describe('tenant API slow or down', () => {
  it('no answer: 504 IMP_TIMEOUT after proxy.timeout, audited as action.failed (timeout)', async () => {
    const { token, id } = await openSession('slowpoke');
    const answer = await proxied(token, id, '/v1/users');
    expect(answer.status, answer.text).toBe(504);
    expect(JSON.parse(answer.text).error).toMatchObject({
      code: 'IMP_TIMEOUT',
      message: 'The tenant API did not answer within 1s.',
    });
    expect(answer.ms).toBeGreaterThanOrEqual(900);
    expect(answer.ms).toBeLessThan(3000);
    const events = await outcomes(id);
    expect(events.map((e) => e.type)).toEqual(['action.requested', 'action.failed']);
    expect(events[1]!.data).toMatchObject({ error: 'timeout', path: '/v1/users' });
  });

  it('answer starts, then stalls: the stream is cut after proxy.timeout and audited as action.failed', async () => {
    const { token, id } = await openSession('slowpoke');
    const answer = await proxied(token, id, '/stall-body');
    expect(answer.status).toBe(200); // the status line had already been relayed
    expect(answer.aborted || !answer.text.endsWith('complete')).toBe(true);
    expect(answer.ms).toBeLessThan(5000);
    await expect
      .poll(async () => (await outcomes(id)).map((e) => e.type))
      .toEqual(['action.requested', 'action.failed']);
    expect((await outcomes(id))[1]!.data).toMatchObject({ error: 'timeout', status: 200 });
  });

  it('a small answer of declared length stalls: 504 after proxy.timeout (nothing was relayed yet), audited as action.failed', async () => {
    const { token, id } = await openSession('slowpoke');
    const answer = await proxied(token, id, '/stall-sized');
    expect(answer.status, answer.text).toBe(504);
    expect(JSON.parse(answer.text).error).toMatchObject({ code: 'IMP_TIMEOUT' });
    expect(answer.text).not.toContain('first chunk');
    expect(answer.ms).toBeLessThan(5000);
    const events = await outcomes(id);
    expect(events.map((e) => e.type)).toEqual(['action.requested', 'action.failed']);
    expect(events[1]!.data).toMatchObject({ error: 'timeout', status: 200, bytes: 0 });
  });

  it('down: 502 IMP_UPSTREAM at once, audited as action.failed (unreachable)', async () => {
    const { token, id } = await openSession('gone');
    const answer = await proxied(token, id, '/v1/users');
    expect(answer.status, answer.text).toBe(502);
    expect(JSON.parse(answer.text).error).toMatchObject({
      code: 'IMP_UPSTREAM',
      message: 'The tenant API cannot be reached.',
    });
    expect(answer.ms).toBeLessThan(1000);
    const events = await outcomes(id);
    expect(events.map((e) => e.type)).toEqual(['action.requested', 'action.failed']);
    expect(events[1]!.data).toMatchObject({ error: 'unreachable' });
  });

  it('imp api says what happened and exits non-zero', async () => {
    const slowSession = await openSession('slowpoke');
    const { env } = makeUserEnv({ IMP_BROKER_URL: t.broker.url });
    await storeCliLogin(env, t.broker.url, slowSession.token);
    const timedOut = await runImp(['api', 'GET', '/v1/users', '--session', slowSession.id], env);
    expect(timedOut.stderr).toContain('error: The tenant API did not answer within 1s.');
    expect(timedOut.code).toBe(1);

    const goneSession = await openSession('gone');
    await storeCliLogin(env, t.broker.url, goneSession.token);
    const down = await runImp(['api', 'GET', '/v1/users', '--session', goneSession.id, '--json'], env);
    expect(down.stderr).toContain('error: The tenant API cannot be reached.');
    expect(down.code).toBe(1);
  });
});
