/**
 * The audit export file (JSON Lines): a header line, then every event (all fields, `prev` and
 * `hash` included) in seq order, then the checkpoints. Enough to verify offline with only the JWKS.
 *   {"export":{"version":1,"broker":…,"exported_at":…,"from_seq":1,"to_seq":42,"prev":"000…"}}
 *   {"seq":1,"id":…,"type":…,…,"prev":…,"hash":…}
 *   {"checkpoint":{"seq":40,"hash":…,"ts":…,"jws":…}}       (version 1: JWS checkpoints of the chain)
 *   {"note":"origin\n42\nroot\n\n— origin sig\n— witness cosig\n"} (version 2: C2SP checkpoints)
 * Version 2 adds to the header the log's origin and note key, and the tree the events belong to
 * (tree_size, plus the subtree hashes left and right of a partial range), so a window ties to a
 * cosigned checkpoint. Version 1 files keep verifying as before.
 *
 * `canonical: true` in a version-2 header (exports since this was added) promises that every event
 * line is the event's RFC 8785 canonical JSON: exactly the bytes of its leaf in the tree. A
 * verifier then hashes each line as stored and refuses a line that is not canonical, instead of
 * parsing and re-serialising every event. Without it (older exports) event lines are in the
 * store's field order and are hashed as their canonical re-serialisation, as before.
 */

import { isCanonicalLine } from './canonical-line.js';
import type { Checkpoint } from './checkpoint.js';
import type { AuditEvent } from './event.js';
import { eventLeafJson } from './log-tree.js';
import { leafHash } from './merkle.js';

/** The first line of an export. */
export interface ExportHeader {
  version: 1 | 2;
  broker: string;
  exported_at: string;
  /** The first event's seq and the hash it links to, so a window of the log verifies on its own. */
  from_seq: number;
  prev: string;
  to_seq: number;
  /** Version 2: the checkpoint origin and the log's note key (vkey). */
  origin?: string;
  log_key?: string;
  /** Version 2: the size of the tree the range is tied to, and base64 subtree hashes around the range. */
  tree_size?: number;
  left?: string[];
  right?: string[];
  /** Every event line is the event's canonical JSON, the exact leaf bytes (see the top of this file). */
  canonical?: boolean;
}

/** A parsed export. */
export interface ParsedExport {
  header: ExportHeader | null;
  events: unknown[];
  checkpoints: Checkpoint[];
  /** Version 2 checkpoint notes (with cosignatures). */
  notes: string[];
  /** Lines that are not JSON, with their line numbers. */
  badLines: number[];
  /**
   * When the first line is a header with `canonical: true` (parseExportBytes only): per event, in
   * order, the leaf hash of its line as stored and whether the line is its canonical JSON.
   */
  lines?: { leaf: Uint8Array; canonical: boolean }[];
}

/** An event's line in a canonical export: its RFC 8785 JSON, the leaf bytes, and a newline. */
export function canonicalEventLine(event: AuditEvent): string {
  return `${eventLeafJson(event)}\n`;
}

/** One line of the export for a header, event or checkpoint. */
export function exportLine(
  item: { export: ExportHeader } | { checkpoint: Checkpoint } | { note: string } | AuditEvent,
): string {
  return `${JSON.stringify(item)}\n`;
}

/** What one parsed line of an export is: the rule parseExport and the parallel scan share. */
export type ExportItem =
  | { kind: 'header'; header: ExportHeader }
  | { kind: 'note'; note: string }
  | { kind: 'checkpoint'; checkpoint: Checkpoint }
  | { kind: 'event'; value: unknown };

/** Sorts a parsed line into header, note, checkpoint or (anything else) event. */
export function classifyExportValue(value: unknown): ExportItem {
  if (typeof value === 'object' && value !== null && 'export' in value)
    return { kind: 'header', header: (value as { export: ExportHeader }).export };
  if (typeof value === 'object' && value !== null && 'note' in value && Object.keys(value).length === 1)
    return { kind: 'note', note: String((value as { note: unknown }).note) };
  if (typeof value === 'object' && value !== null && 'checkpoint' in value)
    return { kind: 'checkpoint', checkpoint: (value as { checkpoint: Checkpoint }).checkpoint };
  return { kind: 'event', value };
}

/** Adds one classified line to a parsed export. */
export function addExportItem(result: ParsedExport, item: ExportItem): void {
  if (item.kind === 'header') result.header = item.header;
  else if (item.kind === 'note') result.notes.push(item.note);
  else if (item.kind === 'checkpoint') result.checkpoints.push(item.checkpoint);
  else result.events.push(item.value);
}

/** An empty parsed export. */
export function emptyExport(): ParsedExport {
  return { header: null, events: [], checkpoints: [], notes: [], badLines: [] };
}

/** Splits an export's text back into its parts (shape checks are the verifier's job). */
export function parseExport(text: string): ParsedExport {
  const result = emptyExport();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) parseLine(result, lines[i]!, i + 1);
  return result;
}

/**
 * parseExport of the UTF-8 bytes of an export, line by line: a log of a million events is larger
 * than the longest string JavaScript can hold (2^29 characters), so big files are never one string.
 * A newline byte never occurs inside a multi-byte UTF-8 character, so the lines are the same.
 */
export function parseExportBytes(bytes: Uint8Array): ParsedExport {
  const result = emptyExport();
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let start = 0;
  for (let number = 1; start <= buffer.length; number++) {
    const newline = buffer.indexOf(10, start);
    const end = newline < 0 ? buffer.length : newline;
    const events = result.events.length;
    parseLine(result, buffer.toString('utf8', start, end), number);
    if (number === 1 && result.header?.canonical === true) result.lines = [];
    if (result.lines && result.events.length > events) {
      const line = buffer.subarray(start, end);
      result.lines.push({ leaf: leafHash(line), canonical: isCanonicalLine(line, result.events.at(-1)) });
    }
    start = end + 1;
  }
  return result;
}

/** True when the first line of these bytes is an export header with `canonical: true`. */
export function isCanonicalExport(firstLine: Uint8Array): boolean {
  try {
    const value: unknown = JSON.parse(Buffer.from(firstLine).toString('utf8'));
    const item = classifyExportValue(value);
    return item.kind === 'header' && item.header.canonical === true;
  } catch {
    return false;
  }
}

function parseLine(result: ParsedExport, line: string, number: number): void {
  if (line.trim() === '') return;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    result.badLines.push(number);
    return;
  }
  addExportItem(result, classifyExportValue(value));
}
