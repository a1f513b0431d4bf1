/**
 * The PostgreSQL store: several broker replicas share one database.
 *
 * Every `transaction` runs BEGIN … COMMIT on a pooled connection of its own, in parallel with the
 * others (PostgreSQL shares WAL flushes between concurrent commits). Its audit events are INSERTs
 * into `audit_queue`, durable with the COMMIT the caller waits for; one sequencer per database
 * (postgres-sequencer.ts: a lease any replica takes over) gives them seq, prev, hash and their tree
 * leaves in batches soon after. Check-then-write rules that must hold across replicas take a lock
 * on their own key (`lockKey`) or rely on a conditional UPDATE or a unique index; nothing takes a
 * lock shared by every write any more. Reads outside transactions (StoreReads, getSession, …) see
 * committed rows and sequenced events only.
 *
 * Fail-closed: connection, permission, read-only, timeout and resource errors become
 * AuditUnavailableError (HTTP 503): the operation did not happen.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import type { Checkpoint } from '../core/audit/checkpoint.js';
import type { AuditDraft, AuditEvent } from '../core/audit/event.js';
import type { StoredNote } from '../core/audit/log-tree.js';
import type { Hash, TreeNode } from '../core/audit/merkle.js';
import type { Clock } from '../core/clock.js';
import { AuditUnavailableError, ConfigError, ImpError } from '../core/errors.js';
import type { RecordingChunk } from '../core/recording/asciicast.js';
import type { KeyStorage, StoredKey } from './key-storage.js';
import { notificationTx } from './notification-rows.js';
import { passkeyTx, type SqlRunner } from './passkey-rows.js';
import { AppendGroups } from './postgres-appends.js';
import { appendOnly, newTxState, type TxStatements, txStatements } from './postgres-batch.js';
import { POSTGRES_MIGRATIONS } from './postgres-schema.js';
import { HEAD_CHANNEL, lockSql, QUEUE_CHANNEL, queuedBody, Sequencer } from './postgres-sequencer.js';
import { integrateSql, listNotes, loadFrontier, readNodes, treeHead, treeSize } from './postgres-tree.js';
import { rowToSession, sessionColumn, sessionToRow, sessionValue } from './session-rows.js';
import type {
  AuditQuery,
  LoginRecord,
  QueuedAuditEvent,
  SessionQuery,
  SessionRecord,
  SessionReview,
  SessionState,
  Store,
  StoreReads,
  StoreTx,
} from './types.js';
import { STORE_READS } from './types.js';

type Row = Record<string, unknown>;
type Queryable = {
  query<R extends pg.QueryResultRow = Row>(sql: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
};

/** The schema version this build of imp migrates to. */
export const POSTGRES_SCHEMA_VERSION = POSTGRES_MIGRATIONS.length;

/** The NOTIFY channel carrying ids of sessions whose state changed (see postgres-schema.ts). */
export const SESSION_CHANNEL = 'imp_sessions';

/** Options for {@link openPostgresStore}. */
export interface PostgresStoreOptions {
  /** Environment for PGSSLMODE, PGSSLROOTCERT, PGSSLCERT, PGSSLKEY (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Pool size (default 16). */
  maxConnections?: number;
  /**
   * How many groups of append-only transactions may be written at once (default 2): transactions
   * that write nothing but audit events and arrive meanwhile share the next group's one INSERT.
   */
  appendGroups?: number;
  /** Ignored (transactions run in parallel, one pooled connection each); kept so existing callers compile. */
  maxConcurrentTransactions?: number;
  /** How long a transaction waits for a row or key lock before failing closed (ms, default 10 000). */
  lockTimeoutMs?: number;
  /** The clock the sequencer polls and waits on (default the system clock). */
  clock?: Clock;
  /** How often the sequencer looks at the queue unprompted, and other replicas try for its lease (ms, default 500). */
  sequencerPollMs?: number;
  /** Hears when this store takes (true) or loses (false) the sequencer lease. */
  onSequencerLease?: (held: boolean) => void;
  /** Run pending migrations (default true); false only checks that the schema is current. */
  migrate?: boolean;
  /** Where background connection errors go (idle pool connections, the LISTEN connection). */
  onError?: (message: string, error: Error) => void;
}

/** Is this a PostgreSQL URL (`postgres://` or `postgresql://`)? */
export function isPostgresUrl(value: string): boolean {
  return /^postgres(ql)?:\/\//i.test(value);
}

/**
 * pg connection settings from a URL, with TLS as libpq does it: `sslmode` (URL, else PGSSLMODE)
 * disable | require (encrypted; the CA is checked when a root certificate is given) | verify-ca |
 * verify-full (CA and host name); `sslrootcert` (URL, else PGSSLROOTCERT), client certificates via
 * `sslcert`/`sslkey` (else PGSSLCERT/PGSSLKEY). User, password, host and database come from the URL
 * or the usual PG* variables and ~/.pgpass (pg reads those itself).
 */
