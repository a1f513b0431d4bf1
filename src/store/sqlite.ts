/**
 * The embedded store: one SQLite file in WAL mode. An acknowledged transaction survives a crash of
 * the process, the OS or the power (the durability of `synchronous=FULL`), yet no fsync runs on the
 * event loop in steady state. better-sqlite3 is synchronous; an in-process queue runs transactions
 * one at a time, which also serializes audit appends so the chain cannot fork.
 *
 * Group commit: transactions queued in the same turn of the event loop run one after another inside
 * one SQLite transaction, each in a SAVEPOINT of its own (a failing one is rolled back alone), and
 * share one COMMIT. If the COMMIT fails, all of them fail (fail-closed).
 *
 * Durability off the event loop (sqlite-durability.ts): the writer connection runs with
 * `synchronous=NORMAL`, so its COMMIT writes the WAL frames without fsyncing them (NORMAL, not OFF:
 * SQLite still syncs a rewound WAL's header, without which stale frames of an earlier cycle could be
 * replayed after a power loss). Each committed group is then made durable by one `fdatasync` of the
 * `-wal` file on libuv's thread pool, and none of its members is acknowledged — its promise settled,
 * its `onAppended` listeners called — before that sync is done. The next group commits while the
 * sync runs; one sync covers every group committed before it began; groups are acknowledged in order.
 * A failed sync fails every group not yet durable, and the store then refuses every write and read
 * (IMP_AUDIT_UNAVAILABLE) until the broker restarts. Checkpoints run in a worker thread on a
 * connection of its own with `synchronous=FULL` (sqlite-checkpointer.ts); the writer never checkpoints.
 *
 * Reads never reveal what is not yet durable. A committed group is visible to every connection as
 * soon as its COMMIT returns, before its sync. So reads outside transactions (StoreReads, sessions,
 * audit events, notes, recording chunks …) see committed data only, never a group still open (the
 * writer's connection between groups, a read-only connection of their own during one; see
 * readStatement), and hand their result back only once every
 * committed group that wrote to a table they read is durable (immediate when none waits for a sync:
 * a proxied call's login and session look-ups never wait behind audit appends). An audit export
 * (iterateAudit) waits for what was appended before it began and stops at the last durable event.
 * Reads inside a transaction may see earlier groups that are not yet durable, but nothing leaves a
 * transaction before it is acknowledged, and its own sync, later in the same append-only WAL, covers
 * every group before it — so the proxy, which waits for its `action.requested` to be durable before
 * forwarding, has also made durable every fact it read.
 */

import { randomUUID } from 'node:crypto';
import { closeSync, fdatasyncSync, fsyncSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Checkpoint } from '../core/audit/checkpoint.js';
import { type AuditDraft, type AuditEvent, GENESIS_PREV, sealEvent } from '../core/audit/event.js';
import type { StoredNote } from '../core/audit/log-tree.js';
import type { Hash, TreeNode } from '../core/audit/merkle.js';
import type { CancelTimer, Clock } from '../core/clock.js';
import { AuditUnavailableError, ImpError } from '../core/errors.js';
import type { RecordingChunk } from '../core/recording/asciicast.js';
import { notificationTx } from './notification-rows.js';
import { passkeyTx, type SqlRunner } from './passkey-rows.js';
import { rowToSession, sessionColumn, sessionToRow, sessionValue } from './session-rows.js';
import { WalCheckpointer } from './sqlite-checkpointer.js';
import { type Fdatasync, fdatasyncOffLoop, WalDurability } from './sqlite-durability.js';
import { SQLITE_MIGRATIONS } from './sqlite-schema.js';
import { SqliteTree } from './sqlite-tree.js';
import type {
  AuditQuery,
  LoginRecord,
  SessionQuery,
  SessionRecord,
  SessionReview,
  SessionState,
  Store,
  StoreReads,
  StoreTx,
  TransactionOptions,
} from './types.js';
import { STORE_READS } from './types.js';

type Row = Record<string, unknown>;

