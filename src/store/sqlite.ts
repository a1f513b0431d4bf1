/**
 * The embedded store: one SQLite file (WAL, synchronous=FULL so an acknowledged event survives a
 * crash). better-sqlite3 is synchronous; an in-process queue runs transactions one at a time, which
 * also serializes audit appends so the chain cannot fork.
 *
 * Group commit: the fsync of COMMIT (~0.7 ms on a typical disk) would otherwise cap the broker at
 * about 1,400 transactions a second whatever the CPU. Transactions queued in the same turn of the
 * event loop run one after another inside one SQLite transaction, each in a SAVEPOINT of its own
 * (a failing one is rolled back alone), and share one COMMIT. None is acknowledged — its promise
 * settled — before that COMMIT returned; if the COMMIT fails, all of them fail (fail-closed).
 *
 * Reads outside transactions (StoreReads) go to a second, read-only connection: they never queue
 * behind a group, and under WAL they see committed data only, not a group still in progress.
 */
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import type { Checkpoint } from '../core/audit/checkpoint.js';
import { type AuditDraft, type AuditEvent, GENESIS_PREV, sealEvent } from '../core/audit/event.js';
import type { StoredNote } from '../core/audit/log-tree.js';
import type { Hash, TreeNode } from '../core/audit/merkle.js';
import { AuditUnavailableError, ImpError } from '../core/errors.js';
import type { RecordingChunk } from '../core/recording/asciicast.js';
import { notificationTx } from './notification-rows.js';
import { passkeyTx, type SqlRunner } from './passkey-rows.js';
import { rowToSession, sessionColumn, sessionToRow, sessionValue } from './session-rows.js';
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
} from './types.js';
import { STORE_READS } from './types.js';

type Row = Record<string, unknown>;

/** Opens (creating and migrating) a SQLite store. */
export function openSqliteStore(file: string, options: { busyTimeoutMs?: number } = {}): Store {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 2000}`);
  db.pragma('foreign_keys = ON');
  migrate(db);
  const tree = new SqliteTree(db);
  // Events the tree does not hold yet (a log from before the tree existed): integrate them first.
  const size = tree.size();
  tree.catchUp(
    (db.prepare('SELECT * FROM audit_events WHERE seq > ? ORDER BY seq').all(size) as Row[]).map(rowToEvent),
  );
  // Reads outside transactions use a connection of their own: under WAL it sees committed data only,
  // never the half-done group the writer has open.
  const reader = new Database(file, { readonly: true, fileMustExist: true });
  reader.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 2000}`);
  return new SqliteStore(db, tree, reader);
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

interface QueuedTransaction {
  fn: (tx: StoreTx) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

class SqliteStore implements Store {
  readonly engine = 'sqlite' as const;
  private readonly pending: QueuedTransaction[] = [];
  private draining = false;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly appendListeners = new Set<(events: AuditEvent[]) => void>();
  private appendedInTx: AuditEvent[] = [];
  private readonly insertEvent: Database.Statement;
  private readonly headStatement: Database.Statement;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly readerStatements = new Map<string, Database.Statement>();
  declare getLogin: StoreReads['getLogin'];
  declare findLoginByTokenHash: StoreReads['findLoginByTokenHash'];
  declare findLatestLogin: StoreReads['findLatestLogin'];
  declare lastUsedAuthTime: StoreReads['lastUsedAuthTime'];
  declare getPasskey: StoreReads['getPasskey'];
  declare listPasskeys: StoreReads['listPasskeys'];
  declare getCeremony: StoreReads['getCeremony'];

  constructor(
    private readonly db: Database.Database,
    private readonly tree: SqliteTree,
    private readonly reader: Database.Database,
  ) {
    // The read methods are the transaction's own, run on the reader connection.
    const reads = this.tx((sql) => this.cached(this.reader, this.readerStatements, sql));
    for (const name of STORE_READS) Object.assign(this, { [name]: reads[name] });
    this.insertEvent = db.prepare(
      `INSERT INTO audit_events (seq, id, ts, type, actor, tenant, environment, session, ticket, reason, data, prev, hash)
       VALUES (@seq, @id, @ts, @type, @actor, @tenant, @environment, @session, @ticket, @reason, @data, @prev, @hash)`,
    );
    this.headStatement = db.prepare('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1');
  }

