/**
 * Load against several broker replicas on one store: a policy, a small upstream tenant API, clients
 * that log in, open a session, call the audited proxy and end the session, each request sent to a
 * replica picked at random (a load balancer without stickiness). Every acknowledgement is recorded
 * so a test can prove afterwards that the audit log holds what the brokers promised, and that the
 * chain is whole.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { checkpointVerifier } from '../../src/auth/checkpoints.js';
import type { AuditEvent } from '../../src/core/audit/event.js';
import { verifyChain } from '../../src/core/audit/verify-chain.js';
import type { DevIdp } from '../../src/dev/idp.js';
import type { Store } from '../../src/store/types.js';
import { idTokenSigner } from './id-tokens.js';

/** The policy for load tests: sessions open without approval; acme needs approval for write. */
export function replicaPolicyYaml(
  issuer: string,
  upstream: string,
  options: { perSession?: boolean } = {},
): string {
  return `identity: { issuer: ${issuer}, client_id: imp-cli, groups_claim: groups }
# Load clients open several sessions a second with one login each; auth_time has second resolution.
reauth: { max_age: 5m, per_session: ${options.perSession ?? false} }
tickets: { pattern: '^[A-Z][A-Z0-9]+-[0-9]+$' }
reason: { min_length: 10 }
sessions: { default_ttl: 30m }
audit: { checkpoint_every: 200, checkpoint_interval: 5s }
# Many simulated people share the loopback address: the per-address limit would be a bottleneck here.
rate_limit: { login: 1000000, public: 1000000 }
roles:
  - { name: support, groups: [support], tenants: ['*'], environments: ['*'], scopes: [read, write], max_ttl: 1h }
  - { name: lead, groups: [support-leads], tenants: ['*'], environments: ['*'], scopes: [read, write], max_ttl: 1h, approve: true }
  - { name: security, groups: [security], audit: true, review: true, revoke: true }
tenants:
  - { id: acme, name: Acme Corp, tier: enterprise, approval_required: [write], upstream: { prod: ${upstream} } }
  - { id: globex, name: Globex, tier: standard, approval_required: [], upstream: { prod: ${upstream} } }
  - { id: initech, name: Initech, tier: standard, approval_required: [write], upstream: { prod: ${upstream} } }
`;
}

/** A tiny tenant API: answers every call with a small JSON body. */
export async function startUpstream(): Promise<{ url: string; calls: () => number; close(): Promise<void> }> {
  let calls = 0;
  const server: Server = createServer((req, res) => {
    calls++;
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ok: true, path: req.url }));
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls: () => calls,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** What the brokers acknowledged. */
export interface LoadResult {
  /** action id → broker that answered 200 through the proxy. */
  actions: Map<string, string>;
  /** session id → broker that answered 201. */
  sessions: Map<string, string>;
  /** Non-2xx answers or transport errors, by broker, with what happened. */
  failures: { broker: string; what: string; at: number }[];
  /** Requests that could not reach a replica that was down and went to another one. */
  rerouted: number;
  /** Successful requests by broker. */
  answered: Map<string, number>;
  seconds: number;
}

/** Options for {@link runLoad}. */
export interface LoadOptions {
  idp: DevIdp;
  /** The replicas requests may go to now (a test removes a killed one). */
  brokers: () => string[];
  clients: number;
  seconds: number;
  /** Proxied calls per session. */
  callsPerSession?: number;
  /**
   * Called once, as soon as `when` holds for what has been acknowledged so far (kill a replica once
   * it has served some load; on a loaded machine that takes longer than on a quiet one). The run
   * then goes on for at least half of `seconds`, so there is load after the action too.
   */
  midway?: { when: (sofar: LoadResult) => boolean; action: () => void | Promise<void> };
  /** A transport error from this broker is expected (it was killed): retry elsewhere, don't count it. */
  isDown?: (broker: string) => boolean;
}

