/**
 * `imp audit verify --file` with the export cut into three slices, two of them scanned by worker
 * threads (IMP_VERIFY_WORKERS=3). A clean export verifies as witnessed, with the same verdict as one
 * thread. A change in each slice, and at a cut — two events swapped across it, the event after it
 * deleted, or every event from the cut on re-chained so that each slice is consistent on its own and
 * only the link across the cut is broken — fails with exit 1 and names the same seq and kind as the
 * sequential verifier (verifyChain over the parsed events, run here in-process as the reference).
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sliceBounds } from '../../src/cli/audit-verify-scan.js';
import { type AuditEvent, GENESIS_PREV, sealEvent } from '../../src/core/audit/event.js';
import { canonicalEventLine, exportLine, parseExport } from '../../src/core/audit/export-format.js';
import { eventLeafHash } from '../../src/core/audit/log-tree.js';
import { Frontier } from '../../src/core/audit/merkle.js';
import {
  ED25519_TYPE,
  ed25519Signer,
  formatVerifierKey,
  rawEd25519PublicKey,
  signNote,
} from '../../src/core/audit/signed-note.js';
import { formatCheckpoint } from '../../src/core/audit/tlog-checkpoint.js';
import { cosigner, cosignerVerifierKey } from '../../src/core/audit/tlog-cosignature.js';
import { verifyChain } from '../../src/core/audit/verify-chain.js';
import { makeUserEnv, runImp } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/temp.js';

// Three slices of ~1400: the first and last each hold a whole subtree of 1024 leaves (hashed by
// the scan), the middle one none, and the notes at every 1024 check roots across all of them.
const N = 4200;
const SLICES = 3;
const ORIGIN = 'imp.test/workers';
const work = makeTempDir('imp-verify-workers-');
const noteKey = (name: string) => {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { name, privateKey, publicKey: rawEd25519PublicKey(privateKey) };
};
const log = noteKey(ORIGIN);
const witness = noteKey('witness.imp.test');
const witnessKey = cosignerVerifierKey(witness);

function seal(seq: number, prev: string): AuditEvent {
  const draft = {
    type: seq % 2 === 0 ? 'action.completed' : 'action.requested',
    actor: { iss: 'https://idp.example', sub: 'alice', email: 'alice@example.com', roles: ['support'] },
    tenant: 'acme',
    environment: 'prod',
    session: 'sess-1',
    ticket: 'SUP-1',
    reason: 'Customer cannot see the invoice',
    data: { method: 'GET', path: `/v1/invoices/${seq}`, ...(seq % 2 === 0 ? { status: 200 } : {}) },
  };
  return sealEvent(draft, {
    seq,
    id: randomUUID(),
    ts: new Date(Date.UTC(2026, 10, 1) + seq).toISOString(),
    prev,
  });
}

function chain(from: number, to: number, prev: string): AuditEvent[] {
  const events: AuditEvent[] = [];
  for (let seq = from; seq <= to; seq++) {
    events.push(seal(seq, prev));
    prev = events.at(-1)!.hash;
  }
  return events;
}

const original = chain(1, N, GENESIS_PREV);

/** Cosigned notes over the original log: what the witness saw, whatever the file says later. */
const notes = await (async () => {
  const frontier = new Frontier();
  const out: string[] = [];
  for (const event of original) {
    frontier.append(eventLeafHash(event));
    if (frontier.size % 1024 === 0 || frontier.size === N) {
      const text = formatCheckpoint({ origin: ORIGIN, size: frontier.size, root: frontier.root() });
      out.push(await signNote(text, [ed25519Signer(log), cosigner(witness, () => Date.now())]));
    }
  }
  return out;
})();