export function postgresConnectionConfig(url: string, env: NodeJS.ProcessEnv = process.env): pg.PoolConfig {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError('The store must be a URL such as postgres://imp_broker@db.internal/imp.');
  }
  if (!isPostgresUrl(url))
    throw new ConfigError('The store URL must start with postgres:// or postgresql://.');
  const params = parsed.searchParams;
  const take = (name: string, envName: string): string | undefined => {
    const value = params.get(name) ?? env[envName] ?? undefined;
    params.delete(name);
    return value || undefined;
  };
  const sslmode = take('sslmode', 'PGSSLMODE') ?? 'disable';
  const rootcert = take('sslrootcert', 'PGSSLROOTCERT');
  const cert = take('sslcert', 'PGSSLCERT');
  const key = take('sslkey', 'PGSSLKEY');
  for (const name of ['ssl', 'uselibpqcompat']) params.delete(name);
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (error) {
      throw new ConfigError(`Cannot read the PostgreSQL ${what} ${file}: ${(error as Error).message}`);
    }
  };
  let ssl: false | ConnectionOptions;
  switch (sslmode) {
    case 'disable':
    case 'allow':
    case 'prefer':
      ssl = false;
      break;
    case 'require':
    case 'verify-ca':
    case 'verify-full': {
      if (sslmode === 'verify-ca' && !rootcert)
        throw new ConfigError('sslmode=verify-ca needs a root certificate: sslrootcert=… or PGSSLROOTCERT.');
      ssl = {
        ...(rootcert ? { ca: read(rootcert, 'root certificate') } : {}),
        ...(cert ? { cert: read(cert, 'client certificate') } : {}),
        ...(key ? { key: read(key, 'client key') } : {}),
      };
      // libpq: require checks nothing unless a root certificate is given; verify-ca skips the host name.
      if (sslmode === 'require' && !rootcert) ssl.rejectUnauthorized = false;
      else if (sslmode !== 'verify-full') ssl.checkServerIdentity = () => undefined;
      break;
    }
    default:
      throw new ConfigError(
        `sslmode=${sslmode} is not one of disable, require, verify-ca, verify-full (use verify-full).`,
      );
  }
  return { connectionString: parsed.toString(), ssl, application_name: 'imp-broker' };
}

/** True for errors that mean "the database cannot take this write now" (fail closed with 503). */
export function isPostgresUnavailable(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code))
    return /^(08|28|53|58|3D000|25006|25P03|42501|55P03|55000|57014|57P0|40001|40P01)/.test(code);
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true;
  return (
    typeof message === 'string' &&
    /Connection terminated|connection error|timeout exceeded when trying to connect|Cannot use a pool after calling end|not queryable/i.test(
      message,
    )
  );
}

/**
 * Brings the schema to {@link POSTGRES_SCHEMA_VERSION} in one transaction under an advisory lock
 * (two brokers starting at once: one migrates, the other waits and finds nothing to do). Refuses a
 * schema newer than this build. Returns the versions before and after.
 */
export async function migratePostgres(
  pool: pg.Pool,
  options: { migrate?: boolean } = {},
): Promise<{ from: number; to: number }> {
  const client = await pool.connect().catch((error: unknown) => {
    throw new ConfigError(`Cannot connect to the PostgreSQL store: ${(error as Error).message}`);
  });
  let from = 0;
  try {
    await client.query(`BEGIN; ${lockSql('migrate')}`);
    const table = await client.query<{ t: string | null }>(
      "SELECT to_regclass('imp_schema_migrations')::text AS t",
    );
    if (table.rows[0]?.t) {
      const versions = await client.query<{ v: number | null }>(
        'SELECT max(version) AS v FROM imp_schema_migrations',
      );
      from = Number(versions.rows[0]?.v ?? 0);
    }
    if (from > POSTGRES_SCHEMA_VERSION)
      throw new ConfigError(
        `The PostgreSQL store's schema is at version ${from}; this imp knows versions up to ${POSTGRES_SCHEMA_VERSION}. Upgrade imp.`,
      );
    if (from < POSTGRES_SCHEMA_VERSION && options.migrate === false)
      throw new ConfigError(
        `The PostgreSQL store's schema is at version ${from}; this imp needs ${POSTGRES_SCHEMA_VERSION}. Migrate it first: imp broker serve --migrate-only --store <url of the schema owner>.`,
      );
    if (!table.rows[0]?.t)
      await client.query(
        `CREATE TABLE imp_schema_migrations (
           version INTEGER PRIMARY KEY,
           name TEXT NOT NULL,
           applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )`,
      );
    for (let version = from + 1; version <= POSTGRES_SCHEMA_VERSION; version++) {
      const migration = POSTGRES_MIGRATIONS[version - 1]!;
      await client.query(migration.sql);
      await client.query('INSERT INTO imp_schema_migrations (version, name) VALUES ($1, $2)', [
        version,
        migration.name,
      ]);
    }
    await client.query('COMMIT');
    return { from, to: POSTGRES_SCHEMA_VERSION };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    if (error instanceof ImpError) throw error;
    if ((error as { code?: string }).code === '42501')
      throw new ConfigError(
        `The PostgreSQL store's schema is at version ${from} and this imp needs ${POSTGRES_SCHEMA_VERSION}, but this role may not change it (${(error as Error).message}). Run once as the schema owner: imp broker serve --migrate-only --store <owner url>; then grant the broker role its privileges (README, Running the broker).`,
      );
    throw new ConfigError(`Cannot migrate the PostgreSQL store: ${(error as Error).message}`);
  } finally {
    client.release();
  }
}

