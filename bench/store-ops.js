// What the store benchmarks (store.js, pg-profile.js) drive: an audit append, and what the broker's
// POST /v1/sessions does to the store for a session that opens at once (src/broker/handlers/sessions.ts,
// src/broker/sessions.ts insertNewSession), in the same order and with the same statements.
import { randomUUID } from 'node:crypto';

export const NOW = Date.UTC(2026, 10, 24, 12, 0, 0);
export const ACTOR = {
  iss: 'https://idp.bench.invalid',
  sub: 'user-alice',
  email: 'alice@example.com',
  roles: ['support'],
};
// About the size of a proxied call's action.requested event.
export const DRAFT = {
  type: 'action.requested',
  actor: ACTOR,
  tenant: 'acme',
  environment: 'prod',
  session: '7d1c1c2e-4a8b-4f57-9a52-0c1f7f6b9a11',
  ticket: 'SUP-1234',
  reason: 'Customer cannot see their invoices since the migration',
  data: {
    action_id: 'f0e1d2c3-b4a5-4968-8776-655443322110',
    method: 'GET',
    path: '/v1/invoices?customer=42',
    kind: 'read',
    request_id: '0b9c8d7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e',
    scope: 'read',
    mode: 'standard',
  },
};
export const PAYLOAD = JSON.stringify({
  ...DRAFT,
  seq: 1,
  id: randomUUID(),
  ts: new Date(NOW).toISOString(),
  prev: '0'.repeat(64),
  hash: '0'.repeat(64),
});

/** Runs `callers` loops of `op(callerIndex, n)` for `seconds`; returns operations per second. */
export async function rate(seconds, callers, op) {
  const deadline = performance.now() + seconds * 1000;
  let done = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async (_, caller) => {
      for (let n = 0; performance.now() < deadline; n++) {
        await op(caller, n);
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

/** One audit append in a transaction of its own (a proxied call's action.requested). */
export const append = (store) => () => store.transaction((tx) => tx.appendAudit(DRAFT, NOW));

const requesterOf = (caller) => ({ ...ACTOR, sub: `user-${caller}` });
const loginIdOf = (caller) => `00000000-0000-4000-8000-${String(caller).padStart(12, '0')}`;

/** The login each caller's broker token names (authenticate reads it on every request). */
export async function insertLogins(store, callers) {
  await store.transaction(async (tx) => {
    for (const caller of callers) {
      const requester = requesterOf(caller);
      await tx.insertLogin({
        id: loginIdOf(caller),
        iss: requester.iss,
        sub: requester.sub,
        email: requester.email,
        authTime: Math.floor(NOW / 1000),
        createdAt: NOW,
        expiresAt: NOW + 3_600_000,
        idTokenHash: `hash-${caller}`,
        groups: [],
      });
    }
  });
}

/**
 * What POST /v1/sessions does to the store for a session that opens at once: authenticate (the
 * login), the session.one_active pre-check, the step-up pre-check, then the transaction of
 * insertNewSession (the person's key lock, the same two reads again, the insert) with its two events.
 */
export async function openSession(store, caller, n) {
  const requester = requesterOf(caller);
  const tenant = `t-${n}`;
  await store.getLogin(loginIdOf(caller));
  await store.listSessions({
    requesterIss: requester.iss,
    requesterSub: requester.sub,
    tenant,
    states: ['active', 'pending'],
  });
  await store.lastUsedAuthTime(requester.iss, requester.sub);
  const id = randomUUID();
  const session = {
    id,
    state: 'active',
    mode: 'standard',
    requester,
    tenant,
    environment: 'prod',
    scope: 'read',
    ticket: 'SUP-1',
    reason: 'Customer cannot see their invoices',
    ttl: 1800,
    loginId: loginIdOf(caller),
    authTime: Math.floor(NOW / 1000) + n,
    createdAt: NOW + n,
    requestExpiresAt: null,
    decidedBy: null,
    decidedAt: null,
    decisionComment: null,
    startedAt: NOW + n,
    expiresAt: NOW + n + 1_800_000,
    endedAt: null,
    endedBy: null,
    reviewRequired: false,
    review: null,
  };
  const audit = (type) => ({
    type,
    actor: requester,
    tenant,
    environment: 'prod',
    session: id,
    ticket: 'SUP-1',
    reason: session.reason,
    data: { scope: 'read', mode: 'standard', ttl: 1800 },
  });
  await store.transaction(async (tx) => {
    await tx.lockKey(`person\u0000${requester.iss}\u0000${requester.sub}`);
    // insertNewSession reads both at once (since #16's round-trip work; one after the other before).
    await Promise.all([
      tx.lastUsedAuthTime(requester.iss, requester.sub),
      tx.listSessions({
        requesterIss: requester.iss,
        requesterSub: requester.sub,
        tenant,
        states: ['pending', 'active'],
      }),
    ]);
    await tx.insertSession(session);
    await tx.appendAudit(audit('session.requested'), NOW + n);
    await tx.appendAudit(audit('session.started'), NOW + n);
  });
}