/** The export text of some event lines, with the original log's header and notes. */
function exportText(eventLines: string[], canonical = false): string {
  const header = {
    version: 2 as const,
    broker: 'https://broker.imp.test',
    exported_at: '2026-11-02T00:00:00.000Z',
    from_seq: 1,
    prev: GENESIS_PREV,
    to_seq: N,
    origin: ORIGIN,
    log_key: formatVerifierKey(ORIGIN, ED25519_TYPE, log.publicKey),
    tree_size: N,
    left: [],
    right: [],
    ...(canonical ? { canonical: true } : {}),
  };
  return [exportLine({ export: header }), ...eventLines, ...notes.map((note) => exportLine({ note }))].join(
    '',
  );
}

const lines = original.map((event) => exportLine(event));

/** Index (into the event lines) of the first event of each slice after the first. */
function firstOfSlices(eventLines: string[]): number[] {
  const text = exportText(eventLines);
  const bounds = sliceBounds(Buffer.from(text), SLICES).slice(1, -1);
  const starts: number[] = [];
  let at = Buffer.byteLength(text.slice(0, text.indexOf('\n') + 1));
  eventLines.forEach((line, i) => {
    if (bounds.includes(at)) starts.push(i);
    at += Buffer.byteLength(line);
  });
  return starts;
}

let files = 0;
async function verify(eventLines: string[], workers: number, canonical = false) {
  const file = join(work, `export-${files++}.jsonl`);
  writeFileSync(file, exportText(eventLines, canonical));
  const { env } = makeUserEnv({ IMP_VERIFY_WORKERS: String(workers) });
  const result = await runImp(
    ['audit', 'verify', '--file', file, '--witness-key', witnessKey, '--json'],
    env,
    {
      timeoutMs: 25_000,
    },
  );
  return {
    code: result.code,
    json: JSON.parse(result.stdout) as Record<string, unknown>,
    stderr: result.stderr,
  };
}

/** The sequential verdict on the same lines: verifyChain over the parsed events. */
async function reference(eventLines: string[]) {
  const events = parseExport(eventLines.join('')).events as AuditEvent[];
  return (await verifyChain(events, [], async () => Promise.reject(new Error('no checkpoints')))).problem;
}

async function expectCaught(eventLines: string[]) {
  const expected = await reference(eventLines);
  expect(expected).not.toBeNull();
  const result = await verify(eventLines, SLICES);
  expect(result.code).toBe(1);
  expect(result.json.ok).toBe(false);
  expect(result.json.problem).toEqual(expected);
  expect(result.json.slices).toBe(0); // the sequential walk named it
  expect(result.stderr).toContain(`Audit log BROKEN at seq ${expected!.seq} (${expected!.kind})`);
  return expected!;
}

function edited(eventLines: string[], index: number): string[] {
  const copy = [...eventLines];
  const event = JSON.parse(copy[index]!) as AuditEvent;
  copy[index] = exportLine({ ...event, data: { ...event.data, path: '/v1/admin/delete-everything' } });
  return copy;
}

const cuts = firstOfSlices(lines);

