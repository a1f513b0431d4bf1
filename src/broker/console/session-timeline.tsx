/**
 * A session's full timeline on its detail page, from its audit events (read through the audited
 * GET /v1/audit/events?session=, so only for audit roles): requested, approved/denied and by whom,
 * step-ups, each proxied call with status and bytes, supervision joins and leaves, revoked/ended.
 * Everything is text in JSX, so escaped on render.
 */
import type { AuditEvent } from '../../core/audit/event.js';
import { escapeUntrusted } from '../../core/escape.js';

/** What a session's timeline shows; reads of the log itself and recording chunks are left out (noise). */
const SHOWN = /^(session|request|breakglass|stepup|action|supervision|recording\.replayed|access\.denied)/;
const SKIPPED = new Set(['session.summary_read', 'sessions.listed', 'sessions.read']);

/** The events worth a line, oldest first. */
export function timelineEvents(events: AuditEvent[]): AuditEvent[] {
  return events
    .filter((e) => SHOWN.test(e.type) && !SKIPPED.has(e.type))
    .sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
}

/** Audit data is what requesters, approvers and upstreams wrote: controls and bidi marks made visible. */
const text = (value: unknown) =>
  typeof value === 'string' || typeof value === 'number' ? escapeUntrusted(String(value)) : null;

/** One line of detail from an event's data: the call, its status and bytes, a rule, a comment. */
export function timelineDetail(e: AuditEvent): string {
  const d = e.data;
  const parts: string[] = [];
  const method = text(d.method);
  const path = text(d.path);
  if (method || path) parts.push(`${method ?? ''} ${path ?? ''}`.trim());
  if (text(d.status)) parts.push(`status ${text(d.status)}`);
  if (text(d.bytes)) parts.push(`${text(d.bytes)} bytes`);
  if (text(d.rule)) parts.push(`rule ${text(d.rule)}`);
  if (text(d.method_used)) parts.push(`via ${text(d.method_used)}`);
  for (const key of ['comment', 'reason', 'revoke_reason', 'outcome', 'purpose', 'supervisor']) {
    const value = text(d[key]);
    if (value) parts.push(`${key}: ${value}`);
  }
  if (e.type === 'session.requested' && e.reason) parts.push(`reason: ${e.reason}`);
  return parts.join(' · ');
}

export function SessionTimeline(props: { events: AuditEvent[] }) {
  const events = timelineEvents(props.events);
  if (events.length === 0) return <p>No events recorded for this session.</p>;
  return (
    <div class="table-wrap">
      <table class="timeline">
        <caption>Timeline (from the audit log)</caption>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Event</th>
            <th scope="col">Who</th>
            <th scope="col">Details</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.id}>
              <td>{`${e.ts.replace('T', ' ').slice(0, 19)} UTC`}</td>
              <td class="code">{e.type}</td>
              <td>{e.actor ? (e.actor.email ?? e.actor.sub) : 'broker'}</td>
              <td class="details">{timelineDetail(e)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
