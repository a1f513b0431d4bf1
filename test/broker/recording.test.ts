/**
 * Recording upload and replay on the broker: chunks go in order, once, within the size bound, from
 * the session's owner only; each stored chunk's SHA-256 is in the audit log; replay is for the
 * owner and the audit/review roles and is itself audited. Every refusal names its rule and is audited.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkHash, eventLine, headerLine } from '../../src/core/recording/asciicast.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';

let t: TestBroker;
let tenant: Server;
beforeAll(async () => {
  // A tenant API that answers every call, so a call the gate lets through is seen to arrive.
  tenant = createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'),
  );
  await new Promise<void>((resolve) => tenant.listen(0, '127.0.0.1', resolve));
  const { port } = tenant.address() as AddressInfo;
  t = await startTestBroker({ tenantApi: `http://127.0.0.1:${port}` });
});
afterAll(async () => {
  await t?.close();
  await new Promise((resolve) => tenant?.close(resolve));
});

type ErrorBody = { error: { code: string; message: string; details?: { rule?: string; expected?: number } } };
type Opened = { session: { id: string; recording: { mode: string; max_chunk_bytes: number } } };

async function open(
  user: string,
  tenant: string,
  environment: string,
): Promise<{ id: string; token: string; mode: string }> {
  t.clock.advance(1100);
  const token = await t.loginAs(user);
  const answer = await t.call<Opened>('POST', '/v1/sessions', token, {
    tenant,
    environment,
    scope: 'read',
    ticket: 'SUP-17',
    reason: 'Recording tests on the broker',
    ttl: 600,
  });
  expect(answer.status, JSON.stringify(answer.body)).toBe(201);
  return { id: answer.body.session.id, token, mode: answer.body.session.recording.mode };
}

const first = headerLine({ version: 2, width: 80, height: 24 }) + eventLine(0.1, 'o', 'hello\r\n');
const second = eventLine(0.5, 'o', 'world\r\n') + eventLine(0.6, 'r', '100x30');

describe('recording upload', () => {
  it('the dev policy records prod (required) and not staging (off); session.started says so', async () => {
    const prod = await open('alice', 'globex', 'prod');
    expect(prod.mode).toBe('required');
    const started = (await t.store.readAudit({ type: 'session.started', session: prod.id }))[0];
    expect(started?.data).toMatchObject({ recorded: true, recording: 'required', supervised_by: [] });
    const staging = await open('alice', 'initech', 'staging');
    expect(staging.mode).toBe('off');
    const up = await t.call<ErrorBody>('POST', `/v1/sessions/${staging.id}/recording`, staging.token, {
      seq: 0,
      data: first,
    });
    expect(up.status).toBe(400);
    expect(up.body.error.details?.rule).toBe('recording.off');
  });

  it('stores chunks in order, idempotently, each hash in the audit log; refuses gaps, rewrites and oversize', async () => {
    const { id, token } = await open('dave', 'acme', 'prod');
    const post = (seq: number, data: string, who = token) =>
      t.call<ErrorBody & { stored: boolean; next: number }>('POST', `/v1/sessions/${id}/recording`, who, {
        seq,
        data,
      });

    const gap = await post(1, second);
    expect(gap.status).toBe(409);
    expect(gap.body.error.details).toMatchObject({ rule: 'recording.order', expected: 0 });

    expect((await post(0, first)).status).toBe(201);
    const again = await post(0, first);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ stored: false, next: 1 });
    const rewrite = await post(
      0,
      headerLine({ version: 2, width: 80, height: 24 }) + eventLine(0.1, 'o', 'forged\r\n'),
    );
    expect(rewrite.status).toBe(409);
    expect(rewrite.body.error.details?.rule).toBe('recording.immutable');
    expect((await post(1, second)).status).toBe(201);

    const big = eventLine(1, 'o', 'x'.repeat(40 * 1024));
    const oversized = await post(2, big);
    expect(oversized.status).toBe(400);
    expect(oversized.body.error.details?.rule).toBe('recording.chunk_size');
    const notCast = await post(2, 'rm -rf /\n');
    expect(notCast.status).toBe(400);
    expect(notCast.body.error.details?.rule).toBe('recording.format');

    const chunks = await t.store.readAudit({ type: 'recording.chunk', session: id });
    expect(chunks.map((e) => e.data)).toEqual([
      expect.objectContaining({ chunk: 0, sha256: chunkHash(first) }),
      expect.objectContaining({ chunk: 1, sha256: chunkHash(second) }),
    ]);
    const refused = await t.store.readAudit({ type: 'recording.refused', session: id });
    expect(refused.map((e) => e.data.rule)).toEqual([
      'recording.order',
      'recording.immutable',
      'recording.chunk_size',
      'recording.format',
    ]);

    // Someone else's session: refused by recording.owner, audited with the intruder as actor.
    t.clock.advance(1100);
    const alice = await t.loginAs('alice');
    const intruder = await post(2, eventLine(2, 'o', 'injected'), alice);
    expect(intruder.status).toBe(403);
    expect(intruder.body.error.message).toContain('Only the person who opened a session');
    const denied = (await t.store.readAudit({ type: 'access.denied', session: id })).at(-1);
    expect(denied).toMatchObject({ actor: { sub: 'user-alice' }, data: { rule: 'session.owner' } });
    expect(await t.store.readAudit({ type: 'recording.chunk', session: id })).toHaveLength(2);
  });

  it('replays to the owner and the audit role, audited; refuses others by role.replay', async () => {
    const { id, token } = await open('carol', 'initech', 'prod');
    await t.call('POST', `/v1/sessions/${id}/recording`, token, { seq: 0, data: first });
    type Rec = { chunks: { seq: number; data: string; sha256: string }[] };
    const own = await t.call<Rec>('GET', `/v1/sessions/${id}/recording`, token);
    expect(own.status).toBe(200);
    expect(own.body.chunks.map((c) => c.data).join('')).toBe(first);
    const auditor = await t.loginAs('erin');
    const audited = await t.call<Rec>('GET', `/v1/sessions/${id}/recording?purpose=export`, auditor);
    expect(audited.status).toBe(200);
    const replays = await t.store.readAudit({ type: 'recording.replayed', session: id });
    expect(replays.map((e) => [e.actor?.sub, e.data.purpose])).toEqual([
      ['user-carol', 'replay'],
      ['user-erin', 'export'],
    ]);
    const bob = await t.loginAs('bob');
    const refused = await t.call<ErrorBody>('GET', `/v1/sessions/${id}/recording`, bob);
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toContain('role.replay');
    const denied = (await t.store.readAudit({ type: 'access.denied', session: id })).at(-1);
    expect(denied).toMatchObject({ actor: { sub: 'user-bob' }, data: { rule: 'role.replay' } });
  });
});

describe('the proxy waits for a required recording', () => {
  it('refuses calls by rule recording.not_started (audited) until chunk 0 is stored, then lets them through', async () => {
    const { id, token, mode } = await open('carol', 'globex', 'prod');
    expect(mode).toBe('required');
    // A modified CLI that never records: every call is refused, and each refusal is in the log.
    for (const path of ['/v1/users', '/v1/users/u-1']) {
      const refused = await t.call<ErrorBody>('GET', `/v1/sessions/${id}/proxy${path}`, token);
      expect(refused.status).toBe(403);
      expect(refused.body.error.details?.rule).toBe('recording.not_started');
      expect(refused.body.error.message).toContain('its recording has not started');
    }
    const denied = await t.store.readAudit({ type: 'action.denied', session: id });
    expect(denied.map((e) => e.data)).toEqual([
      expect.objectContaining({ rule: 'recording.not_started', path: '/v1/users' }),
      expect.objectContaining({ rule: 'recording.not_started', path: '/v1/users/u-1' }),
    ]);
    expect(await t.store.readAudit({ type: 'action.requested', session: id })).toHaveLength(0);

    // A malformed chunk 0 is refused and does not open the gate.
    const bad = await t.call<ErrorBody>('POST', `/v1/sessions/${id}/recording`, token, {
      seq: 0,
      data: second,
    });
    expect(bad.body.error.details?.rule).toBe('recording.format');
    expect((await t.call('GET', `/v1/sessions/${id}/proxy/v1/users`, token)).status).toBe(403);

    const up = await t.call('POST', `/v1/sessions/${id}/recording`, token, { seq: 0, data: first });
    expect(up.status).toBe(201);
    const allowed = await t.call<{ ok: boolean }>('GET', `/v1/sessions/${id}/proxy/v1/users`, token);
    expect(allowed.status).toBe(200);
    expect(allowed.body).toEqual({ ok: true });
  });

  it('does not gate a session whose recording is off', async () => {
    const { id, token, mode } = await open('bob', 'initech', 'staging');
    expect(mode).toBe('off');
    expect((await t.call('GET', `/v1/sessions/${id}/proxy/v1/users`, token)).status).toBe(200);
  });

  it('someone else cannot open the gate by uploading chunk 0 to the session', async () => {
    const { id, token } = await open('bob', 'acme', 'prod');
    const other = await t.loginAs('alice');
    const up = await t.call<ErrorBody>('POST', `/v1/sessions/${id}/recording`, other, {
      seq: 0,
      data: first,
    });
    expect(up.status).toBe(403);
    expect(up.body.error.details?.rule).toBe('session.owner');
    expect(
      (await t.call<ErrorBody>('GET', `/v1/sessions/${id}/proxy/v1/users`, token)).body.error.details?.rule,
    ).toBe('recording.not_started');
  });
});
