import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  ed25519Signer,
  ed25519Verifier,
  formatPrivateNoteKey,
  formatVerifierKey,
  keyIdOf,
  openNote,
  parseNote,
  parsePrivateNoteKey,
  parseVerifierKey,
  rawEd25519PublicKey,
  signNote,
} from '../../../src/core/audit/signed-note.js';
import { formatCheckpoint, parseCheckpoint } from '../../../src/core/audit/tlog-checkpoint.js';
import {
  cosignatureTime,
  cosignatureVerifier,
  cosigner,
  cosignerVerifierKey,
} from '../../../src/core/audit/tlog-cosignature.js';

// c2sp.org/signed-note "Verifier keys / Example".
const SPEC_VKEY = 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k';
const SPEC_NOTE =
  'This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n';
// golang.org/x/mod/sumdb/note documentation: a private key, its vkey, and the exact signed note.
const GO_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const GO_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const GO_TEXT =
  "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_NOTE = `${GO_TEXT}\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`;

function newKey(name: string) {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { name, privateKey, publicKey: rawEd25519PublicKey(privateKey) };
}

describe('C2SP signed-note against the published examples', () => {
  test('the spec example note verifies with the spec vkey', () => {
    const { note, verified } = openNote(SPEC_NOTE, [ed25519Verifier(SPEC_VKEY)]);
    expect(note.text).toBe('This is an example message.\n');
    expect(verified.map((v) => v.name)).toEqual(['example.com/foo']);
  });

  test('signing the Go example text with the Go key reproduces the Go note byte for byte', async () => {
    const key = parsePrivateNoteKey(GO_SKEY);
    expect(formatVerifierKey(key.name, 1, key.publicKey)).toBe(GO_VKEY);
    expect(formatPrivateNoteKey(key)).toBe(GO_SKEY);
    expect(keyIdOf(key.name, 1, key.publicKey).toString(16)).toBe('c74f20a3');
    expect(await signNote(GO_TEXT, [ed25519Signer(key)])).toBe(GO_NOTE);
    expect(openNote(GO_NOTE, [ed25519Verifier(GO_VKEY)]).note.text).toBe(GO_TEXT);
  });

  test('a vkey whose id does not match its key, or that is mangled, is refused', () => {
    expect(() =>
      parseVerifierKey('PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'),
    ).toThrow(/key id/);
    expect(() =>
      parseVerifierKey('PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'),
    ).not.toThrow();
    expect(() =>
      ed25519Verifier('PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'),
    ).toThrow(/not an Ed25519/);
    for (let i = 1; i < GO_VKEY.length; i++) expect(() => ed25519Verifier(GO_VKEY.slice(0, i))).toThrow();
  });

  test('unknown keys are ignored; no known signature, or a bad one, refuses the note', () => {
    const other = ed25519Verifier(formatVerifierKey('other', 1, newKey('other').publicKey));
    expect(() => openNote(GO_NOTE, [other])).toThrow(/no signature from a known key/);
    const forged = GO_NOTE.replace('x08go', 'x08gp');
    expect(() => openNote(forged, [ed25519Verifier(GO_VKEY)])).toThrow();
    const edited = GO_NOTE.replace('cryptography', 'cryptographY');
    expect(() => openNote(edited, [ed25519Verifier(GO_VKEY)])).toThrow(/does not verify/);
  });

  test('malformed notes: control characters, no blank line, no final newline, bad signature line', () => {
    for (const bad of [
      GO_NOTE.replace('\n\n', '\n'),
      GO_NOTE.slice(0, -1),
      GO_NOTE.replace('If', 'I\tf'),
      `${GO_TEXT}\n— Peter Neumann AAAA\n`,
    ])
      expect(() => parseNote(bad)).toThrow(/malformed/);
  });

  test('property: any single flipped bit of a signed note fails verification or parsing', async () => {
    const key = parsePrivateNoteKey(GO_SKEY);
    const verifier = ed25519Verifier(GO_VKEY);
    const note = Buffer.from(
      await signNote('origin\n42\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n', [ed25519Signer(key)]),
    );
    fc.assert(
      fc.property(fc.nat(note.length * 8 - 1), (bit) => {
        const copy = Buffer.from(note);
        copy[bit >> 3]! ^= 1 << (bit & 7);
        expect(() => openNote(copy.toString('utf8'), [verifier])).toThrow();
      }),
    );
  });
});

describe('C2SP tlog-checkpoint and tlog-cosignature', () => {
  test('the spec checkpoint body parses and formats back identically', () => {
    const text = 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';
    const body = parseCheckpoint(text);
    expect(body).toMatchObject({ origin: 'example.com/behind-the-sofa', size: 20852163, extensions: [] });
    expect(formatCheckpoint(body)).toBe(text);
    for (const bad of [
      text.replace('20852163', '020852163'),
      text.replace('CsUY', 'CsU'),
      'a\n1\n',
      text.replace('\n20', '\n\n20'),
    ])
      expect(() => parseCheckpoint(bad)).toThrow(/malformed/);
  });

  test('the spec cosignature line: key id, timestamp 0x64185... and type 0x04 key ids differ from 0x01', () => {
    const line =
      '— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==';
    const note = parseNote(`x\n\n${line}\n`);
    expect(cosignatureTime(note.signatures[0]!.signature)).toBe(1679315147);
    const key = newKey('w');
    expect(keyIdOf('w', 4, key.publicKey)).not.toBe(keyIdOf('w', 1, key.publicKey));
  });

  test('a witness cosignature verifies with its vkey, carries its time, and binds the checkpoint', async () => {
    const log = newKey('example.com/log');
    const witness = newKey('witness.example/w1');
    const text = formatCheckpoint({ origin: 'example.com/log', size: 3, root: Buffer.alloc(32, 7) });
    const signed = await signNote(text, [ed25519Signer(log), cosigner(witness, () => 1_700_000_000_123)]);
    const vkey = cosignerVerifierKey(witness);
    const { verified } = openNote(signed, [cosignatureVerifier(vkey)]);
    expect(verified.map((v) => v.name)).toEqual(['witness.example/w1']);
    expect(cosignatureTime(parseNote(signed).signatures[1]!.signature)).toBe(1_700_000_000);
    // A cosignature is not a plain note signature: the type byte and the signed message differ.
    expect(() =>
      openNote(signed, [ed25519Verifier(formatVerifierKey(witness.name, 1, witness.publicKey))]),
    ).toThrow();
    expect(() => openNote(signed.replace('\n3\n', '\n4\n'), [cosignatureVerifier(vkey)])).toThrow(
      /does not verify/,
    );
  });
});