/** How a SQLite store is opened. */
export interface SqliteStoreOptions {
  /** How long a statement waits for a lock another connection holds (ms, default 2000). */
  busyTimeoutMs?: number;
  /** Makes the WAL durable; tests inject one to hold or fail the sync. Default: fdatasync(2) off the event loop. */
  fdatasync?: Fdatasync;
  /**
   * The timer that bounds how long a lazy transaction is held (LAZY_MS). Default: Node's. Not the
   * broker's clock: a test clock moved by hand would hold a proxied call's outcome until it moved.
   */
  after?: Clock['after'];
}

const nodeAfter: Clock['after'] = (ms, fn) => {
  const timer = setTimeout(fn, ms);
  return () => clearTimeout(timer);
};

/** Opens (creating and migrating) a SQLite store. */
export function openSqliteStore(file: string, options: SqliteStoreOptions = {}): Store {
  const busyTimeoutMs = options.busyTimeoutMs ?? 2000;
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  // Opening and migrating commit with FULL, synced by SQLite (the new WAL's directory entry too).
  db.pragma('synchronous = FULL');
  db.pragma(`busy_timeout = ${busyTimeoutMs}`);
  db.pragma('foreign_keys = ON');
  migrate(db);
  const tree = new SqliteTree(db);
  // Events the tree does not hold yet (a log from before the tree existed): integrate them first.
  const size = tree.size();
  tree.catchUp(
    (db.prepare('SELECT * FROM audit_events WHERE seq > ? ORDER BY seq').all(size) as Row[]).map(rowToEvent),
  );
  // From here on a COMMIT writes the WAL without syncing it, and never checkpoints (module comment).
  db.pragma('synchronous = NORMAL');
  db.pragma('wal_autocheckpoint = 0');
  const walFd = openSync(`${file}-wal`, 'r');
  // What an earlier process committed but was killed before syncing is made durable before anything
  // reads it; and the WAL's directory entry, in case this open created the file.
  fdatasyncSync(walFd);
  syncDirectory(dirname(file));
  // Reads outside transactions use a connection of their own: under WAL it sees committed data only,
  // never the half-done group the writer has open.
  const reader = new Database(file, { readonly: true, fileMustExist: true });
  reader.pragma(`busy_timeout = ${busyTimeoutMs}`);
  const checkpointer = new WalCheckpointer(file, busyTimeoutMs);
  const durability = new WalDurability(walFd, options.fdatasync ?? fdatasyncOffLoop, (groups) =>
    checkpointer.synced(groups),
  );
  const after = options.after ?? nodeAfter;
  return new SqliteStore({ file, db, tree, reader, walFd, durability, checkpointer, after });
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  for (let version = current; version < SQLITE_MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(SQLITE_MIGRATIONS[version]!);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}

/** True for SQLite errors that mean "cannot write now" (read-only, locked, disk full, I/O). */
function isWriteUnavailable(error: unknown): boolean {
  const code = (error as { code?: string }).code ?? '';
  return /^SQLITE_(READONLY|BUSY|LOCKED|FULL|IOERR|CANTOPEN|PERM|CORRUPT|NOTADB)/.test(code);
}

/** What a failed transaction rejects with: coded errors as thrown, storage failures as 503. */
function toStoreError(error: unknown): unknown {
  if (error instanceof ImpError) return error;
  return isWriteUnavailable(error) ? new AuditUnavailableError(error) : error;
}

/** Most transactions one COMMIT carries (bounds the latency a large group adds to its first member). */
const MAX_GROUP = 256;
/** Longest a lazy transaction waits for a group to ride in before it starts one (ms). */
const LAZY_MS = 10;

interface SqliteParts {
  file: string;
  db: Database.Database;
  tree: SqliteTree;
  reader: Database.Database;
  walFd: number;
  durability: WalDurability;
  checkpointer: WalCheckpointer;
  after: Clock['after'];
}

interface QueuedTransaction {
  fn: (tx: StoreTx) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

class SqliteStore implements Store {
  readonly engine = 'sqlite' as const;
  private readonly pending: QueuedTransaction[] = [];
  /** Lazy transactions held for the next group (TransactionOptions.lazy). */
  private readonly lazy: QueuedTransaction[] = [];
  private lazyTimer: CancelTimer | null = null;
  private draining = false;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly appendListeners = new Set<(events: AuditEvent[]) => void>();
  private appendedInTx: AuditEvent[] = [];
  private readonly insertEvent: Database.Statement;
  private readonly headStatement: Database.Statement;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly readerStatements = new Map<string, Database.Statement>();
  private readonly db: Database.Database;
  private readonly tree: SqliteTree;
  private readonly reader: Database.Database;
  private readonly readerTree: SqliteTree;
  private readonly durability: WalDurability;
  private readonly checkpointer: WalCheckpointer;
  /** The newest audit event that is durable: audit reads stop there. */
  private durableSeq: number;
  /** iterateAudit connections open now (a rewind waits for none, see drain()). */
  private iterating = 0;
  /** Tables the group now open has written to. */
  private groupTables = new Set<string>();
  /** For each table, the last committed group that wrote to it (its number in WalDurability). */
  private readonly lastWrite = new Map<string, number>();
  /** Tables the read running now has read from (collected by readStatement, used by durable()). */
  private readTables = new Set<string>();
  declare getLogin: StoreReads['getLogin'];
  declare findLoginByTokenHash: StoreReads['findLoginByTokenHash'];
  declare findLatestLogin: StoreReads['findLatestLogin'];
  declare lastUsedAuthTime: StoreReads['lastUsedAuthTime'];
  declare getPasskey: StoreReads['getPasskey'];
  declare listPasskeys: StoreReads['listPasskeys'];
  declare getCeremony: StoreReads['getCeremony'];

  constructor(private readonly parts: SqliteParts) {
    ({ db: this.db, tree: this.tree, reader: this.reader } = parts);
    ({ durability: this.durability, checkpointer: this.checkpointer } = parts);
    this.readerTree = new SqliteTree(this.reader);
    // The read methods are the transaction's own, run on the reader connection, behind the barrier.
    const reads = this.tx((sql) => this.readStatement(sql));
    for (const name of STORE_READS) {
      const read = reads[name] as (...args: unknown[]) => Promise<unknown>;
      Object.assign(this, { [name]: (...args: unknown[]) => this.durable(read(...args)) });
    }
    const db = this.db;
    this.insertEvent = db.prepare(
      `INSERT INTO audit_events (seq, id, ts, type, actor, tenant, environment, session, ticket, reason, data, prev, hash)
       VALUES (@seq, @id, @ts, @type, @actor, @tenant, @environment, @session, @ticket, @reason, @data, @prev, @hash)`,
    );
    this.headStatement = db.prepare('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1');
    this.durableSeq = (this.headStatement.get() as { seq: number } | undefined)?.seq ?? 0;
  }

  /**
   * A statement for a read outside transactions; the tables it reads are noted for durable(). While
   * no group is open (a group runs start to COMMIT without yielding to the event loop, so almost
   * always) the writer's connection reads: it sees committed data only then, like the reader, and its
   * page cache stays warm, where SQLite drops a reader's whole cache whenever another connection has
   * committed — a point lookup cost ~3× as much on the reader under a steady write load.
   */
  private readStatement(sql: string): Database.Statement {
    for (const table of tablesOf(sql)) this.readTables.add(table);
    if (!this.db.inTransaction) return this.cached(this.db, this.statements, sql);
    return this.cached(this.reader, this.readerStatements, sql);
  }

  /**
   * Hands back a read's result once every committed group that wrote to a table the read looked at
   * is durable (what the read could have seen); most reads touch no table written since the last
   * sync and wait for nothing. Call it as soon as the read has run, in the same synchronous stretch.
   */
  private async durable<T>(result: Promise<T> | T, tables: Iterable<string> = this.readTables): Promise<T> {
    let target = this.lastWrite.get('*') ?? 0;
    for (const table of tables) target = Math.max(target, this.lastWrite.get(table) ?? 0);
    this.readTables = new Set();
    const barrier = this.durability.barrier(target);
    try {
      return await result;
    } finally {
      await barrier;
    }
  }

  /** A prepared statement, compiled once per distinct SQL text: compiling costs more than running most. */
  private statement(sql: string): Database.Statement {
    const statement = this.cached(this.db, this.statements, sql);
    if (!statement.reader) for (const table of tablesOf(sql)) this.groupTables.add(table);
    return statement;
  }

  private cached(db: Database.Database, cache: Map<string, Database.Statement>, sql: string) {
    let statement = cache.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      // SQL with a LIMIT written in varies without bound: past this many, compile without keeping.
      if (cache.size < 256) cache.set(sql, statement);
    }
    return statement;
  }

  transaction<T>(fn: (tx: StoreTx) => Promise<T>, options?: TransactionOptions): Promise<T> {
    const failed = this.durability.failed;
    if (failed) return Promise.reject(failed);
    return new Promise<T>((resolve, reject) => {
      const queued = { fn, resolve: resolve as (value: unknown) => void, reject };
      if (options?.lazy) {
        // Held for the next group (see TransactionOptions.lazy), or LAZY_MS at most.
        this.lazy.push(queued);
        this.lazyTimer ??= this.parts.after(LAZY_MS, () => this.releaseLazy());
        return;
      }
      this.pending.push(queued);
      this.schedule();
    });
  }

  /** Queues the held (lazy) transactions ahead of the others. */
  private releaseLazy(): void {
    this.lazyTimer?.();
    this.lazyTimer = null;
    if (this.lazy.length === 0) return;
    this.pending.unshift(...this.lazy.splice(0));
    this.schedule();
  }

  /** Before a read of the audit log: what is held is written (and synced) first, so no read misses it. */
  private async writeLazy(): Promise<void> {
    if (this.lazy.length === 0) return;
    this.releaseLazy();
    // Groups are acknowledged in commit order: this empty one comes back after the held ones.
    await this.transaction(async () => {}).catch(() => {});
  }

  // The group starts on the next turn of the event loop, so every request whose I/O is ready now
  // gets to queue its transaction first. The next group may start while this one's sync runs.
  private schedule(): void {
    if (this.draining) return;
    this.draining = true;
    setImmediate(() => {
      this.drain().finally(() => {
        this.draining = false;
        if (this.pending.length > 0) this.schedule();
        else for (const wake of this.idleWaiters.splice(0)) wake();
      });
    });
  }

  private async drain(): Promise<void> {
    // A WAL grown long is rewound: its checkpoint runs while no group commits (requests go on; their
    // transactions wait in the queue). Not while an export holds a snapshot the checkpoint must keep.
    if (this.checkpointer.wantsRewind && this.iterating === 0) await this.checkpointer.rewind();
    // Held transactions ride in this group, first (they were made before the others).
    if (this.lazy.length > 0) this.releaseLazy();
    await this.runGroup(this.pending.splice(0, MAX_GROUP));
  }

  private async runGroup(group: QueuedTransaction[]): Promise<void> {
    const failed = this.durability.failed;
    if (failed) {
      for (const queued of group) queued.reject(failed);
      return;
    }
    this.groupTables = new Set();
    try {
      this.db.exec('BEGIN IMMEDIATE');
    } catch (error) {
      const failure = toStoreError(error);
      for (const queued of group) queued.reject(failure);
      return;
    }
    const done: { queued: QueuedTransaction; result: unknown; appended: AuditEvent[] }[] = [];
    for (const [index, queued] of group.entries()) {
      this.appendedInTx = [];
      try {
        this.db.exec('SAVEPOINT imp_tx');
        const result = await queued.fn(this.tx());
        this.db.exec('RELEASE imp_tx');
        done.push({ queued, result, appended: this.appendedInTx });
      } catch (error) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK TO imp_tx; RELEASE imp_tx');
        queued.reject(toStoreError(error));
        if (!this.db.inTransaction) {
          // SQLite rolled the whole transaction back (I/O error, full disk): the others went with it.
          const lost = new AuditUnavailableError(error);
          for (const other of [...done.map((d) => d.queued), ...group.slice(index + 1)]) other.reject(lost);
          this.appendedInTx = [];
          return;
        }
      }
    }
    this.appendedInTx = [];
    try {
      this.db.exec('COMMIT');
    } catch (error) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      const failure = toStoreError(error);
      for (const { queued } of done) queued.reject(failure);
      return;
    }
    const appended = done.flatMap((d) => d.appended);
    // Committed, not yet durable: nobody hears of it until the WAL sync that covers it is done.
    const groupNumber = this.durability.committedGroup(
      () => {
        if (appended.length > 0) {
          this.durableSeq = appended.at(-1)!.seq;
          for (const listener of this.appendListeners) {
            // A listener that throws must not keep this group's members (or later groups) waiting.
            try {
              listener(appended);
            } catch {}
          }
        }
        for (const { queued, result } of done) queued.resolve(result);
      },
      (error) => {
        for (const { queued } of done) queued.reject(error);
      },
    );
    for (const table of this.groupTables) this.lastWrite.set(table, groupNumber);
  }

  private tx(statement: (sql: string) => Database.Statement = (sql) => this.statement(sql)): StoreTx {
    const run: SqlRunner = async (sql, values) => {
      const prepared = statement(sql);
      if (prepared.reader) return { rows: prepared.all(...values) as Row[], changes: 0 };
      return { rows: [], changes: prepared.run(...values).changes };
    };
    return {
      appendAudit: async (draft: AuditDraft, nowMs: number) => {
        try {
          const head = this.headStatement.get() as { seq: number; hash: string } | undefined;
          const event = sealEvent(draft, {
            seq: (head?.seq ?? 0) + 1,
            id: randomUUID(),
            ts: new Date(nowMs).toISOString(),
            prev: head?.hash ?? GENESIS_PREV,
          });
          this.insertEvent.run(eventToRow(event));
          this.tree.integrate(event);
          for (const table of AUDIT_TABLES) this.groupTables.add(table);
          this.appendedInTx.push(event);
          return event;
        } catch (error) {
          throw new AuditUnavailableError(error);
        }
      },
      // One writer: transactions already run one at a time.
      lockKey: async () => {},
      insertLogin: async (login: LoginRecord) => {
        statement(
          'INSERT INTO logins (id, iss, sub, email, auth_time, created_at, expires_at, id_token_hash, groups) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        ).run(
          login.id,
          login.iss,
          login.sub,
          login.email,
          login.authTime,
          login.createdAt,
          login.expiresAt,
          login.idTokenHash,
          JSON.stringify(login.groups ?? []),
        );
      },
      getLogin: async (id: string) => {
        const row = statement('SELECT * FROM logins WHERE id = ?').get(id) as Row | undefined;
        return row ? rowToLogin(row) : null;
      },
      findLoginByTokenHash: async (hash: string) => {
        const row = statement('SELECT * FROM logins WHERE id_token_hash = ?').get(hash) as Row | undefined;
        return row ? rowToLogin(row) : null;
      },
      findLatestLogin: async (who: string) => {
        const row = statement(
          "SELECT * FROM logins WHERE sub = @who OR email = @who OR email LIKE @prefix ESCAPE '\\' ORDER BY created_at DESC LIMIT 1",
        ).get({ who, prefix: `${who.replace(/[\\%_]/g, (c) => `\\${c}`)}@%` }) as Row | undefined;
        return row ? rowToLogin(row) : null;
      },
      insertSession: async (session: SessionRecord) => {
        const row = sessionToRow(session);
        const columns = Object.keys(row);
        statement(
          `INSERT INTO sessions (${columns.join(', ')}) VALUES (${columns.map((c) => `@${c}`).join(', ')})`,
        ).run(row);
      },
      getSession: async (id: string) => sessionById(statement, id),
      updateSession: async (id: string, expectedState: SessionState, changes: Partial<SessionRecord>) => {
        const fields = Object.keys(changes) as (keyof SessionRecord)[];
        const params: Row = { id, expectedState };
        const sets = fields.map((field, i) => {
          params[`v${i}`] = sessionValue(field, changes[field]);
          return `${sessionColumn(field)} = @v${i}`;
        });
        const result = statement(
          `UPDATE sessions SET ${sets.join(', ')} WHERE id = @id AND state = @expectedState`,
        ).run(params);
        return result.changes === 1;
      },
      listSessions: async (query: SessionQuery) => sessionsWhere(statement, query),
      lastUsedAuthTime: async (iss: string, sub: string) => {
        const row = statement(
          'SELECT MAX(auth_time) AS t FROM sessions WHERE requester_iss = ? AND requester_sub = ?',
        ).get(iss, sub) as { t: number | null };
        return row.t ?? null;
      },
      recordReview: async (id: string, review: SessionReview) => {
        const result = statement(
          'UPDATE sessions SET review = ? WHERE id = ? AND review_required = 1 AND review IS NULL',
        ).run(sessionValue('review', review), id);
        return result.changes === 1;
      },
      ...passkeyTx(run),
      ...notificationTx(run),
      insertRecordingChunk: async (chunk: RecordingChunk) => {
        statement(
          'INSERT INTO recording_chunks (session, seq, ts, data, sha256) VALUES (@session, @seq, @ts, @data, @sha256)',
        ).run(chunk);
      },
      getRecordingChunk: async (session: string, seq: number) => {
        const row = statement('SELECT * FROM recording_chunks WHERE session = ? AND seq = ?').get(
          session,
          seq,
        ) as Row | undefined;
        return row ? rowToChunk(row) : null;
      },
      countRecordingChunks: async (session: string) =>
        (
          statement('SELECT COUNT(*) AS n FROM recording_chunks WHERE session = ?').get(session) as {
            n: number;
          }
        ).n,
    };
  }

  async listRecordingChunks(session: string): Promise<RecordingChunk[]> {
    const rows = this.readStatement('SELECT * FROM recording_chunks WHERE session = ? ORDER BY seq').all(
      session,
    );
    return this.durable((rows as Row[]).map(rowToChunk));
  }

  async getSession(id: string): Promise<SessionRecord | null> {
    return this.durable(sessionById((sql) => this.readStatement(sql), id));
  }

  /** Outside a transaction: on the reader connection, so committed rows only (an open group's are not seen). */
  async listSessions(query: SessionQuery): Promise<SessionRecord[]> {
    return this.durable(sessionsWhere((sql) => this.readStatement(sql), query));
  }

  /** Nothing to wait for: the one writer sequences every event inside its own transaction. */
  async settle(): Promise<void> {}

  async sequenced(ids: readonly string[]): Promise<AuditEvent[]> {
    const events = await Promise.all(ids.map((id) => this.readAudit({ id })));
    return events.flat().sort((a, b) => a.seq - b.seq);
  }

  // Like every read: what it saw is handed out once durable (events appended before the call included).
  async readAudit(query: AuditQuery = {}): Promise<AuditEvent[]> {
    await this.writeLazy();
    const { sql, params } = auditSelect(query);
    return this.durable((this.readStatement(sql).all(params) as Row[]).map(rowToEvent), AUDIT_TABLES);
  }

  async *iterateAudit(query: AuditQuery = {}): AsyncIterable<AuditEvent> {
    // A stream cannot wait row by row: wait for what was appended before the call, then stop there.
    await this.writeLazy();
    await this.durable(undefined, AUDIT_TABLES);
    const { sql, params } = auditSelect(this.durableOnly(query));
    // A connection of its own: a statement left open between yields holds its connection's snapshot,
    // which would freeze every other read sharing that connection.
    const db = new Database(this.parts.file, { readonly: true, fileMustExist: true });
    this.iterating++;
    try {
      for (const row of db.prepare(sql).iterate(params) as IterableIterator<Row>) yield rowToEvent(row);
    } finally {
      this.iterating--;
      db.close();
    }
  }

  private durableOnly(query: AuditQuery): AuditQuery {
    return { ...query, toSeq: Math.min(query.toSeq ?? Number.POSITIVE_INFINITY, this.durableSeq) };
  }

  /** After a failed WAL sync nothing the connections show can be trusted to be on disk. */
  private mustBeWhole(): void {
    const failed = this.durability.failed;
    if (failed) throw failed;
  }

  // Through the queue, so the head a checkpoint is signed for is one that was committed, and the
  // checkpoint never lands inside (and rolls back with) someone else's group.
  async auditHead(): Promise<{ seq: number; hash: string } | null> {
    return this.transaction(
      async () => (this.headStatement.get() as { seq: number; hash: string } | undefined) ?? null,
    );
  }

  async insertCheckpoint(checkpoint: Checkpoint): Promise<void> {
    await this.transaction(async () => {
      this.statement('INSERT OR IGNORE INTO audit_checkpoints (seq, hash, ts, jws) VALUES (?, ?, ?, ?)').run(
        checkpoint.seq,
        checkpoint.hash,
        checkpoint.ts,
        checkpoint.jws,
      );
    });
  }

  async listCheckpoints(): Promise<Checkpoint[]> {
    await this.writeLazy();
    return this.durable(
      this.readStatement(
        'SELECT seq, hash, ts, jws FROM audit_checkpoints ORDER BY seq',
      ).all() as Checkpoint[],
    );
  }

  // Through the queue like auditHead: the head is one that committed.
  async treeHead(): Promise<{ size: number; root: Hash }> {
    return this.transaction(async () => this.tree.head());
  }

  async treeNodes(nodes: readonly TreeNode[]): Promise<Hash[]> {
    await this.writeLazy();
    return this.durable(this.readerTree.nodes(nodes), AUDIT_TABLES);
  }

  async insertNote(size: number, note: string): Promise<void> {
    await this.transaction(async () => {
      for (const table of AUDIT_TABLES) this.groupTables.add(table);
      this.tree.insertNote(size, note);
    });
  }

  async addCosignatures(size: number, lines: readonly { witness: string; line: string }[]): Promise<void> {
    await this.transaction(async () => {
      for (const table of AUDIT_TABLES) this.groupTables.add(table);
      this.tree.addCosignatures(size, lines);
    });
  }

  async listNotes(): Promise<StoredNote[]> {
    await this.writeLazy();
    return this.durable(this.readerTree.listNotes(), AUDIT_TABLES);
  }

  async listLatestLogins(): Promise<LoginRecord[]> {
    const rows = this.readStatement(
      `SELECT l.* FROM logins l
         JOIN (SELECT iss, sub, MAX(created_at) AS newest FROM logins GROUP BY iss, sub) m
           ON l.iss = m.iss AND l.sub = m.sub AND l.created_at = m.newest
         ORDER BY l.iss, l.sub`,
    ).all() as Row[];
    // Two logins in the same millisecond: keep one per person.
    const seen = new Set<string>();
    return this.durable(
      rows.map(rowToLogin).filter((login) => {
        const key = JSON.stringify([login.iss, login.sub]);
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      }),
    );
  }

  onAppended(listener: (events: AuditEvent[]) => void): () => void {
    this.appendListeners.add(listener);
    return () => this.appendListeners.delete(listener);
  }

  async ping(): Promise<void> {
    this.mustBeWhole();
    // A checkpoint that cannot write the database file loses nothing (the WAL keeps every frame),
    // but the file system is failing: health checks say so.
    const stuck = this.checkpointer.lastError;
    if (stuck) throw new AuditUnavailableError(stuck);
    this.readStatement('SELECT 1').get();
  }

  /** Closing twice (a broker's shutdown and its owner's) waits for the one close. */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private closing: Promise<void> | undefined;

  private async closeOnce(): Promise<void> {
    this.releaseLazy();
    if (this.draining || this.pending.length > 0)
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await this.durability.settled();
    // The last checkpoint, synchronous=FULL, in the worker; then the writer's own on close (SQLite
    // checkpoints and removes the WAL when its last connection closes): FULL too.
    await this.checkpointer.close();
    this.reader.close();
    try {
      this.db.pragma('synchronous = FULL');
    } finally {
      this.db.close();
      closeSync(this.parts.walFd);
    }
  }
}

