/**
 * The broker's side of `tickets.system`: asks the ticket system about a session's ticket (with the
 * broker's own credential, read once at start from token_env / token_file and never logged), and
 * posts the post-session summary on the ticket when a session ends — in the background, retried
 * with backoff, each outcome audited (ticket.summary_posted / ticket.summary_failed). Posting never
 * blocks or undoes the end of a session.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SessionSummary } from '../../core/api.js';
import { boundedEscape } from '../../core/escape.js';
import { consoleLink } from '../../core/links.js';
import {
  decideTicket,
  type TicketAsk,
  type TicketDecision,
  type TicketSystem,
} from '../../core/policy/tickets.js';
import { summaryNoteLines } from '../../core/ticket-note.js';
import type { SessionRecord } from '../../store/types.js';
import type { BrokerDeps } from '../context.js';
import { tryOnSchedule } from '../retry.js';
import { sessionAudit } from '../sessions.js';
import { buildSummary } from '../summary.js';
import type { TicketAdapter } from './adapter.js';
import { genericAdapter } from './generic.js';
import { TicketSystemError } from './http.js';
import { jiraAdapter } from './jira.js';
import { redmineAdapter } from './redmine.js';

/** How the service reads its secret and retries; injectable so tests run the retries in milliseconds. */
export interface TicketSettings {
  /** The wait before each posting try (the first is usually 0): its length bounds the tries. */
  delaysMs: readonly number[];
  /** The API key / token named by the policy (token_env or token_file), or null. */
  secret: (system: TicketSystem) => string | null;
}

/** Five tries over about 30 s; the secret from the environment or the file the policy names. */
export const DEFAULT_TICKET_SETTINGS: TicketSettings = {
  delaysMs: [0, 1000, 3000, 8000, 18_000],
  secret: (system) => {
    if (system.tokenEnv) return process.env[system.tokenEnv] || null;
    if (system.tokenFile) return readFileSync(system.tokenFile, 'utf8').trim() || null;
    return null;
  },
};

/** The outcome of checking a ticket, as the handlers act on it and the audit records it. */
export type TicketCheck =
  | { outcome: 'not_configured' | 'skipped' }
  | { outcome: 'verified'; status: string }
  | { outcome: 'refused'; decision: Extract<TicketDecision, { ok: false }> }
  | { outcome: 'unreachable'; error: string };

/** Quotes what a ticket system said for a message: escaped (controls, bidi, invisibles) and bounded. */
export function quoteTicketText(text: string): string {
  return `"${boundedEscape(text, 120)}"`;
}

/** Builds the adapter for the policy's system. */
export function ticketAdapter(
  system: TicketSystem,
  token: string | null,
  fetcher: typeof fetch,
): TicketAdapter {
  const deps = { system, token, fetch: fetcher };
  if (system.type === 'redmine') return redmineAdapter(deps);
  if (system.type === 'jira') return jiraAdapter(deps);
  return genericAdapter(deps);
}

/** Ticket checks and summary posting for one broker. */
export class TicketService {
  private readonly stop = new AbortController();
  private readonly running = new Set<Promise<void>>();
  private readonly settings: TicketSettings;
  private readonly adapter: TicketAdapter | null;
  readonly system: TicketSystem | null;

  constructor(
    private readonly deps: BrokerDeps,
    settings: Partial<TicketSettings> = {},
  ) {
    this.settings = { ...DEFAULT_TICKET_SETTINGS, ...settings };
    this.system = deps.policy.tickets.system;
    if (!this.system) {
      this.adapter = null;
      return;
    }
    let token: string | null = null;
    try {
      token = this.settings.secret(this.system);
    } catch (error) {
      deps.log('error', 'could not read the ticket system credential', {
        token_file: this.system.tokenFile,
        message: (error as Error).message,
      });
    }
    // A header cannot carry it, and fetch's error would quote it: refuse it here, without printing it.
    if (token !== null && !/^[\x21-\x7e]+$/.test(token)) {
      deps.log(
        'error',
        'the ticket system credential holds characters an HTTP header cannot carry: not used',
        {
          token_env: this.system.tokenEnv,
          token_file: this.system.tokenFile,
        },
      );
      token = null;
    }
    // Said at start, not first noticed when someone's session is refused.
    if (token === null && (this.system.tokenEnv || this.system.tokenFile))
      deps.log('warn', 'the ticket system credential is not set: checks will fail', {
        token_env: this.system.tokenEnv,
        token_file: this.system.tokenFile,
      });
    this.adapter = ticketAdapter(this.system, token, deps.fetch);
  }