describe('imp audit verify with worker threads', () => {
  it('the cuts fall inside the log, so each slice holds events', () => {
    expect(cuts).toHaveLength(SLICES - 1);
    expect(cuts[0]).toBeGreaterThan(1024);
    expect(cuts[1]).toBeLessThan(3072);
  });

  it('a clean export verifies as witnessed, with the verdict of a single thread', async () => {
    const parallel = await verify(lines, SLICES);
    expect(parallel.code).toBe(0);
    expect(parallel.json).toMatchObject({ ok: true, events: N, lastSeq: N, problem: null });
    expect(parallel.json.tree).toMatchObject({ ok: true, witnessed: true, size: N, cosigned: 5 });
    expect(parallel.json.slices).toBe(SLICES); // vouched for by the slices, not walked one by one
    const single = await verify(lines, 1);
    expect(single.json).toEqual({ ...parallel.json, slices: 1 });
  });

  it('a change in each slice is caught at its seq', { timeout: 60_000 }, async () => {
    for (const index of [300, cuts[0]! + 300, cuts[1]! + 300]) {
      const problem = await expectCaught(edited(lines, index));
      expect(problem).toMatchObject({ kind: 'edited', seq: index + 1 });
    }
  });

  it('two events swapped across a cut are caught', async () => {
    const cut = cuts[0]!;
    const swapped = [...lines];
    [swapped[cut - 1], swapped[cut]] = [swapped[cut]!, swapped[cut - 1]!];
    expect(firstOfSlices(swapped)).toContain(cut); // still one on each side of the cut
    const problem = await expectCaught(swapped);
    expect(problem.seq).toBe(cut);
  });

  it('the first event of a slice deleted is caught as missing', async () => {
    const cut = cuts[1]!;
    const problem = await expectCaught(lines.filter((_, i) => i !== cut));
    expect(problem).toMatchObject({ kind: 'missing', seq: cut + 1 });
  });

  it('slices re-chained to be consistent on their own still fail at the cut', {
    timeout: 60_000,
  }, async () => {
    for (const cut of cuts) {
      // Every event from the cut on is resealed after a forged link: only the cut does not link.
      const forged = chain(cut + 1, N, 'f'.repeat(64)).map((event) => exportLine(event));
      const rechained = [...lines.slice(0, cut), ...forged];
      expect(firstOfSlices(rechained)).toEqual(cuts);
      const problem = await expectCaught(rechained);
      expect(problem.kind).toBe('inserted');
      expect([cut, cut + 1]).toContain(problem.seq);
    }
  });
});

describe('imp audit verify of a canonical export (event lines hashed as stored)', () => {
  const canonical = original.map((event) => canonicalEventLine(event));
  const cutsOf = () => firstOfSlices(canonical);
  const runs = (eventLines: string[]) => verify(eventLines, SLICES, true);

  it('a clean export verifies as witnessed from the slices, with the verdict of the other format', async () => {
    const fast = await runs(canonical);
    expect(fast.code).toBe(0);
    expect(fast.json.slices).toBe(SLICES);
    const legacy = await verify(lines, SLICES);
    expect(fast.json).toEqual(legacy.json);
  });

  // Each variant parses to the very event that was hashed, so re-serialising would let it pass:
  // hashed as stored, it is named at its seq by the chain and inside the range the tree names.
  it.each([
    ['a space added', (line: string) => line.replace('"data":{', '"data": {')],
    [
      'a duplicate key whose last value is the original',
      (line: string) => line.replace('"method":', '"method":"DELETE","method":'),
    ],
    ['an escaped letter', (line: string) => line.replace('"GET"', '"\\u0047ET"')],
  ])(
    'an event line with %s is caught and located, in each slice',
    { timeout: 60_000 },
    async (_, respell) => {
      const cuts = cutsOf();
      for (const index of [300, cuts[0]! + 300, cuts[1]! + 300]) {
        const variant = canonical.with(index, respell(canonical[index]!));
        expect(JSON.parse(variant[index]!)).toEqual(original[index]);
        const result = await runs(variant);
        expect(result.code).toBe(1);
        expect(result.json.slices).toBe(0); // the sequential walk named it
        expect(result.json.problem).toMatchObject({ kind: 'malformed', seq: index + 1 });
        expect(String((result.json.problem as { message: string }).message)).toContain('canonical JSON');
        expect(result.stderr).toContain(`Audit log BROKEN at seq ${index + 1} (malformed)`);
        const tree = result.json.tree as {
          ok: boolean;
          problem: { kind: string; first: number; last: number };
        };
        expect(tree.problem.kind).toBe('rewritten');
        expect(tree.problem.first).toBeLessThanOrEqual(index + 1);
        expect(tree.problem.last).toBeGreaterThanOrEqual(index + 1);
      }
    },
  );

  it('an edited event line, still canonical, is caught as edited at its seq', async () => {
    const event = original[cutsOf()[1]! + 10]!;
    const edited = canonicalEventLine({
      ...event,
      data: { ...event.data, path: '/v1/admin/delete-everything' },
    });
    const result = await runs(canonical.with(event.seq - 1, edited));
    expect(result.code).toBe(1);
    expect(result.json.problem).toMatchObject({ kind: 'edited', seq: event.seq });
  });
});
