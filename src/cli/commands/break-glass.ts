/**
 * `imp break-glass`: emergency write access during an incident, without waiting for an approver —
 * but never alone. A red banner and a typed phrase first, then a fresh login; the broker records the
 * request and a second on-call person confirms it (`imp break-glass confirm ID`). Meanwhile this
 * waits (Ctrl-C withdraws); once confirmed it continues into the normal session UX.
 */
import type { BreakGlassRequestView, BrokerConfig, SessionView } from '../../core/api.js';
import { formatDuration, parseDuration } from '../../core/duration.js';
import { InvalidInputError, TimeoutError, UsageError } from '../../core/errors.js';
import { escapeUntrusted, hasControlCharacters } from '../../core/escape.js';
import { consoleLink } from '../../core/links.js';
import { shortId } from '../../core/short-id.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, withLogin } from '../login-flow.js';
import { reasonProblem } from '../session-input.js';
import { requireActive, runActiveSession, waitWhilePending } from '../session-ux.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'break-glass',
  group: 'break-glass',
  summary: 'Emergency write access to a tenant in an incident; a second person must confirm',
  usage:
    'imp break-glass --tenant <id> [--env <env>] --incident <id> --reason <text> [--ttl <duration>] [--no-shell] [--confirm "break glass <tenant>"] [--json] [--no-input]',
  flags: [
    { name: 'tenant', value: '<id>', description: 'Tenant to act as', complete: 'tenants' },
    {
      name: 'env',
      value: '<env>',
      description: 'Environment (asked when missing; e.g. prod)',
      complete: 'environments',
    },
    {
      name: 'incident',
      value: '<id>',
      description: 'Incident id, e.g. INC-123 (the ticket pattern applies)',
    },
    { name: 'reason', value: '<text>', description: 'What is on fire and what you will do' },
    { name: 'ttl', value: '<duration>', description: 'Time limit, at most the policy’s break_glass.max_ttl' },
    { name: 'no-shell', description: 'Show a countdown in the foreground instead of starting a subshell' },
    {
      name: 'confirm',
      value: '<phrase>',
      description: 'The typed confirmation, exactly "break glass <tenant>" (for --no-input)',
    },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
    { name: 'no-browser', description: 'Do not open a browser if a login is needed' },
  ],
  examples: [
    'imp break-glass --tenant acme --env prod --incident INC-123 --reason "Payments stuck; requeue failed jobs"',
    'imp break-glass --tenant acme --env prod --incident INC-123 --reason "..." --ttl 15m --confirm "break glass acme" --no-input',
  ],
};

/** Typed options. */
export interface BreakGlassOptions {
  tenant: string;
  env: string | undefined;
  incident: string | undefined;
  reason: string | undefined;
  ttl: string | undefined;
  noShell: boolean;
  confirm: string | undefined;
  broker: string | undefined;
  noBrowser: boolean;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): BreakGlassOptions {
  const tenant = stringFlag(parsed, 'tenant');
  if (!tenant) throw new UsageError(`imp break-glass needs --tenant <id>.\nUsage: ${spec.usage}`);
  return {
    tenant,
    env: stringFlag(parsed, 'env'),
    incident: stringFlag(parsed, 'incident'),
    reason: stringFlag(parsed, 'reason'),
    ttl: stringFlag(parsed, 'ttl'),
    noShell: boolFlag(parsed, 'no-shell') || boolFlag(parsed, 'json'),
    confirm: stringFlag(parsed, 'confirm'),
    broker: stringFlag(parsed, 'broker'),
    noBrowser: boolFlag(parsed, 'no-browser'),
    json: boolFlag(parsed, 'json'),
  };
}

/** Checks input locally, warns, asks for the phrase, requests, waits for the second person, runs the session. */
export async function run(options: BreakGlassOptions, deps: Deps): Promise<number> {
  const target = await brokerTarget(deps, options.broker);
  const config = await target.client.config();
  const input = await collectInput(deps, config, options);
  const ttl = input.ttl ?? Math.min(config.default_ttl, config.break_glass?.max_ttl ?? config.default_ttl);
  if (!options.json) warningBanner(deps, input.tenant, input.environment, ttl);
  await confirmPhrase(deps, input.tenant, options.confirm);

  const ux = { json: options.json, noBrowser: options.noBrowser };
  let token = '';
  const request = await withLogin(deps, target, ux, async (fresh) => {
    token = fresh;
    return target.client.requestBreakGlass(fresh, {
      tenant: input.tenant,
      environment: input.environment,
      incident: input.incident,
      reason: input.reason,
      ...(input.ttl ? { ttl: input.ttl } : {}),
    });
  });
  announce(deps, request, options.json, target.url);
  // The incident was not verified (policy tickets.system.break_glass: warn): said, never blocking.
  if (!options.json && request.ticket_warning)
    deps.io.err(`Warning: ${escapeUntrusted(request.ticket_warning)}`);
  const decided = await waitWhilePending(
    deps,
    target,
    token,
    request,
    options.json
      ? null
      : `Waiting for a second person to confirm ${shortId(request.id)}… (Ctrl-C withdraws the request)`,
  );
  if (decided.state === 'request_expired')
    throw new TimeoutError(
      `Nobody confirmed break-glass request ${shortId(request.id)} in time; it expired. Ask again.`,
    );
  const session = requireActive(decided);
  if (!options.json) activeBanner(deps, session);
  return runActiveSession(deps, target, token, session, { json: options.json, noShell: options.noShell });
}

