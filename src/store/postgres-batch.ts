/**
 * Fewer round trips for a PostgreSQL transaction (issue #16: a session open took nine). node-postgres
 * sends one query at a time per connection and waits for its answer, so every statement costs a
 * round trip: a write on each side of the socket, and a wake-up of the server's backend and of the
 * broker. Most of the time of a short transaction went there, not into executing SQL.
 *
 * So a transaction's statements travel together, in order, as one multi-statement query (the simple
 * protocol, one round trip):
 *   - statements whose answer nobody reads (BEGIN, audit queue INSERTs, key locks, inserts whose
 *     only outcome is success or failure) wait in the queue for the next statement or the COMMIT;
 *   - statements issued in the same turn of the event loop (`Promise.all([tx.a(), tx.b()])`) share
 *     one query, each caller getting its own result.
 * The simple protocol takes no parameters, so values are written into the text as literals: quoted
 * and escaped (pg's escapeLiteral), which PostgreSQL types exactly as it types an untyped parameter
 * (both start as `unknown` and take the type the context needs). A value that cannot be written so
 * (a NUL character, which the protocol's text cannot carry; a type not listed in `literal`) sends
 * what is queued, then that statement with parameters, as before.
 *
 * Nothing about the transaction changes: the statements run in the order they were issued, in the
 * one transaction, and the COMMIT that makes them durable is still what the caller waits for. A
 * failure anywhere fails every statement of the query still waiting for its answer (the transaction
 * is aborted anyway; the caller rolls back). A query that carried audit events and failed is
 * AuditUnavailableError: those events are not durable, so nothing may proceed.
 */
import pg from 'pg';
import { AuditUnavailableError } from '../core/errors.js';

type Row = Record<string, unknown>;

interface Entry {
  text: string;
  /** The caller waiting for this statement's result; none for a deferred one. */
  answer?: { resolve: (result: pg.QueryResult) => void; reject: (error: unknown) => void };
  /** An audit queue INSERT: the escaped `(body)` tuple it inserts. */
  event?: string;
}

/** A transaction in progress on one connection. */
export interface TxState {
  /** Statements not sent yet, in the order issued (BEGIN first). */
  queue: Entry[];
  /** Whether BEGIN has been sent. */
  begun: boolean;
  /** Audit events this transaction queued (sent or not). */
  queued: number;
  /** A send is scheduled for the end of this turn. */
  scheduled: boolean;
}

export function newTxState(): TxState {
  return { queue: [{ text: 'BEGIN' }], begun: false, queued: 0, scheduled: false };
}

