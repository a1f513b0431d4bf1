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
 */
import type { Checkpoint } from './checkpoint.js';
import type { AuditEvent } from './event.js';

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
}

/** One line of the export for a header, event or checkpoint. */
export function exportLine(
  item: { export: ExportHeader } | { checkpoint: Checkpoint } | { note: string } | AuditEvent,
): string {
  return `${JSON.stringify(item)}\n`;
}

/** Splits an export's text back into its parts (shape checks are the verifier's job). */
export function parseExport(text: string): ParsedExport {
  const result: ParsedExport = { header: null, events: [], checkpoints: [], notes: [], badLines: [] };
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      result.badLines.push(index + 1);
      return;
    }
    if (typeof value === 'object' && value !== null && 'export' in value)
      result.header = (value as { export: ExportHeader }).export;
    else if (
      typeof value === 'object' &&
      value !== null &&
      'note' in value &&
      Object.keys(value).length === 1
    )
      result.notes.push(String((value as { note: unknown }).note));
    else if (typeof value === 'object' && value !== null && 'checkpoint' in value)
      result.checkpoints.push((value as { checkpoint: Checkpoint }).checkpoint);
    else result.events.push(value);
  });
  return result;
}
