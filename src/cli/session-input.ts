/**
 * Ticket, reason, environment and TTL before a session: from flags, else asked (interactive), else a
 * usage error. Checked locally against the broker's published rules first, so bad input exits 2 at
 * once — before any login. The broker checks everything again.
 */
import type { BrokerConfig } from '../core/api.js';
import { parseDuration } from '../core/duration.js';
import { ImpError, InvalidInputError, UsageError } from '../core/errors.js';
import { escapeUntrusted, hasControlCharacters } from '../core/escape.js';
import type { Deps } from './deps.js';

/** What the user gave on the command line. */
export interface SessionFlags {
  tenant: string;
  env: string | undefined;
  ticket: string | undefined;
  reason: string | undefined;
  ttl: string | undefined;
}

/** A tenant and its environments, as GET /v1/tenants lists them. */
export interface TenantEnvironments {
  id: string;
  environments: string[];
}

/** Complete, locally valid input. */
export interface SessionInput {
  tenant: string;
  environment: string;
  ticket: string;
  reason: string;
  ttlSeconds: number | undefined;
}

/** The broker's ticket check, as the CLI applies it. */
export function ticketProblem(config: BrokerConfig, ticket: string): string | null {
  if (hasControlCharacters(ticket) || !new RegExp(config.ticket_pattern, 'u').test(ticket)) {
    return `The ticket id must match ${config.ticket_pattern} (for example SUP-123).`;
  }
  return null;
}

/** The broker's reason check, as the CLI applies it. */
export function reasonProblem(config: BrokerConfig, reason: string): string | null {
  if (hasControlCharacters(reason)) return 'The reason must not contain control characters.';
  const length = [...reason.trim()].length;
  if (length < config.reason_min_length)
    return `The reason must be at least ${config.reason_min_length} characters: say what you will do and why.`;
  if (length > config.reason_max_length)
    return `The reason must be at most ${config.reason_max_length} characters.`;
  return null;
}

/** Fills in and checks ticket, reason, env and TTL. */
export async function collectSessionInput(
  deps: Pick<Deps, 'io' | 'prompter'>,
  config: BrokerConfig,
  flags: SessionFlags,
  /** The tenants the broker knows (fetched only without --env: it needs a login). */
  tenants: () => Promise<TenantEnvironments[]>,
): Promise<SessionInput> {
  const ttlSeconds = flags.ttl === undefined ? undefined : parseDuration(flags.ttl, '--ttl');
  if (flags.ticket !== undefined) {
    const problem = ticketProblem(config, flags.ticket);
    if (problem) throw new InvalidInputError(problem);
  }
  if (flags.reason !== undefined) {
    const problem = reasonProblem(config, flags.reason);
    if (problem) throw new InvalidInputError(problem);
  }
  const missing = [flags.ticket === undefined && '--ticket', flags.reason === undefined && '--reason'].filter(
    Boolean,
  );
  if (missing.length > 0 && !deps.io.canPrompt()) {
    throw new UsageError(
      `Missing ${missing.join(', ')} (imp does not prompt with --no-input or without a terminal).`,
    );
  }
  const environment = flags.env ?? (await chooseEnvironment(deps, flags.tenant, await tenants()));
  let ticket = flags.ticket;
  if (ticket === undefined) {
    const prompter = await deps.prompter();
    ticket = await prompter.input({
      message: 'Ticket id',
      validate: (value) => ticketProblem(config, value.trim()) ?? true,
    });
    ticket = ticket.trim();
  }
  let reason = flags.reason;
  if (reason === undefined) {
    const prompter = await deps.prompter();
    reason = await prompter.input({
      message: 'Reason (what you will do and why)',
      validate: (value) => reasonProblem(config, value) ?? true,
    });
  }
  return {
    tenant: flags.tenant,
    environment,
    ticket,
    reason: reason.trim(),
    ttlSeconds,
  };
}

/**
 * The one --env rule for `imp start` and `imp exec`: a tenant with a single environment implies it;
 * with several, --env is needed, or a choice when imp may prompt. `null` is an unknown tenant.
 */
export async function chooseEnvironment(
  deps: Pick<Deps, 'io' | 'prompter'>,
  tenant: string,
  tenants: TenantEnvironments[],
): Promise<string> {
  const choices = tenants.find((t) => t.id === tenant)?.environments ?? [];
  if (choices.length === 0)
    throw new InvalidInputError(
      `There is no tenant "${escapeUntrusted(tenant)}" (tenants: ${tenants.map((t) => escapeUntrusted(t.id)).join(', ') || 'none'}).`,
    );
  if (choices.length === 1) return choices[0]!;
  if (!deps.io.canPrompt())
    throw new UsageError(
      `Tenant ${escapeUntrusted(tenant)} has several environments (${choices.map(escapeUntrusted).join(', ')}): pass --env <env>.`,
    );
  const prompter = await deps.prompter();
  return prompter.select({
    message: `Environment of ${escapeUntrusted(tenant)}`,
    choices: choices.map((env) => ({ value: env, name: escapeUntrusted(env) })),
  });
}

/** Refusals that are the user's input, not a policy decision about them: exit 2 like a bad --ttl. */
const INPUT_RULES = new Set(['tenant.unknown', 'tenant.environment', 'ttl.max', 'ttl.invalid']);

/** Rethrows a broker refusal of the tenant, environment or time limit as invalid input (exit 2). */
export function asInputError(error: unknown): never {
  const rule = error instanceof ImpError ? error.details?.rule : undefined;
  if (error instanceof ImpError && typeof rule === 'string' && INPUT_RULES.has(rule))
    throw new InvalidInputError(error.message, { rule });
  throw error;
}
