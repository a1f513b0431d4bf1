/**
 * The strict reader of canonical event lines (the fast path of verifying a `canonical: true`
 * export). What it must never do: vouch for a line that is not exactly canonicalJson of what it
 * parses to, or report fields other than the ones every parser reads. Checked against the exact
 * check (parse, re-serialise, compare bytes) on random events and on random edits of their lines,
 * and on a table of spellings that parse to the same event but are not canonical. And the slice
 * scanner in canonical mode gives the digests the parsing path gives, and stops at any such line.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../src/core/audit/canonical-json.js';
import {
  canonicalEventFields,
  isCanonicalLine,
  readCanonicalEvent,
} from '../../../src/core/audit/canonical-line.js';
import {
  type AuditEvent,
  auditEventProblem,
  GENESIS_PREV,
  sealEvent,
} from '../../../src/core/audit/event.js';
import { canonicalEventLine, exportLine } from '../../../src/core/audit/export-format.js';
import { BLOCK_LEVEL, SliceScanner, scanExportSlice } from '../../../src/core/audit/export-scan.js';
import { eventLeafHash } from '../../../src/core/audit/log-tree.js';
import { anyText, auditDrafts } from '../../helpers/audit-arbitraries.js';

const text = anyText;
const plainKey = fc
  .string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 6 })
  .filter((k) => !k.includes('"') && !k.includes('\\'));
const json: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 3 });
const plainJson: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.oneof(
      text,
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
    ),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(plainKey, tie('value'), { maxKeys: 3 }),
  ),
})).value;

function sealed(draft: Parameters<typeof sealEvent>[0], seq: number, prev = GENESIS_PREV): AuditEvent {
  return sealEvent(draft, { seq, id: `id-${seq}`, ts: '2026-11-01T00:00:00.000Z', prev });
}

/** The reader on a line (no newline); the fields it found, or null. */
function read(line: Buffer) {
  const out = canonicalEventFields();
  return readCanonicalEvent(line, 0, line.length, out) ? out : null;
}

/** The reader vouched for `line`: it must be canonical, an event, and its fields what JSON.parse reads. */
function expectSound(line: Buffer, fields: NonNullable<ReturnType<typeof read>>) {
  const value = JSON.parse(line.toString('utf8')) as AuditEvent;
  expect(isCanonicalLine(line, value)).toBe(true);
  expect(auditEventProblem(value)).toBeNull();
  expect(fields.seq).toBe(value.seq);
  expect(line.toString('latin1', fields.hashAt, fields.hashAt + 64)).toBe(value.hash);
  expect(line.toString('latin1', fields.prevAt, fields.prevAt + 64)).toBe(value.prev);
  expect(line.toString('utf8', fields.typeAt, fields.typeEnd)).toBe(JSON.stringify(value.type));
  // Cutting the hash member out leaves the canonical JSON of the event without it.
  const cut = Buffer.concat([line.subarray(0, fields.hashCut), line.subarray(fields.hashAt + 65)]);
  expect(cut.toString('utf8')).toBe(canonicalJson({ ...value, hash: undefined }));
}

