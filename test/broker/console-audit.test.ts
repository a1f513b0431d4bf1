/**
 * The console's Audit page shows each event's proof status, checked on the broker: two real witness
 * servers cosign the broker's checkpoints; a checkpointed event shows verified with its witness
 * count, a newer one "not yet checkpointed"; a DBA's SQL UPDATE on the live SQLite file makes that
 * event FAILED; an edited cosignature line is named and not counted.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleState } from '../../src/broker/console/state.js';
import { noteKeyFromSeed } from '../../src/broker/note-key.js';
import { hashEvent } from '../../src/core/audit/event.js';
import {
  ED25519_TYPE,
  formatPrivateNoteKey,
  formatVerifierKey,
  rawEd25519PublicKey,
} from '../../src/core/audit/signed-note.js';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { startWitness, type Witness } from '../../src/witness/server.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { waitFor } from '../helpers/notify-receivers.js';
import { makeTempDir } from '../helpers/temp.js';

const work = makeTempDir('imp-console-audit-');
const log = noteKeyFromSeed('imp.test/console-audit', randomBytes(32));
const logFile = join(work, 'audit.key');
writeFileSync(logFile, formatPrivateNoteKey(log), { mode: 0o600 });
const witnesses: Witness[] = [];
let t: TestBroker;

beforeAll(async () => {
  for (const name of ['w1', 'w2']) {
    const { privateKey } = generateKeyPairSync('ed25519');
    const key = { name: `witness.test/${name}`, privateKey, publicKey: rawEd25519PublicKey(privateKey) };
    witnesses.push(
      await startWitness({
        key,
        logs: [formatVerifierKey(log.name, ED25519_TYPE, log.publicKey)],
        stateFile: join(work, `${name}.json`),
        now: () => Date.now(),
        port: 0,
      }),
    );
  }
  const list = witnesses.map((w) => `    - { url: "${w.url}", key: "${w.vkey}" }`).join('\n');
  t = await startTestBroker({
    auditKey: logFile,
    // Checkpoints only when asked (POST /v1/audit/checkpoint), so the test knows what is covered.
    policyYaml: (issuer) =>
      `${devPolicyYaml(issuer, 'http://127.0.0.1:9')}audit:\n  checkpoint_every: 100000\n  witness_quorum: 2\n  witnesses:\n${list}\n`,
  });
}, 20_000);

afterAll(async () => {
  await t?.close();
  for (const w of witnesses) await w.close();
});

/** Checkpoints now (as the auditor erin); the broker waits for both witnesses' cosignatures. */
async function checkpoint(): Promise<number> {
  const answer = await t.call<{ size: number; checkpoint: string }>(
    'POST',
    '/v1/audit/checkpoint',
    await t.loginAs('erin'),
  );
  expect(answer.status).toBe(200);
  const { size } = answer.body;
  // The broker waits (bounded) for the witnesses; under load, wait on for both cosignatures to be stored.
  await waitFor(async () => {
    const note = (await t.store.listNotes()).find((n) => n.size === size)?.note ?? '';
    return (note.match(/^— /gm) ?? []).length === 3;
  }, 20_000);
  return size;
}

async function auditPage(query = ''): Promise<string> {
  const session = consoleState(t.broker.deps).create({
    token: await t.loginAs('erin'),
    tokenExpiresAt: t.clock.now() + 3600_000,
    user: { email: 'erin@example.test', name: 'erin', sub: 'user-erin', roles: ['security'] },
  });
  const response = await fetch(`${t.broker.url}/console/audit${query}`, {
    headers: { cookie: `imp-console=${session.id}` },
  });
  expect(response.status).toBe(200);
  return response.text();
}

/** The Proof cell of event `seq`'s row. */
function proofOf(page: string, seq: number): string {
  const row = new RegExp(`<tr id="event-${seq}">(.*?)</tr>`, 's').exec(page)?.[1];
  expect(row, `row of event ${seq}`).toBeDefined();
  const cells = [...row!.matchAll(/<td[^>]*>(.*?)<\/td>/gs)].map((m) => m[1]!);
  return cells.at(-1)!.replace(/<[^>]+>/g, '');
}

/** The DBA's session: the live database file, opened on its own, the append-only triggers dropped. */
function dba(): Database.Database {
  const db = new Database(join(t.stateDir, 'imp.db'));
  db.pragma('busy_timeout = 5000');
  const triggers = db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'").all() as {
    name: string;
  }[];
  for (const { name } of triggers) db.exec(`DROP TRIGGER ${name}`);
  return db;
}

