import { NOTIFICATION_TABLE_SQL } from './notification-rows.js';
import { PASSKEY_TABLES_SQL } from './passkey-rows.js';
import { SESSION_PERSON_INDEXES_SQL } from './session-rows.js';

/** SQLite migrations, applied in order; PRAGMA user_version records how many ran. */
import { SQLITE_TREE_MIGRATION } from './sqlite-tree.js';

/** Ordered migrations; never edit a released one, append a new one. */
export const SQLITE_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    ts TEXT NOT NULL,
    type TEXT NOT NULL,
    actor TEXT,
    tenant TEXT,
    environment TEXT,
    session TEXT,
    ticket TEXT,
    reason TEXT,
    data TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
  );
  CREATE INDEX audit_events_tenant ON audit_events (tenant, seq);
  CREATE INDEX audit_events_session ON audit_events (session, seq);
  CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
  CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;

  CREATE TABLE audit_checkpoints (
    seq INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    ts TEXT NOT NULL,
    jws TEXT NOT NULL
  );
  CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
    BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
  CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
    BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;

  CREATE TABLE logins (
    id TEXT PRIMARY KEY,
    iss TEXT NOT NULL,
    sub TEXT NOT NULL,
    email TEXT,
    auth_time INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    id_token_hash TEXT NOT NULL UNIQUE,
    groups TEXT NOT NULL DEFAULT '[]'
  );
  CREATE INDEX logins_subject ON logins (iss, sub);
  `,
  `
  CREATE TABLE sessions (
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
    auth_time INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    request_expires_at INTEGER,
    decided_by TEXT,
    decided_at INTEGER,
    decision_comment TEXT,
    started_at INTEGER,
    expires_at INTEGER,
    ended_at INTEGER,
    ended_by TEXT,
    review_required INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX sessions_requester ON sessions (requester_iss, requester_sub, state);
  CREATE INDEX sessions_state ON sessions (state, expires_at);
  `,
  // 3: break-glass review outcome (JSON: by, at, outcome, notes); null until reviewed.
  `
  ALTER TABLE sessions ADD COLUMN review TEXT;
  CREATE INDEX sessions_review ON sessions (mode, review_required);
  `,
  // 4: session recordings (asciicast v2 chunks); each chunk's sha256 is also in the audit log.
  `
  CREATE TABLE recording_chunks (
    session TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    data TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (session, seq)
  );
  CREATE TRIGGER recording_chunks_no_update BEFORE UPDATE ON recording_chunks
    BEGIN SELECT RAISE(ABORT, 'recordings are append-only'); END;
  CREATE TRIGGER recording_chunks_no_delete BEFORE DELETE ON recording_chunks
    BEGIN SELECT RAISE(ABORT, 'recordings are append-only'); END;
  `,
  // 5: the audit log as an RFC 9162 tree (existing events are integrated on open), checkpoint notes, cosignatures.
  SQLITE_TREE_MIGRATION,
  // 6: passkeys the broker holds and the WebAuthn ceremonies that use them.
  PASSKEY_TABLES_SQL,
  // 7: the notification outbox (rows written with the audit event they announce).
  NOTIFICATION_TABLE_SQL,
  // 8: the per-person checks of every session open (the step-up check's newest auth_time, the
  // one-session-per-tenant check) read a few index entries instead of the person's whole history.
  SESSION_PERSON_INDEXES_SQL,
];
