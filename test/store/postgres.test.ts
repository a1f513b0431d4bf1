/**
 * What only the PostgreSQL engine has: versioned migrations under an advisory lock (brokers starting
 * together migrate once), a role that may not migrate, a schema newer than the code; signing keys
 * shared through the database; session-change notifications across store instances; and the
 * connection settings (TLS as libpq does it, no password in a policy or on a command line).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing } from '../../src/broker/keys.js';
import { parsePolicy } from '../../src/core/policy/load.js';
import { storeUrlProblem } from '../../src/core/policy/validate.js';
import {
  isPostgresUnavailable,
  migratePostgres,
  openPostgresStore,
  POSTGRES_SCHEMA_VERSION,
  postgresConnectionConfig,
} from '../../src/store/postgres.js';
import { POSTGRES_MIGRATIONS } from '../../src/store/postgres-schema.js';
import { POSTGRES, requireComponents } from '../helpers/components.js';
import { type PgCluster, startPostgres } from '../helpers/postgres.js';
import { makeTempDir } from '../helpers/temp.js';

const havePostgres = requireComponents(POSTGRES);
let cluster: PgCluster;

beforeAll(async () => {
  if (havePostgres) cluster = await startPostgres();
});
afterAll(async () => {
  await cluster?.stop();
});

describe.runIf(havePostgres)('postgres migrations', () => {
  it('brokers starting at once migrate once; versions are recorded in order', async () => {
    const db = await cluster.createDatabase();
    const stores = await Promise.all(Array.from({ length: 4 }, () => openPostgresStore(db.ownerUrl)));
    await Promise.all(stores.map((store) => store.close()));
    const { rows } = await cluster.query<{ version: number; name: string }>(
      'SELECT version, name FROM imp_schema_migrations ORDER BY version',
      [],
      db.name,
    );
    expect(rows).toEqual(POSTGRES_MIGRATIONS.map((m, i) => ({ version: i + 1, name: m.name })));
    const pool = new pg.Pool({ connectionString: db.ownerUrl, max: 1 });
    try {
      expect(await migratePostgres(pool)).toEqual({
        from: POSTGRES_SCHEMA_VERSION,
        to: POSTGRES_SCHEMA_VERSION,
      });
    } finally {
      await pool.end();
    }
  });

  it('a broker role that may not migrate is told what to run; once migrated and granted, it starts', async () => {
    const db = await cluster.createDatabase();
    await cluster.query('GRANT USAGE ON SCHEMA public TO imp_broker', [], db.name);
    await expect(openPostgresStore(db.brokerUrl)).rejects.toThrow(/--migrate-only/);
    await expect(openPostgresStore(db.brokerUrl, { migrate: false })).rejects.toThrow(
      /version 0; this imp needs/,
    );
    const fresh = await cluster.createDatabase({ migrated: true });
    const store = await openPostgresStore(fresh.brokerUrl);
    await store.close();
  });

  it('refuses a schema newer than this imp', async () => {
    const db = await cluster.createDatabase({ migrated: true });
    await cluster.query(
      "INSERT INTO imp_schema_migrations (version, name) VALUES ($1, 'from the future')",
      [POSTGRES_SCHEMA_VERSION + 1],
      db.name,
    );
    await expect(openPostgresStore(db.brokerUrl)).rejects.toThrow(/Upgrade imp/);
  });
});

describe.runIf(havePostgres)('postgres shared state', () => {
  it('gives brokers starting at once one set of signing keys, and rotation reaches the others', async () => {
    const db = await cluster.createDatabase({ migrated: true });
    const stores = await Promise.all(
      [1, 2, 3].map(() => openPostgresStore(db.brokerUrl, { migrate: false })),
    );
    try {
      const now = Date.now();
      const rings = await Promise.all(stores.map((store) => KeyRing.open(store.keyStorage(), now)));
      const kids = (ring: KeyRing) => ring.jwks(now).keys.map((key) => key.kid);
      expect(kids(rings[1]!)).toEqual(kids(rings[0]!));
      expect(kids(rings[2]!)).toEqual(kids(rings[0]!));
      expect(rings[1]!.active('login').kid).toBe(rings[0]!.active('login').kid);
      const { rows } = await cluster.query('SELECT kind FROM broker_keys ORDER BY kind', [], db.name);
      expect(rows.map((r) => r.kind)).toEqual(['audit', 'login', 'session']);

      const old = rings[0]!.active('session').kid;
      const rotated = await rings[0]!.rotate('session', now, 60_000);
      await rings[1]!.refresh();
      expect(rings[1]!.active('session').kid).toBe(rotated.kid);
      expect(kids(rings[1]!)).toEqual(expect.arrayContaining([old, rotated.kid]));
      expect(rings[1]!.verifying('session', now + 120_000).map((k) => k.kid)).toEqual([rotated.kid]);
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });

  it('tells every store instance when a session changes state, at commit', async () => {
    const db = await cluster.createDatabase({ migrated: true });
    const [writer, reader] = await Promise.all(
      [1, 2].map(() => openPostgresStore(db.brokerUrl, { migrate: false })),
    );
    try {
      const heard: string[] = [];
      let wake: () => void = () => {};
      reader!.onSessionChanged((id) => {
        heard.push(id);
        wake();
      });
      // The LISTEN connection comes up in the background: wait until the server has it listening.
      const listening = async (): Promise<boolean> =>
        (
          await cluster.query(
            "SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'LISTEN %' AND state = 'idle'",
            [db.name],
          )
        ).rowCount! > 0;
      const deadline = Date.now() + 10_000;
      while (!(await listening())) {
        if (Date.now() > deadline) throw new Error('the LISTEN connection never came up');
        await new Promise((r) => setTimeout(r, 20));
      }
      const id = '00000000-0000-4000-8000-00000000cafe';
      const requester = { iss: 'i', sub: 's', email: null, roles: [] };
      await writer!.transaction((tx) =>
        tx.insertSession({
          id,
          state: 'pending',
          mode: 'standard',
          requester,
          tenant: 'acme',
          environment: 'prod',
          scope: 'write',
          ticket: 'SUP-1',
          reason: 'needs approval here',
          ttl: 60,
          loginId: 'l',
          authTime: 1,
          createdAt: 1,
          requestExpiresAt: 10_000,
          decidedBy: null,
          decidedAt: null,
          decisionComment: null,
          startedAt: null,
          expiresAt: null,
          endedAt: null,
          endedBy: null,
          reviewRequired: false,
        }),
      );
      const heardIt = new Promise<void>((resolve) => {
        wake = resolve;
      });
      await writer!.transaction(async (tx) => {
        expect(await tx.updateSession(id, 'pending', { state: 'active', startedAt: 2 })).toBe(true);
        await new Promise((r) => setTimeout(r, 100));
        expect(heard).toEqual([]); // not before commit
      });
      await heardIt;
      expect(heard).toEqual([id]);
    } finally {
      await writer!.close();
      await reader!.close();
    }
  });
});

describe('postgres connection settings', () => {
  it('does TLS as libpq does: disable by default, verify-full checks chain and name, verify-ca needs a CA', () => {
    const dir = makeTempDir('imp-pg-tls-');
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    expect(postgresConnectionConfig('postgres://u@db/imp', {}).ssl).toBe(false);
    const full = postgresConnectionConfig(`postgres://u@db/imp?sslmode=verify-full&sslrootcert=${ca}`, {});
    expect(full.ssl).toMatchObject({ ca: expect.stringContaining('BEGIN CERTIFICATE') });
    expect((full.ssl as { rejectUnauthorized?: boolean }).rejectUnauthorized).toBeUndefined();
    expect((full.ssl as { checkServerIdentity?: unknown }).checkServerIdentity).toBeUndefined();
    expect(full.connectionString).toBe('postgres://u@db/imp');
    // From the environment, as libpq reads it.
    const fromEnv = postgresConnectionConfig('postgres://u@db/imp', {
      PGSSLMODE: 'verify-ca',
      PGSSLROOTCERT: ca,
    });
    expect(fromEnv.ssl).toMatchObject({ ca: expect.any(String), checkServerIdentity: expect.any(Function) });
    expect(postgresConnectionConfig('postgres://u@db/imp?sslmode=require', {}).ssl).toMatchObject({
      rejectUnauthorized: false,
    });
    expect(() => postgresConnectionConfig('postgres://u@db/imp?sslmode=verify-ca', {})).toThrow(
      /root certificate/,
    );
    expect(() => postgresConnectionConfig('postgres://u@db/imp?sslmode=bogus', {})).toThrow(/verify-full/);
    expect(() => postgresConnectionConfig('mysql://u@db/imp', {})).toThrow(/postgres:\/\//);
    expect(() =>
      postgresConnectionConfig('postgres://u@db/imp?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem', {}),
    ).toThrow(/Cannot read the PostgreSQL root certificate/);
  });

  it('keeps passwords out of policy files and command lines', () => {
    expect(storeUrlProblem('postgres://imp_broker@db.internal/imp?sslmode=verify-full')).toBeNull();
    expect(storeUrlProblem('postgresql://db/imp')).toBeNull();
    expect(storeUrlProblem('postgres://imp:hunter2@db/imp')).toMatch(/password/);
    expect(storeUrlProblem('postgres://imp@db/imp?password=hunter2')).toMatch(/password/);
    expect(storeUrlProblem('sqlite:///var/lib/imp.db')).toMatch(/postgres:\/\//);
    const policy = (store: string) => `identity: { issuer: https://idp.example.test }\nstore: ${store}\n`;
    expect(parsePolicy(policy('postgres://imp_broker@db/imp'), 'broker.yaml').store).toBe(
      'postgres://imp_broker@db/imp',
    );
    expect(parsePolicy(policy('sqlite'), 'broker.yaml').store).toBeNull();
    expect(() => parsePolicy(policy('postgres://imp:hunter2@db/imp'), 'broker.yaml')).toThrow(
      /broker\.yaml:2: store: must not contain a password/,
    );
  });

  it('classifies what fails closed', () => {
    for (const code of [
      '08006',
      '28P01',
      '3D000',
      '25006',
      '42501',
      '53300',
      '55P03',
      '57014',
      '57P01',
      'ECONNREFUSED',
    ])
      expect(isPostgresUnavailable({ code, message: 'x' }), code).toBe(true);
    expect(isPostgresUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    for (const code of ['23505', '42P01', '22P02'])
      expect(isPostgresUnavailable({ code, message: 'x' }), code).toBe(false);
    expect(isPostgresUnavailable(new Error('bug'))).toBe(false);
  });
});