describe('console Audit page: proof status per event', () => {
  it('a checkpointed event shows verified with the witnesses that cosigned; a newer one not yet checkpointed', async () => {
    for (const user of ['alice', 'carol']) await t.loginAs(user);
    const size = await checkpoint();
    const page = await auditPage();
    expect(proofOf(page, 1)).toBe(
      `verified: included in the checkpoint of size ${size}, cosigned by 2 of 2 witnesses, quorum 2 met`,
    );
    expect(proofOf(page, size)).toMatch(/^verified: /);
    // Logging in as erin and the page's own audited read came after the checkpoint.
    expect(proofOf(page, size + 1)).toBe(`not yet checkpointed (newest checkpoint: ${size} events)`);
    expect(page).toContain(
      `Newest checkpoint: ${size} events, signed with this broker’s audit key; witness cosignatures verified with the keys in policy: 2 of 2 (quorum 2 met): witness.test/w1, witness.test/w2.`,
    );
    expect(page).toContain('imp audit verify');
    expect(page).not.toContain('FAILED');
  });

  it('edited or forged cosignature lines are named and not counted: 0 of 2, quorum NOT met', async () => {
    const size = await checkpoint();
    const db = dba();
    try {
      const lineOf = (witness: string) =>
        (
          db
            .prepare('SELECT line FROM audit_cosignatures WHERE size = ? AND witness = ?')
            .get(size, witness) as {
            line: string;
          }
        ).line;
      const setLine = (witness: string, line: string) =>
        db
          .prepare('UPDATE audit_cosignatures SET line = ? WHERE size = ? AND witness = ?')
          .run(line, size, witness);
      // w1's line edited: name and key id kept (so the key in policy is asked), the signature's last byte changed.
      const [dash, name, b64] = lineOf('witness.test/w1').trimEnd().split(' ') as [string, string, string];
      const edited = Buffer.from(b64, 'base64');
      edited[edited.length - 1]! ^= 0x01;
      setLine('witness.test/w1', `${dash} ${name} ${edited.toString('base64')}\n`);
      // w2's line forged: its key id and a timestamp, then 64 bytes the DBA made up.
      const [, name2, b64two] = lineOf('witness.test/w2').trimEnd().split(' ') as [string, string, string];
      const forged = Buffer.concat([Buffer.from(b64two, 'base64').subarray(0, 12), randomBytes(64)]);
      setLine('witness.test/w2', `${dash} ${name2} ${forged.toString('base64')}\n`);
    } finally {
      db.close();
    }
    const page = await auditPage();
    expect(page).toContain(
      'witness cosignatures verified with the keys in policy: 0 of 2 (quorum 2 NOT met).',
    );
    expect(page).toContain(
      'FAILED: cosignatures that do not verify with the witness’s key in policy (edited or forged), not counted: witness.test/w1, witness.test/w2.',
    );
    expect(proofOf(page, 1)).toBe(
      `verified: included in the checkpoint of size ${size}, cosigned by 0 of 2 witnesses, quorum 2 NOT met`,
    );
  });

  it('a DBA who edits a shown event’s row in the live store makes that event FAILED, loudly; the others stay verified', async () => {
    await t.loginAs('dave');
    const size = await checkpoint();
    const rehashed = { ...(await t.store.readAudit({ fromSeq: 3, toSeq: 3 }))[0]!, reason: 'routine' };
    rehashed.hash = hashEvent(rehashed);
    const db = dba();
    try {
      db.prepare('UPDATE audit_events SET reason = ? WHERE seq = 2').run('<b>nothing to see</b>');
      // A careful DBA also rehashes: the event matches its hash again, but its leaf is not in the tree.
      db.prepare('UPDATE audit_events SET reason = ?, hash = ? WHERE seq = 3').run(
        rehashed.reason,
        rehashed.hash,
      );
    } finally {
      db.close();
    }
    const page = await auditPage();
    expect(proofOf(page, 2)).toBe('FAILED: event 2 does not match its hash: it was edited');
    expect(page).toMatch(/<strong class="proof-failed">FAILED: event 2 does not match its hash/);
    // The edited text is shown, escaped, never as markup.
    expect(page).toContain('&lt;b>nothing to see&lt;/b>');
    expect(page).not.toContain('<b>nothing to see</b>');
    expect(proofOf(page, 3)).toBe(
      `FAILED: the inclusion proof of event 3 does not verify against checkpoint ${size}`,
    );
    expect(proofOf(page, 1)).toBe(
      `verified: included in the checkpoint of size ${size}, cosigned by 2 of 2 witnesses, quorum 2 met`,
    );
  });
});