/** Opens a PostgreSQL store: connects, migrates (or checks the schema) and returns the store. */
export async function openPostgresStore(
  url: string,
  options: PostgresStoreOptions = {},
): Promise<PostgresStore> {
  const config = postgresConnectionConfig(url, options.env);
  const pool = new pg.Pool({
    ...config,
    max: options.maxConnections ?? 16,
    keepAlive: true,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
    // Bounded waits: a transaction that cannot get a row or key lock, a stuck statement, or a broker
    // that vanished mid-transaction never hold the others up for long.
    lock_timeout: options.lockTimeoutMs ?? 10_000,
    statement_timeout: 30_000,
    idle_in_transaction_session_timeout: 15_000,
  });
  const onError = options.onError ?? (() => {});
  // An idle connection the server closed (restart, failover) must not crash the broker.
  pool.on('error', (error) => onError('idle PostgreSQL connection failed', error));
  try {
    await migratePostgres(pool, { migrate: options.migrate ?? true });
  } catch (error) {
    await pool.end().catch(() => {});
    throw error;
  }
  try {
    await catchUpTree(pool);
  } catch (error) {
    await pool.end().catch(() => {});
    throw error;
  }
  return new PostgresStore(pool, config, onError, options);
}

/**
 * Integrates events the tree does not hold yet (a log from before the tree: migration), under the
 * chain lock so no append interleaves. Events carry their own JSON, so this is one pass.
 */