/** Runs the clients until the time is up; each client is one engineer (load-NN, group support). */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const sign = await idTokenSigner(options.idp);
  const result: LoadResult = {
    actions: new Map(),
    sessions: new Map(),
    failures: [],
    rerouted: 0,
    answered: new Map(),
    seconds: options.seconds,
  };
  const started = Date.now();
  let deadline = started + options.seconds * 1000;
  // With a midway action the load goes on until it has run (bounded by its own give-up below): on a
  // loaded machine the condition can take longer than `seconds`, and clients that stopped first would
  // leave it waiting for calls that never come (seen: A served 1 call, the kill fired at give-up).
  let midwayPending = options.midway !== undefined;
  const running = () => midwayPending || Date.now() < deadline;
  const pick = () => {
    const live = options.brokers();
    return live[Math.floor(Math.random() * live.length)]!;
  };
  const count = (broker: string) => result.answered.set(broker, (result.answered.get(broker) ?? 0) + 1);
  // One request to some replica; a refused connection to a replica that is down goes elsewhere.
  const send = async (
    method: string,
    path: string,
    token: string | null,
    body?: unknown,
  ): Promise<{ broker: string; response: Response } | null> => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const broker = pick();
      try {
        const response = await fetch(broker + path, {
          method,
          headers: {
            ...(token ? { authorization: `Bearer ${token}` } : {}),
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
        // Read the whole answer here: a replica killed mid-answer is then a failed request of that
        // replica (below), not an exception out of a later body read.
        const bytes = await response.arrayBuffer();
        const buffered = new Response(response.status === 204 ? null : bytes, {
          status: response.status,
          headers: response.headers,
        });
        return { broker, response: buffered };
      } catch (error) {
        // Refused by a replica that is down: the request never arrived, send it elsewhere. A request
        // that was in flight when it died is a failure (it may or may not have taken effect).
        const cause = (error as { cause?: { code?: string } }).cause;
        if (options.isDown?.(broker) && cause?.code === 'ECONNREFUSED') {
          result.rerouted++;
          continue;
        }
        result.failures.push({
          broker,
          what: `${method} ${path}: ${(error as Error).message} ${cause?.code ?? ''}`,
          at: Date.now() - started,
        });
        return null;
      }
    }
    return null;
  };
  const fail = async (broker: string, what: string, response: Response) => {
    const text = await response.text().catch(() => '');
    result.failures.push({
      broker,
      what: `${what}: ${response.status} ${text.slice(0, 300)}`,
      at: Date.now() - started,
    });
  };

  const client = async (n: number) => {
    const user = `load-${String(n).padStart(2, '0')}`;
    while (running()) {
      const idToken = await sign({ user, groups: ['support'] });
      const login = await send('POST', '/v1/login', null, { id_token: idToken });
      if (!login) continue;
      if (login.response.status !== 200) {
        await fail(login.broker, 'login', login.response);
        continue;
      }
      count(login.broker);
      const { token } = (await login.response.json()) as { token: string };
      const opened = await send('POST', '/v1/sessions', token, {
        tenant: n % 2 ? 'globex' : 'acme',
        environment: 'prod',
        scope: 'read',
        ticket: `LOAD-${n}`,
        reason: 'Load test across broker replicas',
        ttl: 600,
      });
      if (!opened) continue;
      if (opened.response.status === 409) {
        // The previous open reached a replica that died before answering: end that session first.
        const { error } = (await opened.response.json()) as { error: { details?: { session?: string } } };
        const existing = error.details?.session;
        if (existing) {
          const ended = await send('POST', `/v1/sessions/${existing}/end`, token);
          await ended?.response.arrayBuffer();
          continue;
        }
      }
      if (opened.response.status !== 201) {
        await fail(opened.broker, 'open session', opened.response);
        continue;
      }
      count(opened.broker);
      const { session } = (await opened.response.json()) as { session: { id: string } };
      result.sessions.set(session.id, opened.broker);
      for (let call = 0; call < (options.callsPerSession ?? 10) && running(); call++) {
        const proxied = await send('GET', `/v1/sessions/${session.id}/proxy/v1/items/${call}`, token);
        if (!proxied) continue;
        if (proxied.response.status !== 200) {
          await fail(proxied.broker, 'proxy', proxied.response);
          continue;
        }
        await proxied.response.arrayBuffer();
        count(proxied.broker);
        result.actions.set(proxied.response.headers.get('x-imp-action-id')!, proxied.broker);
      }
      // Ending can race a kill; a session left open is fine for these checks.
      for (let attempt = 0; attempt < 3; attempt++) {
        const ended = await send('POST', `/v1/sessions/${session.id}/end`, token);
        if (!ended) continue;
        await ended.response.arrayBuffer();
        if (ended.response.status === 200) count(ended.broker);
        break;
      }
    }
  };

  const midway = options.midway
    ? (async () => {
        const { when, action } = options.midway!;
        // Bounded: if the condition never holds the action still runs, and the test's own
        // assertions say what was missing.
        const giveUp = Date.now() + 60_000;
        while (!when(result) && Date.now() < giveUp) await new Promise((r) => setTimeout(r, 50));
        try {
          await action();
        } finally {
          deadline = Math.max(deadline, Date.now() + (options.seconds * 1000) / 2);
          midwayPending = false;
        }
      })()
    : Promise.resolve();
  await Promise.all([...Array.from({ length: options.clients }, (_, n) => client(n)), midway]);
  return result;
}

/** Reads the whole log of a store, verifies chain + checkpoints with the JWKS, and returns the events. */
export async function verifyStoreChain(
  store: Store,
  jwks: { keys: Record<string, unknown>[] },
): Promise<AuditEvent[]> {
  const events = await store.readAudit();
  const checkpoints = await store.listCheckpoints();
  const verdict = await verifyChain(events, checkpoints, checkpointVerifier(jwks as never));
  expect(verdict.problem).toBeNull();
  expect(verdict.ok).toBe(true);
  expect(checkpoints.length).toBeGreaterThan(0);
  expect(verdict.checkpoints).toBe(checkpoints.length);
  // No gaps: seq runs 1..n.
  expect(events.length).toBe(verdict.lastSeq);
  events.forEach((event, i) => {
    expect(event.seq).toBe(i + 1);
  });
  return events;
}

/** Index of audit events of a type by `data.action_id`. */
export function byActionId(events: AuditEvent[], type: string): Map<string, AuditEvent[]> {
  const index = new Map<string, AuditEvent[]>();
  for (const event of events) {
    if (event.type !== type) continue;
    const id = String((event.data as { action_id?: unknown }).action_id);
    index.set(id, [...(index.get(id) ?? []), event]);
  }
  return index;
}
