/**
 * The witness's add-checkpoint rules (C2SP tlog-witness), over HTTP against a real witness server:
 * cosigns a first checkpoint and consistent extensions; answers 409 with its size (text/x.tlog.size)
 * to a wrong old size, 422 to an inconsistent proof or a changed root at the same size, 403 to a
 * bad log signature, 404 to an unknown log; persists its state and serves its latest checkpoint.
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { noteKeyFromSeed } from '../../src/broker/note-key.js';
import {
  consistencyRanges,
  Frontier,
  type Hash,
  leafHash,
  nodesFor,
  rangeHash,
  type TreeNode,
} from '../../src/core/audit/merkle.js';
import {
  ED25519_TYPE,
  ed25519Signer,
  formatVerifierKey,
  openNote,
  rawEd25519PublicKey,
  signNote,
} from '../../src/core/audit/signed-note.js';
import { formatCheckpoint } from '../../src/core/audit/tlog-checkpoint.js';
import { cosignatureVerifier } from '../../src/core/audit/tlog-cosignature.js';
import { startWitness, type Witness } from '../../src/witness/server.js';

const log = noteKeyFromSeed('example.test/log', randomBytes(32));
const vkey = formatVerifierKey(log.name, ED25519_TYPE, log.publicKey);
const running: Witness[] = [];
afterEach(async () => {
  for (const w of running.splice(0)) await w.close();
});

async function witness(stateFile = join(mkdtempSync(join(tmpdir(), 'imp-w-')), 'state.json')) {
  const { privateKey } = generateKeyPairSync('ed25519');
  const key = { name: 'witness.test/w', privateKey, publicKey: rawEd25519PublicKey(privateKey) };
  const w = await startWitness({ key, logs: [vkey], stateFile, now: () => 1_700_000_000_000, port: 0 });
  running.push(w);
  return { w, stateFile };
}

/** A tree of `size` leaves over fixed data, its nodes kept for proofs. */
function tree(size: number, salt = '') {
  const nodes = new Map<string, Hash>();
  const frontier = new Frontier();
  for (let i = 0; i < size; i++)
    for (const { node, hash } of frontier.append(leafHash(Buffer.from(`${salt}leaf ${i}`))))
      nodes.set(`${node.level}/${node.index}`, hash);
  const get = (n: TreeNode) => nodes.get(`${n.level}/${n.index}`)!;
  return {
    root: frontier.root(),
    proof: (old: number) => (old === 0 ? [] : consistencyRanges(old, size).map((r) => rangeHash(r, get))),
    nodes: (old: number) => nodesFor(consistencyRanges(old, size)),
  };
}

async function checkpoint(size: number, salt = '', signer = ed25519Signer(log)) {
  return signNote(formatCheckpoint({ origin: log.name, size, root: tree(size, salt).root }), [signer]);
}

async function add(w: Witness, old: number, proof: Hash[], note: string) {
  const body = `old ${old}\n${proof.map((p) => `${Buffer.from(p).toString('base64')}\n`).join('')}\n${note}`;
  const response = await fetch(`${w.url}/add-checkpoint`, { method: 'POST', body });
  return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
}

describe('imp witness: add-checkpoint', () => {
  it('cosigns a first checkpoint and a consistent extension, persists, and serves the latest', async () => {
    const { w, stateFile } = await witness();
    const first = await add(w, 0, [], await checkpoint(5));
    expect(first.status).toBe(200);
    const note5 = await checkpoint(5);
    expect(openNote(note5 + first.text, [cosignatureVerifier(w.vkey)]).verified).toHaveLength(1);
    const next = await add(w, 5, tree(9).proof(5), await checkpoint(9));
    expect(next.status).toBe(200);
    expect(JSON.parse(readFileSync(stateFile, 'utf8')).logs[log.name].size).toBe(9);
    const latest = await fetch(`${w.url}/${createHash('sha256').update(log.name).digest('hex')}/checkpoint`);
    expect(latest.status).toBe(200);
    expect(await latest.text()).toMatch(/^example\.test\/log\n9\n/);
    expect((await fetch(`${w.url}/${'0'.repeat(64)}/checkpoint`)).status).toBe(404);
  });

  it('409 with its latest size for a wrong old size; 422 for an inconsistent tree or a changed root', async () => {
    const { w } = await witness();
    expect((await add(w, 0, [], await checkpoint(5))).status).toBe(200);
    const conflict = await add(w, 3, tree(9).proof(3), await checkpoint(9));
    expect(conflict).toMatchObject({ status: 409, type: 'text/x.tlog.size', text: '5\n' });
    // A different history of 9 leaves: its proof from 5 cannot match what was cosigned at 5.
    expect((await add(w, 5, tree(9, 'forged ').proof(5), await checkpoint(9, 'forged '))).status).toBe(422);
    expect((await add(w, 5, [], await checkpoint(5, 'forged '))).status).toBe(422);
    expect((await add(w, 0, [], await checkpoint(9))).status).toBe(409);
  });

  it('403 for a checkpoint whose log signature does not verify, 404 for an unknown log, 400 for garbage', async () => {
    const { w } = await witness();
    const impostor = noteKeyFromSeed(log.name, randomBytes(32));
    expect((await add(w, 0, [], await checkpoint(5, '', ed25519Signer(impostor)))).status).toBe(403);
    const tampered = (await checkpoint(5)).replace(/\n5\n/, '\n6\n');
    expect((await add(w, 0, [], tampered)).status).toBe(403);
    const other = noteKeyFromSeed('other.test/log', randomBytes(32));
    const unknown = await signNote(formatCheckpoint({ origin: other.name, size: 1, root: tree(1).root }), [
      ed25519Signer(other),
    ]);
    expect((await add(w, 0, [], unknown)).status).toBe(404);
    expect((await fetch(`${w.url}/add-checkpoint`, { method: 'POST', body: 'hello' })).status).toBe(400);
  });

  it('remembers across a restart: the state file is its memory', async () => {
    const { w, stateFile } = await witness();
    expect((await add(w, 0, [], await checkpoint(4))).status).toBe(200);
    await w.close();
    running.splice(0);
    const again = await witness(stateFile);
    expect(await add(again.w, 0, [], await checkpoint(4))).toMatchObject({ status: 409, text: '4\n' });
  });
});
