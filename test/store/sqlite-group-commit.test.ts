/**
 * Group commit in the SQLite store: transactions queued together share one COMMIT, yet each stays
 * atomic on its own, none is acknowledged before its COMMIT is on disk, and a failed COMMIT fails
 * every member (fail-closed). The chain stays whole throughout.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/core/audit/event.js';
import { verifyChain } from '../../src/core/audit/verify-chain.js';
import { ConflictError } from '../../src/core/errors.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/types.js';
import { plainLogin } from '../helpers/store-records.js';
import { makeTempDir } from '../helpers/temp.js';

let file: string;
let store: Store;

beforeEach(async () => {
  file = join(makeTempDir('imp-group-commit-'), 'imp.db');
  store = openSqliteStore(file);
});

afterEach(async () => {
  await store.close();
});

// SQLite's one writer seals an event as it appends it: what the transaction got is the event as logged.
const append = (type: string) =>
  store.transaction(async (tx) => (await tx.appendAudit({ type, data: {} }, Date.now())) as AuditEvent);

/** What another process would see on disk right now. */
function onDisk(sql: string, ...params: unknown[]): unknown[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(sql).all(...params);
  } finally {
    db.close();
  }
}

describe('SQLite group commit', () => {
  it('100 concurrent transactions: fewer commits than transactions, a contiguous chain', async () => {
    const groups: number[] = [];
    store.onAppended((events) => groups.push(events.length));
    const events = await Promise.all(Array.from({ length: 100 }, (_, i) => append(`test.${i}`)));
    expect(events.map((e) => e.seq).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 100 }, (_, i) => i + 1),
    );
    expect(groups.reduce((a, b) => a + b, 0)).toBe(100);
    expect(groups.length).toBeLessThan(100);
    const result = await verifyChain(store.iterateAudit(), [], async () => {
      throw new Error('no checkpoints here');
    });
    expect(result).toMatchObject({ ok: true, events: 100 });
  });

  it('a member that throws is rolled back alone; the others in its group commit', async () => {
    const [first, failed, last] = await Promise.allSettled([
      store.transaction(async (tx) => {
        await tx.insertLogin(plainLogin('a'));
        return tx.appendAudit({ type: 'test.a' }, Date.now());
      }),
      store.transaction(async (tx) => {
        await tx.insertLogin(plainLogin('b'));
        await tx.appendAudit({ type: 'test.b' }, Date.now());
        throw new ConflictError('changed meanwhile');
      }),
      store.transaction(async (tx) => {
        await tx.insertLogin(plainLogin('c'));
        return tx.appendAudit({ type: 'test.c' }, Date.now());
      }),
    ]);
    expect(first.status).toBe('fulfilled');
    expect(failed).toMatchObject({ status: 'rejected', reason: expect.any(ConflictError) });
    expect(last.status).toBe('fulfilled');
    expect(onDisk('SELECT id FROM logins ORDER BY id')).toEqual([{ id: 'a' }, { id: 'c' }]);
    expect(onDisk('SELECT seq, type FROM audit_events ORDER BY seq')).toEqual([
      { seq: 1, type: 'test.a' },
      { seq: 2, type: 'test.c' },
    ]);
  });

  it('nothing is acknowledged before it is on disk', async () => {
    const seen = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        append(`test.${i}`).then((event) => onDisk('SELECT seq FROM audit_events WHERE id = ?', event.id)),
      ),
    );
    for (const rows of seen) expect(rows).toHaveLength(1);
  });

  it('a COMMIT that fails fails every member of the group, and the store carries on', async () => {
    // A deferred foreign key is checked only at COMMIT: a "poison" event makes the COMMIT fail.
    const direct = new Database(file);
    direct.exec(`
      CREATE TABLE parent (id INTEGER PRIMARY KEY);
      CREATE TABLE child (parent_id INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);
      CREATE TRIGGER poison AFTER INSERT ON audit_events WHEN NEW.type = 'test.poison'
        BEGIN INSERT INTO child VALUES (42); END;
    `);
    direct.close();
    const heard: number[] = [];
    store.onAppended((events) => heard.push(...events.map((e) => e.seq)));
    const outcomes = await Promise.allSettled([
      append('test.fine'),
      append('test.poison'),
      append('test.fine'),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(onDisk('SELECT count(*) AS n FROM audit_events')).toEqual([{ n: 0 }]);
    expect(heard).toEqual([]);
    const after = await append('test.after');
    expect(after.seq).toBe(1);
    expect(heard).toEqual([1]);
  });
});
