/**
 * The sequencer of the PostgreSQL store: durability and order paid apart (Trillian's QueueLeaf /
 * sequencer split). An append is a plain INSERT into `audit_queue` inside the caller's transaction,
 * with no lock, so parallel transactions on every replica share PostgreSQL's WAL flushes; the caller
 * waits only for that COMMIT (fail-closed: no durable event, no operation). One sequencer per
 * database then moves queued events, in queue order, into `audit_events` with seq, prev and hash,
 * and their leaves into the RFC 9162 tree, in batches — each batch one transaction that also deletes
 * what it took from the queue, so an event is integrated exactly once.
 *
 * The lease is a session-level advisory lock on a dedicated connection. Every replica tries for it
 * on its clock; the server releases it when the holder's connection ends — a clean close, or a
 * replica killed outright — and the next try of a survivor takes over the queue as it stands.
 * Batches run on the lease's own connection, so a holder that lost its connection cannot commit one.
 * The holder is woken by its own commits, by NOTIFY from the other replicas' commits, and polls.
 */
import pg from 'pg';
import type { AuditDraft, AuditEvent } from '../core/audit/event.js';
import { GENESIS_PREV, sealEvent } from '../core/audit/event.js';
import type { Frontier } from '../core/audit/merkle.js';
import type { Clock } from '../core/clock.js';
import { integrateSql, loadFrontier } from './postgres-tree.js';

/** The channel other replicas NOTIFY after committing queued events (the holder LISTENs). */
export const QUEUE_CHANNEL = 'imp_audit_queue';
/** The channel the holder NOTIFYs with the new log size after each batch (every replica LISTENs). */
export const HEAD_CHANNEL = 'imp_audit_head';

/** Advisory lock keys: (namespace 'imp', purpose). Locks are per database. */
export const LOCK_NAMESPACE = 0x696d70;
export const LOCK = { migrate: 1, chain: 2, keys: 3, sequencer: 4 } as const;
/** Takes a transaction-level advisory lock (released at COMMIT or ROLLBACK). */
export const lockSql = (purpose: keyof typeof LOCK) =>
  `SELECT pg_advisory_xact_lock(${LOCK_NAMESPACE}, ${LOCK[purpose]})`;

/** Most queued events one batch integrates. */
export const BATCH = 500;

/** What the sequencer needs from its store. */
export interface SequencerOptions {
  /** Connection settings for the lease connection. */
  config: pg.ClientConfig;
  clock: Clock;
  /** How often a replica tries for the lease, and the holder looks at the queue unprompted (ms). */
  pollMs: number;
  onError: (message: string, error: Error) => void;
  /** The lease was taken (true) or lost (false). */
  onLease: (held: boolean) => void;
  /** Events just integrated, in seq order. */
  sequenced: (events: AuditEvent[]) => void;
}

/** One replica's part in the sequencer: contends for the lease and, while holding it, integrates. */
export class Sequencer {
  private client: pg.Client | null = null;
  private holding = false;
  private trying: Promise<void> | null = null;
  private draining: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private frontier: Frontier | null = null;
  private readonly cancelPoll: () => void;

  constructor(private readonly options: SequencerOptions) {
    this.cancelPoll = options.clock.every(options.pollMs, () => this.tick(), { unref: true });
    this.tick();
  }

  /** Does this replica hold the lease now? */
  get held(): boolean {
    return this.holding;
  }

  /** Resolves when the batch in progress (if any) has committed and been announced. */
  async idle(): Promise<void> {
    await this.draining;
  }

