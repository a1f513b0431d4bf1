/**
 * Exports made before the audit tree keep verifying. The fixture (test/fixtures/audit-v1, made by
 * make.mjs with the broker of the release before the tree) is a version-1 export, its JWKS, and the
 * state directory that broker left. Today's broker opens that state (its log becomes the first
 * leaves of the tree) with a real witness; `imp audit verify --file <v1> --witness-key K` ties the
 * old file to the witnessed tree through the broker's current export. Rewritten old events (chain
 * rehashed and re-signed with the stolen keys.json), a truncated log, and offline use with witness
 * keys all fail, naming why.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CompactSign, importJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { noteKeyFromSeed } from '../../src/broker/note-key.js';
import { CHECKPOINT_JWS_TYPE, checkpointPayload } from '../../src/core/audit/checkpoint.js';
import { type AuditEvent, hashEvent } from '../../src/core/audit/event.js';
import { ED25519_TYPE, formatPrivateNoteKey, formatVerifierKey } from '../../src/core/audit/signed-note.js';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { ImpProcess, makeUserEnv, ROOT, runImp } from '../helpers/cli.js';
import { storeCliLogin } from '../helpers/id-tokens.js';
import { makeTempDir } from '../helpers/temp.js';

const FIXTURE = join(ROOT, 'test', 'fixtures', 'audit-v1');
const work = makeTempDir('imp-v1-export-');
const noteKey = noteKeyFromSeed('imp.test/v1-log', randomBytes(32));
const noteKeyFile = join(work, 'audit.key');
writeFileSync(noteKeyFile, formatPrivateNoteKey(noteKey), { mode: 0o600 });
const vkey = formatVerifierKey(noteKey.name, ED25519_TYPE, noteKey.publicKey);
const v1 = join(FIXTURE, 'export-v1.jsonl');
const jwks = join(FIXTURE, 'jwks.json');

let witness: ImpProcess;
let witnessInfo: { url: string; key: string };
let t: TestBroker;
let online: NodeJS.ProcessEnv;

beforeAll(async () => {
  const { env } = makeUserEnv();
  witness = new ImpProcess(
    [
      'witness',
      'serve',
      '--port',
      '0',
      '--json',
      '--name',
      'witness.test/v1',
      '--key',
      join(work, 'w.key'),
      '--state',
      join(work, 'w.json'),
      '--log',
      vkey,
    ],
    env,
  );
  witnessInfo = (
    (await witness.jsonLine((v) => typeof v.witness === 'object')) as { witness: typeof witnessInfo }
  ).witness;
  // The old broker's state directory, as it left it (git does not keep the key file's mode).
  const stateDir = join(work, 'state');
  cpSync(join(FIXTURE, 'state'), stateDir, { recursive: true });
  chmodSync(join(stateDir, 'keys.json'), 0o600);
  t = await startTestBroker({
    stateDir,
    auditKey: noteKeyFile,
    policyYaml: (issuer) =>
      `${devPolicyYaml(issuer, 'http://127.0.0.1:9')}audit:\n  witness_quorum: 1\n  witnesses:\n    - { url: "${witnessInfo.url}", key: "${witnessInfo.key}" }\n`,
  });
  online = makeUserEnv({ IMP_BROKER_URL: t.broker.url }).env;
  await storeCliLogin(online, t.broker.url, await t.loginAs('erin'));
}, 60_000);

afterAll(async () => {
  await t?.close();
  witness?.signal('SIGTERM');
  await witness?.exit().catch(() => 0);
});

const verifyArgs = (file: string) => [
  'audit',
  'verify',
  '--file',
  file,
  '--jwks',
  jwks,
  '--witness',
  witnessInfo.url,
  '--witness-key',
  witnessInfo.key,
];

describe('a version-1 export from before the tree', () => {
  it('still verifies without witness keys, as before (and says it is not witnessed)', async () => {
    const result = await runImp(['audit', 'verify', '--file', v1, '--jwks', jwks], makeUserEnv().env);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^Audit log verified: 9 events \(seq 1–9\), 1 signed checkpoints/);
    expect(result.stderr).toMatch(/not witnessed/);
  });

  it('verifies with --witness-key: its events are the first leaves of the tree the witness cosigned', async () => {
    const result = await runImp(verifyArgs(v1), online);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(
      'Version 1 export (made before the tree): its 9 events are the same leaves',
    );
    expect(result.stdout).toMatch(/Witnessed: tree of \d+ cosigned by a quorum of your witnesses/);
    const json = await runImp([...verifyArgs(v1), '--json'], online);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, tree: { ok: true, witnessed: true } });
  });

  it('an old export edited, rehashed and re-signed with the stolen keys.json: the witnessed log names the range', async () => {
    const lines = readFileSync(v1, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const events = lines.filter((l) => typeof l.seq === 'number') as AuditEvent[];
    const edited = events.map((e) => ({ ...e }));
    edited[3]!.reason = 'nothing to see here';
    for (let i = 3; i < edited.length; i++) {
      edited[i]!.prev = edited[i - 1]!.hash;
      edited[i]!.hash = hashEvent(edited[i]!);
    }
    // The checkpoint, re-signed with the audit key from the state directory: the chain verifies.
    const keys = JSON.parse(readFileSync(join(FIXTURE, 'state', 'keys.json'), 'utf8')) as {
      keys: { kind: string; kid: string; private_jwk: Record<string, unknown> }[];
    };
    const audit = keys.keys.find((k) => k.kind === 'audit')!;
    const head = edited.at(-1)!;
    const claims = { seq: head.seq, hash: head.hash, ts: new Date().toISOString() };
    const jws = await new CompactSign(new TextEncoder().encode(checkpointPayload(claims)))
      .setProtectedHeader({ alg: 'ES256', kid: audit.kid, typ: CHECKPOINT_JWS_TYPE })
      .sign(await importJWK(audit.private_jwk as never, 'ES256'));
    const forged = join(work, 'forged-v1.jsonl');
    writeFileSync(
      forged,
      [lines[0], ...edited, { checkpoint: { ...claims, jws } }].map((l) => JSON.stringify(l)).join('\n') +
        '\n',
    );
    const unwitnessed = await runImp(
      ['audit', 'verify', '--file', forged, '--jwks', jwks],
      makeUserEnv().env,
    );
    expect(unwitnessed.code, unwitnessed.stderr).toBe(0); // the chain alone cannot tell
    const result = await runImp([...verifyArgs(forged), '--json'], online);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout).tree.problem).toMatchObject({ kind: 'rewritten', first: 4, last: 9 });
    expect(result.stderr).toMatch(/events 4–9 \(rewritten\): events 4–9 of this version-1 export differ/);
  });

  it('with witness keys but offline (no broker login) it fails and says how to check it', async () => {
    const result = await runImp(verifyArgs(v1), makeUserEnv().env);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/predates the audit tree \(version 1\).*could not fetch.*imp login/s);
  });

  it('a fork of the log (a fresh broker under the same key) cannot vouch for the old file: the witness never cosigned it', async () => {
    const other = await startTestBroker({
      auditKey: noteKeyFile,
      policyYaml: (issuer) =>
        `${devPolicyYaml(issuer, 'http://127.0.0.1:9')}audit:\n  witness_quorum: 1\n  witnesses:\n    - { url: "${witnessInfo.url}", key: "${witnessInfo.key}" }\n`,
    });
    try {
      const env = makeUserEnv({ IMP_BROKER_URL: other.broker.url }).env;
      await storeCliLogin(env, other.broker.url, await other.loginAs('erin'));
      const result = await runImp([...verifyArgs(v1), '--json'], env);
      expect(result.code).toBe(1);
      // The forked log (same key, shorter, different) is refused by the witness: nothing cosigned covers it.
      expect(JSON.parse(result.stdout).tree).toMatchObject({ ok: false, witnessed: false });
    } finally {
      await other.close();
    }
  });
});