interface BreakGlassInput {
  tenant: string;
  environment: string;
  incident: string;
  reason: string;
  ttl: number | undefined;
}

function incidentProblem(config: BrokerConfig, incident: string): string | null {
  if (hasControlCharacters(incident) || !new RegExp(config.ticket_pattern, 'u').test(incident))
    return `The incident id must match ${config.ticket_pattern} (for example INC-123).`;
  return null;
}

async function collectInput(
  deps: Pick<Deps, 'io' | 'prompter'>,
  config: BrokerConfig,
  options: BreakGlassOptions,
): Promise<BreakGlassInput> {
  const ttl = options.ttl === undefined ? undefined : parseDuration(options.ttl, '--ttl');
  const maxTtl = config.break_glass?.max_ttl;
  if (ttl !== undefined && maxTtl !== undefined && ttl > maxTtl)
    throw new InvalidInputError(
      `--ttl is over break_glass.max_ttl: a break-glass session lasts at most ${formatDuration(maxTtl)}.`,
    );
  const incidentError = options.incident === undefined ? null : incidentProblem(config, options.incident);
  if (incidentError) throw new InvalidInputError(incidentError);
  const reasonError = options.reason === undefined ? null : reasonProblem(config, options.reason);
  if (reasonError) throw new InvalidInputError(reasonError);
  const missing = [
    options.env === undefined && '--env',
    options.incident === undefined && '--incident',
    options.reason === undefined && '--reason',
  ].filter(Boolean);
  if (missing.length > 0 && !deps.io.canPrompt())
    throw new UsageError(
      `Missing ${missing.join(', ')} (imp does not prompt with --no-input or without a terminal).`,
    );
  const ask = async (message: string, validate: (value: string) => string | null, fallback?: string) => {
    const prompter = await deps.prompter();
    const answer = await prompter.input({
      message,
      ...(fallback ? { default: fallback } : {}),
      validate: (value) => validate(value.trim()) ?? true,
    });
    return answer.trim();
  };
  const environment =
    options.env ??
    (await ask(
      'Environment',
      (v) => (/^[a-z0-9][a-z0-9-]{0,62}$/.test(v) ? null : 'An environment name such as prod'),
      'prod',
    ));
  const incident = options.incident ?? (await ask('Incident id', (v) => incidentProblem(config, v)));
  const reason =
    options.reason ??
    (await ask('Reason (what is on fire and what you will do)', (v) => reasonProblem(config, v)));
  return { tenant: options.tenant, environment, incident, reason: reason.trim(), ttl };
}

function paintRed(deps: Pick<Deps, 'io'>, lines: string[]): void {
  const { io } = deps;
  const width = Math.max(...lines.map((line) => line.length)) + 4;
  const paint = (text: string) => (io.color ? `\u001b[1;41;97m${text}\u001b[0m` : text);
  io.err(paint('!'.repeat(width)));
  for (const line of lines) io.err(paint(`! ${line.padEnd(width - 4)} !`));
  io.err(paint('!'.repeat(width)));
}

function warningBanner(deps: Pick<Deps, 'io'>, tenant: string, env: string, ttl: number): void {
  paintRed(deps, [
    `BREAK-GLASS: emergency WRITE access to tenant ${escapeUntrusted(tenant)} in ${escapeUntrusted(env)} for up to ${formatDuration(ttl)}.`,
    'Use it only for a live incident. A second on-call person must confirm it,',
    'security is alerted at once, and the session is reviewed afterwards.',
    'Everything you do is recorded in the audit log.',
  ]);
}

/** The typed phrase: `break glass <tenant>`, from the prompt or --confirm. */
export async function confirmPhrase(
  deps: Pick<Deps, 'io' | 'prompter'>,
  tenant: string,
  confirm: string | undefined,
): Promise<void> {
  const phrase = `break glass ${tenant}`;
  if (confirm !== undefined) {
    if (confirm.trim() !== phrase) throw new InvalidInputError(`--confirm must be exactly "${phrase}".`);
    return;
  }
  if (!deps.io.canPrompt())
    throw new UsageError(`Break-glass needs its typed confirmation: pass --confirm "${phrase}".`);
  const prompter = await deps.prompter();
  await prompter.input({
    message: `Type "${phrase}" to continue`,
    validate: (value) => (value.trim() === phrase ? true : `Type exactly: ${phrase}`),
  });
}

function announce(
  deps: Pick<Deps, 'io'>,
  request: BreakGlassRequestView,
  json: boolean,
  brokerUrl: string,
): void {
  const { io } = deps;
  const link = consoleLink(brokerUrl, 'request', request.id);
  if (json) {
    io.out(JSON.stringify({ event: 'confirmation_pending', request, console_url: link }));
    return;
  }
  io.err(
    `Break-glass request ${shortId(request.id)} is recorded. A second on-call person must confirm it by ${request.confirm_by}.`,
  );
  io.err('Send them this command:');
  io.err(`  imp break-glass confirm ${shortId(request.id)}`);
  io.err(`or this link: ${link}`);
}

function activeBanner(deps: Pick<Deps, 'io'>, session: SessionView): void {
  const by = escapeUntrusted(session.decided_by?.email ?? session.decided_by?.sub ?? 'a second person');
  paintRed(deps, [
    `BREAK-GLASS session ${shortId(session.id)} confirmed by ${by}.`,
    `WRITE access to ${escapeUntrusted(session.tenant)}/${escapeUntrusted(session.environment)}, incident ${escapeUntrusted(session.ticket)}. Security has been alerted;`,
    'this session will be reviewed.',
  ]);
}