async function catchUpTree(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query(`BEGIN; ${lockSql('chain')}`);
    const size = await treeSize(client);
    const rows = await client.query<{ event: string }>(
      'SELECT event FROM audit_events WHERE seq > $1 ORDER BY seq',
      [size],
    );
    if (rows.rows.length > 0) {
      const frontier = await loadFrontier(client, size);
      for (const row of rows.rows)
        await client.query(integrateSql(frontier, JSON.parse(row.event) as AuditEvent));
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/**
 * Node's timers, for a store opened without a clock (tools and tests; the broker injects its own).
 * store/ may not import the runtime's clock, and the sequencer needs only sleep and every.
 */
const timersClock: Clock = {
  now: () => Date.now(),
  // node:timers/promises removes its abort listener when the timer fires: a hand-rolled one left a
  // listener per sleep on a long-lived signal (MaxListenersExceededWarning in the sequencer's loop).
  sleep: async (ms, signal) => {
    const { setTimeout: delay } = await import('node:timers/promises');
    return delay(ms, undefined, signal ? { signal } : undefined);
  },
  after: (ms, fn, options) => {
    const timer = setTimeout(fn, ms);
    if (options?.unref) timer.unref();
    return () => clearTimeout(timer);
  },
  every: (ms, fn, options) => {
    const timer = setInterval(fn, ms);
    if (options?.unref) timer.unref();
    return () => clearInterval(timer);
  },
};

/** The PostgreSQL engine of {@link Store}, plus what replicas need to share: keys and session wake-ups. */
export class PostgresStore implements Store {
  readonly engine = 'postgres' as const;
  private readonly appendListeners = new Set<(events: AuditEvent[]) => void>();
  private readonly sessionListeners = new Set<(id: string) => void>();
  private readonly headListeners = new Set<(size: number) => void>();
  /** Settle and sequenced waiters, woken after each batch this replica integrates. */
  private readonly waiters = new Set<() => void>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly sequencer: Sequencer;
  private readonly appendGroups: AppendGroups;
  private readonly clock: Clock;
  private notifying: Promise<void> | null = null;
  private notifyAgain = false;
  private listener: pg.Client | null = null;
  private listenRetry: NodeJS.Timeout | null = null;
  private closed = false;
  declare getLogin: StoreReads['getLogin'];
  declare findLoginByTokenHash: StoreReads['findLoginByTokenHash'];
  declare findLatestLogin: StoreReads['findLatestLogin'];
  declare lastUsedAuthTime: StoreReads['lastUsedAuthTime'];
  declare getPasskey: StoreReads['getPasskey'];
  declare listPasskeys: StoreReads['listPasskeys'];
  declare getCeremony: StoreReads['getCeremony'];

  /** @internal use {@link openPostgresStore} */
  constructor(
    private readonly pool: pg.Pool,
    private readonly config: pg.PoolConfig,
    private readonly onError: (message: string, error: Error) => void,
    options: Pick<
      PostgresStoreOptions,
      'clock' | 'sequencerPollMs' | 'onSequencerLease' | 'appendGroups'
    > = {},
  ) {
    this.appendGroups = new AppendGroups(pool, options.appendGroups ?? 2);
    // The read methods are the transaction's own, each one statement on any pooled connection: no
    // BEGIN, committed data only (read committed), nothing deferred or batched.
    const reads = this.tx(null);
    for (const name of STORE_READS) {
      const read = reads[name] as (...args: unknown[]) => Promise<unknown>;
      Object.assign(this, { [name]: (...args: unknown[]) => this.read(() => read(...args)) });
    }
    this.clock = options.clock ?? timersClock;
    this.sequencer = new Sequencer({
      config,
      clock: this.clock,
      pollMs: options.sequencerPollMs ?? 500,
      onError,
      onLease: options.onSequencerLease ?? (() => {}),
      sequenced: (events) => {
        for (const listener of this.appendListeners) listener(events);
        for (const wake of [...this.waiters]) wake();
      },
    });
  }

  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new AuditUnavailableError(new Error('the store is closed')));
    const run = this.runTransaction(fn);
    this.inFlight.add(run);
    const forget = () => this.inFlight.delete(run);
    run.then(forget, forget);
    return run;
  }

  private async runTransaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    // The connection is taken when the first statement must go: a transaction that only appends
    // needs none of its own (its events join a group, postgres-appends.ts).
    let client: pg.PoolClient | undefined;
    let connecting: Promise<pg.PoolClient> | undefined;
    // A connection that dies between statements emits 'error' on the client: keep it from
    // crashing the process, and discard the connection afterwards.
    let broken: Error | undefined;
    const onClientError = (error: Error) => {
      broken = error;
    };
    const connect = () => {
      connecting ??= this.pool.connect().then(
        (taken) => {
          client = taken;
          taken.on('error', onClientError);
          return taken;
        },
        (error: unknown) => {
          throw new AuditUnavailableError(error);
        },
      );
      return connecting;
    };
    // BEGIN, and whatever else waits, travels with the first statement (postgres-batch.ts).
    const state = newTxState();
    const statements = txStatements(connect, state);
    let committing = false;
    try {
      const result = await fn(this.tx(statements));
      const rows = appendOnly(state);
      if (rows) {
        committing = true;
        if (rows.length > 0) await this.appendGroups.commit(rows);
      } else if (state.begun || state.queue.length > 1) {
        committing = true;
        await statements.finish('COMMIT');
        state.begun = false;
      }
      if (state.queued > 0) this.queuedCommitted();
      return result;
    } catch (error) {
      // A statement still connecting (or failed to): wait for it, so the connection is released.
      await connecting?.catch(() => {});
      if (client && state.begun)
        await client.query('ROLLBACK').catch((rollbackError: Error) => {
          broken ??= rollbackError;
        });
      if (error instanceof ImpError) throw error;
      // A commit that fails with events in it: nothing happened, and the caller must not proceed.
      if (committing && state.queued > 0) throw new AuditUnavailableError(error);
      throw isPostgresUnavailable(error) ? new AuditUnavailableError(error) : error;
    } finally {
      if (client) {
        client.off('error', onClientError);
        client.release(broken ?? false);
      }
    }
  }

  /** Events just became durable: wake the sequencer, here or (one NOTIFY at a time) on the holder. */
  private queuedCommitted(): void {
    if (this.sequencer.held) {
      this.sequencer.wake();
      return;
    }
    if (this.notifying) {
      this.notifyAgain = true;
      return;
    }
    this.notifying = this.pool
      .query(`SELECT pg_notify('${QUEUE_CHANNEL}', '')`)
      .then(
        () => {},
        // Best effort: the holder also polls.
        () => {},
      )
      .finally(() => {
        this.notifying = null;
        if (this.notifyAgain) {
          this.notifyAgain = false;
          this.queuedCommitted();
        }
      });
  }

  /**
   * The transaction's methods over `statements` (batched, postgres-batch.ts); with null, the store's
   * read methods: one statement each on any pooled connection, no BEGIN, nothing deferred.
   */
  private tx(statements: TxStatements | null): StoreTx {
    const direct = <R extends pg.QueryResultRow = Row>(sql: string, values?: unknown[]) =>
      this.pool.query<R>(sql, values);
    const query = statements ? statements.query : direct;
    // Writes whose result nobody reads wait for the next statement or the COMMIT.
    const defer = statements
      ? statements.defer
      : async (sql: string, values?: unknown[]) => {
          await direct(sql, values);
        };
    const run: SqlRunner = async (sql, values) => {
      let n = 0;
      const result = await query(
        sql.replace(/\?/g, () => `$${++n}`),
        values,
      );
      return { rows: result.rows, changes: result.rowCount ?? 0 };
    };
    return {
      appendAudit: async (draft: AuditDraft, nowMs: number): Promise<QueuedAuditEvent> => {
        try {
          const id = randomUUID();
          const body = queuedBody(draft, id, new Date(nowMs).toISOString());
          if (!statements) throw new Error('appendAudit outside a transaction');
          // A plain INSERT, sent with the next statement or with COMMIT: no lock, no head to read.
          statements.event(pg.escapeLiteral(body));
          return JSON.parse(body) as QueuedAuditEvent;
        } catch (error) {
          throw new AuditUnavailableError(error);
        }
      },
      lockKey: async (key: string) => {
        // 64 bits of its SHA-256 in the one-bigint key space (apart from the (namespace, purpose)
        // pairs); a collision only serialises more. Hashed here: keys may hold NUL, text may not.
        const id = createHash('sha256').update(`imp\u0000${key}`).digest().readBigInt64BE(0);
        // Taken before anything after it in the transaction runs (statements keep their order).
        await defer('SELECT pg_advisory_xact_lock($1::bigint)', [id.toString()]);
      },
      insertLogin: async (login: LoginRecord) => {
        await defer(
          `INSERT INTO logins (id, iss, sub, email, auth_time, created_at, expires_at, id_token_hash, groups)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
          [
            login.id,
            login.iss,
            login.sub,
            login.email,
            login.authTime,
            login.createdAt,
            login.expiresAt,
            login.idTokenHash,
            JSON.stringify(login.groups ?? []),
          ],
        );
      },
      getLogin: async (id: string) => firstLogin({ query }, 'SELECT * FROM logins WHERE id = $1', [id]),
      findLoginByTokenHash: async (hash: string) =>
        firstLogin({ query }, 'SELECT * FROM logins WHERE id_token_hash = $1', [hash]),
      findLatestLogin: async (who: string) =>
        firstLogin(
          { query },
          // ILIKE: SQLite's LIKE ignores ASCII case; the engines answer alike.
          `SELECT * FROM logins WHERE sub = $1 OR email = $1 OR email ILIKE $2 ESCAPE '\\'
           ORDER BY created_at DESC LIMIT 1`,
          [who, `${escapeLike(who)}@%`],
        ),
      insertSession: async (session: SessionRecord) => {
        const row = sessionToRow(session);
        const columns = Object.keys(row);
        await defer(
          `INSERT INTO sessions (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`,
          Object.values(row),
        );
      },
      getSession: async (id: string) => getSession({ query }, id),
      updateSession: async (id: string, expectedState: SessionState, changes: Partial<SessionRecord>) => {
        const fields = Object.keys(changes) as (keyof SessionRecord)[];
        if (fields.length === 0) {
          const current = await getSession({ query }, id);
          return current?.state === expectedState;
        }
        const values: unknown[] = [id, expectedState];
        const sets = fields.map((field) => {
          values.push(sessionValue(field, changes[field]));
          return `${sessionColumn(field)} = $${values.length}`;
        });
        const result = await query(
          `UPDATE sessions SET ${sets.join(', ')} WHERE id = $1 AND state = $2`,
          values,
        );
        return result.rowCount === 1;
      },
      listSessions: async (sessionQuery: SessionQuery) => listSessions({ query }, sessionQuery),
      lastUsedAuthTime: async (iss: string, sub: string) => {
        const result = await query<{ t: string | null }>(
          'SELECT max(auth_time) AS t FROM sessions WHERE requester_iss = $1 AND requester_sub = $2',
          [iss, sub],
        );
        const t = result.rows[0]?.t;
        return t === null || t === undefined ? null : Number(t);
      },
      recordReview: async (id: string, review: SessionReview) => {
        const result = await query(
          'UPDATE sessions SET review = $1 WHERE id = $2 AND review_required = 1 AND review IS NULL',
          [sessionValue('review', review), id],
        );
        return result.rowCount === 1;
      },
      ...passkeyTx(run),
      ...notificationTx(run),
      insertRecordingChunk: async (chunk: RecordingChunk) => {
        await defer(
          'INSERT INTO recording_chunks (session, seq, ts, data, sha256) VALUES ($1, $2, $3, $4, $5)',
          [chunk.session, chunk.seq, chunk.ts, chunk.data, chunk.sha256],
        );
      },
      getRecordingChunk: async (session: string, seq: number) => {
        const result = await query<Row>('SELECT * FROM recording_chunks WHERE session = $1 AND seq = $2', [
          session,
          seq,
        ]);
        return result.rows[0] ? rowToChunk(result.rows[0]) : null;
      },
      countRecordingChunks: async (session: string) => {
        const result = await query<{ n: string }>(
          'SELECT count(*) AS n FROM recording_chunks WHERE session = $1',
          [session],
        );
        return Number(result.rows[0]?.n ?? 0);
      },
    };
  }

  async listRecordingChunks(session: string): Promise<RecordingChunk[]> {
    const result = await this.read(() =>
      this.pool.query<Row>('SELECT * FROM recording_chunks WHERE session = $1 ORDER BY seq', [session]),
    );
    return result.rows.map(rowToChunk);
  }

  async getSession(id: string): Promise<SessionRecord | null> {
    return this.read(() => getSession(this.pool, id));
  }

  async listSessions(query: SessionQuery): Promise<SessionRecord[]> {
    return this.read(() => listSessions(this.pool, query));
  }

  async settle(timeoutMs = 10_000): Promise<void> {
    // Every queued event committed before now has n <= the newest one: wait until none is left.
    const newest = await this.read(() =>
      this.pool.query<{ n: string | null }>('SELECT max(n) AS n FROM audit_queue'),
    );
    const n = newest.rows[0]?.n;
    if (n === null || n === undefined) return;
    await this.waitFor(timeoutMs, async () => {
      const left = await this.pool.query('SELECT 1 FROM audit_queue WHERE n <= $1 LIMIT 1', [n]);
      return left.rowCount === 0 ? true : null;
    });
  }

  async sequenced(ids: readonly string[], timeoutMs = 10_000): Promise<AuditEvent[]> {
    if (ids.length === 0) return [];
    return this.waitFor(timeoutMs, async () => {
      const found = await this.pool.query<{ event: string }>(
        'SELECT event FROM audit_events WHERE id = ANY($1) ORDER BY seq',
        [[...ids]],
      );
      return found.rows.length === new Set(ids).size
        ? found.rows.map((row) => JSON.parse(row.event) as AuditEvent)
        : null;
    });
  }

  /**
   * Polls `check` until it answers (after each batch this replica integrates, else every few ms on
   * the clock, backing off); AuditUnavailableError when no sequencer got there within `timeoutMs`.
   */
  private async waitFor<T>(timeoutMs: number, check: () => Promise<T | null>): Promise<T> {
    const deadline = this.clock.now() + timeoutMs;
    let pause = 2;
    for (;;) {
      const answer = await this.read(check);
      if (answer !== null) {
        // Seen committed from another connection: let this replica's batch be announced first, so
        // onAppended listeners have heard of what the caller now reads.
        if (this.sequencer.held) await this.sequencer.idle();
        return answer;
      }
      if (this.clock.now() >= deadline)
        throw new AuditUnavailableError(
          new Error(`audit events were not sequenced within ${timeoutMs} ms (is a sequencer running?)`),
        );
      if (!this.sequencer.held) this.queuedCommitted();
      const stop = new AbortController();
      const woken = new Promise<void>((resolve) => {
        const wake = () => {
          this.waiters.delete(wake);
          resolve();
        };
        this.waiters.add(wake);
        stop.signal.addEventListener('abort', wake);
      });
      await Promise.race([woken, this.clock.sleep(pause, stop.signal).catch(() => {})]);
      stop.abort();
      pause = Math.min(pause * 2, 50);
    }
  }

  async readAudit(query: AuditQuery = {}): Promise<AuditEvent[]> {
    const { sql, values } = auditSelect(query);
    const result = await this.read(() => this.pool.query<{ event: string }>(sql, values));
    return result.rows.map((row) => JSON.parse(row.event) as AuditEvent);
  }

  async *iterateAudit(query: AuditQuery = {}): AsyncIterable<AuditEvent> {
    if (query.newest) {
      yield* await this.readAudit(query);
      return;
    }
    // Keyset pages: a huge log streams in bounded memory, without holding a connection open.
    const PAGE = 1000;
    let remaining = query.limit ?? Number.POSITIVE_INFINITY;
    let fromSeq = query.fromSeq ?? 1;
    while (remaining > 0) {
      const page = await this.readAudit({ ...query, fromSeq, limit: Math.min(PAGE, remaining) });
      yield* page;
      if (page.length < Math.min(PAGE, remaining)) return;
      remaining -= page.length;
      fromSeq = page.at(-1)!.seq + 1;
    }
  }

  async auditHead(): Promise<{ seq: number; hash: string } | null> {
    const result = await this.read(() =>
      this.pool.query<{ seq: string; hash: string }>(
        'SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1',
      ),
    );
    const row = result.rows[0];
    return row ? { seq: Number(row.seq), hash: row.hash } : null;
  }

  async insertCheckpoint(checkpoint: Checkpoint): Promise<void> {
    try {
      // Replicas checkpoint the same head now and then: the first one stands.
      await this.pool.query(
        'INSERT INTO audit_checkpoints (seq, hash, ts, jws) VALUES ($1, $2, $3, $4) ON CONFLICT (seq) DO NOTHING',
        [checkpoint.seq, checkpoint.hash, checkpoint.ts, checkpoint.jws],
      );
    } catch (error) {
      throw isPostgresUnavailable(error) ? new AuditUnavailableError(error) : error;
    }
  }

  async listCheckpoints(): Promise<Checkpoint[]> {
    const result = await this.read(() =>
      this.pool.query<{ seq: string; hash: string; ts: string; jws: string }>(
        'SELECT seq, hash, ts, jws FROM audit_checkpoints ORDER BY seq',
      ),
    );
    return result.rows.map((row) => ({ seq: Number(row.seq), hash: row.hash, ts: row.ts, jws: row.jws }));
  }

  async treeHead(): Promise<{ size: number; root: Hash }> {
    return this.read(() => treeHead(this.pool));
  }

  async treeNodes(nodes: readonly TreeNode[]): Promise<Hash[]> {
    return this.read(() => readNodes(this.pool, nodes));
  }

  async insertNote(size: number, note: string): Promise<void> {
    await this.read(() =>
      this.pool.query('INSERT INTO audit_notes (size, note) VALUES ($1, $2) ON CONFLICT (size) DO NOTHING', [
        size,
        note,
      ]),
    );
  }

  async addCosignatures(size: number, lines: readonly { witness: string; line: string }[]): Promise<void> {
    for (const { witness, line } of lines)
      await this.read(() =>
        this.pool.query(
          'INSERT INTO audit_cosignatures (size, witness, line) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
          [size, witness, line],
        ),
      );
  }

  async listNotes(): Promise<StoredNote[]> {
    return this.read(() => listNotes(this.pool));
  }

  async listLatestLogins(): Promise<LoginRecord[]> {
    const result = await this.read(() =>
      this.pool.query<Row>(
        `SELECT * FROM (SELECT DISTINCT ON (iss, sub) * FROM logins ORDER BY iss, sub, created_at DESC) latest
         ORDER BY iss COLLATE "C", sub COLLATE "C"`,
      ),
    );
    return result.rows.map(rowToLogin);
  }

  onAppended(listener: (events: AuditEvent[]) => void): () => void {
    this.appendListeners.add(listener);
    return () => this.appendListeners.delete(listener);
  }

  /**
   * Calls `listener` with the id of every session whose state changed, on any replica (LISTEN/NOTIFY,
   * sent at commit by a trigger). Best effort: while the listening connection is down, long-polls
   * fall back to polling.
   */
  onSessionChanged(listener: (id: string) => void): () => void {
    this.sessionListeners.add(listener);
    if (!this.listener && !this.listenRetry) void this.listen();
    return () => this.sessionListeners.delete(listener);
  }

  /**
   * Calls `listener` with the log's size after each batch any replica's sequencer integrates
   * (LISTEN/NOTIFY; best effort), so a replica that does not sequence still sees the log move.
   */
  onAuditHead(listener: (size: number) => void): () => void {
    this.headListeners.add(listener);
    if (!this.listener && !this.listenRetry) void this.listen();
    return () => this.headListeners.delete(listener);
  }

  private async listen(): Promise<void> {
    this.listenRetry = null;
    if (this.closed || this.sessionListeners.size + this.headListeners.size === 0) return;
    const client = new pg.Client({ ...this.config, keepAlive: true });
    this.listener = client;
    const retry = (error: Error) => {
      if (this.listener !== client) return;
      this.listener = null;
      client.removeAllListeners('notification');
      client.end().catch(() => {});
      if (this.closed) return;
      this.onError('the PostgreSQL LISTEN connection failed; retrying', error);
      this.listenRetry = setTimeout(() => void this.listen(), 1000);
      this.listenRetry.unref();
    };
    client.on('error', retry);
    client.on('end', () => retry(new Error('connection ended')));
    client.on('notification', (message) => {
      if (!message.payload) return;
      if (message.channel === SESSION_CHANNEL)
        for (const listener of this.sessionListeners) listener(message.payload);
      if (message.channel === HEAD_CHANNEL)
        for (const listener of this.headListeners) listener(Number(message.payload));
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${SESSION_CHANNEL}; LISTEN ${HEAD_CHANNEL}`);
    } catch (error) {
      retry(error as Error);
    }
  }

  /** Signing keys in `broker_keys`, changed under an advisory lock so replicas agree on one set. */
  keyStorage(): KeyStorage {
    const read = async (db: Queryable): Promise<StoredKey[]> => {
      const result = await db.query<Row>(
        'SELECT kind, kid, created_at, retire_after, private_jwk FROM broker_keys ORDER BY created_at, kid',
      );
      return result.rows.map((row) => ({
        kind: row.kind as StoredKey['kind'],
        kid: String(row.kid),
        created_at: Number(row.created_at),
        retire_after: row.retire_after === null ? null : Number(row.retire_after),
        private_jwk: JSON.parse(String(row.private_jwk)) as Record<string, unknown>,
      }));
    };
    return {
      where: 'the PostgreSQL table broker_keys',
      read: () => read(this.pool),
      update: async (change) => {
        const client = await this.pool.connect().catch((error: unknown) => {
          throw new Error(`Cannot reach PostgreSQL for the broker keys: ${(error as Error).message}`);
        });
        try {
          await client.query(`BEGIN; ${lockSql('keys')}`);
          const current = await read(client);
          const next = await change(structuredClone(current));
          if (next) {
            for (const key of next) {
              await client.query(
                `INSERT INTO broker_keys (kid, kind, created_at, retire_after, private_jwk) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (kid) DO UPDATE SET retire_after = EXCLUDED.retire_after
                 WHERE broker_keys.retire_after IS DISTINCT FROM EXCLUDED.retire_after`,
                [key.kid, key.kind, key.created_at, key.retire_after, JSON.stringify(key.private_jwk)],
              );
            }
          }
          await client.query('COMMIT');
          return next ?? current;
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {});
          throw new Error(`Cannot store the broker keys in PostgreSQL: ${(error as Error).message}`, {
            cause: error,
          });
        } finally {
          client.release();
        }
      },
    };
  }

  async ping(): Promise<void> {
    await this.read(() => this.pool.query('SELECT 1'));
  }

  /**
   * Waits for transactions in flight (their audit events), hands the sequencer lease on (a holder
   * integrates what is queued first), then closes every connection.
   */
  /** Closing twice (a broker's shutdown and its owner's) waits for the one close. */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private closing: Promise<void> | undefined;

  private async closeOnce(): Promise<void> {
    if (this.closed) return;
    await Promise.allSettled([...this.inFlight]);
    this.closed = true;
    await this.sequencer.stop();
    await this.notifying;
    if (this.listenRetry) clearTimeout(this.listenRetry);
    const listener = this.listener;
    this.listener = null;
    await listener?.end().catch(() => {});
    await this.pool.end();
  }

  // Reads fail closed too: a broker that cannot read its store answers 503, not 500.
  private async read<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw isPostgresUnavailable(error) ? new AuditUnavailableError(error) : error;
    }
  }
}

