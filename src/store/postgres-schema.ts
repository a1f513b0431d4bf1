/**
 * PostgreSQL migrations, applied in order by `migratePostgres` (src/store/postgres.ts) under an
 * advisory lock, each recorded in `imp_schema_migrations`. Never edit a released one: append.
 *
 * The audit tables refuse UPDATE, DELETE and TRUNCATE by trigger, whoever asks (the table owner
 * included); the documented grants additionally give the broker's role only SELECT and INSERT on
 * them (README "Running the broker → PostgreSQL").
 *
 * audit_events keeps each sealed event as the exact JSON text that was hashed (`event`): PostgreSQL
 * text cannot hold U+0000 and jsonb would reorder and renormalise it, so the JSON is the record and
 * the other columns are copies for filtering (NUL replaced) that verification never reads.
 */
import { NOTIFICATION_TABLE_SQL } from './notification-rows.js';
import { PASSKEY_TABLES_SQL } from './passkey-rows.js';

import { POSTGRES_TREE_MIGRATION } from './postgres-tree.js';
import { SESSION_PERSON_INDEXES_SQL } from './session-rows.js';

/** One migration: a name for the version table and its SQL (run in one transaction with the others). */
export interface PostgresMigration {
  name: string;
  sql: string;
}

/** Ordered migrations; version N is the N-th entry (1-based). */
export const POSTGRES_MIGRATIONS: readonly PostgresMigration[] = [
  {
    name: 'audit log, checkpoints, logins',
    sql: `
    CREATE FUNCTION imp_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
    END $$;

    CREATE TABLE audit_events (
      seq BIGINT PRIMARY KEY CHECK (seq >= 1),
      id TEXT NOT NULL UNIQUE,
      ts TEXT COLLATE "C" NOT NULL,
      type TEXT NOT NULL,
      actor_sub TEXT,
      actor_email TEXT,
      tenant TEXT,
      environment TEXT,
      session TEXT,
      prev TEXT NOT NULL,
      hash TEXT NOT NULL,
      event TEXT NOT NULL
    );
    CREATE INDEX audit_events_tenant ON audit_events (tenant, seq);
    CREATE INDEX audit_events_session ON audit_events (session, seq);
    CREATE INDEX audit_events_type ON audit_events (type, seq);
    CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
      FOR EACH ROW EXECUTE FUNCTION imp_refuse_change();
    CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
      FOR EACH STATEMENT EXECUTE FUNCTION imp_refuse_change();

    CREATE TABLE audit_checkpoints (
      seq BIGINT PRIMARY KEY,
      hash TEXT NOT NULL,
      ts TEXT NOT NULL,
      jws TEXT NOT NULL
    );
    CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
      FOR EACH ROW EXECUTE FUNCTION imp_refuse_change();
    CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
      FOR EACH STATEMENT EXECUTE FUNCTION imp_refuse_change();

    CREATE TABLE logins (
      id TEXT PRIMARY KEY,
      iss TEXT NOT NULL,
      sub TEXT NOT NULL,
      email TEXT,
      auth_time BIGINT NOT NULL,
      created_at BIGINT NOT NULL,
      expires_at BIGINT NOT NULL,
      id_token_hash TEXT NOT NULL UNIQUE,
      groups TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX logins_subject ON logins (iss, sub, created_at);
    CREATE INDEX logins_email ON logins (email, created_at);
    `,
  },
  {
    name: 'sessions',
    sql: `
    CREATE TABLE sessions (
      n BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
      id TEXT PRIMARY KEY,
      state TEXT NOT NULL,
      mode TEXT NOT NULL,
      requester_iss TEXT NOT NULL,
      requester_sub TEXT NOT NULL,
      requester TEXT NOT NULL,
      tenant TEXT NOT NULL,
      environment TEXT NOT NULL,
      scope TEXT NOT NULL,
      ticket TEXT NOT NULL,
      reason TEXT NOT NULL,
      ttl INTEGER NOT NULL,
      login_id TEXT NOT NULL,
      auth_time BIGINT NOT NULL,
      created_at BIGINT NOT NULL,
      request_expires_at BIGINT,
      decided_by TEXT,
      decided_at BIGINT,
      decision_comment TEXT,
      started_at BIGINT,
      expires_at BIGINT,
      ended_at BIGINT,
      ended_by TEXT,
      review_required INTEGER NOT NULL DEFAULT 0,
      review TEXT
    );
    CREATE INDEX sessions_requester ON sessions (requester_iss, requester_sub, state);
    CREATE INDEX sessions_state ON sessions (state, expires_at);
    CREATE INDEX sessions_review ON sessions (mode, review_required);

    -- Long-polls on every replica wake when a session changes state (delivered at commit).
    CREATE FUNCTION imp_notify_session() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('imp_sessions', NEW.id);
      RETURN NULL;
    END $$;
    CREATE TRIGGER sessions_notify AFTER UPDATE ON sessions
      FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.review IS DISTINCT FROM NEW.review)
      EXECUTE FUNCTION imp_notify_session();
    `,
  },
  {
    name: 'broker signing keys',
    sql: `
    -- Shared by every replica. Private keys: grant SELECT on this table to the broker role only.
    CREATE TABLE broker_keys (
      kid TEXT PRIMARY KEY,
      kind TEXT NOT NULL,
      created_at BIGINT NOT NULL,
      retire_after BIGINT,
      private_jwk TEXT NOT NULL
    );
    `,
  },
  {
    name: 'session recordings',
    sql: `
    -- asciicast v2 chunks; each chunk's sha256 is also in the audit log, so a changed one shows.
    CREATE TABLE recording_chunks (
      session TEXT NOT NULL,
      seq INTEGER NOT NULL,
      ts BIGINT NOT NULL,
      data TEXT NOT NULL,
      sha256 TEXT NOT NULL,
      PRIMARY KEY (session, seq)
    );
    CREATE TRIGGER recording_chunks_append_only BEFORE UPDATE OR DELETE ON recording_chunks
      FOR EACH ROW EXECUTE FUNCTION imp_refuse_change();
    `,
  },
  {
    name: 'audit tree (RFC 9162), checkpoint notes, witness cosignatures',
    sql: POSTGRES_TREE_MIGRATION,
  },
  {
    name: 'passkeys and WebAuthn ceremonies',
    sql: PASSKEY_TABLES_SQL,
  },
  {
    name: 'notification outbox',
    sql: NOTIFICATION_TABLE_SQL,
  },
  {
    name: 'audit queue (appends durable apart from sequencing)',
    sql: `
    -- An append is a plain INSERT here, in the caller's transaction (no lock: parallel commits share
    -- WAL flushes). One sequencer at a time moves rows, in n order, into audit_events and the tree
    -- and deletes them in the same transaction (postgres-sequencer.ts): the broker role needs DELETE.
    CREATE TABLE audit_queue (
      n BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      body TEXT NOT NULL
    );
    `,
  },
  {
    // Every session open reads the person's newest auth_time and their sessions on the tenant: a
    // few index entries instead of the person's whole history (issue #16).
    name: 'sessions: indexes for the per-person checks',
    sql: SESSION_PERSON_INDEXES_SQL,
  },
];
