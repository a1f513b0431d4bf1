/**
 * The audit store becomes unwritable while the broker runs. The fault injected is a real one:
 * another connection holds SQLite's write lock (`BEGIN EXCLUSIVE`) — what an operator's sqlite3
 * shell left in a transaction, a VACUUM, a migration or a second broker on the same file does.
 * (chmod 0444 on imp.db and its -wal changes nothing for a handle that is already open, and does
 * nothing at all for root; a read-only remount or a full disk need privileges a test should not.)
 *
 * While the lock is held, new logins, sessions, approvals and proxied calls answer 503
 * IMP_AUDIT_UNAVAILABLE, the tenant API receives nothing and no state changes; once the lock
 * goes, the same requests succeed without anyone restarting anything, and the chain verifies.
 *
 * Last, the other way a SQLite store stops writing: the fdatasync that makes a group durable fails
 * (injected: a real EIO needs a failing disk). The proxied call is refused and never forwarded, and
 * the store refuses from then on, even once the disk would sync again.
 */

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkpointVerifier } from '../../src/auth/checkpoints.js';
import { verifyChain } from '../../src/core/audit/verify-chain.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { fdatasyncOffLoop } from '../../src/store/sqlite-durability.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { makeTempDir } from '../helpers/temp.js';

let t: TestBroker;
let upstream: Server;
let upstreamHits = 0;
let dbFile: string;
let locker: Database.Database | undefined;
let syncFault: Error | null = null;

