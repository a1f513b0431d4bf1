/**
 * Fail-closed audit: when the audit log cannot be written (another connection holds SQLite's write
 * lock), a login that would otherwise succeed answers 503 IMP_AUDIT_UNAVAILABLE and leaves no trace;
 * once the lock goes, service resumes by itself. The audit table refuses UPDATE and DELETE even
 * from a connection that bypasses the broker.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { type CryptoKey, importJWK, SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/broker/server.js';
import { startBroker } from '../../src/broker/start.js';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { systemClock } from '../../src/runtime/clock.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { makeTempDir } from '../helpers/temp.js';

let idp: DevIdp;
let broker: Broker & { url: string };
let stateDir: string;
let dbFile: string;
let idpKey: CryptoKey;
let idpAlg: string;
let idpKid: string;
const open: Database.Database[] = [];

beforeAll(async () => {
  idp = await startDevIdp();
  const signing = idp.signingKeys[0];
  if (!signing?.alg || !signing.kid)
    throw new Error('the dev IdP should expose a signing key with alg and kid');
  idpAlg = signing.alg;
  idpKid = signing.kid;
  idpKey = (await importJWK(signing, idpAlg)) as CryptoKey;
  stateDir = makeTempDir('imp-fail-closed-test-');
  dbFile = join(stateDir, 'imp.db');
  broker = await startBroker({
    policy: { text: devPolicyYaml(idp.issuer, 'http://127.0.0.1:9'), name: 'test' },
    stateDir,
    port: 0,
    clock: systemClock,
    log: () => {},
    // A short busy timeout: the locked write gives up after 200 ms instead of the default 2 s.
    store: openSqliteStore(join(stateDir, 'imp.db'), { busyTimeoutMs: 200 }),
  });
});

afterEach(() => {
  for (const db of open.splice(0)) {
    if (db.inTransaction) db.exec('ROLLBACK');
    db.close();
  }
});

afterAll(async () => {
  await broker?.close();
  await idp?.close();
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

/** A second connection to the broker's file, closed after each test. */
function connect(): Database.Database {
  const db = new Database(dbFile);
  open.push(db);
  return db;
}

async function validIdToken(): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    email: 'alice@example.test',
    groups: ['support'],
    auth_time: now,
    jti: crypto.randomUUID(),
  })
    .setProtectedHeader({ alg: idpAlg, kid: idpKid })
    .setIssuer(idp.issuer)
    .setAudience('imp-cli')
    .setSubject('user-alice')
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(idpKey);
}

async function postLogin(idToken: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${broker.url}/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id_token: idToken }),
  });
  return { status: response.status, body: await response.json() };
}

function count(db: Database.Database, table: 'audit_events' | 'logins'): number {
  return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
}

describe('fail-closed audit', () => {
  it('refuses a valid login with 503 while the audit log is locked, and resumes once it is free', async () => {
    // Warm up discovery and the JWKS, so the locked attempt fails only on the audit write.
    expect((await postLogin(await validIdToken())).status).toBe(200);

    const observer = connect();
    const eventsBefore = count(observer, 'audit_events');
    const loginsBefore = count(observer, 'logins');

    const locker = connect();
    locker.exec('BEGIN EXCLUSIVE');
    const locked = await postLogin(await validIdToken());
    expect(locked.status, JSON.stringify(locked.body)).toBe(503);
    expect(locked.body).toMatchObject({
      error: { code: 'IMP_AUDIT_UNAVAILABLE', message: expect.stringMatching(/audit log cannot be written/) },
    });
    // A refusal that cannot be audited is not answered as a refusal either.
    const refusedUnaudited = await postLogin('not.a.token');
    expect(refusedUnaudited.status, JSON.stringify(refusedUnaudited.body)).toBe(503);
    locker.exec('ROLLBACK');

    expect(count(observer, 'audit_events')).toBe(eventsBefore);
    expect(count(observer, 'logins')).toBe(loginsBefore);

    const resumed = await postLogin(await validIdToken());
    expect(resumed.status, JSON.stringify(resumed.body)).toBe(200);
    expect((resumed.body as { token: string }).token).toEqual(expect.any(String));
    expect(count(observer, 'logins')).toBe(loginsBefore + 1);
    const newest = await broker.deps.store.readAudit({ fromSeq: eventsBefore + 1 });
    expect(newest.map((event) => event.type)).toEqual(['auth.login']);
  });

  it('the audit table refuses UPDATE and DELETE from a direct connection', () => {
    const db = connect();
    expect(count(db, 'audit_events')).toBeGreaterThan(0);
    expect(() => db.prepare("UPDATE audit_events SET type = 'tampered'").run()).toThrow(/append-only/);
    expect(() => db.prepare('UPDATE audit_events SET data = ? WHERE seq = 1').run('{}')).toThrow(
      /append-only/,
    );
    expect(() => db.prepare('DELETE FROM audit_events').run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM audit_events WHERE seq = 1').run()).toThrow(/append-only/);
    expect(db.prepare("SELECT count(*) AS n FROM audit_events WHERE type = 'tampered'").get()).toEqual({
      n: 0,
    });
  });
});
