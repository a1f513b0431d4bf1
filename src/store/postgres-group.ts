/**
 * Group commit for the PostgreSQL store. Every write transaction must hold the chain lock (one
 * audit head across replicas, check-then-write rules that hold across replicas), and each one used
 * to pay for it alone: a lock hand-over, a BEGIN and a COMMIT with its WAL flush. Transactions a
 * replica queues while its previous group runs now share all three: one BEGIN, one lock, one
 * COMMIT, each member in a SAVEPOINT of its own (a failing member is rolled back alone, as on
 * SQLite). A second replica then adds batches instead of contention.
 *
 * None is acknowledged (its promise settled) before the group's COMMIT returned; if the COMMIT
 * fails, every member fails (fail-closed: no audit write, no operation).
 */
import type pg from 'pg';
import type { AuditEvent } from '../core/audit/event.js';
import type { Frontier } from '../core/audit/merkle.js';
import { AuditUnavailableError, ImpError } from '../core/errors.js';
import type { StoreTx } from './types.js';

/** A transaction in progress: the chain head it sees, what it appended, statements not yet sent. */
export interface TxState {
  head: { seq: number; hash: string } | null;
  appended: AuditEvent[];
  /** Statements (audit rows, tree nodes, the member's SAVEPOINT) sent with the next round trip. */
  pending: string[];
  /** The tree's right edge, read at the group's first append. */
  frontier: Frontier | null;
}

/** One queued transaction. */
export interface GroupMember {
  fn: (tx: StoreTx) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** Most transactions one COMMIT carries: bounds how long the chain lock is held for other replicas. */
export const MAX_GROUP = 64;

const SAVEPOINT = 'SAVEPOINT imp_tx';
const RELEASE = 'RELEASE SAVEPOINT imp_tx';

/**
 * Runs `group` in one transaction on `client`, after `begin` (which starts it, takes the chain lock
 * and reads the head). `committed` hears the appended events after COMMIT, before any member's
 * promise settles. Throws (every member already rejected) when the transaction as a whole failed;
 * the caller then rolls back and discards the connection.
 */
export async function runGroup(
  client: pg.PoolClient,
  group: GroupMember[],
  begin: () => Promise<TxState>,
  makeTx: (state: TxState) => StoreTx,
  toStoreError: (error: unknown) => unknown,
  committed: (appended: AuditEvent[]) => void,
): Promise<void> {
  let state: TxState;
  try {
    state = await begin();
  } catch (error) {
    const failure = toStoreError(error);
    for (const member of group) member.reject(failure);
    throw error;
  }
  const done: { member: GroupMember; result: unknown }[] = [];
  const tx = makeTx(state);
  for (const [index, member] of group.entries()) {
    const before = { head: state.head, appended: state.appended.length };
    // Sent with the member's first statement: no round trip of its own.
    state.pending.push(SAVEPOINT);
    try {
      const result = await member.fn(tx);
      if (state.pending.at(-1) === SAVEPOINT) {
        // It sent nothing and queued nothing: no savepoint needed.
        state.pending.pop();
      } else {
        // Its audit rows go now (with the RELEASE), so a failure among them is its own and rolls
        // back only it.
        try {
          await client.query([...state.pending.splice(0), RELEASE].join(';\n'));
        } catch (error) {
          throw state.appended.length > before.appended ? new AuditUnavailableError(error) : error;
        }
      }
      done.push({ member, result });
    } catch (error) {
      // Its SAVEPOINT still queued: nothing of it reached the server.
      const unsent = state.pending.includes(SAVEPOINT);
      state.pending.splice(0);
      state.head = before.head;
      state.appended.splice(before.appended);
      // The in-memory frontier may hold the rolled-back leaves: read it again at the next append.
      state.frontier = null;
      member.reject(error instanceof ImpError ? error : toStoreError(error));
      if (!unsent) {
        try {
          await client.query(`ROLLBACK TO SAVEPOINT imp_tx; ${RELEASE}`);
        } catch (rollbackError) {
          // The connection or the transaction is gone: so are the members before, and those after
          // cannot run on it.
          const lost = new AuditUnavailableError(rollbackError);
          for (const other of [...done.map((d) => d.member), ...group.slice(index + 1)]) other.reject(lost);
          throw rollbackError;
        }
      }
    }
  }
  try {
    await client.query([...state.pending.splice(0), 'COMMIT'].join(';\n'));
  } catch (error) {
    const failure = state.appended.length > 0 ? new AuditUnavailableError(error) : toStoreError(error);
    for (const { member } of done) member.reject(failure);
    throw error;
  }
  if (state.appended.length > 0) committed(state.appended);
  for (const { member, result } of done) member.resolve(result);
}
