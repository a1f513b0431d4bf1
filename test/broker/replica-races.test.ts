/**
 * Check-then-write rules across two brokers on one PostgreSQL database. No lock is shared by every
 * write any more (appends are queue INSERTs; a sequencer orders them), so each rule holds by a lock
 * of its own — the person's key for session requests, the ID token's for logins, the session's for
 * recording chunks — or by a
 * conditional UPDATE (a break-glass confirmation). Each test sends two attempts at once, one to each
 * broker, and exactly one wins; the loser is refused as the rule says, never a 500.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Broker } from '../../src/broker/server.js';
import { startBroker } from '../../src/broker/start.js';
import { eventLine, headerLine } from '../../src/core/recording/asciicast.js';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { systemClock } from '../../src/runtime/clock.js';
import { POSTGRES, requireComponents } from '../helpers/components.js';
import { exchange, idTokenSigner } from '../helpers/id-tokens.js';
import { type PgCluster, startPostgres, type TestDatabase } from '../helpers/postgres.js';
import { replicaPolicyYaml, startUpstream } from '../helpers/replicas.js';

const havePostgres = requireComponents(POSTGRES);
let cluster: PgCluster;
let db: TestDatabase;
let idp: DevIdp;
let upstream: Awaited<ReturnType<typeof startUpstream>>;
let sign: Awaited<ReturnType<typeof idTokenSigner>>;
const brokers: Broker[] = [];
const PUBLIC_URL = 'https://imp.races.test';
const MACHINE = 'repo:org/runbooks:ref:refs/heads/main';
/** A workload issuer (discovery and JWKS) for machine sessions. */
let workload: { server: Server; url: string; key: CryptoKey };
const urls: string[] = [];

