/**
 * The SQLite store's durability off the event loop: a group's COMMIT writes the WAL without syncing
 * it, and nothing about the group leaves the store — a member's promise, an onAppended call, a read
 * of its rows — before the fdatasync that covers it is done. The sync is injected here so a test can
 * hold it or fail it; the default one is checked to sync the WAL file itself.
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/core/audit/event.js';
import { verifyChain } from '../../src/core/audit/verify-chain.js';
import { AuditUnavailableError } from '../../src/core/errors.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { fdatasyncOffLoop } from '../../src/store/sqlite-durability.js';
import type { Store } from '../../src/store/types.js';
import { plainLogin } from '../helpers/store-records.js';
import { makeTempDir } from '../helpers/temp.js';

/** An fdatasync the test releases or fails by hand, one call at a time. */
function heldSync() {
  const calls: { fd: number; release: () => void; fail: (error: Error) => void }[] = [];
  let waiting: (() => void) | null = null;
  const sync = (fd: number) =>
    new Promise<void>((resolve, reject) => {
      calls.push({ fd, release: resolve, fail: reject });
      waiting?.();
    });
  /** Resolves once the sync has been asked for `n` times in all. */
  const called = async (n: number) => {
    while (calls.length < n) await new Promise<void>((resolve) => (waiting = resolve));
  };
  return { sync, calls, called };
}

/** Lets every queued callback, I/O completion and timer of this instant run a few times over. */
async function turns(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Tracks whether a promise has settled, and how. */
function watch<T>(promise: Promise<T>) {
  const state: { settled: 'no' | 'resolved' | 'rejected'; value?: T; error?: unknown } = { settled: 'no' };
  promise.then(
    (value) => Object.assign(state, { settled: 'resolved', value }),
    (error: unknown) => Object.assign(state, { settled: 'rejected', error }),
  );
  return state;
}

const open: Store[] = [];
afterEach(async () => {
  for (const store of open.splice(0)) await store.close().catch(() => {});
});

function storeWith(sync: (fd: number) => Promise<void>) {
  const file = join(makeTempDir('imp-durability-'), 'imp.db');
  const store = openSqliteStore(file, { fdatasync: sync });
  open.push(store);
  return { file, store };
}

/** What another process would see in the file right now (committed, whether synced or not). */
function committedOnDisk(file: string, sql: string): unknown[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(sql).all();
  } finally {
    db.close();
  }
}

