/**
 * The tamper matrix on a real store file: edit, delete, truncate, insert, swap, forge — each time
 * `imp audit verify` (the real CLI, offline, with only the JWKS) exits 1 naming the right seq; the
 * untouched log verifies. Plus: who may read the log, and that reading is itself audited.
 */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { CompactSign, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointPayload } from '../../src/core/audit/checkpoint.js';
import { GENESIS_PREV } from '../../src/core/audit/event.js';
import { exportLine } from '../../src/core/audit/export-format.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { makeUserEnv, runImp } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/temp.js';

let t: TestBroker;
let pristine: string;
let jwksFile: string;
const work = makeTempDir('imp-tamper-');

beforeAll(async () => {
  t = await startTestBroker();
  // Some history: logins, sessions, refusals.
  for (const user of ['alice', 'carol', 'dave']) {
    t.clock.advance(1100);
    const token = await t.loginAs(user);
    const opened = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', token, {
      tenant: 'globex',
      environment: 'prod',
      scope: 'read',
      ticket: 'SUP-1',
      reason: 'Building an audit history',
      ttl: 600,
    });
    await t.call('POST', `/v1/sessions/${opened.body.session.id}/end`, token);
  }
  const erin = await t.loginAs('erin');
  expect((await t.call('POST', '/v1/audit/checkpoint', erin)).status).toBe(200);
  await t.call('POST', '/v1/sessions', await t.loginAs('mallory'), {
    tenant: 'acme',
    environment: 'prod',
    scope: 'read',
    ticket: 'SUP-2',
    reason: 'Trying my luck here',
  });
  const jwks = await (await fetch(`${t.broker.url}/.well-known/jwks.json`)).text();
  jwksFile = join(work, 'jwks.json');
  writeFileSync(jwksFile, jwks);
  await t.close(); // writes the final checkpoint
  pristine = join(t.stateDir, 'imp.db');
});

/** Writes an export of a store file, as `imp audit export` would have. */
async function exportOf(dbFile: string): Promise<string> {
  const store = openSqliteStore(dbFile);
  const events = await store.readAudit();
  const checkpoints = await store.listCheckpoints();
  await store.close();
  const file = join(work, `export-${Math.random().toString(16).slice(2)}.jsonl`);
  const header = {
    version: 1 as const,
    broker: 'test',
    exported_at: new Date().toISOString(),
    from_seq: 1,
    prev: GENESIS_PREV,
    to_seq: events.at(-1)?.seq ?? 0,
  };
  writeFileSync(
    file,
    [
      exportLine({ export: header }),
      ...events.map((e) => exportLine(e)),
      ...checkpoints.map((cp) => exportLine({ checkpoint: cp })),
    ].join(''),
  );
  return file;
}

/** A copy of the pristine store with `tamper` applied (triggers dropped first: the insider's move). */
function tampered(tamper: (db: Database.Database) => void): string {
  const file = join(work, `tampered-${Math.random().toString(16).slice(2)}.db`);
  copyFileSync(pristine, file);
  const db = new Database(file);
  db.exec(
    'DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete; DROP TRIGGER audit_checkpoints_no_update; DROP TRIGGER audit_checkpoints_no_delete;',
  );
  tamper(db);
  db.close();
  return file;
}

async function verify(exportFile: string) {
  const { env } = makeUserEnv();
  return runImp(['audit', 'verify', '--file', exportFile, '--jwks', jwksFile, '--json'], env);
}

function maxSeq(db: Database.Database): number {
  return (db.prepare('SELECT MAX(seq) AS m FROM audit_events').get() as { m: number }).m;
}

