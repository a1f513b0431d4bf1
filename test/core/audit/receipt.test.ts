/**
 * The receipt verifier's parts, as the broker's Audit page uses them: a checkpoint is opened with the
 * log key and then each witness key on its own, so an edited cosignature is named and not counted
 * while the others still count; verifyReceipt, built from the same parts, still refuses the whole
 * receipt when any known key's signature does not verify.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { noteKeyFromSeed } from '../../../src/broker/note-key.js';
import { GENESIS_PREV, sealEvent } from '../../../src/core/audit/event.js';
import { eventLeafHash } from '../../../src/core/audit/log-tree.js';
import {
  type AuditReceipt,
  checkCosignedCheckpoint,
  verifyReceipt,
} from '../../../src/core/audit/receipt.js';
import {
  ED25519_TYPE,
  ed25519Signer,
  ed25519Verifier,
  formatVerifierKey,
  rawEd25519PublicKey,
  signNote,
} from '../../../src/core/audit/signed-note.js';
import { formatCheckpoint } from '../../../src/core/audit/tlog-checkpoint.js';
import {
  cosignatureVerifier,
  cosigner,
  cosignerVerifierKey,
} from '../../../src/core/audit/tlog-cosignature.js';

const log = noteKeyFromSeed('imp.test/receipts', randomBytes(32));
const logVerifier = ed25519Verifier(formatVerifierKey(log.name, ED25519_TYPE, log.publicKey));
const witnesses = ['w1', 'w2'].map((name) => {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { name: `witness.test/${name}`, privateKey, publicKey: rawEd25519PublicKey(privateKey) };
});
const witnessKeys = witnesses.map((w) => cosignatureVerifier(cosignerVerifierKey(w)));
const event = sealEvent(
  { type: 'session.approved', reason: 'fine', data: {} },
  { seq: 1, id: 'evt_1', ts: '2026-11-24T20:11:40.123Z', prev: GENESIS_PREV },
);
const text = formatCheckpoint({ origin: log.name, size: 1, root: eventLeafHash(event) });
const now = () => 1_800_000_000_000;

async function receipt(signers = [ed25519Signer(log), ...witnesses.map((w) => cosigner(w, now))]) {
  const checkpoint = await signNote(text, signers);
  return {
    version: 1,
    origin: log.name,
    log_key: formatVerifierKey(log.name, ED25519_TYPE, log.publicKey),
    event,
    leaf_index: 0,
    tree_size: 1,
    proof: [],
    checkpoint,
  } satisfies AuditReceipt;
}

/** The note with the last byte of `name`'s signature flipped (name and key id kept). */
function editLine(note: string, name: string): string {
  return note.replace(new RegExp(`^— ${name} (\\S+)$`, 'm'), (_line, b64: string) => {
    const bytes = Buffer.from(b64, 'base64');
    bytes[bytes.length - 1]! ^= 0x01;
    return `— ${name} ${bytes.toString('base64')}`;
  });
}

describe('checkCosignedCheckpoint and verifyReceipt', () => {
  it('counts every witness whose cosignature verifies; the receipt verifies with quorum 2', async () => {
    const r = await receipt();
    expect(checkCosignedCheckpoint(r.checkpoint, [logVerifier], witnessKeys)).toMatchObject({
      ok: true,
      logSigned: true,
      cosigners: ['witness.test/w1', 'witness.test/w2'],
      forged: [],
    });
    expect(verifyReceipt(r, { witnessKeys, quorum: 2 })).toMatchObject({ ok: true, treeSize: 1 });
  });

  it('an edited cosignature is named and not counted; the receipt as a whole is refused', async () => {
    const r = await receipt();
    const edited = { ...r, checkpoint: editLine(r.checkpoint, 'witness.test/w1') };
    expect(edited.checkpoint).not.toBe(r.checkpoint);
    expect(checkCosignedCheckpoint(edited.checkpoint, [logVerifier], witnessKeys)).toMatchObject({
      ok: true,
      cosigners: ['witness.test/w2'],
      forged: ['witness.test/w1'],
    });
    expect(verifyReceipt(edited, { witnessKeys, quorum: 1 })).toEqual({
      ok: false,
      problem: 'the checkpoint does not verify: the signature of witness.test/w1 does not verify',
    });
  });

  it("an edited log signature fails the checkpoint; without the log's signature it is only as good as its witnesses", async () => {
    const r = await receipt();
    expect(checkCosignedCheckpoint(editLine(r.checkpoint, log.name), [logVerifier], witnessKeys)).toEqual({
      ok: false,
      problem: `the checkpoint does not verify: the signature of ${log.name} does not verify`,
    });
    const unsigned = await receipt(witnesses.map((w) => cosigner(w, now)));
    expect(checkCosignedCheckpoint(unsigned.checkpoint, [logVerifier], witnessKeys)).toMatchObject({
      ok: true,
      logSigned: false,
      cosigners: ['witness.test/w1', 'witness.test/w2'],
    });
    expect(verifyReceipt(unsigned, { witnessKeys, quorum: 2 })).toMatchObject({ ok: true });
    const bare = await receipt([]);
    expect(verifyReceipt(bare, { witnessKeys, quorum: 1 })).toMatchObject({ ok: false });
  });
});