beforeAll(async () => {
  if (!havePostgres) return;
  cluster = await startPostgres();
  db = await cluster.createDatabase({ migrated: true });
  idp = await startDevIdp();
  upstream = await startUpstream();
  sign = await idTokenSigner(idp);
  const pair = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(req.url === '/jwks' ? { keys: [jwk] } : { issuer: url, jwks_uri: `${url}/jwks` }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  workload = { server, url, key: pair.privateKey as CryptoKey };
  const policy =
    `${replicaPolicyYaml(idp.issuer, upstream.url)}break_glass: { confirm_window: 10m, max_ttl: 30m }
recording: { default: off, rules: [{ environments: [prod], mode: required }] }
machines:
  - { name: ci-diag, issuer: ${workload.url}, subject: '${MACHINE}', tenants: [globex], allow: ['GET /v1/users'], ticket_required: false }\n`.replace(
      'roles:\n',
      "roles:\n  - { name: oncall, groups: [sre-oncall], tenants: ['*'], environments: ['*'], scopes: [read], max_ttl: 1h, break_glass: true, break_glass_confirm: true }\n",
    );
  brokers.push(
    ...(await Promise.all(
      ['a', 'b'].map(() =>
        startBroker({
          policy: { text: policy, name: 'race test policy' },
          stateDir: '/nonexistent/unused-with-postgres',
          port: 0,
          publicUrl: PUBLIC_URL,
          clock: systemClock,
          log: () => {},
          storeUrl: db.brokerUrl,
        }),
      ),
    )),
  );
  for (const broker of brokers) {
    const address = broker.app.server.address() as { port: number };
    urls.push(`http://127.0.0.1:${address.port}`);
  }
}, 60_000);

afterAll(async () => {
  await Promise.all(brokers.map((b) => b.close().catch(() => {})));
  await upstream?.close();
  workload?.server.close();
  await idp?.close();
  await cluster?.stop();
});

async function post(
  url: string,
  path: string,
  token: string | null,
  body: unknown = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** The same request at both brokers at once; statuses in broker order. */
async function race(
  path: string,
  tokens: [string | null, string | null],
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }[]> {
  return Promise.all(urls.map((url, i) => post(url, path, tokens[i]!, body)));
}

async function count(sql: string, values: unknown[]): Promise<number> {
  return (await cluster.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${sql}`, values, db.name))
    .rows[0]!.n;
}

/**
 * The loser's refusal is audited naming its rule, whether the handler's check caught it or the
 * re-check inside the insert's transaction did (the request raced the other past the first check).
 */
async function expectRefusalAudited(sub: string): Promise<void> {
  await vi.waitFor(async () => {
    const refused = (await brokers[0]!.deps.store.readAudit({ type: 'session.refused' })).filter(
      (event) => event.actor?.sub === sub,
    );
    expect(refused.map((event) => event.data.rule)).toEqual(['session.one_active']);
  });
}

const statuses = (answers: { status: number }[]) => answers.map((a) => a.status).sort();

describe.runIf(havePostgres)('check-then-write rules hold across two brokers', () => {
  it('one pending request per person and tenant: of two at once, one waits for approval, one is refused', async () => {
    const token = await exchange(urls[0]!, await sign({ user: 'race-pending', groups: ['support'] }));
    const answers = await race('/v1/sessions', [token, token], {
      tenant: 'acme',
      scope: 'write',
      ticket: 'RACE-1',
      reason: 'Two requests racing on two brokers',
    });
    expect(statuses(answers), JSON.stringify(answers)).toEqual([202, 409]);
    expect(
      await count("sessions WHERE requester_sub = $1 AND state = 'pending'", ['user-race-pending']),
    ).toBe(1);
    await expectRefusalAudited('user-race-pending');
  });

  it('one live session per person and tenant: of two opens at once, one opens, one is refused', async () => {
    const token = await exchange(urls[0]!, await sign({ user: 'race-open', groups: ['support'] }));
    const answers = await race('/v1/sessions', [token, token], {
      tenant: 'globex',
      scope: 'read',
      ticket: 'RACE-2',
      reason: 'Two opens racing on two brokers',
    });
    expect(statuses(answers), JSON.stringify(answers)).toEqual([201, 409]);
    expect(await count("sessions WHERE requester_sub = $1 AND state = 'active'", ['user-race-open'])).toBe(1);
    await expectRefusalAudited('user-race-open');
  });

  it('one login per ID token: the same token at both brokers at once buys one login, the replay is refused and audited', async () => {
    const idToken = await sign({ user: 'race-login', groups: ['support'] });
    const answers = await race('/v1/login', [null, null], { id_token: idToken });
    expect(statuses(answers), JSON.stringify(answers)).toEqual([200, 401]);
    expect(await count('logins WHERE sub = $1', ['user-race-login'])).toBe(1);
    await brokers[0]!.deps.store.settle();
    const refused = await brokers[0]!.deps.store.readAudit({
      type: 'auth.login_refused',
      actor: 'user-race-login',
    });
    expect(refused.map((e) => e.data.reason)).toEqual(['replayed_id_token']);
  });

  it('one confirmation per break-glass request: two confirmers at once, one opens the session, one is refused', async () => {
    const requester = await exchange(urls[0]!, await sign({ user: 'race-bg', groups: ['sre-oncall'] }));
    const asked = await post(urls[0]!, '/v1/break-glass', requester, {
      tenant: 'globex',
      environment: 'prod',
      incident: 'INC-77',
      reason: 'Payments queue is stuck; requeue the failed jobs',
      ttl: 600,
    });
    expect(asked.status, JSON.stringify(asked.body)).toBe(202);
    const id = (asked.body.request as { id: string }).id;
    const confirmers = await Promise.all(
      ['race-confirm-1', 'race-confirm-2'].map(async (user, i) =>
        exchange(urls[i]!, await sign({ user, groups: ['sre-oncall'] })),
      ),
    );
    const answers = await race(`/v1/break-glass/${id}/confirm`, [confirmers[0]!, confirmers[1]!], {});
    expect(statuses(answers), JSON.stringify(answers)).toEqual([200, 409]);
    await brokers[1]!.deps.store.settle();
    const confirmed = await brokers[1]!.deps.store.readAudit({ session: id, type: 'breakglass.confirmed' });
    expect(confirmed).toHaveLength(1);
  });

  it('one stored chunk per recording position: the same chunk at both brokers at once is stored once, the other is a duplicate', async () => {
    const token = await exchange(urls[0]!, await sign({ user: 'race-recorder', groups: ['support'] }));
    const opened = await post(urls[0]!, '/v1/sessions', token, {
      tenant: 'initech',
      scope: 'read',
      ticket: 'RACE-5',
      reason: 'A recorded session whose uploads race',
    });
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    const id = (opened.body.session as { id: string }).id;
    const chunk = headerLine({ version: 2, width: 80, height: 24 }) + eventLine(0.1, 'o', 'hello\r\n');
    const answers = await race(`/v1/sessions/${id}/recording`, [token, token], { seq: 0, data: chunk });
    expect(statuses(answers), JSON.stringify(answers)).toEqual([200, 201]);
    expect(await count('recording_chunks WHERE session = $1', [id])).toBe(1);
    await brokers[0]!.deps.store.settle();
    expect(await brokers[0]!.deps.store.readAudit({ session: id, type: 'recording.chunk' })).toHaveLength(1);
  });

  it('one session per workload token: the same token at both brokers at once opens one machine session', async () => {
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' })
      .setIssuer(workload.url)
      .setSubject(MACHINE)
      .setAudience(PUBLIC_URL)
      .setIssuedAt()
      .setExpirationTime('5m')
      .setJti(randomUUID())
      .sign(workload.key);
    const answers = await Promise.all(
      urls.map(async (url) => {
        const response = await fetch(`${url}/v1/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
            assertion: token,
            tenant: 'globex',
            reason: 'Nightly queue diagnostics',
          }),
        });
        return { status: response.status, body: await response.text() };
      }),
    );
    expect(
      answers.filter((a) => a.status === 200),
      JSON.stringify(answers),
    ).toHaveLength(1);
    expect(answers.find((a) => a.status !== 200)!.status, JSON.stringify(answers)).toBeLessThan(500);
    expect(await count("sessions WHERE requester_sub = $1 AND mode = 'standard'", [MACHINE])).toBe(1);
  });
});