/** What a transaction's statements go through. */
export interface TxStatements {
  /** Runs a statement and answers its result (sent with whatever is queued, in one round trip). */
  query<R extends pg.QueryResultRow = Row>(sql: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Queues a statement whose result nobody reads; its failure fails the next statement or the COMMIT. */
  defer(sql: string, values?: unknown[]): Promise<void>;
  /** Queues an audit queue INSERT of `body` (an escaped literal). */
  event(body: string): void;
  /** Sends what is queued followed by `last` (COMMIT); resolves when all of it ran. */
  finish(last: string): Promise<void>;
}

/**
 * The transaction's `(body)` tuples when it holds nothing but audit queue INSERTs and nothing has
 * been sent yet (it can join a group of such transactions: postgres-appends.ts); otherwise null.
 */
export function appendOnly(state: TxState): string[] | null {
  if (state.begun) return null;
  const rows: string[] = [];
  for (const entry of state.queue) {
    if (entry.event !== undefined) rows.push(entry.event);
    else if (entry.text !== 'BEGIN' || entry.answer) return null;
  }
  return rows;
}

/**
 * The statements of the transaction `state`, on the connection `connect` gives (taken at the first
 * send; the same promise each call, so sends keep their order).
 */
export function txStatements(connect: () => Promise<pg.PoolClient>, state: TxState): TxStatements {
  const send = (last?: string): Promise<void> => {
    state.scheduled = false;
    const entries = state.queue.splice(0);
    if (last) entries.push({ text: last });
    if (entries.length === 0) return Promise.resolve();
    const events = entries.some((entry) => entry.event !== undefined);
    state.begun = true;
    // One Result per statement, in order (pg answers a lone statement with the Result itself).
    const text = entries.map((entry) => entry.text).join(';\n');
    const sent = connect().then(
      (client) => client.query(text) as unknown as Promise<pg.QueryResult | pg.QueryResult[]>,
    );
    return sent.then(
      (answer) => {
        const results = Array.isArray(answer) ? answer : [answer];
        entries.forEach((entry, i) => {
          entry.answer?.resolve(results[i]!);
        });
      },
      (error: unknown) => {
        const failure =
          events && !(error instanceof AuditUnavailableError) ? new AuditUnavailableError(error) : error;
        for (const entry of entries) entry.answer?.reject(failure);
        throw failure;
      },
    );
  };
  const schedule = () => {
    if (state.scheduled) return;
    state.scheduled = true;
    // The callers' errors arrive through their own promises; this one only sends.
    queueMicrotask(() => {
      if (state.scheduled) send().catch(() => {});
    });
  };
  const query = <R extends pg.QueryResultRow = Row>(
    sql: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> => {
    const text = inlineSql(sql, values);
    if (text === null) {
      // Queued first (order kept: pg sends queries in the order they were made), then this with parameters.
      const before = send();
      const result = connect().then((client) => client.query<R>(sql, values));
      return before.then(
        () => result,
        (error: unknown) => {
          result.catch(() => {});
          throw error;
        },
      );
    }
    return new Promise((resolve, reject) => {
      state.queue.push({ text, answer: { resolve: resolve as (r: pg.QueryResult) => void, reject } });
      schedule();
    });
  };
  return {
    query,
    defer: async (sql, values) => {
      const text = inlineSql(sql, values);
      if (text === null) await query(sql, values);
      else state.queue.push({ text });
    },
    event: (body) => {
      state.queue.push({ text: `INSERT INTO audit_queue (body) VALUES (${body})`, event: `(${body})` });
      state.queued++;
    },
    finish: (last) => send(last),
  };
}

/**
 * `sql` with `$n` replaced by the literal of `values[n-1]`, or null when a value cannot be written
 * as a literal. Our statements hold no `$n` inside quoted text or dollar quotes, and the literals
 * written in are not scanned again (one pass).
 */
export function inlineSql(sql: string, values: readonly unknown[] = []): string | null {
  const literals = values.map(literal);
  if (literals.some((text) => text === null)) return null;
  return sql.replace(/\$(\d+)/g, (whole, n: string) => literals[Number(n) - 1] ?? whole);
}

/**
 * A value as pg would send it as a text parameter, quoted: null is NULL; numbers, bigints and
 * booleans their text; arrays of those and strings an array literal (pg's own format); bytes hex.
 */
export function literal(value: unknown): string | null {
  if (value === null || value === undefined) return 'NULL';
  const text = textOf(value);
  if (text === null || text.includes('\u0000')) return null;
  return pg.escapeLiteral(text);
}

function textOf(value: unknown): string | null {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
      return Number.isFinite(value) ? String(value) : null;
    case 'bigint':
    case 'boolean':
      return String(value);
    default:
      break;
  }
  if (value instanceof Uint8Array) return `\\x${Buffer.from(value).toString('hex')}`;
  if (Array.isArray(value)) {
    const items: string[] = [];
    for (const item of value) {
      if (item === null || item === undefined) {
        items.push('NULL');
        continue;
      }
      if (typeof item !== 'string' && typeof item !== 'number' && typeof item !== 'bigint') return null;
      items.push(`"${String(item).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`);
    }
    return `{${items.join(',')}}`;
  }
  return null;
}