async function getSession(db: Queryable, id: string): Promise<SessionRecord | null> {
  const result = await db.query<Row>('SELECT * FROM sessions WHERE id = $1', [id]);
  return result.rows[0] ? rowToSession(result.rows[0]) : null;
}

async function listSessions(db: Queryable, query: SessionQuery): Promise<SessionRecord[]> {
  const where: string[] = [];
  const values: unknown[] = [];
  const add = (clause: (n: string) => string, value: unknown) => {
    values.push(value);
    where.push(clause(`$${values.length}`));
  };
  if (query.states?.length) add((n) => `state = ANY(${n})`, query.states);
  if (query.requesterSub !== undefined) add((n) => `requester_sub = ${n}`, query.requesterSub);
  if (query.requesterIss !== undefined) add((n) => `requester_iss = ${n}`, query.requesterIss);
  if (query.tenant !== undefined) add((n) => `tenant = ${n}`, query.tenant);
  if (query.idPrefix !== undefined) add((n) => `left(id, length(${n})) = ${n}`, query.idPrefix);
  if (query.dueBy !== undefined)
    add(
      (n) =>
        `((state = 'active' AND expires_at <= ${n}) OR (state = 'pending' AND request_expires_at <= ${n}))`,
      query.dueBy,
    );
  const limit = query.limit !== undefined ? ` LIMIT ${Math.max(0, Math.floor(query.limit))}` : '';
  const result = await db.query<Row>(
    `SELECT * FROM sessions${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${query.newest ? 'created_at DESC, n DESC' : 'created_at, n'}${limit}`,
    values,
  );
  return result.rows.map(rowToSession);
}

