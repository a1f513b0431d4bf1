/** Showing audit events to people: one table row per event, and a one-line summary of its data. */
import type { AuditEvent } from '../core/audit/event.js';
import { escapeUntrusted } from '../core/escape.js';

/** A short human summary of what an event's data says. */
export function summarizeEvent(event: AuditEvent): string {
  const d = event.data as Record<string, unknown>;
  const parts: string[] = [];
  if (typeof d.method === 'string') parts.push(`${d.method} ${String(d.path ?? '')}`);
  if (d.status !== undefined) parts.push(`→ ${String(d.status)}`);
  if (typeof d.rule === 'string') parts.push(`rule ${d.rule}`);
  if (typeof d.reason === 'string') parts.push(`(${d.reason})`);
  if (typeof d.why === 'string') parts.push(`(${d.why})`);
  if (typeof d.scope === 'string' && !d.method) parts.push(String(d.scope));
  if (typeof d.sha256 === 'string') parts.push(`sha256 ${d.sha256.slice(0, 12)}…`);
  return escapeUntrusted(parts.join(' '));
}

/** A readable table, newest last. */
export function auditTable(events: AuditEvent[]): string[] {
  const rows = events.map((e) => [
    String(e.seq),
    e.ts.replace('T', ' ').replace('Z', ''),
    escapeUntrusted(e.actor?.email ?? e.actor?.sub ?? '-'),
    e.type,
    escapeUntrusted(e.tenant ?? '-'),
    escapeUntrusted(e.ticket ?? '-'),
    summarizeEvent(e),
  ]);
  const header = ['SEQ', 'TIME (UTC)', 'ACTOR', 'TYPE', 'TENANT', 'TICKET', 'SUMMARY'];
  const widths = header.map((h, i) => Math.min(40, Math.max(h.length, ...rows.map((r) => r[i]!.length))));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.slice(0, widths[i]).padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}