  /** A prepared statement, compiled once per distinct SQL text: compiling costs more than running most. */
  private statement(sql: string): Database.Statement {
    return this.cached(this.db, this.statements, sql);
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

  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      this.schedule();
    });
  }

  // The group starts on the next turn of the event loop, so every request whose I/O is ready now
  // gets to queue its transaction first.
  private schedule(): void {
    if (this.draining) return;
    this.draining = true;
    setImmediate(() => {
      this.runGroup(this.pending.splice(0, MAX_GROUP)).finally(() => {
        this.draining = false;
        if (this.pending.length > 0) this.schedule();
        else for (const wake of this.idleWaiters.splice(0)) wake();
      });
    });
  }

  private async runGroup(group: QueuedTransaction[]): Promise<void> {
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
    if (appended.length > 0) for (const listener of this.appendListeners) listener(appended);
    for (const { queued, result } of done) queued.resolve(result);
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
          this.appendedInTx.push(event);
          return event;
        } catch (error) {
          throw new AuditUnavailableError(error);
        }
      },
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
      getSession: async (id: string) => this.getSession(id),
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
      listSessions: async (query: SessionQuery) => this.selectSessions(statement, query),
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
    return (
      this.statement('SELECT * FROM recording_chunks WHERE session = ? ORDER BY seq').all(session) as Row[]
    ).map(rowToChunk);
  }

  async getSession(id: string): Promise<SessionRecord | null> {
    const row = this.statement('SELECT * FROM sessions WHERE id = ?').get(id) as Row | undefined;
    return row ? rowToSession(row) : null;
  }

  /** Outside a transaction: on the reader connection, so committed rows only (an open group's are not seen). */
  async listSessions(query: SessionQuery): Promise<SessionRecord[]> {
    return this.selectSessions((sql) => this.cached(this.reader, this.readerStatements, sql), query);
  }

  private selectSessions(
    statement: (sql: string) => Database.Statement,
    query: SessionQuery,
  ): SessionRecord[] {
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
    const limit = query.limit !== undefined ? ` LIMIT ${Math.max(0, Math.floor(query.limit))}` : '';
    const sql = `SELECT * FROM sessions${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${query.newest ? 'created_at DESC, rowid DESC' : 'created_at, rowid'}${limit}`;
    return (statement(sql).all(params) as Row[]).map(rowToSession);
  }

  async readAudit(query: AuditQuery = {}): Promise<AuditEvent[]> {
    const { sql, params } = auditSelect(query);
    return (this.statement(sql).all(params) as Row[]).map(rowToEvent);
  }

  async *iterateAudit(query: AuditQuery = {}): AsyncIterable<AuditEvent> {
    const { sql, params } = auditSelect(query);
    // A statement of its own: a shared one would be busy while this generator is suspended.
    for (const row of this.db.prepare(sql).iterate(params) as IterableIterator<Row>) yield rowToEvent(row);
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
    return this.statement(
      'SELECT seq, hash, ts, jws FROM audit_checkpoints ORDER BY seq',
    ).all() as Checkpoint[];
  }

  // Through the queue like auditHead: the head is one that committed.
  async treeHead(): Promise<{ size: number; root: Hash }> {
    return this.transaction(async () => this.tree.head());
  }

  async treeNodes(nodes: readonly TreeNode[]): Promise<Hash[]> {
    return this.tree.nodes(nodes);
  }

  async insertNote(size: number, note: string): Promise<void> {
    await this.transaction(async () => this.tree.insertNote(size, note));
  }

  async addCosignatures(size: number, lines: readonly { witness: string; line: string }[]): Promise<void> {
    await this.transaction(async () => this.tree.addCosignatures(size, lines));
  }

  async listNotes(): Promise<StoredNote[]> {
    return this.tree.listNotes();
  }

  async listLatestLogins(): Promise<LoginRecord[]> {
    const rows = this.statement(
      `SELECT l.* FROM logins l
         JOIN (SELECT iss, sub, MAX(created_at) AS newest FROM logins GROUP BY iss, sub) m
           ON l.iss = m.iss AND l.sub = m.sub AND l.created_at = m.newest
         ORDER BY l.iss, l.sub`,
    ).all() as Row[];
    // Two logins in the same millisecond: keep one per person.
    const seen = new Set<string>();
    return rows.map(rowToLogin).filter((login) => {
      const key = JSON.stringify([login.iss, login.sub]);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  }

  onAppended(listener: (events: AuditEvent[]) => void): () => void {
    this.appendListeners.add(listener);
    return () => this.appendListeners.delete(listener);
  }

  async ping(): Promise<void> {
    this.statement('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.draining || this.pending.length > 0)
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.reader.close();
    this.db.close();
  }
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
