/** The post-session summary, computed from a session's audit events (GET …/summary and the ticket note). */
import type { SessionSummary } from '../core/api.js';
import type { AuditEvent } from '../core/audit/event.js';
import type { SessionRecord } from '../store/types.js';
import { sessionView } from './sessions.js';

/** Builds the summary of `session` from its events; `nowMs` stands in for the end of an active one. */
export function buildSummary(
  session: SessionRecord,
  events: readonly AuditEvent[],
  nowMs: number,
): SessionSummary {
  const actions = { read: 0, write: 0, export: 0 };
  const calls: SessionSummary['calls'] = [];
  let denials = 0;
  for (const event of events) {
    const data = event.data as {
      method?: string;
      path?: string;
      status?: number;
      kind?: keyof typeof actions;
    };
    if (event.type === 'action.completed' || event.type === 'action.failed') {
      if (data.kind && data.kind in actions) actions[data.kind]++;
      calls.push({
        ts: event.ts,
        method: String(data.method),
        path: String(data.path),
        status: data.status ?? null,
        kind: String(data.kind),
        outcome: event.type === 'action.failed' ? 'failed' : 'completed',
      });
    } else if (event.type === 'action.denied') {
      denials++;
      calls.push({
        ts: event.ts,
        method: String(data.method),
        path: String(data.path),
        status: data.status ?? null,
        kind: String(data.kind ?? 'denied'),
        outcome: 'denied',
      });
    }
  }
  const end =
    session.endedAt ?? (session.state === 'active' ? nowMs : (session.startedAt ?? session.createdAt));
  return {
    session: sessionView(session),
    duration_seconds: session.startedAt ? Math.max(0, Math.round((end - session.startedAt) / 1000)) : 0,
    actions,
    writes: actions.write,
    denials,
    recorded: events.some((e) => e.type === 'recording.chunk'),
    // Everyone who joined a watch of it (imp watch), from the log.
    supervised_by: [
      ...new Set(
        events.filter((e) => e.type === 'supervision.joined').map((e) => String(e.data.supervisor ?? '')),
      ),
    ],
    calls,
  };
}
