/**
 * The audit note key in a real PKCS#11 token: a throwaway SoftHSM2 token (its own SOFTHSM2_CONF and
 * token directory), an Ed25519 key generated in it with pkcs11-tool exactly as the README tells an
 * operator, a real `imp broker serve --audit-key pkcs11:…` and a real witness. The checkpoints verify
 * with the public key read from the token, the witness cosigns them, and a bad PIN, a missing key, an
 * extractable key or no module stop the broker before it listens, with a message naming the cause.
 * A token that drops its sessions is reopened; one that stops signing (its PIN changed under the
 * broker) is audited once as audit.checkpoint_failed, and its recovery once.
 */
import { execFile } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ED25519_TYPE,
  ed25519Verifier,
  formatVerifierKey,
  openNote,
} from '../../src/core/audit/signed-note.js';
import { parseCheckpoint } from '../../src/core/audit/tlog-checkpoint.js';
import { cosignatureVerifier } from '../../src/core/audit/tlog-cosignature.js';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { startTestBroker } from '../helpers/broker.js';
import { ImpProcess, makeUserEnv, runImp } from '../helpers/cli.js';
import { exchange, idTokenSigner } from '../helpers/id-tokens.js';
import { makeTempDir } from '../helpers/temp.js';

const run = promisify(execFile);
const MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const ORIGIN = 'imp.test/hsm-log';
const PIN = '4711-pin';

const work = makeTempDir('imp-pkcs11-');
const hsmEnv = { SOFTHSM2_CONF: join(work, 'softhsm2.conf') };
const pinFile = join(work, 'pin');
let idp: DevIdp;
let witness: ImpProcess;
let witnessInfo: { url: string; key: string };
let broker: ImpProcess;
let brokerUrl: string;
let brokerKey: string;
let tokenVkey: string;

/** pkcs11-tool on the throwaway token. */
function tool(args: string[]) {
  return run('pkcs11-tool', ['--module', MODULE, '--token-label', 'imp-audit', ...args], {
    env: { ...process.env, ...hsmEnv },
  });
}

function uri(attributes: string, query = `pin-source=file:${pinFile}&module-path=${MODULE}`): string {
  return `pkcs11:token=imp-audit;${attributes}?${query}`;
}

function policy(name: string, witnesses: string): string {
  const file = join(work, `${name}.yaml`);
  writeFileSync(
    file,
    `identity: { issuer: ${idp.issuer}, client_id: imp-cli }
audit:
  origin: ${ORIGIN}
  checkpoint_every: 3
${witnesses}
roles:
  - { name: support, groups: [support], tenants: ['*'], environments: ['*'], scopes: [read], max_ttl: 1h }
  - { name: security, groups: [security], audit: true }
tenants:
  - { id: globex, upstream: { prod: http://127.0.0.1:9 } }
`,
  );
  return file;
}

function serve(config: string, auditKey: string, env: NodeJS.ProcessEnv) {
  const stateDir = makeTempDir('imp-pkcs11-state-');
  const args = ['broker', 'serve', '--config', config, '--state-dir', stateDir, '--port', '0', '--json'];
  return { args: [...args, '--audit-key', auditKey], env: { ...makeUserEnv().env, ...env } };
}

