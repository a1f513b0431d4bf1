/**
 * `imp exec`: for runbooks. Opens a read-only session (never write, never prompts), runs COMMAND
 * with the session in its environment so `imp api` works inside it, ends the session when COMMAND
 * exits (also on Ctrl-C or SIGTERM), prints the summary to stderr, exits with COMMAND's code.
 */
import { UsageError } from '../../core/errors.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { EXIT } from '../exit-codes.js';
import { brokerTarget, withLogin } from '../login-flow.js';
import { asInputError, collectSessionInput } from '../session-input.js';
import { sessionEnv } from '../subshell.js';
import { formatSummary } from '../summary-format.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'exec',
  group: 'session',
  summary: 'Run a command inside a read-only session (for runbooks)',
  usage:
    'imp exec --tenant <id> [--env <env>] --ticket <id> --reason <text> [--ttl <duration>] [--json] -- <command> [args...]',
  passThrough: true,
  flags: [
    { name: 'tenant', value: '<id>', description: 'Tenant to act as', complete: 'tenants' },
    {
      name: 'env',
      value: '<env>',
      description: 'Environment (needed when the tenant has several)',
      complete: 'environments',
    },
    { name: 'ticket', value: '<id>', description: 'Ticket this run belongs to' },
    { name: 'reason', value: '<text>', description: 'Why this runs' },
    { name: 'ttl', value: '<duration>', description: 'Time limit (default 10m)' },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
  ],
  examples: ['imp exec --tenant acme --ticket INC-9 --reason "Nightly queue diagnostics" -- ./diagnose.sh'],
};

/** Typed options. */
export interface ExecOptions {
  tenant: string;
  env: string | undefined;
  ticket: string;
  reason: string;
  ttl: string;
  broker: string | undefined;
  json: boolean;
  command: string[];
}

/** argv → options: everything is required up front, a runbook never answers prompts. */
export function parse(parsed: ParsedArgs): ExecOptions {
  const tenant = stringFlag(parsed, 'tenant');
  const ticket = stringFlag(parsed, 'ticket');
  const reason = stringFlag(parsed, 'reason');
  const missing = [
    !tenant && '--tenant',
    !ticket && '--ticket',
    !reason && '--reason',
    parsed.rest.length === 0 && '-- <command>',
  ].filter(Boolean);
  if (missing.length > 0) throw new UsageError(`imp exec needs ${missing.join(', ')}.\nUsage: ${spec.usage}`);
  return {
    tenant: tenant!,
    env: stringFlag(parsed, 'env'),
    ticket: ticket!,
    reason: reason!,
    ttl: stringFlag(parsed, 'ttl') ?? '10m',
    broker: stringFlag(parsed, 'broker'),
    json: boolFlag(parsed, 'json'),
    command: parsed.rest,
  };
}

/** Opens, runs, ends, summarises. */
export async function run(options: ExecOptions, deps: Deps): Promise<number> {
  const { io } = deps;
  io.noInput = true;
  const target = await brokerTarget(deps, options.broker);
  const config = await target.client.config();
  const ux = { json: options.json, noBrowser: true };
  const input = await collectSessionInput(
    deps,
    config,
    {
      tenant: options.tenant,
      env: options.env,
      ticket: options.ticket,
      reason: options.reason,
      ttl: options.ttl,
    },
    () => withLogin(deps, target, ux, (token) => target.client.tenants(token)),
  );
  let token = '';
  const opened = await withLogin(deps, target, ux, async (fresh) => {
    token = fresh;
    return target.client
      .openSession(fresh, {
        tenant: input.tenant,
        environment: input.environment,
        scope: 'read',
        ticket: input.ticket,
        reason: input.reason,
        ...(input.ttlSeconds ? { ttl: input.ttlSeconds } : {}),
      })
      .catch(asInputError);
  });
  const session = opened.session;
  if (options.json) io.err(JSON.stringify({ event: 'session_started', session }));
  else
    io.err(
      `imp exec: session ${session.id} (${session.tenant}/${session.environment} read-only) until ${session.expires_at}`,
    );

  const [command, ...args] = options.command;
  const child = deps.runChild(command!, args, sessionEnv(deps.env, session, target.url));
  const expiresAt = Date.parse(session.expires_at ?? '');
  let expired = false;
  const unsubscribe = deps.onSignal((signal) => child.kill(signal === 'SIGHUP' ? 'SIGHUP' : 'SIGTERM'));
  const expiry = setTimeout(
    () => {
      expired = true;
      child.kill('SIGTERM');
    },
    Math.max(0, expiresAt - deps.clock.now()),
  );
  const exit = await child.exited;
  clearTimeout(expiry);
  unsubscribe();

  await target.client.endSession(token, session.id).catch(() => {});
  const summary = await target.client.summary(token, session.id).catch(() => null);
  if (options.json)
    io.err(
      JSON.stringify({
        event: 'session_ended',
        reason: expired ? 'expired' : 'ended',
        exit_code: exit.code,
        signal: exit.signal,
        summary,
      }),
    );
  else if (summary) io.err(formatSummary(summary, 'text'));
  if (expired) return EXIT.sessionOver;
  if (exit.code !== null) return exit.code;
  return exit.signal === 'SIGINT' ? EXIT.interrupted : 128 + signalNumber(exit.signal);
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
  return (signal && numbers[signal]) ?? 1;
}