describe('SQLite: acknowledged only once durable', () => {
  it('a held sync keeps the group pending: no promise settles, no listener hears, no read of what it wrote returns', async () => {
    const held = heldSync();
    const { file, store } = storeWith(held.sync);
    const heard: AuditEvent[] = [];
    store.onAppended((events) => heard.push(...events));
    const write = watch(
      store.transaction(async (tx) => {
        await tx.insertLogin(plainLogin('a'));
        return tx.appendAudit({ type: 'test.held', data: {} }, Date.now());
      }),
    );
    await held.called(1);
    await turns();
    // The COMMIT happened (another connection sees the rows), yet nobody has been told.
    expect(committedOnDisk(file, 'SELECT type FROM audit_events')).toEqual([{ type: 'test.held' }]);
    expect(write.settled).toBe('no');
    expect(heard).toEqual([]);
    const audit = watch(store.readAudit());
    const read = watch(store.getLogin('a'));
    // A read of a table no undurable group wrote to has nothing to wait for.
    const untouched = watch(store.listSessions({}));
    await turns();
    expect(read.settled).toBe('no');
    expect(audit.settled).toBe('no');
    expect(untouched).toMatchObject({ settled: 'resolved', value: [] });

    held.calls[0]!.release();
    await turns();
    expect(write.settled).toBe('resolved');
    expect(heard.map((e) => e.type)).toEqual(['test.held']);
    expect(read).toMatchObject({ settled: 'resolved', value: { id: 'a' } });
    expect((audit.value ?? []).map((e) => e.type)).toEqual(['test.held']);
  });

  it('a read made while a group is open (a member waits on I/O) sees committed rows only, not the open group', async () => {
    const { store } = storeWith(fdatasyncOffLoop);
    await store.transaction((tx) => tx.insertLogin(plainLogin('before')));
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    let inserted: () => void = () => {};
    const insertedYet = new Promise<void>((resolve) => (inserted = resolve));
    const write = store.transaction(async (tx) => {
      await tx.insertLogin(plainLogin('open'));
      inserted();
      await gate; // the group stays open, its row written but not committed
    });
    await insertedYet;
    // Between groups reads go through the writer's connection (warm cache); during one they must
    // not, or they would see the open group's row.
    expect(await store.getLogin('open')).toBeNull();
    expect(await store.getLogin('before')).toMatchObject({ id: 'before' });
    release();
    await write;
    expect(await store.getLogin('open')).toMatchObject({ id: 'open' });
  });

  it('a lazy write rides in the next group, first: one commit and one sync for both, acknowledged only then', async () => {
    const held = heldSync();
    const { file, store } = storeWith(held.sync);
    const lazy = watch(
      store.transaction((tx) => tx.appendAudit({ type: 'test.lazy', data: {} }, Date.now()), { lazy: true }),
    );
    const now = watch(store.transaction((tx) => tx.appendAudit({ type: 'test.now', data: {} }, Date.now())));
    await held.called(1);
    await turns();
    expect(held.calls).toHaveLength(1);
    expect(committedOnDisk(file, 'SELECT type FROM audit_events ORDER BY seq')).toEqual([
      { type: 'test.lazy' },
      { type: 'test.now' },
    ]);
    expect([lazy.settled, now.settled]).toEqual(['no', 'no']);
    held.calls[0]!.release();
    await turns();
    expect([lazy.settled, now.settled]).toEqual(['resolved', 'resolved']);
  });

  it('a lazy write alone is written soon; an audit read made meanwhile includes it; close writes what is held', async () => {
    const { file, store } = storeWith(fdatasyncOffLoop);
    const first = store.transaction((tx) => tx.appendAudit({ type: 'test.lazy', data: {} }, Date.now()), {
      lazy: true,
    });
    expect((await store.readAudit()).map((e) => e.type)).toEqual(['test.lazy']);
    await first;
    const alone = store.transaction((tx) => tx.appendAudit({ type: 'test.alone', data: {} }, Date.now()), {
      lazy: true,
    });
    await alone; // nothing else comes: it is written on its own, within a few ms
    void store.transaction((tx) => tx.appendAudit({ type: 'test.held', data: {} }, Date.now()), {
      lazy: true,
    });
    open.splice(open.indexOf(store), 1); // closed here, not again after the test
    await store.close();
    expect(committedOnDisk(file, 'SELECT type FROM audit_events ORDER BY seq')).toEqual([
      { type: 'test.lazy' },
      { type: 'test.alone' },
      { type: 'test.held' },
    ]);
  });

  it('the next group commits and starts its own sync while one runs; acknowledgements follow the order syncs began', async () => {
    const held = heldSync();
    const { store } = storeWith(held.sync);
    const order: string[] = [];
    const append = (type: string) =>
      store
        .transaction((tx) => tx.appendAudit({ type, data: {} }, Date.now()))
        .then((event) => {
          order.push(type);
          return event;
        });
    const first = watch(append('test.first'));
    await held.called(1);
    const second = watch(append('test.second'));
    await held.called(2);
    const third = watch(append('test.third'));
    await turns();
    // Two syncs at most: the third group waits for one of them to end before its own starts.
    expect(held.calls).toHaveLength(2);
    // The second sync ends first: it covers the first group too, but an error on the file could
    // still be reported to the first sync alone, so nothing is acknowledged yet.
    held.calls[1]!.release();
    await held.called(3);
    await turns();
    expect([first.settled, second.settled, third.settled]).toEqual(['no', 'no', 'no']);
    held.calls[0]!.release();
    await turns();
    expect([first.settled, second.settled, third.settled]).toEqual(['resolved', 'resolved', 'no']);
    held.calls[2]!.release();
    await turns();
    expect(third.settled).toBe('resolved');
    expect(order).toEqual(['test.first', 'test.second', 'test.third']);
  });

  it('an earlier sync that fails fails the groups a later, successful sync covered', async () => {
    const held = heldSync();
    const { store } = storeWith(held.sync);
    const first = watch(store.transaction((tx) => tx.appendAudit({ type: 'test.a', data: {} }, Date.now())));
    await held.called(1);
    const second = watch(store.transaction((tx) => tx.appendAudit({ type: 'test.b', data: {} }, Date.now())));
    await held.called(2);
    held.calls[1]!.release();
    await turns();
    held.calls[0]!.fail(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    await turns();
    expect(first).toMatchObject({ settled: 'rejected', error: expect.any(AuditUnavailableError) });
    expect(second).toMatchObject({ settled: 'rejected', error: expect.any(AuditUnavailableError) });
  });

  it('a failed sync rejects every member not yet durable, then the store refuses writes and reads', async () => {
    const held = heldSync();
    const { store } = storeWith(held.sync);
    const durable = await Promise.all([
      // SQLite's one writer seals an event as it appends it: what the transaction got is the event as logged.
      store.transaction(
        async (tx) => (await tx.appendAudit({ type: 'test.ok', data: {} }, Date.now())) as AuditEvent,
      ),
      (async () => {
        await held.called(1);
        held.calls[0]!.release();
      })(),
    ]);
    expect(durable[0].seq).toBe(1);

    const group = [1, 2, 3].map((i) =>
      watch(store.transaction((tx) => tx.appendAudit({ type: `test.lost.${i}`, data: {} }, Date.now()))),
    );
    await held.called(2);
    const behind = watch(
      store.transaction((tx) => tx.appendAudit({ type: 'test.behind', data: {} }, Date.now())),
    );
    await turns();
    held.calls[1]!.fail(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    await turns();
    const asked = held.calls.length;
    for (const member of [...group, behind]) {
      expect(member.settled).toBe('rejected');
      expect(member.error).toBeInstanceOf(AuditUnavailableError);
      expect((member.error as AuditUnavailableError).code).toBe('IMP_AUDIT_UNAVAILABLE');
    }
    await expect(store.transaction(async () => 'anything')).rejects.toBeInstanceOf(AuditUnavailableError);
    await expect(store.getLogin('x')).rejects.toBeInstanceOf(AuditUnavailableError);
    await expect(store.readAudit()).rejects.toBeInstanceOf(AuditUnavailableError);
    await expect(store.ping()).rejects.toBeInstanceOf(AuditUnavailableError);
    // Nothing was asked of the disk after the failure.
    expect(held.calls).toHaveLength(asked);
  });

  it('the default sync flushes the WAL file itself, and the chain stays whole', async () => {
    const fds: number[] = [];
    const { file, store } = storeWith(async (fd) => {
      fds.push(fd);
      await fdatasyncOffLoop(fd);
    });
    const events = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        store.transaction(
          async (tx) => (await tx.appendAudit({ type: `test.${i}`, data: {} }, Date.now())) as AuditEvent,
        ),
      ),
    );
    expect(events.map((e) => e.seq).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
    expect(fds.length).toBeGreaterThan(0);
    expect(fds.length).toBeLessThan(50);
    const wal = statSync(`${file}-wal`);
    for (const fd of new Set(fds)) expect(fstatSync(fd).ino).toBe(wal.ino);
    const result = await verifyChain(store.iterateAudit(), [], async () => {
      throw new Error('no checkpoints here');
    });
    expect(result).toMatchObject({ ok: true, events: 50 });
  });

  it('checkpoints copy the WAL into the database file and keep the WAL from growing without end', async () => {
    const { file, store } = storeWith(fdatasyncOffLoop);
    const dbBefore = statSync(file).size;
    // SQLite counts each time it starts the WAL over from the top in the WAL header (bytes 12–15, the
    // checkpoint sequence number). Without checkpoints that copy everything (checkpoint starvation
    // under a steady load) it never would: the WAL would hold every page ever written.
    const restarts = () => {
      const header = Buffer.alloc(32);
      const fd = openSync(`${file}-wal`, 'r');
      try {
        return readSync(fd, header, 0, 32, 0) === 32 ? header.readUInt32BE(12) : 0;
      } finally {
        closeSync(fd);
      }
    };
    // Rounds of 8 concurrent writers, each a login and its audit event (~1,000 WAL pages per 40
    // rounds), until the WAL has been started over twice: a load that keeps writing throughout. How
    // many rounds that takes depends on when the checkpoint thread gets a core, so the bound is loose.
    let rounds = 0;
    const first = restarts();
    while (restarts() - first < 2 && rounds < 2000) {
      await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          store.transaction(async (tx) => {
            await tx.insertLogin({ ...plainLogin(`r${rounds}-${i}`), groups: ['x'.repeat(500)] });
            return tx.appendAudit({ type: 'test.load', data: { round: rounds, i } }, Date.now());
          }),
        ),
      );
      rounds++;
    }
    expect(restarts() - first).toBeGreaterThanOrEqual(2);
    expect(statSync(file).size).toBeGreaterThan(dbBefore);
    expect(await store.readAudit({ limit: 1, newest: true })).toMatchObject([{ seq: rounds * 8 }]);
  });

  it('close leaves everything in the database file: a fresh open finds it all', async () => {
    const { file, store } = storeWith(fdatasyncOffLoop);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        store.transaction((tx) => tx.appendAudit({ type: `test.${i}`, data: {} }, Date.now())),
      ),
    );
    await store.close();
    open.splice(open.indexOf(store), 1);
    expect(committedOnDisk(file, 'SELECT count(*) AS n FROM audit_events')).toEqual([{ n: 20 }]);
    const again = openSqliteStore(file);
    open.push(again);
    expect((await again.readAudit()).map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });
});
