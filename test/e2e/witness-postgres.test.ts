/**
 * The tamper matrix as a PostgreSQL superuser: a broker on a throwaway cluster (as the README's
 * imp_broker role), two real witness processes, and the superuser disabling the append-only
 * triggers to delete or rewrite history (chain and tree rebuilt, checkpoints deleted). `imp audit
 * verify` with the witnesses exits 1 and names the range each time.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { noteKeyFromSeed } from '../../src/broker/note-key.js';
import { type AuditEvent, hashEvent } from '../../src/core/audit/event.js';
import { eventLeafHash } from '../../src/core/audit/log-tree.js';
import { Frontier } from '../../src/core/audit/merkle.js';
import { ED25519_TYPE, formatPrivateNoteKey, formatVerifierKey } from '../../src/core/audit/signed-note.js';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { ImpProcess, makeUserEnv, runImp } from '../helpers/cli.js';
import { POSTGRES, requireComponents } from '../helpers/components.js';
import { type PgCluster, startPostgres, type TestDatabase } from '../helpers/postgres.js';

const havePostgres = requireComponents(POSTGRES);
const work = mkdtempSync(join(tmpdir(), 'imp-witness-pg-'));
const logs = [0, 1].map((i) => {
  const key = noteKeyFromSeed(`imp.test/pg${i}`, randomBytes(32));
  const file = join(work, `audit-${i}.key`);
  writeFileSync(file, formatPrivateNoteKey(key), { mode: 0o600 });
  return { file, vkey: formatVerifierKey(key.name, ED25519_TYPE, key.publicKey) };
});
const witnesses: { process: ImpProcess; url: string; key: string }[] = [];
let cluster: PgCluster | undefined;

beforeAll(async () => {
  if (!havePostgres) return;
  cluster = await startPostgres();
  const { env } = makeUserEnv();
  for (const name of ['w1', 'w2']) {
    const args = ['witness', 'serve', '--port', '0', '--json', '--name', `witness.test/${name}`];
    args.push('--key', join(work, `${name}.key`), '--state', join(work, `${name}.json`));
    for (const log of logs) args.push('--log', log.vkey);
    const process = new ImpProcess(args, env);
    const ready = (await process.jsonLine((v) => typeof v.witness === 'object')) as {
      witness: { url: string; key: string };
    };
    witnesses.push({ process, ...ready.witness });
  }
}, 60_000);

afterAll(async () => {
  for (const w of witnesses) w.process.signal('SIGTERM');
  await Promise.all(witnesses.map((w) => w.process.exit().catch(() => 0)));
  await cluster?.stop();
});

async function brokerWithHistory(i: number): Promise<{ t: TestBroker; db: TestDatabase; jwks: string }> {
  const db = await cluster!.createDatabase({ migrated: true });
  const store = await openPostgresStore(db.brokerUrl, { migrate: false });
  const list = witnesses.map((w) => `    - { url: "${w.url}", key: "${w.key}" }`).join('\n');
  const t = await startTestBroker({
    store,
    auditKey: logs[i]!.file,
    policyYaml: (issuer) =>
      `${devPolicyYaml(issuer, 'http://127.0.0.1:9')}audit:\n  checkpoint_every: 4\n  witness_quorum: 2\n  witnesses:\n${list}\n`,
  });
  for (const user of ['alice', 'carol', 'dave', 'alice']) {
    t.clock.advance(1100);
    await t.loginAs(user);
  }
  expect((await t.call('POST', '/v1/audit/checkpoint', await t.loginAs('erin'))).status).toBe(200);
  const jwks = join(work, `jwks-${i}.json`);
  writeFileSync(jwks, await (await fetch(`${t.broker.url}/.well-known/jwks.json`)).text());
  return { t, db, jwks };
}

async function verifyLive(t: TestBroker, jwks: string) {
  const response = await fetch(`${t.broker.url}/v1/audit/export`, {
    headers: { authorization: `Bearer ${await t.loginAs('erin')}` },
  });
  expect(response.status).toBe(200);
  const file = join(work, `export-${randomBytes(4).toString('hex')}.jsonl`);
  writeFileSync(file, await response.text());
  const { env } = makeUserEnv();
  const args = ['audit', 'verify', '--file', file, '--jwks', jwks, '--json'];
  for (const w of witnesses) args.push('--witness', w.url, '--witness-key', w.key);
  const result = await runImp(args, env);
  expect(result.code, result.stderr).toBe(1);
  return (
    JSON.parse(result.stdout) as {
      tree: { problem: { kind: string; first: number; last: number; message: string } };
    }
  ).tree.problem;
}

/** The superuser's session: every append-only trigger disabled. */
async function superuser(db: TestDatabase, sql: string, values: unknown[] = []): Promise<void> {
  const tables = ['audit_events', 'audit_checkpoints', 'audit_tree', 'audit_notes', 'audit_cosignatures'];
  await cluster!.query(tables.map((t) => `ALTER TABLE ${t} DISABLE TRIGGER USER`).join('; '), [], db.name);
  await cluster!.query(sql, values, db.name);
}

