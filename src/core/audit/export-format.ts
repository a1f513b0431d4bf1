/**
 * The audit export file (JSON Lines): a header line, then every event (all fields, `prev` and
 * `hash` included) in seq order, then the checkpoints. Enough to verify offline with only the JWKS.
 *   {"export":{"version":1,"broker":…,"exported_at":…,"from_seq":1,"to_seq":42,"prev":"000…"}}
 *   {"seq":1,"id":…,"type":…,…,"prev":…,"hash":…}
 *   {"checkpoint":{"seq":40,"hash":…,"ts":…,"jws":…}}
 */
import type { Checkpoint } from './checkpoint.js';
import type { AuditEvent } from './event.js';

/** The first line of an export. */
export interface ExportHeader {
  version: 1;
  broker: string;
  exported_at: string;
  /** The first event's seq and the hash it links to, so a window of the log verifies on its own. */
  from_seq: number;
  prev: string;
  to_seq: number;
}

/** A parsed export. */
export interface ParsedExport {
  header: ExportHeader | null;
  events: unknown[];
  checkpoints: Checkpoint[];
  /** Lines that are not JSON, with their line numbers. */
  badLines: number[];
}

/** One line of the export for a header, event or checkpoint. */
export function exportLine(item: { export: ExportHeader } | { checkpoint: Checkpoint } | AuditEvent): string {
  return `${JSON.stringify(item)}\n`;
}

/** Splits an export's text back into its parts (shape checks are the verifier's job). */
export function parseExport(text: string): ParsedExport {
  const result: ParsedExport = { header: null, events: [], checkpoints: [], badLines: [] };
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
    else if (typeof value === 'object' && value !== null && 'checkpoint' in value)
      result.checkpoints.push((value as { checkpoint: Checkpoint }).checkpoint);
    else result.events.push(value);
  });
  return result;
}
