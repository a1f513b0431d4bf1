/**
 * Which audit events people are told about, as which notification kind, and whom each kind concerns.
 * The audit log is the source: a notification announces an event that is already on the record.
 */

/** Every notification kind, as written in policy `notifications.routes[].events`. */
export const NOTIFICATION_KINDS = [
  'request.pending',
  'request.approved',
  'request.denied',
  'request.expired',
  'breakglass.pending',
  'breakglass.expired',
  'breakglass.started',
  'breakglass.reviewed',
  'session.revoked',
  'audit.alarm',
] as const;

/** One of {@link NOTIFICATION_KINDS}. */
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

/** True for a known kind. */
export function isNotificationKind(value: string): value is NotificationKind {
  return (NOTIFICATION_KINDS as readonly string[]).includes(value);
}

/**
 * The people a kind concerns (for e-mail to people; chat and webhooks go to a channel):
 * approvers / confirmers / reviewers / auditors are found by role; requester and confirmer by the session.
 */
export type Audience = 'approvers' | 'confirmers' | 'reviewers' | 'auditors' | 'requester' | 'confirmer';

/** Whom each kind is for. */
export const AUDIENCES: Readonly<Record<NotificationKind, readonly Audience[]>> = {
  'request.pending': ['approvers'],
  'request.approved': ['requester'],
  'request.denied': ['requester'],
  'request.expired': ['requester'],
  'breakglass.pending': ['confirmers'],
  'breakglass.expired': ['requester'],
  'breakglass.started': ['reviewers', 'requester', 'confirmer'],
  'breakglass.reviewed': ['requester', 'confirmer'],
  'session.revoked': ['requester'],
  'audit.alarm': ['auditors'],
};

/**
 * The kind an audit event announces, or null. `sessionState` is the session's state in the same
 * transaction: a `session.requested` announces a waiting request only when it did not open at once.
 */
export function kindOfEvent(type: string, sessionState: string | null): NotificationKind | null {
  switch (type) {
    case 'session.requested':
      return sessionState === 'pending' ? 'request.pending' : null;
    case 'session.approved':
      return 'request.approved';
    case 'session.denied':
      return 'request.denied';
    case 'request.expired':
      return 'request.expired';
    case 'breakglass.requested':
      return 'breakglass.pending';
    case 'breakglass.expired':
      return 'breakglass.expired';
    case 'breakglass.confirmed':
      return 'breakglass.started';
    case 'breakglass.reviewed':
      return 'breakglass.reviewed';
    case 'session.revoked':
      return 'session.revoked';
    case 'audit.witness_refused':
    case 'audit.witness_unreachable':
      return 'audit.alarm';
    default:
      return null;
  }
}