beforeAll(async () => {
  writeFileSync(hsmEnv.SOFTHSM2_CONF, `directories.tokendir = ${work}/tokens\nobjectstore.backend = file\n`);
  await run('mkdir', ['-p', join(work, 'tokens')]);
  await run(
    'softhsm2-util',
    ['--init-token', '--free', '--label', 'imp-audit', '--so-pin', '0000-so', '--pin', PIN],
    { env: { ...process.env, ...hsmEnv } },
  );
  const login = ['--login', '--pin', PIN];
  await tool([
    ...login,
    '--keypairgen',
    '--key-type',
    'EC:edwards25519',
    '--label',
    'audit-note',
    '--id',
    '01',
  ]);
  // A second key, extractable: the broker must refuse it.
  await tool([
    ...login,
    '--keypairgen',
    '--key-type',
    'EC:edwards25519',
    '--label',
    'loose',
    '--id',
    '02',
    '--extractable',
  ]);
  writeFileSync(pinFile, `${PIN}\n`, { mode: 0o600 });
  // The public key as the operator reads it from the token (pkcs11-tool writes it as PEM).
  const pem = join(work, 'audit-note.pub.pem');
  await tool(['--read-object', '--type', 'pubkey', '--label', 'audit-note', '-o', pem]);
  tokenVkey = formatVerifierKey(
    ORIGIN,
    ED25519_TYPE,
    Buffer.from(createPublicKey(readFileSync(pem)).export({ format: 'jwk' }).x!, 'base64url'),
  );

  idp = await startDevIdp();
  const { env } = makeUserEnv();
  witness = new ImpProcess(
    [
      'witness',
      'serve',
      '--port',
      '0',
      '--json',
      '--name',
      'witness.test/hsm',
      '--key',
      join(work, 'w.key'),
      '--state',
      join(work, 'w.json'),
      '--log',
      tokenVkey,
    ],
    env,
  );
  witnessInfo = (
    (await witness.jsonLine((v) => typeof v.witness === 'object')) as { witness: typeof witnessInfo }
  ).witness;
  const config = policy(
    'witnessed',
    `  witness_quorum: 1\n  witnesses:\n    - { url: "${witnessInfo.url}", key: "${witnessInfo.key}" }`,
  );
  const started = serve(config, uri('object=audit-note'), hsmEnv);
  broker = new ImpProcess(started.args, started.env);
  const ready = (await broker.jsonLine((v) => typeof v.broker === 'string')) as {
    broker: string;
    audit: { origin: string; key: string };
  };
  brokerUrl = ready.broker;
  brokerKey = ready.audit.key;
}, 60_000);

afterAll(async () => {
  for (const p of [broker, witness]) p?.signal('SIGTERM');
  await Promise.all([broker, witness].map((p) => p?.exit().catch(() => 0)));
  await idp?.close();
});

describe('--audit-key pkcs11: (SoftHSM2)', () => {
  it('publishes the public key read from the token; checkpoints verify with it and the witness cosigns them', async () => {
    expect(brokerKey).toBe(tokenVkey);
    const sign = await idTokenSigner(idp);
    for (const user of ['alice', 'carol']) await exchange(brokerUrl, await sign({ user }));
    const auditor = await exchange(brokerUrl, await sign({ user: 'erin' }));
    const forced = await fetch(`${brokerUrl}/v1/audit/checkpoint`, {
      method: 'POST',
      headers: { authorization: `Bearer ${auditor}` },
    });
    expect(forced.status).toBe(200);
    // The witness cosigned what the token signed: its latest checkpoint of this log opens with both keys.
    const origin = Buffer.from(await crypto.subtle.digest('SHA-256', Buffer.from(ORIGIN))).toString('hex');
    const cosigned = await waitFor(async () => {
      const response = await fetch(`${witnessInfo.url}/${origin}/checkpoint`);
      return response.status === 200 ? response.text() : null;
    });
    const logKey = ed25519Verifier(tokenVkey);
    const witnessKey = cosignatureVerifier(witnessInfo.key);
    const opened = openNote(cosigned, [logKey, witnessKey]);
    expect(opened.verified.map((v) => v.name).sort()).toEqual([ORIGIN, 'witness.test/hsm'].sort());
    const served = await (await fetch(`${brokerUrl}/v1/audit/checkpoint`)).text();
    const head = parseCheckpoint(openNote(served, [logKey]).note.text);
    expect(head.origin).toBe(ORIGIN);
    expect(head.size).toBeGreaterThanOrEqual(parseCheckpoint(opened.note.text).size);

    // The whole log, exported and checked by the CLI against the witness (keys from the verifier).
    const exported = join(work, 'export.jsonl');
    const response = await fetch(`${brokerUrl}/v1/audit/export`, {
      headers: { authorization: `Bearer ${auditor}` },
    });
    writeFileSync(exported, await response.text());
    writeFileSync(join(work, 'jwks.json'), await (await fetch(`${brokerUrl}/.well-known/jwks.json`)).text());
    const verified = await runImp(
      [
        'audit',
        'verify',
        '--file',
        exported,
        '--jwks',
        join(work, 'jwks.json'),
        '--witness',
        witnessInfo.url,
        '--witness-key',
        witnessInfo.key,
        '--json',
      ],
      makeUserEnv().env,
    );
    expect(verified.code, verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true, tree: { witnessed: true } });
  });

  it('the private key never leaves the token: asking it for the key material is refused', async () => {
    const { stdout } = await tool(['--login', '--pin', PIN, '--list-objects', '--type', 'privkey']);
    const block = stdout.split(/(?=Private Key Object)/).find((b) => b.includes('audit-note'))!;
    expect(block).toMatch(/Access:\s+sensitive, always sensitive, never extractable/);
    // What the broker could do with its session, it cannot do: read CKA_VALUE of the key.
    process.env.SOFTHSM2_CONF = hsmEnv.SOFTHSM2_CONF;
    const { default: p } = await import('pkcs11js');
    const module = new p.PKCS11();
    module.load(MODULE);
    module.C_Initialize();
    try {
      const slot = module
        .C_GetSlotList(true)
        .find((s) => module.C_GetTokenInfo(s).label.trim() === 'imp-audit')!;
      const session = module.C_OpenSession(slot, p.CKF_SERIAL_SESSION);
      module.C_Login(session, p.CKU_USER, PIN);
      module.C_FindObjectsInit(session, [
        { type: p.CKA_CLASS, value: p.CKO_PRIVATE_KEY },
        { type: p.CKA_LABEL, value: 'audit-note' },
      ]);
      const [key] = module.C_FindObjects(session, 1);
      module.C_FindObjectsFinal(session);
      expect(() => module.C_GetAttributeValue(session, key!, [{ type: p.CKA_VALUE }])).toThrow(
        /CKR_ATTRIBUTE_SENSITIVE/,
      );
    } finally {
      module.C_Finalize();
      module.close();
    }
  });
});

