/**
 * Group commit of append-only transactions on the PostgreSQL store (issue #16). Most transactions a
 * broker runs under load write nothing but audit events — a proxied call's `action.requested` and
 * `action.completed`, refusals, audited reads. Each would otherwise take a pooled connection and pay
 * a round trip, a statement and a COMMIT of its own; here those that arrive while earlier groups are
 * being written share one multi-row INSERT into `audit_queue`, in one statement (its own
 * transaction), on one connection.
 *
 * Guarantees are the single transaction's: every member waits for the statement's success — the
 * server's COMMIT, durable as the server commits (synchronous_commit) — before it is acknowledged;
 * a failure fails every member with AuditUnavailableError and writes none of their events (one
 * statement is atomic). Events of one member stay together and in order; what the group adds is
 * only that members' events are queued next to each other's.
 */
import type pg from 'pg';
import { AuditUnavailableError } from '../core/errors.js';

interface Member {
  /** The escaped `(body)` tuples of this transaction's events, in order. */
  rows: string[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** The most events one group's INSERT carries (a bound on the statement's size). */
const MAX_GROUP_ROWS = 1000;

export class AppendGroups {
  private readonly waiting: Member[] = [];
  private running = 0;

  /**
   * @param pool where each group takes its connection
   * @param parallel how many groups may be in flight at once: one starts at once when fewer are,
   * otherwise arrivals wait and go together in the next (the server also shares WAL flushes
   * between the groups in flight)
   */
  constructor(
    private readonly pool: pg.Pool,
    private readonly parallel: number,
  ) {}

  /** Makes `rows` durable in `audit_queue`; resolves once committed. */
  commit(rows: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ rows, resolve, reject });
      this.start();
    });
  }

  private start(): void {
    while (this.running < this.parallel && this.waiting.length > 0) {
      const group: Member[] = [];
      let size = 0;
      while (
        this.waiting.length > 0 &&
        (group.length === 0 || size + this.waiting[0]!.rows.length <= MAX_GROUP_ROWS)
      ) {
        const member = this.waiting.shift()!;
        group.push(member);
        size += member.rows.length;
      }
      this.running++;
      void this.write(group).finally(() => {
        this.running--;
        this.start();
      });
    }
  }

  private async write(group: Member[]): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      for (const member of group) member.reject(new AuditUnavailableError(error));
      return;
    }
    let broken: Error | undefined;
    const onError = (error: Error) => {
      broken = error;
    };
    client.on('error', onError);
    try {
      await client.query(
        `INSERT INTO audit_queue (body) VALUES ${group.flatMap((member) => member.rows).join(', ')}`,
      );
      for (const member of group) member.resolve();
    } catch (error) {
      // Not written, for any member: nothing may proceed.
      broken ??= error instanceof Error ? error : new Error(String(error));
      for (const member of group) member.reject(new AuditUnavailableError(error));
    } finally {
      client.off('error', onError);
      // A failed statement leaves no transaction open; the connection is discarded anyway, in case
      // the failure was the connection's.
      client.release(broken);
    }
  }
}
