/**
 * Two brokers on one PostgreSQL database (in-process, separate ports, separate connection pools):
 * 32 engineers log in, open sessions and call the tenant API through the audited proxy for
 * IMP_REPLICA_LOAD_SECONDS (default 20), every request sent to either broker at random. Afterwards
 * the audit chain verifies against the signed checkpoints and the JWKS, seq has no gaps, every
 * acknowledged proxied call has its action.requested and action.completed, every opened session its
 * session.started — and sessions left to expire are expired (and audited) exactly once although both
 * brokers sweep.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/broker/server.js';
import { startBroker } from '../../src/broker/start.js';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { systemClock } from '../../src/runtime/clock.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { POSTGRES, requireComponents } from '../helpers/components.js';
import { exchange, idTokenSigner } from '../helpers/id-tokens.js';
import { type PgCluster, startPostgres, type TestDatabase } from '../helpers/postgres.js';
import {
  byActionId,
  type LoadResult,
  replicaPolicyYaml,
  runLoad,
  startUpstream,
  verifyStoreChain,
} from '../helpers/replicas.js';

/** Seconds of load; CI keeps the default, a soak run raises it. */
const LOAD_SECONDS = Number(process.env.IMP_REPLICA_LOAD_SECONDS ?? 20);
const CLIENTS = 32;

const havePostgres = requireComponents(POSTGRES);
let cluster: PgCluster;
let db: TestDatabase;
let idp: DevIdp;
let upstream: Awaited<ReturnType<typeof startUpstream>>;
const brokers: (Broker & { url: string })[] = [];
/** Where each broker listens (`url` is the shared public URL, the issuer of every token). */
const urls: string[] = [];
const PUBLIC_URL = 'https://imp.replicas.test';

beforeAll(async () => {
  if (!havePostgres) return;
  cluster = await startPostgres();
  db = await cluster.createDatabase({ migrated: true });
  idp = await startDevIdp();
  upstream = await startUpstream();
  const log = process.env.IMP_TEST_LOG
    ? (level: string, message: string, fields?: Record<string, unknown>) =>
        process.stderr.write(`[broker ${level}] ${message} ${JSON.stringify(fields ?? {})}\n`)
    : () => {};
  // Started together, as a deployment would: they agree on one set of signing keys.
  brokers.push(
    ...(await Promise.all(
      ['a', 'b'].map(() =>
        startBroker({
          policy: { text: replicaPolicyYaml(idp.issuer, upstream.url), name: 'replica test policy' },
          stateDir: '/nonexistent/unused-with-postgres',
          port: 0,
          publicUrl: PUBLIC_URL,
          clock: systemClock,
          log,
          storeUrl: db.brokerUrl,
        }),
      ),
    )),
  );
  for (const broker of brokers) {
    const address = broker.app.server.address() as { port: number };
    urls.push(`http://127.0.0.1:${address.port}`);
  }
});

afterAll(async () => {
  await Promise.all(brokers.map((b) => b.close().catch(() => {})));
  await upstream?.close();
  await idp?.close();
  await cluster?.stop();
});

describe.runIf(havePostgres)('two brokers on one PostgreSQL database', () => {
  it('share signing keys: one JWKS, and a token from one broker works at the other', async () => {
    const [a, b] = urls;
    const jwks = async (url: string) => (await fetch(`${url}/.well-known/jwks.json`)).json();
    expect(await jwks(a!)).toEqual(await jwks(b!));
    const sign = await idTokenSigner(idp);
    const token = await exchange(a!, await sign({ user: 'alice', groups: ['support'] }));
    const whoami = await fetch(`${b!}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } });
    expect(whoami.status).toBe(200);
  });

  it(
    `keeps one verifiable chain and every acknowledged action under ${CLIENTS} clients for ${LOAD_SECONDS}s`,
    async () => {
      const [a, b] = urls;
      // Sessions left to expire during the load: both brokers' sweepers race to end them.
      const sign = await idTokenSigner(idp);
      const expiring: string[] = [];
      for (let i = 0; i < 6; i++) {
        const token = await exchange(a!, await sign({ user: `expiring-${i}`, groups: ['support'] }));
        const response = await fetch(`${urls[i % 2]}/v1/sessions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            tenant: 'globex',
            scope: 'read',
            ticket: 'EXP-1',
            reason: 'Left to expire under load',
            ttl: 1 + (i % 3),
          }),
        });
        expect(response.status).toBe(201);
        expiring.push(((await response.json()) as { session: { id: string } }).session.id);
      }

      const started = Date.now();
      const result: LoadResult = await runLoad({
        idp,
        brokers: () => [a!, b!],
        clients: CLIENTS,
        seconds: LOAD_SECONDS,
      });
      const elapsed = (Date.now() - started) / 1000;
      const jwks = (await (await fetch(`${a!}/.well-known/jwks.json`)).json()) as {
        keys: Record<string, unknown>[];
      };
      // Closing writes the final checkpoints and waits for outcome events still in flight.
      await Promise.all(brokers.splice(0).map((broker) => broker.close()));

      expect(result.failures).toEqual([]);
      // Both replicas carried real load. How much is a throughput figure (npm run bench), not a
      // correctness one: on a loaded 2-core machine a replica answered only 56 requests in 20 s.
      expect(result.answered.get(a!)).toBeGreaterThan(20);
      expect(result.answered.get(b!)).toBeGreaterThan(20);

      const store = await openPostgresStore(db.brokerUrl, { migrate: false });
      try {
        const events = await verifyStoreChain(store, jwks);
        const requested = byActionId(events, 'action.requested');
        const completed = byActionId(events, 'action.completed');
        for (const id of result.actions.keys()) {
          expect(requested.get(id), `action.requested of ${id}`).toHaveLength(1);
          expect(completed.get(id), `action.completed of ${id}`).toHaveLength(1);
        }
        const startedSessions = new Set(
          events.filter((e) => e.type === 'session.started').map((e) => e.session),
        );
        for (const id of result.sessions.keys())
          expect(startedSessions.has(id), `session.started of ${id}`).toBe(true);
        for (const id of expiring) {
          expect(events.filter((e) => e.type === 'session.expired' && e.session === id)).toHaveLength(1);
          expect((await store.getSession(id))?.state).toBe('expired');
        }
        expect(upstream.calls()).toBeGreaterThanOrEqual(result.actions.size);
        process.stdout.write(
          `replicas: ${CLIENTS} clients, ${elapsed.toFixed(1)} s: ${result.sessions.size} sessions, ` +
            `${result.actions.size} proxied calls (${(result.actions.size / elapsed).toFixed(0)}/s), ` +
            `${events.length} audit events (${(events.length / elapsed).toFixed(0)}/s); ` +
            `answered a=${result.answered.get(a!)} b=${result.answered.get(b!)}\n`,
        );
      } finally {
        await store.close();
      }
    },
    LOAD_SECONDS * 1000 + 40_000,
  );
});