describe('the loader, in this process', () => {
  it('signs again after the token drops its session (it opens a new one and logs in)', async () => {
    process.env.SOFTHSM2_CONF = hsmEnv.SOFTHSM2_CONF;
    const { loadPkcs11NoteKey } = await import('../../src/broker/pkcs11-key.js');
    const key = await loadPkcs11NoteKey(uri('object=audit-note'), ORIGIN, {});
    try {
      expect(key.vkey).toBe(tokenVkey);
      const verifier = ed25519Verifier(key.vkey);
      const text = 'imp.test/hsm-log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n';
      expect(verifier.verify(text, await key.signer.sign(text))).toBe(true);
      // Someone else in this process closes every session on the token (a reset, say).
      const { default: p } = await import('pkcs11js');
      const other = new p.PKCS11();
      other.load(MODULE);
      expect(() => other.C_Initialize()).toThrow(/CKR_CRYPTOKI_ALREADY_INITIALIZED/);
      for (const slot of other.C_GetSlotList(true)) other.C_CloseAllSessions(slot);
      expect(verifier.verify(text, await key.signer.sign(text))).toBe(true);
    } finally {
      key.close?.();
    }
  });
});

describe('a token that stops signing under a running broker', () => {
  it('the failed checkpoint is audited once, the recovery too; nothing else moves the log', async () => {
    process.env.SOFTHSM2_CONF = hsmEnv.SOFTHSM2_CONF;
    const t = await startTestBroker({
      auditKey: uri('object=audit-note'),
      policyYaml: (issuer) => `${devPolicyYaml(issuer, 'http://127.0.0.1:9')}audit:\n  origin: ${ORIGIN}\n`,
    });
    const { default: p } = await import('pkcs11js');
    const other = new p.PKCS11();
    other.load(MODULE);
    expect(() => other.C_Initialize()).toThrow(/CKR_CRYPTOKI_ALREADY_INITIALIZED/);
    const slot = other.C_GetSlotList(true).find((s) => other.C_GetTokenInfo(s).label.trim() === 'imp-audit')!;
    const setPin = (from: string, to: string) => {
      const session = other.C_OpenSession(slot, p.CKF_SERIAL_SESSION | p.CKF_RW_SESSION);
      // Login state is per process in PKCS#11: the broker's session may have logged this one in already.
      try {
        other.C_Login(session, p.CKU_USER, from);
      } catch (error) {
        if (!/CKR_USER_ALREADY_LOGGED_IN/.test((error as Error).message)) throw error;
      }
      other.C_SetPIN(session, from, to);
      other.C_CloseAllSessions(slot);
    };
    let changed = false;
    try {
      await t.loginAs('alice');
      await t.broker.deps.checkpoint();
      const signed = (await t.store.listNotes()).at(-1)!.size;
      // The HSM's PIN is changed and its sessions dropped: the broker cannot log in again.
      setPin(PIN, 'changed-pin');
      changed = true;
      await t.loginAs('carol');
      await t.broker.deps.checkpoint();
      await t.broker.deps.checkpoint();
      const failed = await t.store.readAudit({ type: 'audit.checkpoint_failed' });
      expect(failed).toHaveLength(1);
      expect(String(failed[0]!.data.message)).toMatch(/refused the PIN \(CKR_PIN_INCORRECT\)/);
      expect(String(failed[0]!.data.message)).not.toContain(PIN);
      expect((await t.store.listNotes()).at(-1)!.size).toBe(signed);

      setPin('changed-pin', PIN);
      changed = false;
      await t.broker.deps.checkpoint();
      expect(await t.store.readAudit({ type: 'audit.checkpoint_recovered' })).toHaveLength(1);
      await t.broker.deps.checkpoint();
      const head = (await t.store.treeHead()).size;
      expect((await t.store.listNotes()).at(-1)!.size).toBe(head);
    } finally {
      // The token is shared with the tests below: never leave it with another PIN.
      if (changed) setPin('changed-pin', PIN);
      await t.close();
    }
  });
});

