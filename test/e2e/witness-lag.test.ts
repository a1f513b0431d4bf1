/**
 * Witnesses as a running broker meets them: two real `imp witness serve` processes, a real broker.
 *  - A witness goes down: the broker keeps serving until `audit.witness_lag_max`, then answers 503
 *    with nothing forwarded to the tenant, and recovers by itself when the witness is back.
 *  - The log is rewritten under the broker: the witness refuses the next checkpoint, the broker
 *    audits the refusal and its alert webhook fires.
 *  - A receipt verifies offline with the witness keys (the built `@imp/verify` package in a process
 *    of its own, and `imp audit verify --receipt`), and fails once edited or without them.
 *  - Routine cosignatures are audited in one folded `audit.witnessed` event per checkpoint.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyReceipt, witnessKey } from '@imp/verify';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { noteKeyFromSeed } from '../../src/broker/note-key.js';
import { ED25519_TYPE, formatPrivateNoteKey, formatVerifierKey } from '../../src/core/audit/signed-note.js';
import { eventLine, headerLine } from '../../src/core/recording/asciicast.js';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { ImpProcess, makeUserEnv, ROOT, runImp } from '../helpers/cli.js';

const work = mkdtempSync(join(tmpdir(), 'imp-witness-lag-'));
const logs = [0, 1, 2].map((i) => {
  const key = noteKeyFromSeed(`imp.test/lag${i}`, randomBytes(32));
  const file = join(work, `audit-${i}.key`);
  writeFileSync(file, formatPrivateNoteKey(key), { mode: 0o600 });
  return { key, file, vkey: formatVerifierKey(key.name, ED25519_TYPE, key.publicKey) };
});

interface RunningWitness {
  process: ImpProcess;
  url: string;
  key: string;
  port: string;
}
const witnesses: RunningWitness[] = [];

async function startWitnessProcess(name: string, port = '0'): Promise<RunningWitness> {
  const { env } = makeUserEnv();
  const args = ['witness', 'serve', '--port', port, '--json', '--name', `witness.test/${name}`];
  args.push('--key', join(work, `${name}.key`), '--state', join(work, `${name}.json`));
  for (const log of logs) args.push('--log', log.vkey);
  const process = new ImpProcess(args, env);
  const { witness } = (await process.jsonLine((v) => typeof v.witness === 'object')) as {
    witness: { url: string; key: string };
  };
  return { process, ...witness, port: new URL(witness.url).port };
}

/** A tenant API that counts what reaches it, and an alert receiver that keeps what it gets. */
let hits = 0;
const alerts: { event: string; body: Record<string, unknown> }[] = [];
const servers: Server[] = [];
async function listen(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
let tenantApi = '';
let alertUrl = '';

beforeAll(async () => {
  witnesses.push(await startWitnessProcess('w1'), await startWitnessProcess('w2'));
  tenantApi = await listen((_req, res) => {
    hits++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  alertUrl = await listen((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      alerts.push({
        event: String(req.headers['x-imp-event']),
        body: JSON.parse(body) as Record<string, unknown>,
      });
      res.writeHead(204).end();
    });
  });
}, 30_000);

afterAll(async () => {
  for (const w of witnesses) w.process.signal('SIGTERM');
  await Promise.all(witnesses.map((w) => w.process.exit().catch(() => 0)));
  for (const server of servers) server.close();
});

async function broker(log: number, lag: string): Promise<TestBroker> {
  const list = witnesses.map((w) => `    - { url: "${w.url}", key: "${w.key}" }`).join('\n');
  return startTestBroker({
    auditKey: logs[log]!.file,
    tenantApi,
    policyYaml: (issuer) =>
      `${devPolicyYaml(issuer, tenantApi, { alerts: [{ url: alertUrl }] })}audit:\n  checkpoint_every: 2\n  witness_quorum: 2\n  witness_lag_max: ${lag}\n  witnesses:\n${list}\n`,
  });
}

/** Runs an ES module with the built packages (cwd: the repository, no network needed); parses its JSON line. */
async function runNode(
  source: string,
  args: string[],
): Promise<Record<string, { ok: boolean; cosigners: string[]; problem?: string }>> {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--input-type=module', '-e', source, ...args],
    { cwd: ROOT, env: { PATH: process.env.PATH }, timeout: 15_000 },
  );
  return JSON.parse(stdout);
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('witnesses and a running broker', () => {
  it('a witness down: serves until witness_lag_max, then 503 with nothing forwarded, then recovers by itself', async () => {
    const t = await broker(0, '{ time: 1h, events: 6 }');
    try {
      const alice = await t.loginAs('alice');
      const opened = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', alice, {
        tenant: 'globex',
        environment: 'prod',
        scope: 'read',
        ticket: 'SUP-1',
        reason: 'Looking at the queue',
        ttl: 600,
      });
      expect(opened.status).toBe(201);
      // The dev policy records prod: chunk 0 first, as imp's recorded shell sends it, or the proxy refuses.
      const chunk0 = `${headerLine({ version: 2, width: 80, height: 24 })}${eventLine(0, 'o', '$ ')}`;
      const recorded = await t.call('POST', `/v1/sessions/${opened.body.session.id}/recording`, alice, {
        seq: 0,
        data: chunk0,
      });
      expect(recorded.status).toBe(201);
      const proxy = () => t.call('GET', `/v1/sessions/${opened.body.session.id}/proxy/v1/queue`, alice);
      expect((await proxy()).status).toBe(200);
      // Both witnesses cosign the whole log before one goes down, so the lag counts from there. The
      // log stays still once cosigned (routine cosignatures wait for the next move), so this converges.
      await until('both witnesses to cosign the head', async () => {
        await t.broker.deps.checkpoint();
        const head = (await t.store.treeHead()).size;
        return (await t.broker.deps.witnesses!.settled(head, 100)) ? true : undefined;
      });

      const w2 = witnesses[1]!;
      w2.process.signal('SIGTERM');
      await w2.process.exit();
      // Still serving for a while: the lag is counted in events not cosigned by a quorum.
      expect((await proxy()).status).toBe(200);
      const refused = await until('the lag gate to shut', async () => {
        const answer = await proxy();
        return answer.status === 503 ? answer : undefined;
      });
      expect((refused.body as { error: { code: string } }).error.code).toBe('IMP_AUDIT_UNAVAILABLE');
      const before = hits;
      expect((await proxy()).status).toBe(503);
      expect(hits).toBe(before); // nothing forwarded

      witnesses[1] = await startWitnessProcess('w2', w2.port);
      await until('the broker to recover', async () => ((await proxy()).status === 200 ? true : undefined));
      expect(hits).toBe(before + 1);
      // Both the failure and the recovery are in the log, naming the witness.
      const gone = await t.store.readAudit({ type: 'audit.witness_unreachable' });
      const back = await t.store.readAudit({ type: 'audit.witness_reachable' });
      expect(gone.map((e) => e.data.witness)).toContain(witnesses[1]!.url);
      expect(back.map((e) => e.data.witness)).toContain(witnesses[1]!.url);
      expect(back.at(-1)!.seq).toBeGreaterThan(gone.at(-1)!.seq);
    } finally {
      await t.close();
    }
  }, 60_000);

  it('a rewritten log: the witness refuses the next checkpoint, the refusal is audited and alerted', async () => {
    const t = await broker(1, '{ time: 1h, events: 1000 }');
    try {
      for (const user of ['alice', 'carol']) await t.loginAs(user);
      const erin = await t.loginAs('erin');
      expect((await t.call('POST', '/v1/audit/checkpoint', erin)).status).toBe(200);

      // A receipt for event 2, checked offline with the witness keys (the library and the CLI).
      const receiptAnswer = await t.call<{ receipt: unknown }>('GET', '/v1/audit/receipt/2', erin);
      expect(receiptAnswer.status).toBe(200);
      const keys = witnesses.map((w) => witnessKey(w.key));
      expect(verifyReceipt(receiptAnswer.body.receipt, { witnessKeys: keys, quorum: 2 })).toMatchObject({
        ok: true,
      });
      const file = join(work, 'receipt.json');
      writeFileSync(file, JSON.stringify(receiptAnswer.body));
      // The built @imp/verify package, in a process of its own with no network: the file and the keys.
      const offline = await runNode(
        `import { readFileSync } from 'node:fs';
         import { verifyReceipt } from '@imp/verify';
         const [file, ...keys] = process.argv.slice(1);
         const receipt = JSON.parse(readFileSync(file, 'utf8'));
         const all = verifyReceipt(receipt, { witnessKeys: keys });
         const one = verifyReceipt(receipt, { witnessKeys: keys.slice(0, 1) });
         const edited = structuredClone(receipt);
         edited.receipt.event.reason = 'never happened';
         const none = verifyReceipt(receipt, { witnessKeys: [] });
         console.log(JSON.stringify({ all, one, edited: verifyReceipt(edited, { witnessKeys: keys }), none }));`,
        [file, ...witnesses.map((w) => w.key)],
      );
      expect(offline.all).toMatchObject({
        ok: true,
        event: { seq: 2, type: 'auth.login' },
        treeSize: expect.any(Number),
      });
      expect(offline.all!.cosigners.sort()).toEqual(['witness.test/w1', 'witness.test/w2']);
      expect(offline.one).toMatchObject({ ok: true, cosigners: ['witness.test/w1'] });
      expect(offline.edited).toEqual({
        ok: false,
        problem: 'event 2 does not match its hash: it was edited',
      });
      expect(offline.none).toMatchObject({ ok: false, problem: expect.stringMatching(/witness keys/) });
      expect(verifyReceipt(receiptAnswer.body, { witnessKeys: ['not-a-key'] })).toMatchObject({
        ok: false,
        problem: expect.stringMatching(/not a cosigner key/),
      });
      const { env } = makeUserEnv();
      const args = [
        'audit',
        'verify',
        '--receipt',
        file,
        ...witnesses.flatMap((w) => ['--witness-key', w.key]),
      ];
      const ok = await runImp(args, env);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toMatch(/Receipt verified: event 2 /);
      writeFileSync(file, readFileSync(file, 'utf8').replace('"auth.login"', '"auth.logout"'));
      const edited = await runImp(args, env);
      expect(edited.code).toBe(1);
      expect(edited.stderr).toMatch(/Receipt BROKEN/);
      expect((await runImp(['audit', 'verify', '--receipt', file], env)).code).not.toBe(0);

      // The DBA rewrites event 1 and rebuilds the tree: the next checkpoint is not an extension.
      const db = new Database(join(t.stateDir, 'imp.db'));
      db.exec('DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_tree_no_delete');
      db.prepare("UPDATE audit_events SET type = 'policy.loaded.x' WHERE seq = 1").run();
      db.exec('DELETE FROM audit_tree');
      db.close();
      // The broker cannot integrate onto a tree that is gone: it fails closed, and it reseeds nothing.
      // Rebuild the tree as the DBA would, then let the broker checkpoint again.
      const { eventLeafHash } = await import('../../src/core/audit/log-tree.js');
      const { Frontier } = await import('../../src/core/audit/merkle.js');
      const events = await t.store.readAudit();
      const raw = new Database(join(t.stateDir, 'imp.db'));
      const insert = raw.prepare('INSERT INTO audit_tree (level, idx, hash) VALUES (?, ?, ?)');
      const frontier = new Frontier();
      for (const e of events)
        for (const { node, hash } of frontier.append(eventLeafHash(e)))
          insert.run(node.level, node.index, hash);
      raw.close();
      await t.loginAs('dave');
      await t.call('POST', '/v1/audit/checkpoint', erin);
      const alert = await until('the refusal alert', async () =>
        alerts.find((a) => a.event === 'audit.witness_refused'),
      );
      expect(alert.body).toMatchObject({ event: 'audit.witness_refused', status: 422 });
      const refusals = await until('the refusal to be audited', async () => {
        const found = await t.store.readAudit({ type: 'audit.witness_refused' });
        return found.length > 0 ? found : undefined;
      });
      expect(refusals[0]!.data).toMatchObject({ status: 422 });
    } finally {
      await t.close();
    }
  }, 60_000);

  it('routine cosignatures are audited, folded into the next checkpoint the log needs; an idle log stays still', async () => {
    const t = await broker(2, '{ time: 1h, events: 1000 }');
    try {
      const head = async () => (await t.store.treeHead()).size;
      await t.loginAs('alice');
      const erin = await t.loginAs('erin');
      expect((await t.call('POST', '/v1/audit/checkpoint', erin)).status).toBe(200);
      const first = await head();
      await until('both witnesses to cosign', async () =>
        (await t.broker.deps.witnesses!.settled(first, 100)) ? true : undefined,
      );
      // Cosignatures are pending, but nothing else happened: no event, no checkpoint, the log stays still.
      await t.broker.deps.checkpoint();
      await t.broker.deps.checkpoint();
      expect(await head()).toBe(first);
      expect((await t.store.listNotes()).at(-1)!.size).toBe(first);

      // The log moves for another reason: the next checkpoint carries one audit.witnessed event.
      await t.loginAs('carol');
      await t.broker.deps.checkpoint();
      const [witnessed] = (await t.store.readAudit({ type: 'audit.witnessed' })).slice(-1);
      expect(witnessed).toBeDefined();
      const spans = witnessed!.data.witnesses as { witness: string; witness_name: string; size: number }[];
      expect(spans.map((w) => w.witness_name).sort()).toEqual(['witness.test/w1', 'witness.test/w2']);
      for (const span of spans) expect(span.size).toBe(first);
      const covering = (await t.store.listNotes()).at(-1)!;
      expect(covering.size).toBe(await head());
      expect(covering.size).toBeGreaterThanOrEqual(witnessed!.seq);

      // Once that checkpoint is cosigned the log is idle again: it does not grow by itself.
      await until('both witnesses to cosign again', async () =>
        (await t.broker.deps.witnesses!.settled(covering.size, 100)) ? true : undefined,
      );
      await t.broker.deps.checkpoint();
      expect(await head()).toBe(covering.size);
    } finally {
      await t.close();
    }
  }, 60_000);
});