async function firstLogin(db: Queryable, sql: string, values: unknown[]): Promise<LoginRecord | null> {
  const result = await db.query<Row>(sql, values);
  return result.rows[0] ? rowToLogin(result.rows[0]) : null;
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function auditSelect(query: AuditQuery): { sql: string; values: unknown[] } {
  const where: string[] = [];
  const values: unknown[] = [];
  const add = (value: unknown, clause: (n: string) => string) => {
    if (value === undefined) return;
    values.push(value);
    where.push(clause(`$${values.length}`));
  };
  add(query.fromSeq, (n) => `seq >= ${n}`);
  add(query.toSeq, (n) => `seq <= ${n}`);
  add(query.sinceTs, (n) => `ts >= ${n}`);
  add(query.untilTs, (n) => `ts <= ${n}`);
  add(query.tenant, (n) => `tenant = ${n}`);
  add(query.id, (n) => `id = ${n}`);
  add(query.type, (n) => `type = ${n}`);
  add(query.session, (n) => `session = ${n}`);
  if (query.actor !== undefined) {
    values.push(query.actor, `${escapeLike(query.actor)}@%`);
    const [who, prefix] = [`$${values.length - 1}`, `$${values.length}`];
    where.push(`(actor_sub = ${who} OR actor_email = ${who} OR actor_email ILIKE ${prefix} ESCAPE '\\')`);
  }
  const limit = query.limit !== undefined ? ` LIMIT ${Math.max(0, Math.floor(query.limit))}` : '';
  const base = `SELECT seq, event FROM audit_events${where.length ? ` WHERE ${where.join(' AND ')}` : ''}`;
  const sql = query.newest
    ? `SELECT event FROM (${base} ORDER BY seq DESC${limit}) newest ORDER BY seq`
    : `${base} ORDER BY seq${limit}`;
  return { sql, values };
}

function rowToLogin(row: Row): LoginRecord {
  return {
    id: String(row.id),
    iss: String(row.iss),
    sub: String(row.sub),
    email: (row.email as string | null) ?? null,
    authTime: Number(row.auth_time),
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    idTokenHash: String(row.id_token_hash),
    groups: JSON.parse(String(row.groups ?? '[]')) as string[],
  };
}

function rowToChunk(row: Row): RecordingChunk {
  return {
    session: String(row.session),
    seq: Number(row.seq),
    ts: Number(row.ts),
    data: String(row.data),
    sha256: String(row.sha256),
  };
}
