/**
 * The post-session summary as it lands on a ticket: plain lines that read the same in Redmine
 * (Textile or Markdown), Jira (wiki markup or ADF) and anything else. The adapters put the lines in
 * a preformatted block of their medium; every value is also reduced here to characters no markup
 * interprets, so an e-mail claim or a ticket id cannot add links, images or HTML to the ticket.
 * No reason and no proxied paths go on the ticket: only who, when, scope and counts.
 */
import type { SessionSummary } from './api.js';
import { formatDuration } from './duration.js';

/** Where the proof and the console live, and this delivery's id (idempotency marker). */
export interface NoteContext {
  brokerUrl: string;
  consoleUrl: string;
  /** The audit event that ended the session, whose receipt proves it is in the log; null if none. */
  endEventId: string | null;
  delivery: string;
}

/** A value safe in any ticket markup: letters, digits and a few separators; anything else becomes `?`. */
export function plainValue(text: string, max = 200): string {
  const kept = [...text].slice(0, max).map((ch) => (/^[\p{L}\p{N} @._+:/#=,()-]$/u.test(ch) ? ch : '?'));
  return kept.join('');
}

/** The marker line that identifies one delivery (a retry finds it and does not post twice). */
export function deliveryMarker(delivery: string): string {
  return `imp-delivery: ${plainValue(delivery, 64)}`;
}

/** The summary as lines; the first is the title. */
export function summaryNoteLines(summary: SessionSummary, context: NoteContext): string[] {
  const s = summary.session;
  const person = (p: { email: string | null; sub: string } | null) =>
    p ? plainValue(p.email ?? p.sub) : 'nobody';
  const mode = s.mode === 'break_glass' ? ' (break-glass)' : '';
  const supervised = summary.supervised_by ?? [];
  const proof = context.endEventId
    ? `imp audit receipt ${plainValue(context.endEventId, 64)} (GET ${plainValue(context.brokerUrl)}/v1/audit/receipt/${plainValue(context.endEventId, 64)})`
    : 'imp audit list --session ' + plainValue(s.id, 64);
  return [
    `imp session summary for ${plainValue(s.ticket, 64)}`,
    `Session:    ${plainValue(s.id, 64)} (${plainValue(s.state, 32)})`,
    `Engineer:   ${person(s.requester)}`,
    `Tenant:     ${plainValue(s.tenant, 64)} / ${plainValue(s.environment, 64)}`,
    `Scope:      ${plainValue(s.scope, 16)}${mode}`,
    ...(s.decided_by
      ? [`${s.mode === 'break_glass' ? 'Confirmed' : 'Approved'} by: ${person(s.decided_by)}`]
      : []),
    `Started:    ${plainValue(s.started_at ?? 'never', 40)}`,
    `Ended:      ${plainValue(s.ended_at ?? 'still active', 40)} (${formatDuration(summary.duration_seconds)})`,
    `Actions:    ${summary.actions.read} read, ${summary.actions.write} write, ${summary.actions.export} export`,
    `Writes:     ${summary.writes}; exports: ${summary.actions.export}`,
    `Denied:     ${summary.denials}`,
    `Recorded:   ${summary.recorded ? 'yes' : 'no'}; supervised: ${supervised.length ? supervised.map((p) => plainValue(p)).join(', ') : 'no'}`,
    `Audit proof: ${proof}`,
    `Console:    ${plainValue(context.consoleUrl)}`,
    deliveryMarker(context.delivery),
  ];
}