beforeAll(async () => {
  upstream = createServer((_req, res) => {
    upstreamHits++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  dbFile = join(makeTempDir('imp-unwritable-'), 'imp.db');
  t = await startTestBroker({
    // A short busy timeout: a locked write gives up after 200 ms rather than the default 2 s.
    store: openSqliteStore(dbFile, {
      busyTimeoutMs: 200,
      fdatasync: (fd) => (syncFault ? Promise.reject(syncFault) : fdatasyncOffLoop(fd)),
    }),
    policyYaml: (issuer) => `
identity: { issuer: ${issuer}, client_id: imp-cli }
roles:
  - { name: support, groups: [support], tenants: ['*'], environments: ['*'], scopes: [read, write], max_ttl: 1h }
  - { name: lead, groups: [support-leads], tenants: ['*'], environments: ['*'], scopes: [read, write], max_ttl: 1h, approve: true }
tenants:
  - { id: acme, approval_required: [write], upstream: { prod: ${upstreamUrl} } }
  - { id: globex, upstream: { prod: ${upstreamUrl} } }
  - { id: initech, upstream: { prod: ${upstreamUrl} } }
`,
  });
});

afterEach(() => unlock());

afterAll(async () => {
  await t?.close();
  await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
});

function lock(): void {
  locker = new Database(dbFile);
  locker.exec('BEGIN EXCLUSIVE');
}

function unlock(): void {
  if (locker?.inTransaction) locker.exec('ROLLBACK');
  locker?.close();
  locker = undefined;
}

function counts(): { events: number; sessions: string; logins: number } {
  const db = new Database(dbFile, { readonly: true });
  try {
    return {
      events: (db.prepare('SELECT count(*) AS n FROM audit_events').get() as { n: number }).n,
      sessions: JSON.stringify(db.prepare('SELECT * FROM sessions ORDER BY id').all()),
      logins: (db.prepare('SELECT count(*) AS n FROM logins').get() as { n: number }).n,
    };
  } finally {
    db.close();
  }
}

const ask = (tenant: string, scope = 'read') => ({
  tenant,
  environment: 'prod',
  scope,
  ticket: 'INC-503',
  reason: 'Checking the store failure path',
  ttl: 600,
});

describe('audit store unwritable', () => {
  const s = { alice: '', aliceFresh: '', bob: '', session: '', request: '', idToken: '' };

  it('set-up: a session, a pending request, fresh logins, all while the store is fine', async () => {
    s.alice = await t.loginAs('alice');
    const opened = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', s.alice, ask('globex'));
    expect(opened.status).toBe(201);
    s.session = opened.body.session.id;
    t.clock.advance(1100);
    const pending = await t.call<{ session: { id: string } }>(
      'POST',
      '/v1/sessions',
      await t.loginAs('alice'),
      ask('acme', 'write'),
    );
    expect(pending.status).toBe(202);
    s.request = pending.body.session.id;
    t.clock.advance(1100);
    s.aliceFresh = await t.loginAs('alice');
    s.bob = await t.loginAs('bob');
    upstreamHits = 0;
  });

  it('while locked: sessions, approvals, proxied calls and logins are refused with 503, nothing reaches the tenant API, nothing changes', async () => {
    const before = counts();
    lock();
    const answers = {
      open: await t.call('POST', '/v1/sessions', s.aliceFresh, ask('initech')),
      approve: await t.call('POST', `/v1/requests/${s.request}/approve`, s.bob, {}),
      deny: await t.call('POST', `/v1/requests/${s.request}/deny`, s.bob, { reason: 'not now' }),
      proxy: await fetch(`${t.broker.url}/v1/sessions/${s.session}/proxy/v1/users`, {
        headers: { authorization: `Bearer ${s.alice}` },
      }).then(async (r) => ({ status: r.status, body: await r.json() })),
      end: await t.call('POST', `/v1/sessions/${s.session}/end`, s.alice),
      login: await t.call('POST', '/v1/login', null, { id_token: 'x.y.z' }),
    };
    for (const [what, answer] of Object.entries(answers)) {
      expect(answer.status, `${what}: ${JSON.stringify(answer.body)}`).toBe(503);
      expect((answer.body as { error: { code: string } }).error.code, what).toBe('IMP_AUDIT_UNAVAILABLE');
    }
    expect(upstreamHits).toBe(0);
    unlock();
    expect(counts()).toEqual(before);
  });

  it('once the lock goes, service resumes by itself', async () => {
    const opened = await t.call('POST', '/v1/sessions', s.aliceFresh, ask('initech'));
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    const approved = await t.call('POST', `/v1/requests/${s.request}/approve`, s.bob, {});
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    const proxied = await fetch(`${t.broker.url}/v1/sessions/${s.session}/proxy/v1/users`, {
      headers: { authorization: `Bearer ${s.alice}` },
    });
    expect(proxied.status).toBe(200);
    expect(upstreamHits).toBe(1);
  });

  it('the chain is whole afterwards', async () => {
    await t.broker.deps.checkpoint();
    const jwks = (await t.call<{ keys: [] }>('GET', '/.well-known/jwks.json')).body;
    const result = await verifyChain(
      t.store.iterateAudit(),
      await t.store.listCheckpoints(),
      checkpointVerifier(jwks),
    );
    expect(result.problem).toBeNull();
    expect(result.checkpoints).toBeGreaterThan(0);
  });

  it('a WAL sync that fails: the call is refused with 503 and never forwarded, and the store stays refusing', async () => {
    const hits = upstreamHits;
    syncFault = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    const proxied = await fetch(`${t.broker.url}/v1/sessions/${s.session}/proxy/v1/users`, {
      headers: { authorization: `Bearer ${s.alice}` },
    });
    expect(proxied.status).toBe(503);
    expect(((await proxied.json()) as { error: { code: string } }).error.code).toBe('IMP_AUDIT_UNAVAILABLE');
    syncFault = null;
    const again = await fetch(`${t.broker.url}/v1/sessions/${s.session}/proxy/v1/users`, {
      headers: { authorization: `Bearer ${s.alice}` },
    });
    expect(again.status).toBe(503);
    const opened = await t.call('POST', '/v1/sessions', s.aliceFresh, ask('globex'));
    expect(opened.status).toBe(503);
    expect((await t.call('GET', '/healthz')).status).toBe(503);
    expect(upstreamHits).toBe(hits);
  });
});
