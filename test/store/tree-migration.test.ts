/**
 * Migration: a log written before the tree existed (events and JWS checkpoints, schema version 4)
 * becomes the first leaves of the tree when the store opens; appends continue the same tree.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect, it } from 'vitest';
import { eventLeafHash } from '../../src/core/audit/log-tree.js';
import { rootFromLeafHashes } from '../../src/core/audit/merkle.js';
import { openSqliteStore } from '../../src/store/sqlite.js';

const hex = (h: Uint8Array) => Buffer.from(h).toString('hex');

it('integrates a pre-tree SQLite log on open, then keeps appending to the same tree', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'imp-migrate-')), 'imp.db');
  const store = openSqliteStore(file);
  for (let i = 0; i < 11; i++)
    await store.transaction((tx) =>
      tx.appendAudit({ type: 'auth.login', data: { i } }, Date.UTC(2026, 0, 1, 0, 0, i)),
    );
  await store.close();
  // Back to the schema before the tree: as a broker of the previous release left it.
  const db = new Database(file);
  db.exec(
    'DROP TABLE audit_tree; DROP TABLE audit_notes; DROP TABLE audit_cosignatures; ' +
      // and the migrations after it (6: passkeys, 7: notifications, 8: session indexes), which run again on open
      'DROP TABLE passkeys; DROP TABLE passkey_ceremonies; DROP TABLE notifications; ' +
      'DROP INDEX sessions_person_auth_time; DROP INDEX sessions_person_tenant; PRAGMA user_version = 4',
  );
  db.close();

  const reopened = openSqliteStore(file);
  const before = await reopened.readAudit();
  expect(before).toHaveLength(11);
  const head = await reopened.treeHead();
  expect(head.size).toBe(11);
  expect(hex(head.root)).toBe(hex(rootFromLeafHashes(before.map(eventLeafHash))));
  await reopened.transaction((tx) => tx.appendAudit({ type: 'auth.logout' }, Date.UTC(2026, 0, 2)));
  const after = await reopened.readAudit();
  expect(hex((await reopened.treeHead()).root)).toBe(hex(rootFromLeafHashes(after.map(eventLeafHash))));
  await reopened.close();
});
