/**
 * The fast pass of verification: both digests from one canonical text equal the chain hash and
 * the RFC 9162 leaf hash computed the reference way, for any event (property-based); a scanned
 * slice vouches only for what the sequential walker would accept and stops at anything else.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AuditEvent, GENESIS_PREV, hashEvent, sealEvent } from '../../../src/core/audit/event.js';
import { EventDigester } from '../../../src/core/audit/event-digests.js';
import { exportLine } from '../../../src/core/audit/export-format.js';
import { BLOCK_LEVEL, scanExportSlice } from '../../../src/core/audit/export-scan.js';
import { eventLeafHash } from '../../../src/core/audit/log-tree.js';
import { rootFromLeafHashes } from '../../../src/core/audit/merkle.js';
import { auditDrafts } from '../../helpers/audit-arbitraries.js';

const json: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 3 });

const drafts = auditDrafts(fc.dictionary(fc.string({ unit: 'binary', maxLength: 6 }), json, { maxKeys: 5 }));

function sealed(draft: Parameters<typeof sealEvent>[0], seq: number, prev: string): AuditEvent {
  return sealEvent(draft, { seq, id: `id-${seq}`, ts: '2026-11-01T00:00:00.000Z', prev });
}

describe('EventDigester', () => {
  it('gives the chain hash and leaf hash of any event, as read back from its export line', () => {
    const digester = new EventDigester();
    fc.assert(
      fc.property(drafts, fc.integer({ min: 1, max: 2 ** 40 }), (draft, seq) => {
        // Read back as the verifier sees it: parsed from the line (data keys may come back reordered).
        const event = JSON.parse(exportLine(sealed(draft, seq, GENESIS_PREV))) as AuditEvent;
        const { chain, leaf } = digester.digest(event);
        expect(chain).toBe(hashEvent(event));
        expect(Buffer.from(leaf).equals(Buffer.from(eventLeafHash(event)))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('data that is not in canonical order takes the careful path and still hashes canonically', () => {
    const event = sealed({ type: 'x', data: { b: 1, a: { d: 2, c: 3 }, '10': 0, '9': 1 } }, 1, GENESIS_PREV);
    const reordered = { ...event, data: { '9': 1, b: 1, '10': 0, a: { c: 3, d: 2 } } };
    const { chain, leaf } = new EventDigester().digest(reordered);
    expect(chain).toBe(event.hash);
    expect(Buffer.from(leaf).equals(Buffer.from(eventLeafHash(event)))).toBe(true);
  });
});

function log(count: number): AuditEvent[] {
  const events: AuditEvent[] = [];
  let prev = GENESIS_PREV;
  for (let seq = 1; seq <= count; seq++) {
    events.push(sealed({ type: 'action.requested', data: { n: seq } }, seq, prev));
    prev = events.at(-1)!.hash;
  }
  return events;
}

const bytesOf = (lines: string[]) => Buffer.from(lines.join(''));

describe('scanExportSlice', () => {
  const events = log(2 ** BLOCK_LEVEL + 40);
  const lines = events.map((e) => exportLine(e));

  it('vouches for a clean slice: digests, ends, and the subtree of every whole block', () => {
    const scan = scanExportSlice(bytesOf(lines), 0, bytesOf(lines).length);
    expect(scan.anomaly).toBeNull();
    expect(scan.events).toBe(events.length);
    expect(scan.first).toEqual({ seq: 1, prev: GENESIS_PREV });
    expect(scan.last).toEqual({ seq: events.length, hash: events.at(-1)!.hash });
    expect(Buffer.from(scan.hashes.subarray(32 * 99, 32 * 100)).toString('hex')).toBe(events[99]!.hash);
    expect(scan.blocks.map((b) => b.index)).toEqual([0]);
    const block = rootFromLeafHashes(events.slice(0, 2 ** BLOCK_LEVEL).map(eventLeafHash));
    expect(Buffer.from(scan.blocks[0]!.hash).equals(Buffer.from(block))).toBe(true);
  });

  it('a slice that starts mid-log hashes only the blocks it holds whole', () => {
    const bytes = bytesOf(lines);
    const start = bytesOf(lines.slice(0, 5)).length;
    const scan = scanExportSlice(bytes, start, bytes.length);
    expect(scan.anomaly).toBeNull();
    expect(scan.first).toEqual({ seq: 6, prev: events[4]!.hash });
    expect(scan.blocks).toEqual([]);
  });

  it.each([
    ['a line that is not JSON', (l: string[]) => l.with(3, '{"seq": 4,\n')],
    ['a malformed event', (l: string[]) => l.with(3, '{"seq":4}\n')],
    ['an edited event', (l: string[]) => l.with(3, l[3]!.replace('"n":4', '"n":5'))],
    ['a deleted event', (l: string[]) => l.toSpliced(3, 1)],
    ['a swapped pair', (l: string[]) => l.with(3, l[4]!).with(4, l[3]!)],
  ])('stops at %s and vouches for nothing after it', (_, tamper) => {
    const bytes = bytesOf(tamper(lines));
    const scan = scanExportSlice(bytes, 0, bytes.length);
    expect(scan.anomaly).not.toBeNull();
    expect(scan.events).toBeLessThanOrEqual(4);
  });

  it('keeps headers, checkpoints and notes in file order, and the recording events', () => {
    const chunk = sealed({ type: 'recording.chunk', data: { chunk: 0, sha256: 'ab' } }, 1, GENESIS_PREV);
    const items = [
      '{"export":{"version":2,"from_seq":1}}\n',
      exportLine(chunk),
      '{"note":"n"}\n',
      '{"checkpoint":{"seq":1}}\n',
    ];
    const scan = scanExportSlice(bytesOf(items), 0, bytesOf(items).length);
    expect(scan.items.map((i) => i.kind)).toEqual(['header', 'note', 'checkpoint']);
    expect(scan.kept).toEqual([chunk]);
  });
});
