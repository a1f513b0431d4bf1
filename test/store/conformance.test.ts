/**
 * One suite, both engines: everything the broker relies on from a Store behaves the same on the
 * embedded SQLite file and on PostgreSQL (a throwaway cluster started here, connected as the
 * README's restricted imp_broker role). Audit append/read/filters/newest, appends durable at commit
 * and sequenced after (settle, sequenced; PostgreSQL's sequencer lease and its takeover), key locks
 * for check-then-write rules, an unbroken chain under
 * concurrent appends from two store instances (two brokers), rollback, checkpoints, logins,
 * sessions with conditional updates, onAppended, append-only enforcement and fail-closed errors.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AuditDraft, AuditEvent } from '../../src/core/audit/event.js';
import { eventLeafHash } from '../../src/core/audit/log-tree.js';
import {
  EMPTY_ROOT,
  inclusionRanges,
  nodesFor,
  rangeHash,
  rootFromLeafHashes,
  verifyInclusion,
} from '../../src/core/audit/merkle.js';
import { verifyChain } from '../../src/core/audit/verify-chain.js';
import { AuditUnavailableError } from '../../src/core/errors.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type {
  CeremonyRecord,
  LoginRecord,
  NotificationRecord,
  PasskeyRecord,
  QueuedAuditEvent,
  SessionRecord,
  Store,
  StoreReads,
} from '../../src/store/types.js';
import { POSTGRES, requireComponents } from '../helpers/components.js';
import { type PgCluster, startPostgres } from '../helpers/postgres.js';
import { makeTempDir } from '../helpers/temp.js';

/** What each engine gives the suite. */
interface Engine {
  name: 'sqlite' | 'postgres';
  /**
   * A fresh, empty, migrated database. `open` gives the store a second broker would use: another
   * instance with its own connections on PostgreSQL; on SQLite (one broker per file, and
   * better-sqlite3 blocks the event loop while it waits for a lock) the same instance.
   */
  fresh(): Promise<{ store: Store; open(): Promise<Store>; raw(sql: string): Promise<void> }>;
  /** Makes audit writes impossible for the store (locked / privilege revoked); returns the undo. */
  breakAuditWrites(): Promise<() => Promise<void>>;
}

const havePostgres = requireComponents(POSTGRES);
let cluster: PgCluster | undefined;
const opened: Store[] = [];
const cleanups: (() => Promise<void>)[] = [];

let currentSqliteFile = '';
let currentPgDatabase = '';

const sqlite: Engine = {
  name: 'sqlite',
  async fresh() {
    currentSqliteFile = join(makeTempDir('imp-conformance-'), 'imp.db');
    const file = currentSqliteFile;
    const store = track(openSqliteStore(file, { busyTimeoutMs: 200 }));
    return {
      store,
      open: async () => store,
      raw: async (sql) => {
        const db = new Database(file);
        try {
          db.exec(sql);
        } finally {
          db.close();
        }
      },
    };
  },
  async breakAuditWrites() {
    // Another connection holds the write lock; the store gives up after its busy timeout.
    const db = new Database(currentSqliteFile);
    db.pragma('busy_timeout = 0');
    db.exec('BEGIN EXCLUSIVE');
    return async () => {
      db.exec('ROLLBACK');
      db.close();
    };
  },
};

const postgres: Engine = {
  name: 'postgres',
  async fresh() {
    const db = await cluster!.createDatabase({ migrated: true });
    currentPgDatabase = db.name;
    const open = async () =>
      track(await openPostgresStore(db.brokerUrl, { migrate: false, lockTimeoutMs: 5000 }));
    return {
      store: await open(),
      open,
      raw: async (sql) => {
        await cluster!.query(sql, [], db.name);
      },
    };
  },
  async breakAuditWrites() {
    const name = currentPgDatabase;
    // Appends are INSERTs into the queue (the sequencer moves them into audit_events).
    await cluster!.query('REVOKE INSERT ON audit_queue FROM imp_broker', [], name);
    return async () => {
      await cluster!.query('GRANT INSERT ON audit_queue TO imp_broker', [], name);
    };
  },
};

function track<T extends Store>(store: T): T {
  opened.push(store);
  return store;
}

beforeAll(async () => {
  if (havePostgres) cluster = await startPostgres();
});

afterEach(async () => {
  for (const undo of cleanups.splice(0).reverse()) await undo();
  await Promise.all(opened.splice(0).map((store) => store.close().catch(() => {})));
});

afterAll(async () => {
  await cluster?.stop();
});

const ALICE = { iss: 'https://idp.test', sub: 'user-alice', email: 'alice@example.test', roles: ['support'] };
const BOB = { iss: 'https://idp.test', sub: 'user-bob', email: 'Bob.Smith@example.test', roles: ['lead'] };
const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);

function draft(overrides: Partial<AuditDraft> = {}): AuditDraft {
  return {
    type: 'session.started',
    actor: ALICE,
    tenant: 'acme',
    environment: 'prod',
    data: {},
    ...overrides,
  };
}

/** Appends in one transaction and returns the events as sequenced (seq, prev, hash). */
async function append(store: Store, drafts: AuditDraft[], nowMs = T0): Promise<AuditEvent[]> {
  const queued = await store.transaction(async (tx) => {
    const events: QueuedAuditEvent[] = [];
    for (const d of drafts) events.push(await tx.appendAudit(d, nowMs));
    return events;
  });
  return store.sequenced(queued.map((e) => e.id));
}

async function expectChainValid(store: Store): Promise<AuditEvent[]> {
  await store.settle();
  const events = await store.readAudit();
  const verdict = await verifyChain(events, [], async () => {
    throw new Error('no checkpoints expected');
  });
  expect(verdict.problem).toBeNull();
  expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
  return events;
}

function session(id: string, overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    id,
    state: 'active',
    mode: 'standard',
    requester: ALICE,
    tenant: 'acme',
    environment: 'prod',
    scope: 'read',
    ticket: 'SUP-1',
    reason: 'Customer reports a broken invoice',
    ttl: 600,
    loginId: 'login-1',
    authTime: 1_700_000_000,
    createdAt: T0,
    requestExpiresAt: null,
    decidedBy: null,
    decidedAt: null,
    decisionComment: null,
    startedAt: T0,
    expiresAt: T0 + 600_000,
    endedAt: null,
    endedBy: null,
    reviewRequired: false,
    review: null,
    ...overrides,
  };
}

