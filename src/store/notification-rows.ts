/**
 * The notification outbox, written once for both engines (like ./passkey-rows.ts). A row is added in
 * the same transaction as the audit event it announces, so a notification is never lost to a crash
 * or restart between the operation and its delivery; replicas claim a row by a conditional update
 * on its attempt count, so each try is made by exactly one broker.
 */
import type { SqlRunner } from './passkey-rows.js';
import type { NotificationChanges, NotificationRecord, StoreTx } from './types.js';

/** The outbox half of a StoreTx, over an engine's runner. */
export type NotificationTx = Pick<
  StoreTx,
  'insertNotification' | 'listDueNotifications' | 'updateNotification' | 'getNotification'
>;

/** The table, for both engines' migrations (BIGINT is an INTEGER to SQLite). */
export const NOTIFICATION_TABLE_SQL = `
  CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_error TEXT
  );
  CREATE INDEX notifications_due ON notifications (state, next_at);
`;

const COLUMNS: Record<keyof NotificationChanges, string> = {
  state: 'state',
  attempts: 'attempts',
  nextAt: 'next_at',
  lastError: 'last_error',
};

function toRecord(row: Record<string, unknown>): NotificationRecord {
  return {
    id: String(row.id),
    eventId: String(row.event_id),
    kind: String(row.kind),
    channel: String(row.channel),
    state: row.state as NotificationRecord['state'],
    attempts: Number(row.attempts),
    nextAt: Number(row.next_at),
    createdAt: Number(row.created_at),
    lastError: row.last_error === null || row.last_error === undefined ? null : String(row.last_error),
  };
}

/** The outbox operations of a transaction. */
export function notificationTx(run: SqlRunner): NotificationTx {
  return {
    insertNotification: async (n: NotificationRecord) => {
      await run(
        `INSERT INTO notifications (id, event_id, kind, channel, state, attempts, next_at, created_at, last_error)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [n.id, n.eventId, n.kind, n.channel, n.state, n.attempts, n.nextAt, n.createdAt, n.lastError],
      );
    },
    getNotification: async (id: string) => {
      const { rows } = await run('SELECT * FROM notifications WHERE id = ?', [id]);
      return rows[0] ? toRecord(rows[0]) : null;
    },
    listDueNotifications: async (nowMs: number, limit: number) => {
      const { rows } = await run(
        `SELECT * FROM notifications WHERE state = 'pending' AND next_at <= ? ORDER BY next_at, created_at LIMIT ${Math.max(1, Math.floor(limit))}`,
        [nowMs],
      );
      return rows.map(toRecord);
    },
    updateNotification: async (id: string, expectedAttempts: number, changes: NotificationChanges) => {
      const entries = Object.entries(changes) as [keyof NotificationChanges, unknown][];
      if (entries.length === 0) return false;
      const { changes: count } = await run(
        `UPDATE notifications SET ${entries.map(([key]) => `${COLUMNS[key]} = ?`).join(', ')}
         WHERE id = ? AND attempts = ? AND state = 'pending'`,
        [...entries.map(([, value]) => value), id, expectedAttempts],
      );
      return count === 1;
    },
  };
}
