/**
 * Passkeys and WebAuthn ceremonies, written once for both engines: the SQL is plain enough to run on
 * SQLite and PostgreSQL alike, so each engine only supplies how a statement runs (`?` placeholders).
 */
import type { CeremonyChanges, CeremonyRecord, PasskeyRecord, StoreTx } from './types.js';

type Row = Record<string, unknown>;

/** Runs one statement with `?` placeholders inside the current transaction. */
export type SqlRunner = (sql: string, values: unknown[]) => Promise<{ rows: Row[]; changes: number }>;

/** The passkey half of a StoreTx, over an engine's runner. */
export type PasskeyTx = Pick<
  StoreTx,
  | 'insertPasskey'
  | 'getPasskey'
  | 'listPasskeys'
  | 'updatePasskeyUse'
  | 'deletePasskey'
  | 'deletePasskeys'
  | 'insertCeremony'
  | 'getCeremony'
  | 'updateCeremony'
>;

/** The tables, for both engines' migrations (BIGINT is an INTEGER to SQLite). */
export const PASSKEY_TABLES_SQL = `
  CREATE TABLE passkeys (
    id TEXT PRIMARY KEY,
    iss TEXT NOT NULL,
    sub TEXT NOT NULL,
    email TEXT,
    public_key TEXT NOT NULL,
    counter BIGINT NOT NULL,
    transports TEXT NOT NULL,
    aaguid TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
  );
  CREATE INDEX passkeys_subject ON passkeys (iss, sub);
  CREATE TABLE passkey_ceremonies (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    iss TEXT NOT NULL,
    sub TEXT NOT NULL,
    email TEXT,
    login_id TEXT NOT NULL,
    operation TEXT NOT NULL,
    binding TEXT NOT NULL,
    description TEXT NOT NULL,
    user_code TEXT NOT NULL,
    challenge TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    credential_id TEXT,
    user_verified INTEGER NOT NULL DEFAULT 0,
    verified_at BIGINT
  );
`;

const CEREMONY_COLUMNS: Record<keyof CeremonyChanges, string> = {
  state: 'state',
  credentialId: 'credential_id',
  userVerified: 'user_verified',
  verifiedAt: 'verified_at',
};

/** The passkey operations of a transaction. */
export function passkeyTx(run: SqlRunner): PasskeyTx {
  return {
    insertPasskey: async (p: PasskeyRecord) => {
      await run(
        `INSERT INTO passkeys (id, iss, sub, email, public_key, counter, transports, aaguid, name, created_at, last_used_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          p.id,
          p.iss,
          p.sub,
          p.email,
          p.publicKey,
          p.counter,
          JSON.stringify(p.transports),
          p.aaguid,
          p.name,
          p.createdAt,
          p.lastUsedAt,
        ],
      );
    },
    getPasskey: async (id: string) => {
      const { rows } = await run('SELECT * FROM passkeys WHERE id = ?', [id]);
      return rows[0] ? rowToPasskey(rows[0]) : null;
    },
    listPasskeys: async (iss: string, sub: string) => {
      const { rows } = await run('SELECT * FROM passkeys WHERE iss = ? AND sub = ? ORDER BY created_at, id', [
        iss,
        sub,
      ]);
      return rows.map(rowToPasskey);
    },
    updatePasskeyUse: async (id: string, counter: number, lastUsedAt: number) => {
      await run('UPDATE passkeys SET counter = ?, last_used_at = ? WHERE id = ?', [counter, lastUsedAt, id]);
    },
    deletePasskey: async (iss: string, sub: string, id: string) =>
      (await run('DELETE FROM passkeys WHERE iss = ? AND sub = ? AND id = ?', [iss, sub, id])).changes === 1,
    deletePasskeys: async (iss: string, sub: string) =>
      (await run('DELETE FROM passkeys WHERE iss = ? AND sub = ?', [iss, sub])).changes,
    insertCeremony: async (c: CeremonyRecord) => {
      await run(
        `INSERT INTO passkey_ceremonies (id, kind, iss, sub, email, login_id, operation, binding, description,
           user_code, challenge, created_at, expires_at, state, credential_id, user_verified, verified_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          c.id,
          c.kind,
          c.iss,
          c.sub,
          c.email,
          c.loginId,
          JSON.stringify(c.operation),
          c.binding,
          c.description,
          c.userCode,
          c.challenge,
          c.createdAt,
          c.expiresAt,
          c.state,
          c.credentialId,
          c.userVerified ? 1 : 0,
          c.verifiedAt,
        ],
      );
    },
    getCeremony: async (id: string) => {
      const { rows } = await run('SELECT * FROM passkey_ceremonies WHERE id = ?', [id]);
      return rows[0] ? rowToCeremony(rows[0]) : null;
    },
    updateCeremony: async (id, expectedState, changes) => {
      const fields = Object.keys(changes) as (keyof CeremonyChanges)[];
      const values: unknown[] = fields.map((field) =>
        field === 'userVerified' ? (changes[field] ? 1 : 0) : changes[field],
      );
      const sets = fields.map((field) => `${CEREMONY_COLUMNS[field]} = ?`);
      if (sets.length === 0) sets.push('state = state');
      const { changes: count } = await run(
        `UPDATE passkey_ceremonies SET ${sets.join(', ')} WHERE id = ? AND state = ?`,
        [...values, id, expectedState],
      );
      return count === 1;
    },
  };
}

const num = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value));

function rowToPasskey(row: Row): PasskeyRecord {
  return {
    id: String(row.id),
    iss: String(row.iss),
    sub: String(row.sub),
    email: (row.email as string | null) ?? null,
    publicKey: String(row.public_key),
    counter: Number(row.counter),
    transports: JSON.parse(String(row.transports)) as string[],
    aaguid: String(row.aaguid),
    name: String(row.name),
    createdAt: Number(row.created_at),
    lastUsedAt: num(row.last_used_at),
  };
}

function rowToCeremony(row: Row): CeremonyRecord {
  return {
    id: String(row.id),
    kind: row.kind === 'register' ? 'register' : 'assert',
    iss: String(row.iss),
    sub: String(row.sub),
    email: (row.email as string | null) ?? null,
    loginId: String(row.login_id),
    operation: JSON.parse(String(row.operation)) as Record<string, unknown>,
    binding: String(row.binding),
    description: String(row.description),
    userCode: String(row.user_code),
    challenge: String(row.challenge),
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    state: String(row.state) as CeremonyRecord['state'],
    credentialId: (row.credential_id as string | null) ?? null,
    userVerified: Number(row.user_verified) === 1,
    verifiedAt: num(row.verified_at),
  };
}