function login(id: string, overrides: Partial<LoginRecord> = {}): LoginRecord {
  return {
    id,
    iss: ALICE.iss,
    sub: ALICE.sub,
    email: ALICE.email,
    authTime: 1_700_000_000,
    createdAt: T0,
    expiresAt: T0 + 3_600_000,
    idTokenHash: `hash-${id}`,
    groups: ['support'],
    ...overrides,
  };
}

const engines = havePostgres ? [sqlite, postgres] : [sqlite];

describe.each(engines)('$name store', (engine) => {
  it('close is idempotent: closing twice, at once or after, neither hangs nor throws', async () => {
    const { store } = await engine.fresh();
    await append(store, [draft()]);
    await Promise.all([store.close(), store.close()]);
    await store.close();
  });

  it('appends a chained log and reads it back exactly as hashed', async () => {
    const { store } = await engine.fresh();
    expect(await store.auditHead()).toBeNull();
    const written = await append(store, [
      draft({ type: 'policy.loaded', actor: null, tenant: null, environment: null, data: { roles: 3 } }),
      draft({
        ticket: 'SUP-7',
        reason: 'Ünïcode ✓, quotes "\' and a NUL \u0000 byte',
        session: 'ses-1',
        data: { nested: { list: [1, 2.5, -3, null, true], empty: {} }, big: 2 ** 52, text: 'a\u0000b\n\t' },
      }),
    ]);
    expect(written.map((e) => e.seq)).toEqual([1, 2]);
    expect(written[1]!.prev).toBe(written[0]!.hash);
    const read = await expectChainValid(store);
    expect(read).toEqual(written);
    expect(await store.auditHead()).toEqual({ seq: 2, hash: written[1]!.hash });
    const iterated: AuditEvent[] = [];
    for await (const event of store.iterateAudit()) iterated.push(event);
    expect(iterated).toEqual(written);
  });

  it('makes an append durable at commit and gives it its place after: sequenced() and settle() wait for it', async () => {
    const { store, open } = await engine.fresh();
    const other = await open();
    const queued = await other.transaction(async (tx) => [
      await tx.appendAudit(draft({ type: 'session.requested', data: { n: 1 } }), T0),
      await tx.appendAudit(draft({ type: 'session.started', data: { n: 2 } }), T0 + 1),
    ]);
    expect(queued.map((e) => [e.type, e.ts])).toEqual([
      ['session.requested', new Date(T0).toISOString()],
      ['session.started', new Date(T0 + 1).toISOString()],
    ]);
    // Asked of another broker: the events are the same wherever they were appended.
    const sealed = await store.sequenced(queued.map((e) => e.id).reverse());
    expect(sealed.map((e) => e.seq)).toEqual([1, 2]);
    expect(sealed[0]).toMatchObject(queued[0]!);
    expect(sealed[1]).toMatchObject(queued[1]!);
    expect(sealed[1]!.prev).toBe(sealed[0]!.hash);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? store : other).transaction((tx) => tx.appendAudit(draft({ data: { i } }), T0 + i)),
      ),
    );
    await store.settle();
    expect(await store.readAudit()).toHaveLength(22);
    expect((await store.treeHead()).size).toBe(22);
    expect(await store.sequenced([])).toEqual([]);
  });

  it('lockKey: a check-then-write on one key holds across brokers, exactly one of racing writers wins', async () => {
    const { store, open } = await engine.fresh();
    const other = await open();
    const attempt = (s: Store, id: string) =>
      s.transaction(async (tx) => {
        await tx.lockKey(`first-login\u0000${ALICE.sub}`);
        if (await tx.findLatestLogin(ALICE.sub)) return false;
        await tx.insertLogin(login(id));
        await tx.appendAudit(draft({ type: 'auth.login', data: { id } }), T0);
        return true;
      });
    const won = await Promise.all(
      ['a', 'b', 'c', 'd', 'e', 'f'].map((id, i) => attempt(i % 2 ? other : store, id)),
    );
    expect(won.filter(Boolean)).toHaveLength(1);
    const events = await expectChainValid(store);
    expect(events.map((e) => e.data.id)).toEqual([['a', 'b', 'c', 'd', 'e', 'f'][won.indexOf(true)]]);
  });

  it('filters by seq, time, tenant, type, session and actor (sub, email, local part), with limit and newest', async () => {
    const { store } = await engine.fresh();
    await append(store, [draft({ tenant: 'acme', session: 's1' })], T0);
    await append(
      store,
      [draft({ tenant: 'globex', actor: BOB, type: 'session.approved', session: 's2' })],
      T0 + 1000,
    );
    await append(
      store,
      [draft({ tenant: 'acme', actor: null, type: 'session.expired', session: 's1' })],
      T0 + 2000,
    );
    await append(store, [draft({ tenant: 'acme', session: 's3' })], T0 + 3000);
    const seqs = async (query: Parameters<Store['readAudit']>[0]) =>
      (await store.readAudit(query)).map((e) => e.seq);
    expect(await seqs({ fromSeq: 2, toSeq: 3 })).toEqual([2, 3]);
    expect(await seqs({ sinceTs: new Date(T0 + 1000).toISOString() })).toEqual([2, 3, 4]);
    expect(await seqs({ untilTs: new Date(T0 + 1000).toISOString() })).toEqual([1, 2]);
    expect(await seqs({ tenant: 'acme' })).toEqual([1, 3, 4]);
    expect(await seqs({ type: 'session.approved' })).toEqual([2]);
    expect(await seqs({ session: 's1' })).toEqual([1, 3]);
    expect(await seqs({ actor: 'user-bob' })).toEqual([2]);
    expect(await seqs({ actor: 'Bob.Smith@example.test' })).toEqual([2]);
    expect(await seqs({ actor: 'Bob.Smith' })).toEqual([2]);
    expect(await seqs({ actor: 'alice' })).toEqual([1, 4]);
    expect(await seqs({ actor: 'nobody' })).toEqual([]);
    expect(await seqs({ limit: 2 })).toEqual([1, 2]);
    expect(await seqs({ limit: 2, newest: true })).toEqual([3, 4]);
    expect(await seqs({ tenant: 'acme', limit: 2, newest: true })).toEqual([3, 4]);
    expect(await seqs({ limit: 0 })).toEqual([]);
    const third = (await store.readAudit({ fromSeq: 3, toSeq: 3 }))[0]!;
    expect(await store.readAudit({ id: third.id })).toEqual([third]);
    expect(await seqs({ id: '00000000-0000-4000-8000-000000000000' })).toEqual([]);
    const iterated: number[] = [];
    for await (const event of store.iterateAudit({ tenant: 'acme', fromSeq: 2 })) iterated.push(event.seq);
    expect(iterated).toEqual([3, 4]);
  });

  it('iterates a long log in order without gaps', async () => {
    const { store } = await engine.fresh();
    for (let batch = 0; batch < 5; batch++)
      await append(
        store,
        Array.from({ length: 500 }, (_, i) => draft({ data: { i: batch * 500 + i } })),
      );
    let expected = 1;
    for await (const event of store.iterateAudit()) expect(event.seq).toBe(expected++);
    expect(expected).toBe(2501);
    let count = 0;
    for await (const _ of store.iterateAudit({ fromSeq: 1000, limit: 1200 })) count++;
    expect(count).toBe(1200);
  });

  it('rolls back a failed transaction: no event, no row, no listener call, no gap', async () => {
    const { store } = await engine.fresh();
    const heard: number[][] = [];
    store.onAppended((events) => heard.push(events.map((e) => e.seq)));
    await append(store, [draft()]);
    await expect(
      store.transaction(async (tx) => {
        await tx.insertSession(session('00000000-0000-4000-8000-000000000001'));
        await tx.appendAudit(draft(), T0);
        throw new Error('handler failed');
      }),
    ).rejects.toThrow('handler failed');
    expect(await store.getSession('00000000-0000-4000-8000-000000000001')).toBeNull();
    await append(store, [draft(), draft()]);
    expect(heard).toEqual([[1], [2, 3]]);
    await expectChainValid(store);
  });

  it('concurrent transactions: each commits or rolls back alone, and the log holds exactly the committed ones', async () => {
    const { store } = await engine.fresh();
    const groups: number[] = [];
    store.onAppended((events) => groups.push(events.length));
    const outcomes = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) =>
        store.transaction(async (tx) => {
          await tx.insertLogin(login(`g${i}`));
          const event = await tx.appendAudit(draft({ type: 'auth.login', data: { i } }), T0 + i);
          if (i % 3 === 1) throw new Error(`member ${i} fails after its append`);
          return event;
        }),
      ),
    );
    const failed = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [i] : []));
    expect(failed).toEqual(Array.from({ length: 10 }, (_, k) => 3 * k + 1));
    const events = await expectChainValid(store);
    expect(events.map((e) => e.data.i).sort((a, b) => Number(a) - Number(b))).toEqual(
      Array.from({ length: 30 }, (_, i) => i).filter((i) => i % 3 !== 1),
    );
    // What each committed member was told is what the log holds, sealed in its place.
    const byId = new Map(events.map((e) => [e.id, e]));
    for (const outcome of outcomes)
      if (outcome.status === 'fulfilled') expect(byId.get(outcome.value.id)).toMatchObject(outcome.value);
    expect(await store.getLogin('g1')).toBeNull();
    expect((await store.getLogin('g2'))?.id).toBe('g2');
    expect(groups.reduce((a, b) => a + b, 0)).toBe(20);
    // Batched: SQLite's group commit, PostgreSQL's sequencer.
    expect(groups.length).toBeLessThan(20);
    const head = await store.treeHead();
    expect(head).toEqual({ size: 20, root: rootFromLeafHashes(events.map(eventLeafHash)) });
  });

  it('keeps one unbroken chain when two store instances (two brokers) append at once', async () => {
    const { store, open } = await engine.fresh();
    const other = await open();
    const work = (s: Store, who: string) =>
      Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          s.transaction(async (tx) => {
            await tx.appendAudit(draft({ data: { who, i } }), T0 + i);
            if (i % 3 === 0) await tx.appendAudit(draft({ data: { who, i, second: true } }), T0 + i);
          }),
        ),
      );
    await Promise.all([work(store, 'a'), work(other, 'b')]);
    const events = await expectChainValid(store);
    expect(events).toHaveLength(2 * (40 + 14));
    expect(await other.auditHead()).toEqual({ seq: events.length, hash: events.at(-1)!.hash });
  });

  it('keeps the RFC 9162 tree incrementally: root and proofs match a recompute, under two brokers appending', async () => {
    const { store, open } = await engine.fresh();
    expect(await store.treeHead()).toEqual({ size: 0, root: EMPTY_ROOT });
    const other = await open();
    const work = (s: Store, who: string) =>
      Promise.all(
        Array.from({ length: 25 }, (_, i) =>
          s.transaction(async (tx) => {
            await tx.appendAudit(draft({ data: { who, i } }), T0 + i);
            if (i % 4 === 0) await tx.appendAudit(draft({ data: { who, i, second: true } }), T0 + i);
          }),
        ),
      );
    await Promise.all([work(store, 'a'), work(other, 'b')]);
    const events = await expectChainValid(store);
    const leaves = events.map(eventLeafHash);
    const head = await store.treeHead();
    expect(head.size).toBe(events.length);
    expect(Buffer.from(head.root).toString('hex')).toBe(
      Buffer.from(rootFromLeafHashes(leaves)).toString('hex'),
    );
    for (const index of [0, 7, events.length - 1]) {
      const ranges = inclusionRanges(index, head.size);
      const nodes = nodesFor(ranges);
      const hashes = await store.treeNodes(nodes);
      const byKey = new Map(nodes.map((n, i) => [`${n.level}/${n.index}`, hashes[i]!]));
      const proof = ranges.map((r) => rangeHash(r, (n) => byKey.get(`${n.level}/${n.index}`)!));
      expect(verifyInclusion(index, head.size, leaves[index]!, proof, head.root)).toBe(true);
    }
  });

  it('stores checkpoint notes once per size with their witness cosignatures, append-only', async () => {
    const { store, raw } = await engine.fresh();
    await append(store, [draft()]);
    await store.insertNote(3, 'log\n3\nAAAA\n\n— log sig3\n');
    await store.insertNote(1, 'log\n1\nAAAA\n\n— log sig1\n');
    await store.insertNote(3, 'a second replica: ignored\n');
    await store.addCosignatures(3, [
      { witness: 'w2', line: '— w2 c2\n' },
      { witness: 'w1', line: '— w1 c1\n' },
    ]);
    expect(await store.listNotes()).toEqual([
      { size: 1, note: 'log\n1\nAAAA\n\n— log sig1\n' },
      { size: 3, note: 'log\n3\nAAAA\n\n— log sig3\n— w1 c1\n— w2 c2\n' },
    ]);
    for (const sql of [
      "UPDATE audit_notes SET note = 'x'",
      'DELETE FROM audit_cosignatures',
      'DELETE FROM audit_tree',
    ])
      await expect(raw(sql), sql).rejects.toThrow(/append-only/);
  });

  it('stores checkpoints once per seq, in order', async () => {
    const { store } = await engine.fresh();
    await store.insertCheckpoint({
      seq: 5,
      hash: 'b'.repeat(64),
      ts: '2026-11-24T12:00:05.000Z',
      jws: 'jws-5',
    });
    await store.insertCheckpoint({
      seq: 2,
      hash: 'a'.repeat(64),
      ts: '2026-11-24T12:00:02.000Z',
      jws: 'jws-2',
    });
    // A second replica checkpointing the same head: the first one stands.
    await store.insertCheckpoint({
      seq: 5,
      hash: 'b'.repeat(64),
      ts: '2026-11-24T12:00:06.000Z',
      jws: 'other',
    });
    expect(await store.listCheckpoints()).toEqual([
      { seq: 2, hash: 'a'.repeat(64), ts: '2026-11-24T12:00:02.000Z', jws: 'jws-2' },
      { seq: 5, hash: 'b'.repeat(64), ts: '2026-11-24T12:00:05.000Z', jws: 'jws-5' },
    ]);
  });

  it('keeps logins: by id, by ID-token hash (unique), newest by sub, email or local part', async () => {
    const { store } = await engine.fresh();
    await store.transaction(async (tx) => {
      await tx.insertLogin(login('l1', { createdAt: T0 }));
      await tx.insertLogin(login('l2', { createdAt: T0 + 10, groups: ['support', 'oncall'] }));
      await tx.insertLogin(
        login('l3', { sub: 'user-bob', email: 'Bob.Smith@example.test', createdAt: T0 + 5, groups: [] }),
      );
      await tx.insertLogin(
        login('l4', { sub: 'user_x', email: 'under_score@example.test', createdAt: T0 + 1 }),
      );
    });
    // The same answers inside a transaction and from the Store's own reads (no write transaction).
    const checkLogins = async (reads: StoreReads) => {
      expect(await reads.getLogin('l2')).toEqual(
        login('l2', { createdAt: T0 + 10, groups: ['support', 'oncall'] }),
      );
      expect(await reads.getLogin('nope')).toBeNull();
      expect((await reads.findLoginByTokenHash('hash-l3'))?.id).toBe('l3');
      expect(await reads.findLoginByTokenHash('hash-none')).toBeNull();
      expect((await reads.findLatestLogin('user-alice'))?.id).toBe('l2');
      expect((await reads.findLatestLogin('alice@example.test'))?.id).toBe('l2');
      expect((await reads.findLatestLogin('alice'))?.id).toBe('l2');
      expect((await reads.findLatestLogin('Bob.Smith'))?.id).toBe('l3');
      expect((await reads.findLatestLogin('under_score'))?.id).toBe('l4');
      // LIKE wildcards in a name are literal.
      expect(await reads.findLatestLogin('under%')).toBeNull();
      expect(await reads.findLatestLogin('a_ice')).toBeNull();
    };
    await store.transaction(checkLogins);
    await checkLogins(store);
    await expect(
      store.transaction((tx) => tx.insertLogin(login('l5', { idTokenHash: 'hash-l1' }))),
    ).rejects.toThrow();
    expect((await store.listLatestLogins()).map((l) => [l.sub, l.id])).toEqual([
      ['user-alice', 'l2'],
      ['user-bob', 'l3'],
      ['user_x', 'l4'],
    ]);
  });

  it('keeps passkeys bound to (iss, sub): insert, read, list, counter updates, remove one, remove all', async () => {
    const { store } = await engine.fresh();
    const key = (id: string, over: Partial<PasskeyRecord> = {}): PasskeyRecord => ({
      id,
      iss: 'https://idp.example.test',
      sub: 'user-alice',
      email: 'alice@example.test',
      publicKey: `pk-${id}`,
      counter: 0,
      transports: ['internal'],
      aaguid: '00000000-0000-0000-0000-000000000000',
      name: `key ${id}`,
      createdAt: T0,
      lastUsedAt: null,
      ...over,
    });
    await store.transaction(async (tx) => {
      await tx.insertPasskey(key('k1'));
      await tx.insertPasskey(key('k2', { createdAt: T0 + 1, transports: [] }));
      await tx.insertPasskey(key('k3', { sub: 'user-bob', email: null }));
    });
    await expect(store.transaction((tx) => tx.insertPasskey(key('k1')))).rejects.toThrow();
    expect(await store.getPasskey('k2')).toEqual(key('k2', { createdAt: T0 + 1, transports: [] }));
    expect(await store.getPasskey('nope')).toBeNull();
    expect((await store.listPasskeys('https://idp.example.test', 'user-alice')).map((p) => p.id)).toEqual([
      'k1',
      'k2',
    ]);
    expect(await store.listPasskeys('https://other.example.test', 'user-alice')).toEqual([]);
    await store.transaction(async (tx) => {
      expect(await tx.getPasskey('k2')).toEqual(key('k2', { createdAt: T0 + 1, transports: [] }));
      expect(await tx.getPasskey('nope')).toBeNull();
      expect((await tx.listPasskeys('https://idp.example.test', 'user-alice')).map((p) => p.id)).toEqual([
        'k1',
        'k2',
      ]);
      expect(await tx.listPasskeys('https://other.example.test', 'user-alice')).toEqual([]);
      await tx.updatePasskeyUse('k1', 7, T0 + 50);
      expect(await tx.getPasskey('k1')).toMatchObject({ counter: 7, lastUsedAt: T0 + 50 });
      // Removal is scoped to its owner: bob's id with alice's subject removes nothing.
      expect(await tx.deletePasskey('https://idp.example.test', 'user-alice', 'k3')).toBe(false);
      expect(await tx.deletePasskey('https://idp.example.test', 'user-alice', 'k2')).toBe(true);
      expect(await tx.deletePasskeys('https://idp.example.test', 'user-alice')).toBe(1);
      expect(await tx.listPasskeys('https://idp.example.test', 'user-alice')).toEqual([]);
      expect(await tx.getPasskey('k3')).not.toBeNull();
    });
  });

  it('keeps ceremonies and moves each on exactly once (pending → verified → used), even racing', async () => {
    const { store, open } = await engine.fresh();
    const ceremony: CeremonyRecord = {
      id: '5b0e0b5e-1d3c-4a8e-9f00-000000000001',
      kind: 'assert',
      iss: 'https://idp.example.test',
      sub: 'user-alice',
      email: 'alice@example.test',
      loginId: 'l1',
      operation: { op: 'session.open', tenant: 'acme', ttl: 1800 },
      binding: 'b',
      description: 'alice → acme/prod READ, ticket SUP-1, 30m',
      userCode: 'BCDF-GHJK',
      challenge: 'c',
      createdAt: T0,
      expiresAt: T0 + 120_000,
      state: 'pending',
      credentialId: null,
      userVerified: false,
      verifiedAt: null,
    };
    await store.transaction((tx) => tx.insertCeremony(ceremony));
    expect(await store.transaction((tx) => tx.getCeremony(ceremony.id))).toEqual(ceremony);
    const changes = {
      state: 'verified',
      credentialId: 'k1',
      userVerified: true,
      verifiedAt: T0 + 5,
    } as const;
    expect(await store.transaction((tx) => tx.updateCeremony(ceremony.id, 'pending', changes))).toBe(true);
    expect(await store.transaction((tx) => tx.updateCeremony(ceremony.id, 'pending', changes))).toBe(false);
    expect(await store.transaction((tx) => tx.getCeremony(ceremony.id))).toEqual({ ...ceremony, ...changes });
    expect(await store.getCeremony(ceremony.id)).toEqual({ ...ceremony, ...changes });
    expect(await store.getCeremony('5b0e0b5e-1d3c-4a8e-9f00-000000000009')).toBeNull();
    const other = await open();
    const wins = await Promise.all(
      [store, other, store, other].map((s) =>
        s.transaction((tx) => tx.updateCeremony(ceremony.id, 'verified', { state: 'used' })),
      ),
    );
    expect(wins.filter(Boolean)).toHaveLength(1);
  });

  it('keeps the notification outbox: due rows oldest first, each try claimed by exactly one broker, rolled back with its event', async () => {
    const { store, open } = await engine.fresh();
    const row = (n: number, extra: Partial<NotificationRecord> = {}): NotificationRecord => ({
      id: `n${n}`,
      eventId: `e${n}`,
      kind: 'request.pending',
      channel: 'mail',
      state: 'pending',
      attempts: 0,
      nextAt: T0 + n,
      createdAt: T0,
      lastError: null,
      ...extra,
    });
    await store.transaction(async (tx) => {
      await tx.insertNotification(row(2));
      await tx.insertNotification(row(1));
      await tx.insertNotification(row(3, { nextAt: T0 + 60_000 }));
      await tx.insertNotification(row(4, { state: 'sent' }));
    });
    const due = async (now: number) =>
      (await store.transaction((tx) => tx.listDueNotifications(now, 10))).map((n) => n.id);
    expect(await due(T0 + 10)).toEqual(['n1', 'n2']);
    expect(await due(T0 + 60_000)).toEqual(['n1', 'n2', 'n3']);
    expect(await store.transaction((tx) => tx.listDueNotifications(T0 + 60_000, 1))).toEqual([row(1)]);
    // Two brokers claim the same try: one wins.
    const other = await open();
    const claims = await Promise.all(
      [store, other, store, other].map((s) =>
        s.transaction((tx) => tx.updateNotification('n1', 0, { attempts: 1, nextAt: T0 + 30_000 })),
      ),
    );
    expect(claims.filter(Boolean)).toHaveLength(1);
    expect(await due(T0 + 10)).toEqual(['n2']);
    expect(
      await store.transaction((tx) => tx.updateNotification('n1', 1, { state: 'sent', lastError: null })),
    ).toBe(true);
    // Settled rows change no more.
    expect(await store.transaction((tx) => tx.updateNotification('n1', 1, { state: 'failed' }))).toBe(false);
    expect(await store.transaction((tx) => tx.getNotification('n1'))).toEqual(
      row(1, { attempts: 1, nextAt: T0 + 30_000, state: 'sent' }),
    );
    // A row written in a transaction that fails is gone with it.
    await expect(
      store.transaction(async (tx) => {
        await tx.insertNotification(row(5));
        throw new Error('operation refused');
      }),
    ).rejects.toThrow('operation refused');
    expect(await store.transaction((tx) => tx.getNotification('n5'))).toBeNull();
  });

  it('stores values as written, whatever they hold, and answers reads issued together each with its own result', async () => {
    const { store } = await engine.fresh();
    // PostgreSQL sends a transaction's statements together with their values written in as literals.
    const awkward = `it's a "quote", a back\\slash \\', $1 and $$ dollars, \u00e9\u{1F600}, a tab\tand\nnewline; DROP TABLE sessions; --`;
    const id = '00000000-0000-4000-8000-00000000000a';
    const other = '00000000-0000-4000-8000-00000000000b';
    const queued = await store.transaction(async (tx) => {
      await tx.lockKey(`person\u0000${ALICE.iss}\u0000${ALICE.sub}`);
      await tx.insertLogin(login('login-awkward', { email: awkward, groups: [awkward, 'g"2', 'g\\3'] }));
      await tx.insertSession(session(id, { reason: awkward, ticket: `SUP-'1'`, authTime: 500 }));
      await tx.insertSession(session(other, { requester: BOB, tenant: 'globex', authTime: 700 }));
      const [lastAlice, mine, lastBob, theirs] = await Promise.all([
        tx.lastUsedAuthTime(ALICE.iss, ALICE.sub),
        tx.listSessions({ requesterIss: ALICE.iss, requesterSub: ALICE.sub, states: ['active', 'pending'] }),
        tx.lastUsedAuthTime(BOB.iss, BOB.sub),
        tx.getSession(other),
      ]);
      expect([lastAlice, mine.map((s) => s.id), lastBob, theirs?.tenant]).toEqual([500, [id], 700, 'globex']);
      return tx.appendAudit(draft({ reason: awkward, data: { note: awkward } }), T0);
    });
    expect(await store.getSession(id)).toEqual(
      session(id, { reason: awkward, ticket: `SUP-'1'`, authTime: 500 }),
    );
    expect(await store.getLogin('login-awkward')).toMatchObject({
      email: awkward,
      groups: [awkward, 'g"2', 'g\\3'],
    });
    const [event] = await store.sequenced([queued.id]);
    expect(event).toMatchObject({ reason: awkward, data: { note: awkward } });
    expect(await store.listSessions({})).toHaveLength(2);
  });

  it('a write that fails takes the whole transaction with it, its audit events included', async () => {
    const { store } = await engine.fresh();
    const id = '00000000-0000-4000-8000-00000000000c';
    await store.transaction((tx) => tx.insertSession(session(id)));
    // A second session with the same id, and a NUL where the database stores text (PostgreSQL refuses it).
    for (const clash of [
      session(id),
      session('00000000-0000-4000-8000-00000000000d', { reason: 'a\u0000b' }),
    ]) {
      const attempt = store.transaction(async (tx) => {
        await tx.appendAudit(draft({ type: 'session.requested' }), T0);
        await tx.insertSession(clash);
        await tx.appendAudit(draft(), T0);
      });
      if (engine.name === 'postgres' || clash.id === id) await expect(attempt).rejects.toThrow();
      else await attempt;
    }
    await store.settle();
    const sessions = await store.listSessions({});
    const events = await store.readAudit();
    // SQLite stores the NUL (its text holds one); PostgreSQL refused the whole transaction.
    expect(sessions.map((s) => s.id)).toEqual(
      engine.name === 'postgres' ? [id] : [id, '00000000-0000-4000-8000-00000000000d'],
    );
    expect(events).toHaveLength(engine.name === 'postgres' ? 0 : 2);
  });

  it('keeps sessions: insert, read, list with filters in creation order, last used auth_time', async () => {
    const { store } = await engine.fresh();
    const ids = [1, 2, 3, 4].map((n) => `00000000-0000-4000-8000-00000000000${n}`);
    await store.transaction(async (tx) => {
      await tx.insertSession(session(ids[0]!, { createdAt: T0 + 3, authTime: 100 }));
      await tx.insertSession(
        session(ids[1]!, {
          createdAt: T0 + 1,
          state: 'pending',
          startedAt: null,
          expiresAt: null,
          requestExpiresAt: T0 + 3_600_000,
          tenant: 'globex',
          authTime: 300,
        }),
      );
      await tx.insertSession(
        session(ids[2]!, { createdAt: T0 + 2, requester: BOB, state: 'ended', authTime: 900 }),
      );
      await tx.insertSession(
        session(ids[3]!, {
          createdAt: T0 + 4,
          mode: 'break_glass',
          scope: 'write',
          reviewRequired: true,
          authTime: 200,
        }),
      );
    });
    expect(await store.getSession(ids[1]!)).toEqual(
      session(ids[1]!, {
        createdAt: T0 + 1,
        state: 'pending',
        startedAt: null,
        expiresAt: null,
        requestExpiresAt: T0 + 3_600_000,
        tenant: 'globex',
        authTime: 300,
      }),
    );
    expect(await store.getSession('00000000-0000-4000-8000-000000000009')).toBeNull();
    const list = async (query: Parameters<Store['listSessions']>[0]) =>
      (await store.listSessions(query)).map((s) => ids.indexOf(s.id) + 1);
    expect(await list({})).toEqual([2, 3, 1, 4]);
    expect(await list({ states: ['active', 'pending'] })).toEqual([2, 1, 4]);
    expect(await list({ requesterSub: 'user-bob', requesterIss: BOB.iss })).toEqual([3]);
    expect(await list({ tenant: 'globex' })).toEqual([2]);
    expect(await list({ states: ['active'], limit: 1 })).toEqual([1]);
    // Newest first: with a limit, the newest ones (a requester's recent access on the Requests page).
    expect(await list({ newest: true })).toEqual([4, 1, 3, 2]);
    expect(await list({ requesterSub: ALICE.sub, newest: true, limit: 2 })).toEqual([4, 1]);
    // Short ids: a prefix, compared literally (no LIKE wildcards), combinable with the other filters.
    expect(await list({ idPrefix: '0000' })).toEqual([2, 3, 1, 4]);
    expect(await list({ idPrefix: '00000000-0000-4000-8000-000000000003' })).toEqual([3]);
    expect(await list({ idPrefix: '0000', states: ['pending'] })).toEqual([2]);
    expect(await list({ idPrefix: '%' })).toEqual([]);
    expect(await list({ idPrefix: '0000_' })).toEqual([]);
    // Due to expire: active sessions by expiresAt, pending requests by requestExpiresAt; never ended ones.
    expect(await list({ dueBy: T0 + 599_999 })).toEqual([]);
    expect(await list({ dueBy: T0 + 600_000 })).toEqual([1, 4]);
    expect(await list({ dueBy: T0 + 3_600_000 })).toEqual([2, 1, 4]);
    expect(await list({ dueBy: T0 + 3_600_000, tenant: 'globex' })).toEqual([2]);
    await store.transaction(async (tx) => {
      expect(await tx.lastUsedAuthTime(ALICE.iss, ALICE.sub)).toBe(300);
      expect(await tx.lastUsedAuthTime(ALICE.iss, 'user-nobody')).toBeNull();
      expect((await tx.listSessions({ tenant: 'globex' })).map((s) => s.id)).toEqual([ids[1]]);
    });
    expect(await store.lastUsedAuthTime(ALICE.iss, ALICE.sub)).toBe(300);
    expect(await store.lastUsedAuthTime(ALICE.iss, 'user-nobody')).toBeNull();
  });

  it('reads outside transactions see committed rows only, and do not wait for an open write transaction', async () => {
    const { store, open } = await engine.fresh();
    await store.transaction((tx) => tx.insertLogin(login('before')));
    const reader = await open();
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let inserted!: () => void;
    const insertedYet = new Promise<void>((resolve) => {
      inserted = resolve;
    });
    // A write transaction that stays open (holding the SQLite group / the PostgreSQL chain lock)
    // until the reads below have answered.
    const writing = store.transaction(async (tx) => {
      await tx.insertLogin(login('during', { idTokenHash: 'hash-during' }));
      await tx.insertSession(session('00000000-0000-4000-8000-0000000000dd'));
      await tx.appendAudit(draft({ type: 'auth.login' }), T0);
      inserted();
      await held;
    });
    await insertedYet;
    expect((await reader.getLogin('before'))?.id).toBe('before');
    expect(await reader.getLogin('during')).toBeNull();
    expect(await reader.findLoginByTokenHash('hash-during')).toBeNull();
    // Sessions listed outside a transaction (the console's recent access): committed ones only, on
    // this very store too, whose own write transaction is open.
    expect(await store.listSessions({})).toEqual([]);
    expect(await reader.listSessions({})).toEqual([]);
    release();
    await writing;
    expect((await store.listSessions({})).map((s) => s.id)).toEqual(['00000000-0000-4000-8000-0000000000dd']);
    expect((await reader.getLogin('during'))?.id).toBe('during');
    expect((await store.findLoginByTokenHash('hash-during'))?.id).toBe('during');
  });

  it('updates a session only from the expected state, exactly once under a race between two brokers', async () => {
    const { store, open } = await engine.fresh();
    const other = await open();
    const id = '00000000-0000-4000-8000-0000000000aa';
    await store.transaction((tx) => tx.insertSession(session(id)));
    const endedBy = { iss: BOB.iss, sub: BOB.sub, email: BOB.email };
    expect(
      await store.transaction((tx) => tx.updateSession(id, 'pending', { state: 'active', startedAt: T0 })),
    ).toBe(false);
    // Two replicas' sweepers expire the same session: one wins, one audits.
    const race = await Promise.all(
      [store, other, store, other].map((s) =>
        s.transaction(async (tx) => {
          const won = await tx.updateSession(id, 'active', { state: 'expired', endedAt: T0 + 600_000 });
          if (won) await tx.appendAudit(draft({ type: 'session.expired', session: id }), T0);
          return won;
        }),
      ),
    );
    expect(race.filter(Boolean)).toHaveLength(1);
    await store.settle();
    expect(await store.readAudit({ type: 'session.expired' })).toHaveLength(1);
    expect(
      await store.transaction((tx) =>
        tx.updateSession(id, 'expired', { endedBy, decisionComment: 'ok', decidedBy: null }),
      ),
    ).toBe(true);
    expect(await other.getSession(id)).toEqual(
      session(id, { state: 'expired', endedAt: T0 + 600_000, endedBy, decisionComment: 'ok' }),
    );
  });

  it('records a break-glass review exactly once', async () => {
    const { store } = await engine.fresh();
    const id = '00000000-0000-4000-8000-0000000000bb';
    await store.transaction(async (tx) => {
      await tx.insertSession(session(id, { mode: 'break_glass', reviewRequired: true, state: 'ended' }));
      await tx.insertSession(session('00000000-0000-4000-8000-0000000000bc'));
    });
    const review = {
      by: { iss: BOB.iss, sub: BOB.sub, email: BOB.email },
      at: T0 + 5,
      outcome: 'justified' as const,
      notes: 'Incident INC-9, fine',
    };
    expect(await store.transaction((tx) => tx.recordReview(id, review))).toBe(true);
    expect(await store.transaction((tx) => tx.recordReview(id, { ...review, outcome: 'unjustified' }))).toBe(
      false,
    );
    expect(
      await store.transaction((tx) => tx.recordReview('00000000-0000-4000-8000-0000000000bc', review)),
    ).toBe(false);
    expect((await store.getSession(id))?.review).toEqual(review);
  });

  it('tells onAppended listeners after commit, in order, and stops when unsubscribed', async () => {
    const { store } = await engine.fresh();
    const heard: string[][] = [];
    const stop = store.onAppended((events) => heard.push(events.map((e) => `${e.seq}:${e.type}`)));
    await store.transaction(async (tx) => {
      await tx.appendAudit(draft({ type: 'session.requested' }), T0);
      expect(heard).toEqual([]); // not before commit
      await tx.appendAudit(draft({ type: 'session.started' }), T0);
    });
    await store.transaction(async (tx) => tx.lastUsedAuthTime('x', 'y')); // no events: no call
    await store.settle();
    stop();
    await append(store, [draft()]);
    expect(heard).toEqual([['1:session.requested', '2:session.started']]);
  });

  it('refuses UPDATE, DELETE and TRUNCATE of audit events and checkpoints, whoever asks', async () => {
    const { store, raw } = await engine.fresh();
    await append(store, [draft(), draft()]);
    await store.insertCheckpoint({ seq: 2, hash: 'c'.repeat(64), ts: 'x', jws: 'y' });
    const attempts = [
      "UPDATE audit_events SET type = 'forged' WHERE seq = 1",
      'DELETE FROM audit_events WHERE seq = 2',
      "UPDATE audit_checkpoints SET hash = 'd' WHERE seq = 2",
      'DELETE FROM audit_checkpoints',
      ...(engine.name === 'postgres' ? ['TRUNCATE audit_events', 'TRUNCATE audit_checkpoints'] : []),
    ];
    for (const sql of attempts) await expect(raw(sql), sql).rejects.toThrow(/append-only/);
    await expectChainValid(store);
    expect(await store.listCheckpoints()).toHaveLength(1);
  });

  it('stores recording chunks once per (session, seq), counts and lists them in order', async () => {
    const { store } = await engine.fresh();
    const chunk = (session: string, seq: number, data: string) => ({
      session,
      seq,
      ts: T0 + seq,
      data,
      sha256: `h${seq}`,
    });
    await store.transaction(async (tx) => {
      await tx.insertRecordingChunk(chunk('s1', 0, '{"version":2}\n'));
      await tx.insertRecordingChunk(chunk('s1', 1, '[0.5,"o","ü \\u001b[1m"]\n'));
      await tx.insertRecordingChunk(chunk('s2', 0, 'other\n'));
    });
    await expect(
      store.transaction((tx) => tx.insertRecordingChunk(chunk('s1', 1, 'again\n'))),
    ).rejects.toThrow();
    expect(await store.transaction((tx) => tx.countRecordingChunks('s1'))).toBe(2);
    expect(await store.transaction((tx) => tx.countRecordingChunks('none'))).toBe(0);
    expect(await store.transaction((tx) => tx.getRecordingChunk('s1', 1))).toEqual(
      chunk('s1', 1, '[0.5,"o","ü \\u001b[1m"]\n'),
    );
    expect((await store.listRecordingChunks('s1')).map((c) => c.seq)).toEqual([0, 1]);
    expect(await store.listRecordingChunks('none')).toEqual([]);
  });

  it('fails closed: an audit write that cannot happen is AuditUnavailableError and takes the change with it', async () => {
    const { store } = await engine.fresh();
    await append(store, [draft()]);
    const undo = await engine.breakAuditWrites();
    cleanups.push(undo);
    const attempt = store.transaction(async (tx) => {
      await tx.insertLogin(login('blocked'));
      await tx.appendAudit(draft({ type: 'auth.login' }), T0);
    });
    await expect(attempt).rejects.toBeInstanceOf(AuditUnavailableError);
    await expect(attempt).rejects.toMatchObject({ code: 'IMP_AUDIT_UNAVAILABLE' });
    await cleanups.pop()!();
    expect(await store.transaction((tx) => tx.getLogin('blocked'))).toBeNull();
    await append(store, [draft()]);
    const events = await expectChainValid(store);
    expect(events).toHaveLength(2);
  });
});