describe('imp audit verify — tamper matrix', () => {
  it('the untouched log verifies (exit 0), checkpoints included', async () => {
    const result = await verify(await exportOf(pristine));
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.ok).toBe(true);
    expect(report.checkpoints).toBeGreaterThanOrEqual(2);
    expect(report.events).toBeGreaterThan(12);
  });

  it.each([
    [
      'an edited field',
      (db: Database.Database) => db.prepare("UPDATE audit_events SET ticket = 'SUP-999' WHERE seq = 5").run(),
      5,
      'edited',
    ],
    [
      'edited data',
      (db: Database.Database) =>
        db.prepare(`UPDATE audit_events SET data = json_set(data, '$.scope', 'write') WHERE seq = 9`).run(),
      9,
      'edited',
    ],
    [
      'a deleted middle row',
      (db: Database.Database) => db.prepare('DELETE FROM audit_events WHERE seq = 7').run(),
      7,
      'missing',
    ],
    [
      'two swapped rows',
      (db: Database.Database) => {
        const a = db.prepare('SELECT * FROM audit_events WHERE seq = 3').get() as Record<string, unknown>;
        const b = db.prepare('SELECT * FROM audit_events WHERE seq = 4').get() as Record<string, unknown>;
        const put = db.prepare(
          'UPDATE audit_events SET id=@id, ts=@ts, type=@type, actor=@actor, tenant=@tenant, environment=@environment, session=@session, ticket=@ticket, reason=@reason, data=@data, prev=@prev, hash=@hash WHERE seq=@target',
        );
        db.prepare("UPDATE audit_events SET id = id || 'x' WHERE seq IN (3, 4)").run();
        put.run({ ...b, target: 3 });
        put.run({ ...a, target: 4 });
      },
      3,
      null,
    ],
  ])('%s → exit 1 naming the right seq', async (_name, tamper, seq, kind) => {
    const result = await verify(await exportOf(tampered(tamper)));
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout);
    expect(report.problem.seq).toBe(seq);
    if (kind) expect(report.problem.kind).toBe(kind);
    expect(result.stderr).toContain(`BROKEN at seq ${seq}`);
  });

  it('deleting the newest rows after a checkpoint is caught as truncation', async () => {
    let last = 0;
    const file = tampered((db) => {
      last = maxSeq(db);
      db.prepare('DELETE FROM audit_events WHERE seq > ?').run(last - 3);
    });
    const result = await verify(await exportOf(file));
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout).problem).toMatchObject({ kind: 'truncated' });
    expect(result.stderr).toContain(String(last - 3));
  });

  it('an inserted row (later rows renumbered) is caught at the insertion point', async () => {
    const file = tampered((db) => {
      const rows = db.prepare('SELECT * FROM audit_events WHERE seq >= 6 ORDER BY seq DESC').all() as Record<
        string,
        unknown
      >[];
      for (const row of rows) db.prepare('UPDATE audit_events SET seq = seq + 1 WHERE seq = ?').run(row.seq);
      const template = db.prepare('SELECT * FROM audit_events WHERE seq = 5').get() as Record<
        string,
        unknown
      >;
      db.prepare(
        'INSERT INTO audit_events (seq, id, ts, type, actor, tenant, environment, session, ticket, reason, data, prev, hash) VALUES (6, @id, @ts, @type, @actor, @tenant, @environment, @session, @ticket, @reason, @data, @prev, @hash)',
      ).run({
        ...template,
        id: '00000000-0000-4000-8000-000000000000',
        type: 'session.approved',
        prev: template.hash,
      });
    });
    const result = await verify(await exportOf(file));
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout).problem.seq).toBe(6);
  });

  it('a checkpoint forged with another key is caught as a bad signature', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    let head = { seq: 0, hash: '' };
    const file = tampered((db) => {
      head = db.prepare('SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1').get() as typeof head;
      db.prepare('DELETE FROM audit_checkpoints').run();
    });
    const claims = { seq: head.seq, hash: head.hash, ts: new Date().toISOString() };
    const jws = await new CompactSign(new TextEncoder().encode(checkpointPayload(claims)))
      .setProtectedHeader({ alg: 'ES256', kid: 'audit-forged', typ: 'imp-checkpoint+jws' })
      .sign(privateKey);
    const db = new Database(file);
    db.prepare('INSERT INTO audit_checkpoints (seq, hash, ts, jws) VALUES (?, ?, ?, ?)').run(
      claims.seq,
      claims.hash,
      claims.ts,
      jws,
    );
    db.close();
    const result = await verify(await exportOf(file));
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout).problem).toMatchObject({ kind: 'bad_signature', seq: head.seq });
  });

  it('an export verifies offline with only the JWKS; one changed byte breaks it', async () => {
    const file = await exportOf(pristine);
    expect((await verify(file)).code).toBe(0);
    const text = readFileSync(file, 'utf8');
    const at = text.indexOf('Building an audit history');
    writeFileSync(file, `${text.slice(0, at)}b${text.slice(at + 1)}`);
    const broken = await verify(file);
    expect(broken.code).toBe(1);
    expect(JSON.parse(broken.stdout).problem.kind).toBe('edited');
  });

  it('verify without keys is a usage error', async () => {
    const { env } = makeUserEnv();
    const result = await runImp(['audit', 'verify', '--file', await exportOf(pristine)], env);
    expect(result.code).toBe(2);
  });
});

describe('who may read the audit log', () => {
  let live: TestBroker;
  beforeAll(async () => {
    live = await startTestBroker();
  });
  afterAll(async () => {
    await live?.close();
  });

  it('an auditor lists and exports; each read is itself audited', async () => {
    const erin = await live.loginAs('erin');
    const list = await live.call<{ events: { type: string }[] }>(
      'GET',
      '/v1/audit/events?type=auth.login',
      erin,
    );
    expect(list.status).toBe(200);
    expect(list.body.events.length).toBeGreaterThan(0);
    const exported = await fetch(`${live.broker.url}/v1/audit/export`, {
      headers: { authorization: `Bearer ${erin}` },
    });
    expect(exported.status).toBe(200);
    expect(exported.headers.get('content-type')).toContain('application/x-ndjson');
    const types = (await live.store.readAudit()).map((e) => e.type);
    expect(types).toContain('audit.read');
    expect(types).toContain('audit.export');
  });

  it.each(['alice', 'bob', 'mallory'])(
    '%s (no audit role) gets 403 for list and export, and the refusal is audited',
    async (user) => {
      const token = await live.loginAs(user);
      for (const path of ['/v1/audit/events', '/v1/audit/export', '/v1/audit/events/1']) {
        const answer = await live.call<{ error: { details: { rule: string } } }>('GET', path, token);
        expect(answer.status).toBe(403);
        expect(answer.body.error.details.rule).toBe('role.audit');
      }
      const denied = (await live.store.readAudit({ type: 'access.denied' })).filter(
        (e) => e.actor?.sub === `user-${user}`,
      );
      expect(denied).toHaveLength(3);
    },
  );
});