  /** Asks the ticket system about `ticket` for a session (or, with `breakGlass`, an incident; `person: false` for a machine). */
  async check(
    ticket: string,
    ask: TicketAsk,
    breakGlass: boolean,
    options: { person?: boolean } = {},
  ): Promise<TicketCheck> {
    const { adapter } = this;
    if (!this.system || !adapter) return { outcome: 'not_configured' };
    // A machine identity is nobody's assignee: for it the person rule does not apply.
    const system = options.person === false ? { ...this.system, person: 'off' as const } : this.system;
    if (breakGlass && system.breakGlass === 'skip') return { outcome: 'skipped' };
    try {
      const lookup = await adapter.lookup(ticket, this.stop.signal);
      const decision = decideTicket(system, ticket, lookup, ask, quoteTicketText);
      return decision.ok
        ? { outcome: 'verified', status: decision.status }
        : { outcome: 'refused', decision };
    } catch (error) {
      // Whatever went wrong, the request is refused or flagged by policy, and audited, never answered 500.
      const message =
        error instanceof TicketSystemError ? error.message : `internal error: ${(error as Error).message}`;
      this.deps.log(
        error instanceof TicketSystemError ? 'warn' : 'error',
        'the ticket system gave no usable answer',
        {
          system: system.type,
          error: message,
        },
      );
      return { outcome: 'unreachable', error: boundedEscape(message, 300) };
    }
  }

  /** A session ended: post its summary when the policy says so or its owner asked (`imp end --post`). */
  sessionEnded(session: SessionRecord, requested = false): boolean {
    const { system } = this;
    if (!system || !(this.deps.policy.tickets.postSummary || requested)) return false;
    // A skipped incident id need not exist in the ticket system: nothing to post it on.
    if (session.mode === 'break_glass' && system.breakGlass === 'skip') return false;
    if (!session.ticket) return false;
    const run = this.deliver(session, requested ? 'requested' : 'policy').catch((error: unknown) =>
      this.deps.log('error', 'ticket summary outcome could not be recorded', {
        session: session.id,
        message: (error as Error).message,
      }),
    );
    this.running.add(run);
    void run.finally(() => this.running.delete(run));
    return true;
  }

  /** Resolves when every posting under way has finished (posted or failed). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Stops retrying (what is still unposted is audited as failed) and waits. */
  async close(): Promise<void> {
    this.stop.abort(new Error('broker stopping'));
    await this.idle();
  }

  private async deliver(session: SessionRecord, trigger: 'policy' | 'requested'): Promise<void> {
    const { deps, settings, adapter, system } = this;
    if (!adapter || !system) return;
    const delivery = randomUUID();
    const fresh = (await deps.store.getSession(session.id)) ?? session;
    const events = await deps.store.readAudit({ session: session.id });
    const summary = buildSummary(fresh, events, deps.clock.now());
    const end = events.findLast((e) =>
      ['session.ended', 'session.expired', 'session.revoked'].includes(e.type),
    );
    const lines = summaryNoteLines(summary, {
      brokerUrl: deps.issuer,
      consoleUrl: consoleLink(deps.issuer, 'session', session.id),
      endEventId: end?.id ?? null,
      delivery,
    });
    const note = { delivery, lines, json: { session: session.id, summary: noteSummary(summary) } };
    const base = { system: system.type, delivery, trigger };
    const outcome = await tryOnSchedule(settings.delaysMs, deps.clock, this.stop.signal, async (n) => {
      try {
        const { ref } = await adapter.postNote(session.ticket, note, {
          retry: n > 1,
          signal: this.stop.signal,
        });
        return { ok: true, value: ref };
      } catch (cause) {
        // Anything unexpected is a failed delivery too: the outcome is always audited.
        if (cause instanceof TicketSystemError)
          return { ok: false, error: cause.message, permanent: cause.permanent };
        return { ok: false, error: `internal error: ${(cause as Error).message}`, permanent: true };
      }
    });
    const { attempts } = outcome;
    if (outcome.ok)
      return this.record(fresh, 'ticket.summary_posted', {
        ...base,
        attempts,
        // The system's own id for the note: untrusted text too.
        ref: outcome.value === null ? null : boundedEscape(outcome.value, 64),
      });
    deps.log('warn', 'session summary not posted on the ticket', {
      session: session.id,
      error: outcome.error,
    });
    return this.record(fresh, 'ticket.summary_failed', {
      ...base,
      attempts,
      error: boundedEscape(outcome.error, 300),
    });
  }

  private async record(session: SessionRecord, type: string, data: Record<string, unknown>): Promise<void> {
    await this.deps.store.transaction((tx) =>
      tx.appendAudit(sessionAudit(session, type, data, null), this.deps.clock.now()),
    );
  }
}

/**
 * The summary as the generic contract's JSON: who, when, scope and counts, as on the note. Not the
 * reason or the proxied paths: untrusted text the ticket has no need of.
 */
function noteSummary(summary: SessionSummary): Record<string, unknown> {
  const s = summary.session;
  return {
    session: s.id,
    state: s.state,
    mode: s.mode,
    tenant: s.tenant,
    environment: s.environment,
    scope: s.scope,
    ticket: s.ticket,
    requester: s.requester,
    decided_by: s.decided_by,
    started_at: s.started_at,
    ended_at: s.ended_at,
    duration_seconds: summary.duration_seconds,
    actions: summary.actions,
    writes: summary.writes,
    denials: summary.denials,
    recorded: summary.recorded ?? false,
    supervised_by: summary.supervised_by ?? [],
  };
}