type StatementFor = (sql: string) => Database.Statement;

/** Written by appends and the tree (its own statements, which tablesOf never sees): one name for all. */
const AUDIT_TABLES = ['audit'];

const tableNames = new Map<string, string[]>();

/**
 * The tables a statement names (after FROM, JOIN, INTO, UPDATE); '*' when it names none it can tell,
 * so an unrecognised write makes every later read wait for its sync.
 */
function tablesOf(sql: string): string[] {
  let tables = tableNames.get(sql);
  if (!tables) {
    tables = [...sql.matchAll(/\b(?:FROM|JOIN|INTO|UPDATE)\s+["`]?(\w+)/gi)].map((m) => m[1]!.toLowerCase());
    if (tables.length === 0) tables = /^\s*SELECT\b/i.test(sql) ? [] : ['*'];
    if (tableNames.size < 1024) tableNames.set(sql, tables);
  }
  return tables;
}

function sessionById(statement: StatementFor, id: string): SessionRecord | null {
  const row = statement('SELECT * FROM sessions WHERE id = ?').get(id) as Row | undefined;
  return row ? rowToSession(row) : null;
}

function sessionsWhere(statement: StatementFor, query: SessionQuery): SessionRecord[] {
  const where: string[] = [];
  const params: Row = {};
  if (query.states?.length) {
    where.push(`state IN (${query.states.map((_, i) => `@s${i}`).join(', ')})`);
    query.states.forEach((state, i) => {
      params[`s${i}`] = state;
    });
  }
  if (query.requesterSub !== undefined) {
    where.push('requester_sub = @sub');
    params.sub = query.requesterSub;
  }
  if (query.requesterIss !== undefined) {
    where.push('requester_iss = @iss');
    params.iss = query.requesterIss;
  }
  if (query.tenant !== undefined) {
    where.push('tenant = @tenant');
    params.tenant = query.tenant;
  }
  if (query.idPrefix !== undefined) {
    where.push('substr(id, 1, length(@prefix)) = @prefix');
    params.prefix = query.idPrefix;
  }
  if (query.dueBy !== undefined) {
    where.push(
      "((state = 'active' AND expires_at <= @due) OR (state = 'pending' AND request_expires_at <= @due))",
    );
    params.due = query.dueBy;
  }
  const limit = query.limit !== undefined ? ` LIMIT ${Math.max(0, Math.floor(query.limit))}` : '';
  const sql = `SELECT * FROM sessions${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${query.newest ? 'created_at DESC, rowid DESC' : 'created_at, rowid'}${limit}`;
  return (statement(sql).all(params) as Row[]).map(rowToSession);
}

function auditSelect(query: AuditQuery): { sql: string; params: Row } {
  const filters: [unknown, string, string][] = [
    [query.fromSeq, 'fromSeq', 'seq >= @fromSeq'],
    [query.toSeq, 'toSeq', 'seq <= @toSeq'],
    [query.sinceTs, 'sinceTs', 'ts >= @sinceTs'],
    [query.untilTs, 'untilTs', 'ts <= @untilTs'],
    [query.id, 'id', 'id = @id'],
    [query.tenant, 'tenant', 'tenant = @tenant'],
    [query.type, 'type', 'type = @type'],
    [query.session, 'session', 'session = @session'],
    [
      query.actor,
      'actor',
      // The local-part match escapes LIKE wildcards: "%" must not match everyone.
      "(json_extract(actor, '$.sub') = @actor OR json_extract(actor, '$.email') = @actor OR json_extract(actor, '$.email') LIKE replace(replace(replace(@actor, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '@%' ESCAPE '\\')",
    ],
  ];
  const where: string[] = [];
  const params: Row = {};
  for (const [value, name, clause] of filters) {
    if (value === undefined) continue;
    where.push(clause);
    params[name] = value;
  }
  const limit = query.limit !== undefined ? ` LIMIT ${Math.max(0, Math.floor(query.limit))}` : '';
  const base = `SELECT * FROM audit_events${where.length ? ` WHERE ${where.join(' AND ')}` : ''}`;
  const sql = query.newest
    ? `SELECT * FROM (${base} ORDER BY seq DESC${limit}) ORDER BY seq`
    : `${base} ORDER BY seq${limit}`;
  return { sql, params };
}

/** Serialises an event for a row (JSON for actor and data). */
export function eventToRow(event: AuditEvent): Row {
  return {
    ...event,
    actor: event.actor === null ? null : JSON.stringify(event.actor),
    data: JSON.stringify(event.data),
  };
}

/** Rebuilds an event from a row exactly as it was hashed. */
export function rowToEvent(row: Row): AuditEvent {
  return {
    seq: Number(row.seq),
    id: String(row.id),
    ts: String(row.ts),
    type: String(row.type),
    actor: row.actor === null || row.actor === undefined ? null : JSON.parse(String(row.actor)),
    tenant: (row.tenant as string | null) ?? null,
    environment: (row.environment as string | null) ?? null,
    session: (row.session as string | null) ?? null,
    ticket: (row.ticket as string | null) ?? null,
    reason: (row.reason as string | null) ?? null,
    data: JSON.parse(String(row.data)),
    prev: String(row.prev),
    hash: String(row.hash),
  };
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