describe('fails closed at start', () => {
  const cases: [string, string, NodeJS.ProcessEnv, RegExp][] = [
    [
      'a wrong PIN',
      uri('object=audit-note', `pin-value=0000&module-path=${MODULE}`),
      hsmEnv,
      /refused the PIN \(CKR_PIN_INCORRECT\)/,
    ],
    [
      'a missing object',
      uri('object=no-such-key'),
      hsmEnv,
      /has no Ed25519 \(CKK_EC_EDWARDS\) private key with object=no-such-key/,
    ],
    [
      'an extractable key',
      uri('object=loose'),
      hsmEnv,
      /is extractable: generate one with CKA_EXTRACTABLE false/,
    ],
    [
      'no PIN',
      uri('object=audit-note', `module-path=${MODULE}`),
      hsmEnv,
      /needs a PIN: add pin-source=file:/,
    ],
    [
      'an unknown token',
      'pkcs11:token=nope;object=audit-note?pin-value=1&module-path=' + MODULE,
      hsmEnv,
      /no initialised token matches/,
    ],
    [
      'no module',
      'pkcs11:token=imp-audit;object=audit-note?pin-value=1',
      hsmEnv,
      /name the PKCS#11 library: module-path=/,
    ],
    [
      'a module that is not one',
      `pkcs11:object=a?pin-value=1&module-path=${work}/pin`,
      hsmEnv,
      /cannot load the PKCS#11 module/,
    ],
  ];
  it.each(cases)(
    '%s: exit 1 before listening, the cause named, no PIN shown',
    async (_name, auditKey, env, why) => {
      const started = serve(policy('plain', ''), auditKey, env);
      const result = await runImp(started.args, started.env);
      expect(result.code).toBe(1);
      expect(result.stdout).not.toContain('"broker"');
      expect(result.stderr).toMatch(why);
      expect(result.stderr).not.toMatch(/0000&|pin-value=1\b/);
    },
  );

  it('the module path may come from IMP_PKCS11_MODULE instead of the URI', async () => {
    const started = serve(policy('plain', ''), 'pkcs11:token=imp-audit;object=no-such-key?pin-value=x', {
      ...hsmEnv,
      IMP_PKCS11_MODULE: MODULE,
    });
    const result = await runImp(started.args, started.env);
    // It got as far as the token: the PIN was tried there.
    expect(result.stderr).toMatch(/refused the PIN \(CKR_PIN_INCORRECT\)/);
  });
});

async function waitFor<T>(probe: () => Promise<T | null>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 50));
  }
}
