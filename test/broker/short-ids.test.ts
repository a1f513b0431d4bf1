/**
 * Short ids on the broker: a route's id may be any unambiguous prefix (≥ 4 characters), resolved
 * only among what the caller may act on through that route, so a prefix never probes someone else's
 * ids; ambiguity lists the caller's own candidates; GET /v1/requests?kind=break_glass feeds the picker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../src/store/types.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';

let t: TestBroker;
let template: SessionRecord;
const id = (head: string) => `${head}-0000-4000-8000-000000000000`;
type ErrorBody = { error: { code: string; message: string; details?: { candidates?: { id: string }[] } } };

beforeAll(async () => {
  t = await startTestBroker();
  // One real request gives a well-formed row; the others copy it under chosen ids and requesters.
  const alice = await t.loginAs('alice');
  const asked = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', alice, {
    tenant: 'acme',
    environment: 'prod',
    scope: 'write',
    ticket: 'SUP-7',
    reason: 'Customer invoice export is broken',
    ttl: 600,
  });
  expect(asked.status).toBe(202);
  template = (await t.store.getSession(asked.body.session.id))!;
  const bob = { iss: template.requester.iss, sub: 'user-bob', email: 'bob@example.test', roles: ['lead'] };
  await t.store.transaction(async (tx) => {
    for (const [head, requester] of [
      ['abcd1111', template.requester],
      ['abcd2222', template.requester],
      ['abce3333', template.requester],
      // bob's own request shares the prefix: bob may not approve it, so it is never his candidate.
      ['abcd9999', bob],
      ['abcf4444', template.requester],
    ] as const)
      await tx.insertSession({ ...template, id: id(head), requester: { ...requester } });
  });
});
afterAll(async () => {
  await t?.close();
});

describe('approving and denying by a prefix', () => {
  it('a unique prefix approves that request, answered with its whole id', async () => {
    const bob = await t.loginAs('bob');
    const answer = await t.call<{ session: { id: string; state: string } }>(
      'POST',
      '/v1/requests/abce/approve',
      bob,
      {},
    );
    expect(answer.status).toBe(200);
    expect(answer.body.session).toMatchObject({ id: id('abce3333'), state: 'active' });
    expect((await t.store.readAudit({ type: 'session.approved' })).at(-1)?.session).toBe(id('abce3333'));
  });

  it('an ambiguous prefix is refused listing the candidates — only those the caller may approve', async () => {
    const bob = await t.loginAs('bob');
    const answer = await t.call<ErrorBody>('POST', '/v1/requests/abcd/deny', bob, { reason: 'not now' });
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe('IMP_INVALID_INPUT');
    expect(answer.body.error.message).toMatch(/^abcd matches 2 requests you may deny: abcd1111 \(alice@/);
    expect(answer.body.error.message).toContain('Type more of the id.');
    expect(answer.body.error.message).not.toContain('abcd9999');
    expect(answer.body.error.details?.candidates?.map((c) => c.id)).toEqual([id('abcd1111'), id('abcd2222')]);
    // Nothing was decided.
    expect((await t.store.getSession(id('abcd1111')))?.state).toBe('pending');
  });

  it("a prefix of one's own request finds nothing, exactly like a prefix that matches no id at all", async () => {
    const bob = await t.loginAs('bob');
    const own = await t.call<ErrorBody>('POST', '/v1/requests/abcd9/approve', bob, {});
    const none = await t.call<ErrorBody>('POST', '/v1/requests/abcd8/approve', bob, {});
    expect(own.status).toBe(404);
    expect(none.status).toBe(404);
    expect(own.body.error.message).toBe('No request you may approve has an id starting with abcd9.');
    expect(none.body.error.message).toBe('No request you may approve has an id starting with abcd8.');
    expect((await t.store.getSession(id('abcd9999')))?.state).toBe('pending');
  });

  it('someone who may not approve learns nothing about which ids exist', async () => {
    const alice = await t.loginAs('alice');
    const existing = await t.call<ErrorBody>('POST', '/v1/requests/abcf/approve', alice, {});
    const missing = await t.call<ErrorBody>('POST', '/v1/requests/ffff/approve', alice, {});
    expect([existing.status, missing.status]).toEqual([404, 404]);
    expect(existing.body.error.message.replace('abcf', 'X')).toBe(
      missing.body.error.message.replace('ffff', 'X'),
    );
  });

  it('fewer than 4 characters is not a prefix: no lookup', async () => {
    const bob = await t.loginAs('bob');
    const answer = await t.call<ErrorBody>('POST', '/v1/requests/abc/approve', bob, {});
    expect(answer.status).toBe(404);
    expect(answer.body.error.message).toBe('No request abc.');
  });
});

describe('sessions by a prefix', () => {
  it('the owner reads and ends their session by a prefix; another person gets 404', async () => {
    const alice = await t.loginAs('alice');
    const read = await t.call<{ session: { id: string } }>('GET', '/v1/sessions/abce3', alice);
    expect(read.status).toBe(200);
    expect(read.body.session.id).toBe(id('abce3333'));
    const mallory = await t.loginAs('mallory');
    const probe = await t.call<ErrorBody>('GET', '/v1/sessions/abce3', mallory);
    expect(probe.status).toBe(404);
    // Its recording too (imp replay 7f3a): the owner's prefix finds it, another person's does not.
    const replay = await t.call<{ session: { id: string } }>('GET', '/v1/sessions/abce3/recording', alice);
    expect(replay.status).toBe(200);
    expect(replay.body.session.id).toBe(id('abce3333'));
    const other = await t.call<ErrorBody>('GET', '/v1/sessions/abce3/recording', mallory);
    expect(other.status).toBe(404);
  });

  it('security revokes by a prefix among live sessions; ambiguity lists them', async () => {
    const erin = await t.loginAs('erin');
    const ambiguous = await t.call<ErrorBody>('POST', '/v1/sessions/abcd/revoke', erin, { reason: 'test' });
    expect(ambiguous.status).toBe(400);
    expect(ambiguous.body.error.details?.candidates?.map((c) => c.id)).toEqual([
      id('abcd1111'),
      id('abcd2222'),
      id('abcd9999'),
    ]);
    const revoked = await t.call<{ session: { id: string; state: string } }>(
      'POST',
      '/v1/sessions/abce33/revoke',
      erin,
      { reason: 'test' },
    );
    expect(revoked.status).toBe(200);
    expect(revoked.body.session).toMatchObject({ id: id('abce3333'), state: 'revoked' });
    // Without the revoke role, a prefix finds nothing (and is not a refusal to probe with).
    const bob = await t.loginAs('bob');
    const refused = await t.call<ErrorBody>('POST', '/v1/sessions/abcf/revoke', bob, { reason: 'x' });
    expect(refused.status).toBe(404);
  });
});

describe('break-glass by a prefix, and the confirmer list', () => {
  it('the confirmer lists and reads it by prefix; the requester and approvers do not see it', async () => {
    const carol = await t.loginAs('carol');
    const asked = await t.call<{ request: { id: string } }>('POST', '/v1/break-glass', carol, {
      tenant: 'globex',
      environment: 'prod',
      incident: 'INC-9',
      reason: 'Checkout is down for everyone',
    });
    expect(asked.status).toBe(202);
    const requestId = asked.body.request.id;
    const dave = await t.loginAs('dave');
    const listed = await t.call<{ requests: { id: string }[] }>(
      'GET',
      '/v1/requests?state=pending&kind=break_glass',
      dave,
    );
    expect(listed.body.requests.map((r) => r.id)).toEqual([requestId]);
    const read = await t.call<{ request: { id: string } }>(
      'GET',
      `/v1/break-glass/${requestId.slice(0, 6)}`,
      dave,
    );
    expect(read.status).toBe(200);
    expect(read.body.request.id).toBe(requestId);
    const own = await t.call<ErrorBody>('GET', `/v1/break-glass/${requestId.slice(0, 6)}`, carol);
    expect(own.status).toBe(404);
    const bob = await t.loginAs('bob');
    const approverList = await t.call<{ requests: unknown[] }>('GET', '/v1/requests?kind=break_glass', bob);
    expect(approverList.body.requests).toEqual([]);
    // And the standard listing never offers a break-glass request to approvers.
    const standard = await t.call<{ requests: { id: string }[] }>('GET', '/v1/requests', bob);
    expect(standard.body.requests.map((r) => r.id)).not.toContain(requestId);
  });

  it('an unknown kind is refused', async () => {
    const dave = await t.loginAs('dave');
    const answer = await t.call<ErrorBody>('GET', '/v1/requests?kind=everything', dave);
    expect(answer.status).toBe(400);
  });
});