async function rebuildTree(db: TestDatabase): Promise<AuditEvent[]> {
  const rows = await cluster!.query<{ event: string }>(
    'SELECT event FROM audit_events ORDER BY seq',
    [],
    db.name,
  );
  const events = rows.rows.map((r) => JSON.parse(r.event) as AuditEvent);
  await superuser(db, 'DELETE FROM audit_tree');
  const frontier = new Frontier();
  for (const e of events)
    for (const { node, hash } of frontier.append(eventLeafHash(e)))
      await cluster!.query(
        'INSERT INTO audit_tree (level, idx, hash) VALUES ($1, $2, $3)',
        [node.level, node.index, Buffer.from(hash)],
        db.name,
      );
  return events;
}

describe.runIf(havePostgres)('a PostgreSQL superuser against the witnessed log', () => {
  it('deleting the newest events with their checkpoints, cosignatures and tree rows is caught', async () => {
    const { t, db, jwks } = await brokerWithHistory(0);
    try {
      const n = (await t.store.auditHead())!.seq;
      const keep = n - 3;
      await superuser(
        db,
        `DELETE FROM audit_events WHERE seq > ${keep}; DELETE FROM audit_notes WHERE size > ${keep};
         DELETE FROM audit_cosignatures WHERE size > ${keep}; DELETE FROM audit_checkpoints WHERE seq > ${keep}`,
      );
      await rebuildTree(db);
      const problem = await verifyLive(t, jwks);
      expect(problem.message).toMatch(/witness witness\.test\/w[12]/);
      expect(problem.first).toBeLessThanOrEqual(keep + 1);
      expect(problem.last).toBeGreaterThanOrEqual(n);
    } finally {
      await t.close();
    }
  }, 60_000);

  it('rewriting the middle and rehashing chain and tree is caught: the rewritten range is named', async () => {
    const { t, db, jwks } = await brokerWithHistory(1);
    try {
      const rows = await cluster!.query<{ event: string }>(
        'SELECT event FROM audit_events ORDER BY seq',
        [],
        db.name,
      );
      const events = rows.rows.map((r) => JSON.parse(r.event) as AuditEvent);
      for (let i = 2; i < events.length; i++) {
        const e = events[i]!;
        if (i === 2) e.data = { ...e.data, note: 'rewritten' };
        e.prev = events[i - 1]!.hash;
        e.hash = hashEvent(e);
        await superuser(db, 'UPDATE audit_events SET prev = $1, hash = $2, event = $3 WHERE seq = $4', [
          e.prev,
          e.hash,
          JSON.stringify(e),
          e.seq,
        ]);
      }
      await rebuildTree(db);
      const problem = await verifyLive(t, jwks);
      expect(problem.kind).toBe('rewritten');
      expect(problem.first).toBeLessThanOrEqual(3);
      expect(problem.last).toBeGreaterThanOrEqual(3);
    } finally {
      await t.close();
    }
  }, 60_000);
});
