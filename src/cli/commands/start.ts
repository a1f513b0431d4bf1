/** `imp start`: open a session on a tenant — read-only unless --write — and work in it. */
import { formatDuration } from '../../core/duration.js';
import { InvalidInputError, UsageError } from '../../core/errors.js';
import { escapeUntrusted } from '../../core/escape.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, withLogin } from '../login-flow.js';
import { asInputError, collectSessionInput } from '../session-input.js';
import { requireActive, runActiveSession, waitForApproval } from '../session-ux.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'start',
  group: 'session',
  summary: 'Open a session on a tenant (read-only unless --write) and work in it',
  usage:
    'imp start --tenant <id> [--env <env>] [--write] [--ticket <id>] [--reason <text>] [--ttl <duration>] [--no-shell] [--confirm <tenant>] [--json] [--no-input]',
  flags: [
    { name: 'tenant', value: '<id>', description: 'Tenant to act as', complete: 'tenants' },
    {
      name: 'env',
      value: '<env>',
      description: 'Environment (asked when missing; e.g. prod, staging)',
      complete: 'environments',
    },
    { name: 'write', description: 'Ask for write access (may need a second person’s approval)' },
    { name: 'ticket', value: '<id>', description: 'Ticket this work belongs to, e.g. SUP-123' },
    { name: 'reason', value: '<text>', description: 'What you will do and why' },
    {
      name: 'ttl',
      value: '<duration>',
      description: 'Time limit, e.g. 90s, 10m, 1h (default: the policy’s)',
    },
    { name: 'no-shell', description: 'Show a countdown in the foreground instead of starting a subshell' },
    {
      name: 'confirm',
      value: '<tenant>',
      description: 'Type-to-confirm answer for write sessions on prod (for --no-input)',
    },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
    { name: 'no-browser', description: 'Do not open a browser if a login is needed' },
  ],
  examples: [
    'imp start --tenant acme --ticket SUP-123 --reason "Customer cannot see March invoices"',
    'imp start --tenant acme --env prod --write --ttl 20m --ticket SUP-123 --reason "Reset MFA for locked-out admin"',
  ],
};

/** Typed options. */
export interface StartOptions {
  tenant: string;
  env: string | undefined;
  write: boolean;
  ticket: string | undefined;
  reason: string | undefined;
  ttl: string | undefined;
  noShell: boolean;
  confirm: string | undefined;
  broker: string | undefined;
  noBrowser: boolean;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): StartOptions {
  const tenant = stringFlag(parsed, 'tenant');
  if (!tenant) throw new UsageError(`imp start needs --tenant <id>.\nUsage: ${spec.usage}`);
  return {
    tenant,
    env: stringFlag(parsed, 'env'),
    write: boolFlag(parsed, 'write'),
    ticket: stringFlag(parsed, 'ticket'),
    reason: stringFlag(parsed, 'reason'),
    ttl: stringFlag(parsed, 'ttl'),
    noShell: boolFlag(parsed, 'no-shell') || boolFlag(parsed, 'json'),
    confirm: stringFlag(parsed, 'confirm'),
    broker: stringFlag(parsed, 'broker'),
    noBrowser: boolFlag(parsed, 'no-browser'),
    json: boolFlag(parsed, 'json'),
  };
}

/** Validates locally, shows the banner, logs in if needed, opens (or waits for) the session, runs it. */
export async function run(options: StartOptions, deps: Deps): Promise<number> {
  const target = await brokerTarget(deps, options.broker);
  const config = await target.client.config();
  const scope = options.write ? 'write' : 'read';
  const ux = { json: options.json, noBrowser: options.noBrowser };
  // The tenant list needs a login: fetched only when --env is missing.
  const tenants = () => withLogin(deps, target, ux, (token) => target.client.tenants(token));
  const input = await collectSessionInput(deps, config, options, tenants);
  const mustConfirm = scope === 'write' && input.environment === 'prod';
  if (mustConfirm) checkConfirmFlag(deps, input.tenant, options.confirm);
  const body = {
    tenant: input.tenant,
    environment: input.environment,
    scope,
    ticket: input.ticket,
    reason: input.reason,
    ...(input.ttlSeconds ? { ttl: input.ttlSeconds } : {}),
  } as const;
  // Tenant, environment, role and time limit are checked before the banner promises anything.
  const check = await withLogin(deps, target, ux, (token) =>
    target.client.checkSession(token, body).catch(asInputError),
  );

  if (!options.json) banner(deps, input.tenant, input.environment, scope, check.ttl);
  if (!options.json && check.ticket_warning) deps.io.err(`Warning: ${escapeUntrusted(check.ticket_warning)}`);
  if (mustConfirm && options.confirm === undefined) await confirmTenant(deps, input.tenant);

  let token = '';
  const opened = await withLogin(deps, target, ux, async (fresh) => {
    token = fresh;
    return target.client.openSession(fresh, body);
  });
  const decided =
    opened.session.state === 'pending'
      ? await waitForApproval(deps, target, token, opened.session, options.json)
      : opened.session;
  return runActiveSession(deps, target, token, requireActive(decided), {
    json: options.json,
    noShell: options.noShell,
  });
}

function banner(deps: Pick<Deps, 'io'>, tenant: string, env: string, scope: string, ttl: number): void {
  const { io } = deps;
  const line = `You are about to act as tenant ${escapeUntrusted(tenant)} in ${escapeUntrusted(env)} with ${scope === 'write' ? 'WRITE' : 'read-only'} access for up to ${formatDuration(ttl)}.`;
  const note = 'Everything you do is recorded in the audit log.';
  const width = Math.max(line.length, note.length) + 4;
  const paint = (text: string) =>
    io.color ? `\u001b[1;${scope === 'write' ? '41' : '43'};97m${text}\u001b[0m` : text;
  io.err(paint('!'.repeat(width)));
  io.err(paint(`! ${line.padEnd(width - 4)} !`));
  io.err(paint(`! ${note.padEnd(width - 4)} !`));
  io.err(paint('!'.repeat(width)));
}

// What can be known without the broker is refused before anything is asked of it.
function checkConfirmFlag(deps: Pick<Deps, 'io'>, tenant: string, confirm: string | undefined): void {
  if (confirm !== undefined) {
    if (confirm !== tenant)
      throw new InvalidInputError(`--confirm must be exactly the tenant id "${tenant}".`);
    return;
  }
  if (!deps.io.canPrompt())
    throw new UsageError(`A write session on prod needs confirmation: pass --confirm ${tenant}.`);
}

async function confirmTenant(deps: Pick<Deps, 'prompter'>, tenant: string): Promise<void> {
  const prompter = await deps.prompter();
  await prompter.input({
    message: `Type the tenant id (${tenant}) to confirm write access to production`,
    validate: (value) => (value.trim() === tenant ? true : `Type exactly: ${tenant}`),
  });
}