/** Polls `check` until it holds (bounded well below the test timeout). */
async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe.runIf(havePostgres)('postgres store only', () => {
  it('one sequencer holds the lease; when it dies, another replica takes over and integrates the queue in order', async () => {
    const db = await cluster!.createDatabase({ migrated: true });
    const leases: string[] = [];
    track(
      await openPostgresStore(db.brokerUrl, {
        migrate: false,
        // It does not come back by itself within the test: the survivor must take over.
        sequencerPollMs: 60_000,
        onSequencerLease: (held) => leases.push(`first ${held}`),
      }),
    );
    await until(() => leases.includes('first true'), 'the first store takes the lease');
    const second = track(
      await openPostgresStore(db.brokerUrl, {
        migrate: false,
        sequencerPollMs: 20,
        onSequencerLease: (held) => leases.push(`second ${held}`),
      }),
    );
    // Hold the chain lock the sequencer's batches take, so acknowledged events pile up in the queue.
    const blocker = new pg.Client({ connectionString: db.ownerUrl });
    blocker.on('error', () => {});
    await blocker.connect();
    await blocker.query('SELECT pg_advisory_lock(6909296, 2)');
    cleanups.push(() => blocker.end().catch(() => {}));
    const queued: QueuedAuditEvent[] = [];
    for (let i = 0; i < 30; i++)
      queued.push(await second.transaction((tx) => tx.appendAudit(draft({ data: { i } }), T0 + i)));
    expect(leases).toEqual(['first true']);
    expect(await second.readAudit()).toEqual([]);
    // The holder's connection ends, as when its process is killed: the server frees the lease.
    const killed = await cluster!.query(
      `SELECT pg_terminate_backend(pid) FROM pg_locks
       WHERE locktype = 'advisory' AND classid = 6909296 AND objid = 4 AND granted`,
      [],
      db.name,
    );
    expect(killed.rowCount).toBe(1);
    await blocker.query('SELECT pg_advisory_unlock(6909296, 2)');
    const sealed = await second.sequenced(queued.map((e) => e.id));
    expect(sealed.map((e) => e.data.i)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(leases).toEqual(['first true', 'first false', 'second true']);
    const events = await expectChainValid(second);
    expect(events).toHaveLength(30);
    expect((await second.treeHead()).size).toBe(30);
    const left = await cluster!.query('SELECT count(*)::int AS n FROM audit_queue', [], db.name);
    expect(left.rows[0]).toEqual({ n: 0 });
  });

  it('gives the broker role no UPDATE or DELETE on the audit tables (grants, not only triggers)', async () => {
    const db = await cluster!.createDatabase({ migrated: true });
    const client = new pg.Client({ connectionString: db.brokerUrl });
    await client.connect();
    try {
      for (const sql of [
        "UPDATE audit_events SET type = 'x'",
        'DELETE FROM audit_events',
        'TRUNCATE audit_events',
        "UPDATE audit_checkpoints SET hash = 'x'",
        'DELETE FROM audit_checkpoints',
        'DELETE FROM logins',
        'ALTER TABLE audit_events DISABLE TRIGGER USER',
        'DROP TABLE audit_events',
        'CREATE TABLE sneaky (x int)',
      ])
        await expect(client.query(sql), sql).rejects.toMatchObject({ code: '42501' });
    } finally {
      await client.end();
    }
  });

  it('fails closed when the database turns read-only (a failover to a standby) and recovers', async () => {
    const db = await cluster!.createDatabase({ migrated: true });
    const store = track(await openPostgresStore(db.brokerUrl, { migrate: false }));
    await append(store, [draft()]);
    await cluster!.query(
      `ALTER ROLE imp_broker IN DATABASE ${db.name} SET default_transaction_read_only = on`,
    );
    await cluster!.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND usename = $2',
      [db.name, 'imp_broker'],
    );
    try {
      // The first attempt may land on a connection the server just closed; both fail closed.
      for (let i = 0; i < 2; i++)
        await expect(append(store, [draft()])).rejects.toMatchObject({ code: 'IMP_AUDIT_UNAVAILABLE' });
      await expect(store.ping()).resolves.toBeUndefined();
    } finally {
      await cluster!.query(
        `ALTER ROLE imp_broker IN DATABASE ${db.name} RESET default_transaction_read_only`,
      );
    }
    await cluster!.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND usename = $2',
      [db.name, 'imp_broker'],
    );
    await append(store, [draft()]).catch(() => append(store, [draft()]));
    const events = await expectChainValid(store);
    expect(events).toHaveLength(2);
  });

  it('fails closed when the server cannot be reached', async () => {
    const db = await cluster!.createDatabase({ migrated: true });
    const store = track(await openPostgresStore(db.brokerUrl, { migrate: false }));
    await cluster!.query(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS false`);
    await cluster!.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [
      db.name,
    ]);
    try {
      await expect(append(store, [draft()])).rejects.toMatchObject({ code: 'IMP_AUDIT_UNAVAILABLE' });
      await expect(store.readAudit()).rejects.toMatchObject({ code: 'IMP_AUDIT_UNAVAILABLE' });
    } finally {
      await cluster!.query(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS true`);
    }
    await append(store, [draft()]);
  });
});
