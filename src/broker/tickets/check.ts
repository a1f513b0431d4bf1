/**
 * The ticket check inside a session or break-glass request, after input, policy and conflicts and
 * before the fresh login (a request refused anyway never asks anyone to log in), and again when an
 * approver approves (a ticket closed or reassigned while the request waited opens nothing). A refusal names
 * its rule (ticket.not_found, ticket.closed, ticket.not_assigned, ticket.other_tenant,
 * ticket.unreachable) and is audited; an allowed-but-unverified ticket is flagged in the events the
 * request writes (`ticket_check`) and in the answer (`ticket_warning`).
 */
import type { AuditDraft } from '../../core/audit/event.js';
import { boundedEscape } from '../../core/escape.js';
import type { HandlerContext } from '../context.js';
import { mustHavePrincipal, refuse } from '../guards.js';

/** What the request's own audit events and answer carry about the ticket check. */
export interface TicketCheckResult {
  /** Merged into the data of session.requested / breakglass.requested (empty without a ticket system). */
  audit: Record<string, unknown>;
  /** Told to the requester when the ticket was let through unverified; null otherwise. */
  warning: string | null;
}

/** Checks the request's ticket; refuses (audited, throwing) where the policy says so. */
export async function checkTicket(
  ctx: HandlerContext,
  request: {
    ticket: string;
    tenant: string;
    /** A machine identity (no person to match): the person rule is skipped. */
    machine?: boolean;
    /** Whose ticket it must be (the requester's email when an approver re-checks); default: the caller's. */
    person?: string | null;
    breakGlass: boolean;
    event: 'session.refused' | 'breakglass.refused' | 'access.denied';
    about: Omit<AuditDraft, 'type' | 'data'>;
    data?: Record<string, unknown>;
  },
): Promise<TicketCheckResult> {
  const service = ctx.deps.tickets;
  const system = ctx.deps.policy.tickets.system;
  if (!service || !system) return { audit: {}, warning: null };
  const email = request.machine
    ? null
    : request.person !== undefined
      ? request.person
      : mustHavePrincipal(ctx).email;
  const tenant = ctx.deps.policy.tenants.find((t) => t.id === request.tenant);
  const what = request.breakGlass ? 'incident' : 'ticket';
  // No ctx.signal here: Node closes a POST's request stream once its body is read, which aborts it.
  const check = await service.check(
    request.ticket,
    { email, tenant: { id: request.tenant, name: tenant?.name ?? request.tenant } },
    request.breakGlass,
    { person: !request.machine },
  );
  const warnOnly = request.breakGlass && system.breakGlass === 'warn';
  const flagged = (facts: Record<string, unknown>, warning: string): TicketCheckResult => ({
    audit: { ticket_check: { system: system.type, flagged: true, ...facts } },
    warning,
  });
  switch (check.outcome) {
    case 'not_configured':
      return { audit: {}, warning: null };
    case 'skipped':
      return { audit: { ticket_check: { system: system.type, outcome: 'skipped' } }, warning: null };
    case 'verified':
      return {
        audit: {
          ticket_check: {
            system: system.type,
            outcome: 'verified',
            status: boundedEscape(check.status, 120),
          },
        },
        warning: null,
      };
    case 'refused': {
      const { rule, message } = check.decision;
      if (warnOnly)
        return flagged(
          { outcome: 'warned', rule, message },
          `The ${what} check failed (rule ${rule}: ${message}); break-glass goes on, and this is recorded.`,
        );
      return refuse(ctx, {
        rule,
        message: `Refused by rule ${rule}: ${message}`,
        as: 'policy',
        event: request.event,
        about: request.about,
        data: { ...request.data, ticket_system: system.type },
      });
    }
    case 'unreachable': {
      if (system.onUnreachable === 'allow' || warnOnly)
        return flagged(
          { outcome: 'unverified', error: check.error },
          `The ticket system could not be asked about ${what} ${request.ticket} (${check.error}); allowed by policy, and flagged in the audit log.`,
        );
      return refuse(ctx, {
        rule: 'ticket.unreachable',
        message: `Refused by rule ticket.unreachable: the ticket system (${system.type}) could not be asked about ${what} ${request.ticket}: ${check.error}. Try again later, or ask an administrator.`,
        as: 'unreachable',
        event: request.event,
        about: request.about,
        data: { ...request.data, ticket_system: system.type, error: check.error },
      });
    }
  }
}
