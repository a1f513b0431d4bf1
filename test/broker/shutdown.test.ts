/**
 * Shutting the broker down while a client holds a keep-alive connection with a request in flight
 * (a browser tab, `imp start`'s proxied calls): the request finishes, and close() returns as soon as
 * it has — not after the server's keep-alive timeout (72 s), which is what it did before.
 */
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventLine, headerLine } from '../../src/core/recording/asciicast.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';

let t: TestBroker;
let tenant: Server;
let releaseUpstream: () => void = () => {};
let upstreamReached: () => void = () => {};
const reached = new Promise<void>((resolve) => {
  upstreamReached = resolve;
});

beforeAll(async () => {
  // A tenant API that holds /v1/users?slow=1 until the test lets it answer.
  tenant = createServer((req, res) => {
    const answer = () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    if (req.url !== '/v1/users?slow=1') return answer();
    releaseUpstream = answer;
    upstreamReached();
  });
  await new Promise<void>((resolve) => tenant.listen(0, '127.0.0.1', resolve));
  t = await startTestBroker({ tenantApi: `http://127.0.0.1:${(tenant.address() as AddressInfo).port}` });
});
afterAll(async () => {
  tenant?.closeAllConnections();
  await new Promise((resolve) => tenant?.close(resolve));
});

it('close() waits for a request in flight, then returns without waiting out its keep-alive connection', async () => {
  const token = await t.loginAs('dave');
  const opened = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', token, {
    tenant: 'globex',
    environment: 'prod',
    scope: 'read',
    ticket: 'SUP-31',
    reason: 'Shutdown with a call in flight',
    ttl: 600,
  });
  expect(opened.status, JSON.stringify(opened.body)).toBe(201);
  // The dev policy records production sessions: the recording starts before any proxied call.
  const cast = headerLine({ version: 2, width: 80, height: 24 }) + eventLine(0.1, 'o', '$ \r\n');
  const recording = `/v1/sessions/${opened.body.session.id}/recording`;
  expect((await t.call('POST', recording, token, { seq: 0, data: cast })).status).toBe(201);

  const agent = new Agent({ keepAlive: true });
  const url = new URL(`${t.broker.url}/v1/sessions/${opened.body.session.id}/proxy/v1/users?slow=1`);
  const answered = new Promise<{ status: number; body: string; connection: string | undefined }>(
    (resolve, reject) => {
      const req = request(url, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }),
        );
      });
      req.on('error', reject);
      req.end();
    },
  );
  await reached;

  let closed = false;
  const closing = t.close().then(() => {
    closed = true;
  });
  // The broker is closing: the call in flight is not cut off.
  releaseUpstream();
  const answer = await answered;
  expect(answer).toMatchObject({ status: 200, body: '{"ok":true}' });
  // Well under the 72 s keep-alive timeout that used to hold close() (and the test's own timeout).
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    closing,
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 15_000);
    }),
  ]);
  clearTimeout(timer);
  agent.destroy();
  expect(closed).toBe(true);
}, 30_000);
