/**
 * What a notification says, before it is shaped for a medium: who, what, where, ticket and reason,
 * the command to act and the console link. Values here are raw (untrusted text as given); each
 * renderer (./render.ts) escapes for its own medium.
 */
import type { NotificationKind } from './kinds.js';

/** The facts of one notification, gathered by the broker from the audit event and its session. */
export interface NotificationFacts {
  kind: NotificationKind;
  /** The audit event announced (id), and when it happened (ISO). */
  eventId: string;
  at: string;
  /** Who did what the event records (approver, revoker, reviewer…); null for the broker itself. */
  actor: string | null;
  requester: string | null;
  tenant: string | null;
  tenantName: string | null;
  environment: string | null;
  scope: 'read' | 'write' | null;
  mode: 'standard' | 'break_glass' | null;
  ticket: string | null;
  reason: string | null;
  sessionId: string | null;
  /** The short id people type. */
  shortId: string | null;
  /** Time asked for, in minutes. */
  minutes: number | null;
  /** Until when (ISO): the session's expiry, or the request's deadline. */
  until: string | null;
  /** What the actor said: denial or revocation reason, review outcome and notes, the alarm's cause. */
  detail: string | null;
  /** The command to act (`imp approve 7f3a1c2d`), when there is one. */
  command: string | null;
  /** The console link (core/links.ts). */
  link: string | null;
}

/** A labelled line of the message. */
export interface Field {
  label: string;
  value: string;
}

/** The message as every medium shows it. */
export interface Message {
  /** One line: what happened (built from raw values; renderers escape it). */
  title: string;
  fields: Field[];
  command: string | null;
  link: string | null;
  /** Marks break-glass and alarms, which chat shows louder. */
  urgent: boolean;
}

const where = (f: NotificationFacts) =>
  f.tenant
    ? `${f.tenantName && f.tenantName !== f.tenant ? `${f.tenantName} (${f.tenant})` : f.tenant}/${f.environment ?? '?'}`
    : '?';
const access = (f: NotificationFacts) => (f.scope === 'write' ? 'WRITE' : 'read-only');
const who = (value: string | null) => value ?? 'someone';

function title(f: NotificationFacts): string {
  switch (f.kind) {
    case 'request.pending':
      return `${who(f.requester)} asks for ${access(f)} access to ${where(f)}: approval needed`;
    case 'request.approved':
      return `Your request for ${where(f)} was approved by ${who(f.actor)}`;
    case 'request.denied':
      return `Your request for ${where(f)} was denied by ${who(f.actor)}`;
    case 'request.expired':
      return `Your request for ${where(f)} expired without a decision`;
    case 'breakglass.pending':
      return `BREAK-GLASS: ${who(f.requester)} asks for emergency WRITE access to ${where(f)}: a second person must confirm`;
    case 'breakglass.expired':
      return `Break-glass request for ${where(f)} expired unconfirmed`;
    case 'breakglass.started':
      return `BREAK-GLASS session started: ${who(f.requester)} on ${where(f)}, confirmed by ${who(f.actor)}`;
    case 'breakglass.reviewed':
      return `Break-glass session of ${who(f.requester)} on ${where(f)} reviewed by ${who(f.actor)}`;
    case 'session.revoked':
      return `The session of ${who(f.requester)} on ${where(f)} was revoked by ${who(f.actor)}`;
    case 'audit.alarm':
      return 'Audit alarm: the audit log’s witnesses are not cosigning';
  }
}

const DETAIL_LABEL: Partial<Record<NotificationKind, string>> = {
  'request.approved': 'Comment',
  'request.denied': 'Why denied',
  'session.revoked': 'Why revoked',
  'breakglass.reviewed': 'Review',
  'audit.alarm': 'Alarm',
};

/** The message for a set of facts. */
export function composeMessage(f: NotificationFacts): Message {
  const fields: Field[] = [];
  const add = (label: string, value: string | null | undefined) => {
    if (value) fields.push({ label, value });
  };
  if (f.kind !== 'audit.alarm') {
    add('Who', f.requester);
    add(
      'What',
      `${f.mode === 'break_glass' ? 'break-glass ' : ''}${access(f)} session${f.minutes ? `, ${f.minutes} min` : ''}`,
    );
    add('Where', where(f));
    add(f.mode === 'break_glass' ? 'Incident' : 'Ticket', f.ticket);
    add('Reason', f.reason);
    add('Request', f.shortId);
  }
  add('By', f.actor);
  add(DETAIL_LABEL[f.kind] ?? 'Detail', f.detail);
  add(f.kind.endsWith('.pending') ? 'Decide by' : 'Until', f.until);
  return {
    title: title(f),
    fields,
    command: f.command,
    link: f.link,
    urgent: f.mode === 'break_glass' || f.kind === 'audit.alarm',
  };
}
