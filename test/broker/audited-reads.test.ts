/**
 * Reads of sensitive data are audited (issue 15): everyone's sessions, a session's summary, a
 * break-glass request read by its confirmer, and policy explain about a named person. Each event
 * names who read what; an ordinary read of one's own session list writes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';

let t: TestBroker;
let sessionId = '';

beforeAll(async () => {
  t = await startTestBroker({ policyYaml: (issuer) => devPolicyYaml(issuer, 'http://127.0.0.1:9/api') });
  const alice = await t.loginAs('alice');
  const opened = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', alice, {
    tenant: 'globex',
    environment: 'prod',
    scope: 'read',
    ticket: 'SUP-4',
    reason: 'Checking the customer settings',
    ttl: 600,
  });
  expect(opened.status).toBe(201);
  sessionId = opened.body.session.id;
});
afterAll(async () => {
  await t?.close();
});

const head = async () => (await t.store.auditHead())?.seq ?? 0;
const since = async (seq: number) => t.store.readAudit({ fromSeq: seq + 1 });

describe('audited reads', () => {
  it('GET /v1/sessions?all=1 writes sessions.listed; my own list writes nothing', async () => {
    const erin = await t.loginAs('erin');
    let seq = await head();
    expect((await t.call('GET', '/v1/sessions', erin)).status).toBe(200);
    expect(await since(seq)).toEqual([]);
    seq = await head();
    const all = await t.call<{ sessions: unknown[] }>('GET', '/v1/sessions?all=1&state=active', erin);
    expect(all.status).toBe(200);
    const written = await since(seq);
    expect(written.map((e) => e.type)).toEqual(['sessions.listed']);
    expect(written[0]!.actor).toMatchObject({ sub: 'user-erin' });
    expect(written[0]!.data).toMatchObject({
      all: true,
      states: ['active'],
      count: all.body.sessions.length,
    });
  });

  it('a session summary read writes session.summary_read on that session, by its reader', async () => {
    t.clock.advance(1100);
    const erin = await t.loginAs('erin');
    const seq = await head();
    expect((await t.call('GET', `/v1/sessions/${sessionId}/summary`, erin)).status).toBe(200);
    const written = await since(seq);
    expect(written.map((e) => [e.type, e.session, e.actor?.sub])).toEqual([
      ['session.summary_read', sessionId, 'user-erin'],
    ]);
  });

  it('policy explain about a named person writes policy.explained naming them', async () => {
    const erin = await t.loginAs('erin');
    const seq = await head();
    const answer = await t.call(
      'GET',
      '/v1/policy/explain?user=alice%40example.test&tenant=acme&scope=write',
      erin,
    );
    expect(answer.status).toBe(200);
    const written = await since(seq);
    expect(written.map((e) => e.type)).toEqual(['policy.explained']);
    expect(written[0]).toMatchObject({ tenant: 'acme', actor: { sub: 'user-erin' } });
    expect(written[0]!.data).toMatchObject({
      about: 'alice@example.test',
      scope: 'write',
      decision: 'approval',
    });
    // A bare set of groups names nobody: nothing to record.
    const before = await head();
    expect((await t.call('GET', '/v1/policy/explain?groups=support&tenant=acme', erin)).status).toBe(200);
    expect(await since(before)).toEqual([]);
  });

  it('a confirmer reading a break-glass request writes breakglass.read', async () => {
    t.clock.advance(1100);
    const carol = await t.loginAs('carol');
    const asked = await t.call<{ request: { id: string } }>('POST', '/v1/break-glass', carol, {
      tenant: 'globex',
      environment: 'prod',
      incident: 'INC-5',
      reason: 'Payments queue is stuck; requeue the failed jobs',
      ttl: 600,
    });
    expect(asked.status).toBe(202);
    const dave = await t.loginAs('dave');
    const seq = await head();
    expect((await t.call('GET', `/v1/break-glass/${asked.body.request.id}`, dave)).status).toBe(200);
    const written = await since(seq);
    expect(written.map((e) => [e.type, e.session, e.actor?.sub])).toEqual([
      ['breakglass.read', asked.body.request.id, 'user-dave'],
    ]);
  });
});