  /** Integrates what is queued now (when this replica holds the lease; the holder's own poll otherwise). */
  wake(): void {
    if (!this.holding || !this.client || this.stopped) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    const client = this.client;
    // One batch per turn: a full one, or commits that arrived meanwhile, start the next.
    this.draining = this.batch(client)
      .then((count) => {
        if (count === BATCH) this.again = true;
      })
      .catch((error: Error) => {
        this.frontier = null;
        this.options.onError('the audit sequencer could not integrate a batch; dropping its lease', error);
        this.drop(client);
      })
      .finally(() => {
        this.draining = null;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  /**
   * Stops contending. A holder first integrates everything queued (the queue it leaves is empty
   * unless other replicas keep committing); a replica that does not hold the lease tries once more,
   * so a lone process (`imp broker rotate-keys`) leaves nothing queued behind.
   */
  async stop(): Promise<void> {
    this.cancelPoll();
    await this.trying;
    if (!this.holding && this.client && !this.stopped) await this.tryLease(this.client).catch(() => {});
    this.stopped = true;
    while (this.draining) await this.draining;
    const client = this.client;
    if (this.holding && client) {
      // The last batches: everything committed before now.
      await this.drain(client).catch((error: Error) =>
        this.options.onError('the audit sequencer could not integrate its last batch', error),
      );
    }
    this.client = null;
    if (this.holding) this.options.onLease(false);
    this.holding = false;
    await client?.end().catch(() => {});
  }

  private tick(): void {
    if (this.stopped) return;
    if (this.holding) {
      this.wake();
      return;
    }
    if (this.trying) return;
    this.trying = this.contend().finally(() => {
      this.trying = null;
    });
  }

  private async contend(): Promise<void> {
    let client = this.client;
    if (!client) {
      client = new pg.Client({
        ...this.options.config,
        keepAlive: true,
        application_name: 'imp-sequencer',
        connectionTimeoutMillis: 5000,
        // A batch stuck behind a lock or a statement gives the lease up rather than hold the log still.
        lock_timeout: 30_000,
        statement_timeout: 60_000,
      });
      const lost = (error: Error) => {
        if (this.client !== client) return;
        if (!this.stopped) this.options.onError('the audit sequencer connection failed', error);
        this.drop(client!);
      };
      client.on('error', lost);
      client.on('end', () => lost(new Error('connection ended')));
      client.on('notification', (message) => {
        if (message.channel === QUEUE_CHANNEL) this.wake();
      });
      this.client = client;
      try {
        await client.connect();
      } catch (error) {
        lost(error as Error);
        return;
      }
    }
    await this.tryLease(client).catch((error: Error) => {
      this.options.onError('the audit sequencer could not try for its lease', error);
      this.drop(client);
    });
  }

  private async tryLease(client: pg.Client): Promise<void> {
    const result = await client.query<{ ok: boolean }>(
      `SELECT pg_try_advisory_lock(${LOCK_NAMESPACE}, ${LOCK.sequencer}) AS ok`,
    );
    if (!result.rows[0]?.ok || this.client !== client) return;
    await client.query(`LISTEN ${QUEUE_CHANNEL}`);
    this.holding = true;
    this.frontier = null;
    this.options.onLease(true);
    this.wake();
  }

  private drop(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = null;
    if (this.holding) this.options.onLease(false);
    this.holding = false;
    this.frontier = null;
    client.removeAllListeners('notification');
    client.end().catch(() => {});
  }

  /** Batches until the queue, as this connection sees it, is empty. */
  private async drain(client: pg.Client): Promise<void> {
    let count: number;
    do count = await this.batch(client);
    while (count === BATCH);
  }

  /** Integrates up to BATCH queued events in one transaction; returns how many. */
  private async batch(client: pg.Client): Promise<number> {
    // The chain lock as well: a replica of an older imp, still running through an upgrade, appends
    // under it, and the head read after it sees every such append.
    const results = (await client.query(
      `BEGIN; ${lockSql('chain')};
       SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1;
       SELECT n, body FROM audit_queue ORDER BY n LIMIT ${BATCH}`,
    )) as unknown as pg.QueryResult[];
    const headRow = results[2]?.rows[0] as { seq: string; hash: string } | undefined;
    const queued = (results[3]?.rows ?? []) as { n: string; body: string }[];
    if (queued.length === 0) {
      await client.query('ROLLBACK');
      return 0;
    }
    try {
      let seq = headRow ? Number(headRow.seq) : 0;
      let prev = headRow?.hash ?? GENESIS_PREV;
      if (this.frontier?.size !== seq) this.frontier = await loadFrontier(client, seq);
      const frontier = this.frontier;
      const events: AuditEvent[] = [];
      const statements: string[] = [];
      for (const row of queued) {
        const body = JSON.parse(row.body) as AuditDraft & { id: string; ts: string };
        const event = sealEvent(body, { seq: ++seq, id: body.id, ts: body.ts, prev });
        prev = event.hash;
        events.push(event);
        statements.push(integrateSql(frontier, event));
      }
      const rows = events.map((event) => `(${eventToRow(event).map(literal).join(', ')})`);
      await client.query(
        [
          `INSERT INTO audit_events (seq, id, ts, type, actor_sub, actor_email, tenant, environment, session, prev, hash, event) VALUES ${rows.join(', ')}`,
          ...statements,
          `DELETE FROM audit_queue WHERE n = ANY('{${queued.map((row) => row.n).join(',')}}'::bigint[])`,
          `SELECT pg_notify('${HEAD_CHANNEL}', '${seq}')`,
          'COMMIT',
        ].join(';\n'),
      );
      this.options.sequenced(events);
      return queued.length;
    } catch (error) {
      // The frontier may hold leaves that were rolled back.
      this.frontier = null;
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    }
  }
}

/** Seals a draft as far as the queue needs (id, ts; checked now, so a batch never meets a bad one). */
export function queuedBody(draft: AuditDraft, id: string, ts: string): string {
  const {
    seq: _seq,
    prev: _prev,
    hash: _hash,
    ...body
  } = sealEvent(draft, { seq: 1, id, ts, prev: GENESIS_PREV });
  return JSON.stringify(body);
}

const literal = (value: unknown): string =>
  value === null ? 'NULL' : typeof value === 'number' ? String(value) : pg.escapeLiteral(String(value));

// Filter columns only; `event` is the record. PostgreSQL text cannot hold U+0000.
const column = (value: string | null | undefined): string | null =>
  value === null || value === undefined ? null : value.replaceAll('\u0000', '\uFFFD');

function eventToRow(event: AuditEvent): unknown[] {
  const actor = event.actor as { sub?: unknown; email?: unknown } | null;
  return [
    event.seq,
    event.id,
    event.ts,
    column(event.type),
    typeof actor?.sub === 'string' ? column(actor.sub) : null,
    typeof actor?.email === 'string' ? column(actor.email) : null,
    column(event.tenant),
    column(event.environment),
    column(event.session),
    event.prev,
    event.hash,
    JSON.stringify(event),
  ];
}