describe('readCanonicalEvent', () => {
  it('reads the canonical line of any event whose data keys are plain ASCII', () => {
    fc.assert(
      fc.property(
        auditDrafts(fc.dictionary(plainKey, plainJson, { maxKeys: 5 })),
        fc.integer({ min: 1, max: 2 ** 53 - 1 }),
        (draft, seq) => {
          const line = Buffer.from(canonicalJson(sealed(draft, seq)));
          const fields = read(line);
          expect(fields).not.toBeNull();
          expectSound(line, fields!);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('vouches for nothing but canonical events, whatever the data', () => {
    fc.assert(
      fc.property(
        auditDrafts(fc.dictionary(fc.string({ unit: 'binary', maxLength: 6 }), json, { maxKeys: 5 })),
        (draft) => {
          const line = Buffer.from(canonicalJson(sealed(draft, 7)));
          const fields = read(line);
          if (fields) expectSound(line, fields);
        },
      ),
      { numRuns: 300 },
    );
  });

  // Bytes that turn canonical text into something else: whitespace, escapes, number spellings, UTF-8.
  const bytes = fc.constantFrom(
    ...[
      0x20, 0x09, 0x0d, 0x0a, 0x5c, 0x22, 0x75, 0x30, 0x31, 0x65, 0x45, 0x2e, 0x2d, 0x2b, 0x2c, 0x3a, 0x7b,
      0x7d, 0x5b, 0x5d, 0x61, 0x46, 0x7f, 0x80, 0xc0, 0xc3, 0xa9, 0xed, 0xa0, 0xf4, 0x90, 0xff, 0x00,
    ],
  );
  const edit = fc.oneof(
    fc.record({ op: fc.constant('insert' as const), at: fc.nat(), byte: bytes }),
    fc.record({ op: fc.constant('replace' as const), at: fc.nat(), byte: bytes }),
    fc.record({ op: fc.constant('delete' as const), at: fc.nat(), byte: bytes }),
  );

  it('any edit of a canonical line is either still canonical or not vouched for', () => {
    const data = fc.dictionary(plainKey, plainJson, { maxKeys: 4 });
    fc.assert(
      fc.property(auditDrafts(data), fc.array(edit, { minLength: 1, maxLength: 3 }), (draft, edits) => {
        let line = Buffer.from(canonicalJson(sealed(draft, 12)));
        for (const e of edits) {
          const at = e.at % (line.length + 1);
          const byte = Buffer.from([e.byte]);
          if (e.op === 'insert') line = Buffer.concat([line.subarray(0, at), byte, line.subarray(at)]);
          else if (e.op === 'replace')
            line = Buffer.concat([line.subarray(0, at), byte, line.subarray(at + 1)]);
          else line = Buffer.concat([line.subarray(0, at), line.subarray(at + 1)]);
        }
        const fields = read(line);
        if (fields) expectSound(line, fields);
      }),
      { numRuns: 3000 },
    );
  });

  const event = sealed(
    {
      type: 'action.requested',
      actor: { iss: 'https://idp.example', sub: 'alice', email: 'a@example.com', roles: ['support'] },
      tenant: 'acme',
      reason: 'Invoice é ✓ 😀 "quoted"\n',
      data: { a: 1, b: [true, null, -2.5e-7], c: { d: 'x' }, n: 100 },
    },
    42,
  );
  const canonical = canonicalJson(event);

  it('reads a canonical line with escapes, non-ASCII text, nested data and every number form', () => {
    const line = Buffer.from(canonical);
    expect(canonical).toContain('\\"quoted\\"\\n');
    expect(read(line)).not.toBeNull();
    expectSound(line, read(line)!);
  });

  // Each parses to the same event (or one every parser reads the same way), yet is not its canonical text.
  it.each([
    ['a space after a colon', canonical.replace('"a":1', '"a": 1')],
    ['a duplicate key whose last value is the original', canonical.replace('"a":1', '"a":9,"a":1')],
    ['a duplicate top-level member', canonical.replace('"tenant":"acme"', '"tenant":"evil","tenant":"acme"')],
    ['keys out of order', canonical.replace('"a":1,', '').replace('"n":100', '"n":100,"a":1')],
    ['an escaped letter', canonical.replace('"support"', '"\\u0073upport"')],
    ['an escaped slash', canonical.replace('https://idp', 'https:\\/\\/idp')],
    ['an uppercase \\u escape', canonical.replace('\\n', '\\u000A')],
    ['a \\u escape where a short one exists', canonical.replace('\\n', '\\u000a')],
    ['an escaped non-ASCII character', canonical.replace('é', '\\u00e9')],
    ['1.0 for 1', canonical.replace('"a":1', '"a":1.0')],
    ['1e2 for 100', canonical.replace('"n":100', '"n":1e2')],
    ['an uppercase exponent', canonical.replace('-2.5e-7', '-2.5E-7')],
    ['-0', canonical.replace('"a":1', '"a":-0')],
    ['a leading zero in seq', canonical.replace('"seq":42', '"seq":042')],
    ['a carriage return at the end', `${canonical}\r`],
    ['trailing bytes', `${canonical} `],
  ])('declines %s (and the exact check agrees it is not canonical)', (_, variant) => {
    expect(variant).not.toBe(canonical);
    const line = Buffer.from(variant);
    expect(read(line)).toBeNull();
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(variant);
    } catch {}
    expect(isCanonicalLine(line, parsed)).toBe(false);
  });

  it.each([
    ['a hash in uppercase hex', canonical.replace(event.hash, event.hash.toUpperCase())],
    ['an unknown member', canonical.replace('"data":', '"cause":1,"data":')],
    ['seq 0', canonical.replace('"seq":42', '"seq":0')],
    ['seq beyond 2^53 − 1', canonical.replace('"seq":42', '"seq":9007199254740993')],
    ['an empty type', canonical.replace('"type":"action.requested"', '"type":""')],
    ['a ts without milliseconds', canonical.replace('00:00:00.000Z', '00:00:00Z')],
  ])('declines canonical JSON that is not an event: %s', (_, variant) => {
    expect(variant).not.toBe(canonical);
    expect(read(Buffer.from(variant))).toBeNull();
    expect(auditEventProblem(JSON.parse(variant))).not.toBeNull();
  });

  it.each([
    ['an overlong encoding', Buffer.from([0xc0, 0xa9])],
    ['an encoded surrogate', Buffer.from([0xed, 0xa0, 0x80])],
    ['a stray continuation byte', Buffer.from([0x80])],
    ['a truncated sequence', Buffer.from([0xe2, 0x9c])],
  ])('declines a reason with %s (not UTF-8; the exact check agrees)', (_, bad) => {
    const at = Buffer.from(canonical).indexOf('Invoice');
    const line = Buffer.concat([
      Buffer.from(canonical).subarray(0, at),
      bad,
      Buffer.from(canonical).subarray(at),
    ]);
    expect(read(line)).toBeNull();
    expect(isCanonicalLine(line, JSON.parse(line.toString('utf8')))).toBe(false);
  });
});

describe('scanExportSlice of a canonical export', () => {
  const events: AuditEvent[] = [];
  for (let seq = 1, prev = GENESIS_PREV; seq <= 2 ** BLOCK_LEVEL + 40; seq++) {
    const type = seq === 7 ? 'recording.chunk' : 'action.requested';
    events.push(sealed({ type, reason: 'café', data: { n: seq, z: { y: [1, 'x'] } } }, seq, prev));
    prev = events.at(-1)!.hash;
  }
  const lines = events.map((e) => canonicalEventLine(e));
  const bytesOf = (l: string[]) => Buffer.from(l.join(''));
  // As the file reader hands them over: its own buffer, one free byte before the first line.
  const scratch = (l: string[]) => Buffer.concat([Buffer.from([0]), bytesOf(l)]);
  const scanInPlace = (buffer: Buffer) => {
    const scanner = new SliceScanner(buffer.length, true);
    scanner.lines(buffer, 1, buffer.length, true);
    return scanner.finish();
  };

  it('gives the digests and blocks the parsing path gives, hashing the lines in place or copied', () => {
    const legacy = bytesOf(events.map((e) => exportLine(e)));
    const reference = scanExportSlice(legacy, 0, legacy.length, false);
    const copied = scanExportSlice(bytesOf(lines), 0, bytesOf(lines).length, true);
    const inPlace = scanInPlace(scratch(lines));
    for (const scan of [copied, inPlace]) {
      expect(scan.anomaly).toBeNull();
      expect(scan.events).toBe(events.length);
      expect(Buffer.from(scan.hashes).equals(Buffer.from(reference.hashes))).toBe(true);
      expect(Buffer.from(scan.leaves).equals(Buffer.from(reference.leaves))).toBe(true);
      expect(Buffer.from(scan.leaves.subarray(0, 32)).equals(Buffer.from(eventLeafHash(events[0]!)))).toBe(
        true,
      );
      expect(scan.blocks).toEqual(reference.blocks);
      expect(scan.first).toEqual(reference.first);
      expect(scan.last).toEqual(reference.last);
      expect(scan.kept).toEqual([events[6]]);
    }
  });

  it.each([
    ['an edited event', (l: string[]) => l.with(3, l[3]!.replace('"n":4', '"n":5'))],
    [
      'a space inside an otherwise unchanged event',
      (l: string[]) => l.with(3, l[3]!.replace('"n":4', '"n": 4')),
    ],
    [
      'a duplicate key that parses to the original',
      (l: string[]) => l.with(3, l[3]!.replace('"n":4', '"n":5,"n":4')),
    ],
    ['an event in the store field order', (l: string[]) => l.with(3, exportLine(events[3]!))],
    ['a deleted event', (l: string[]) => l.toSpliced(3, 1)],
    ['a swapped pair', (l: string[]) => l.with(3, l[4]!).with(4, l[3]!)],
  ])('stops at %s and vouches for nothing after it', (_, tamper) => {
    const copied = bytesOf(tamper(lines));
    for (const scan of [
      scanExportSlice(copied, 0, copied.length, true),
      scanInPlace(scratch(tamper(lines))),
    ]) {
      expect(scan.anomaly).not.toBeNull();
      expect(scan.events).toBeLessThanOrEqual(4);
    }
  });
});
