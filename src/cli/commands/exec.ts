/**
 * `imp exec`: for runbooks. Opens a read-only session (never write, never prompts), runs COMMAND
 * with the session in its environment so `imp api` works inside it (with a credential for that
 * session's proxy only, never the person's broker token), ends the session when COMMAND
 * exits (also on Ctrl-C or SIGTERM), prints the summary to stderr, exits with COMMAND's code.
 * COMMAND's stdout and stderr are its own: imp's JSON events go to --events-fd/--events (or, with
 * --json alone, stderr), never stdout; a login that needs a person is announced on stderr at once,
 * and --no-login fails at once (exit 3) instead. With --identity-token-file the session belongs to
 * a machine identity (policy `machines:`) and no person is involved at all.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXEC_CREDENTIAL_ENV } from '../../client/exec-credential.js';
import type { SessionView } from '../../core/api.js';
import { parseDuration } from '../../core/duration.js';
import { AuthRequiredError, toImpError, UsageError } from '../../core/errors.js';
import { escapeUntrusted } from '../../core/escape.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { type EventTarget, parseEventsFd } from '../events.js';
import { EXIT } from '../exit-codes.js';
import { type BrokerTarget, brokerTarget, withLogin } from '../login-flow.js';
import { startExecRecording } from '../recording/exec-recording.js';
import { asInputError, collectSessionInput } from '../session-input.js';
import { sessionEnv } from '../subshell.js';
import { formatSummary } from '../summary-format.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'exec',
  group: 'session',
  summary: 'Run a command inside a read-only session (for runbooks)',
  usage:
    'imp exec --tenant <id> [--env <env>] --ticket <id> --reason <text> [--ttl <duration>] [--identity-token-file <file>] [--no-login] [--events-fd <n>|--events <file>] [--json] -- <command> [args...]',
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
    {
      name: 'identity-token-file',
      value: '<file>',
      description: 'Act as a machine identity: a workload token to exchange (also IMP_IDENTITY_TOKEN_FILE)',
      complete: 'files',
    },
    { name: 'no-login', description: 'Never wait for a person to log in: fail at once (exit 3)' },
    { name: 'events-fd', value: '<n>', description: "Write imp's JSON events to this file descriptor" },
    {
      name: 'events',
      value: '<file>',
      description: "Append imp's JSON events to this file",
      complete: 'files',
    },
  ],
  examples: [
    'imp exec --tenant acme --ticket INC-9 --reason "Nightly queue diagnostics" -- ./diagnose.sh',
    'imp exec --tenant acme --ticket INC-9 --reason "Queue check" --no-login --events-fd 3 -- ./diagnose.sh 3>events.jsonl',
    'IMP_IDENTITY_TOKEN_FILE=/var/run/secrets/tokens/imp imp exec --tenant acme --reason "Nightly queue check" -- ./diagnose.sh',
  ],
};

/** Typed options. */
export interface ExecOptions {
  tenant: string;
  /** Absent: the tenant's only environment (with several, a usage error). */
  env: string | undefined;
  ticket: string;
  reason: string;
  ttl: string;
  broker: string | undefined;
  json: boolean;
  command: string[];
  identityTokenFile: string | undefined;
  noLogin: boolean;
  events: EventTarget | undefined;
}

/** argv → options: everything is required up front, a runbook never answers prompts. */
export function parse(parsed: ParsedArgs): ExecOptions {
  const tenant = stringFlag(parsed, 'tenant');
  const ticket = stringFlag(parsed, 'ticket');
  const reason = stringFlag(parsed, 'reason');
  const identityTokenFile = stringFlag(parsed, 'identity-token-file');
  // --ticket is checked in run: with a machine identity (also from IMP_IDENTITY_TOKEN_FILE) its policy
  // entry decides whether a ticket is needed; a person always needs one.
  const missing = [
    !tenant && '--tenant',
    !reason && '--reason',
    parsed.rest.length === 0 && '-- <command>',
  ].filter(Boolean);
  if (missing.length > 0) throw new UsageError(`imp exec needs ${missing.join(', ')}.\nUsage: ${spec.usage}`);
  const eventsFd = stringFlag(parsed, 'events-fd');
  const eventsFile = stringFlag(parsed, 'events');
  if (eventsFd !== undefined && eventsFile !== undefined)
    throw new UsageError('Give --events-fd or --events, not both.');
  return {
    tenant: tenant!,
    env: stringFlag(parsed, 'env'),
    ticket: ticket ?? '',
    reason: reason!,
    ttl: stringFlag(parsed, 'ttl') ?? '10m',
    broker: stringFlag(parsed, 'broker'),
    json: boolFlag(parsed, 'json'),
    command: parsed.rest,
    identityTokenFile,
    noLogin: boolFlag(parsed, 'no-login'),
    events:
      eventsFd !== undefined
        ? { kind: 'fd', fd: parseEventsFd(eventsFd) }
        : eventsFile !== undefined
          ? { kind: 'file', path: eventsFile }
          : undefined,
  };
}

/** Opens, runs, ends, summarises. */
export async function run(options: ExecOptions, deps: Deps): Promise<number> {
  const { io } = deps;
  io.noInput = true;
  const stream = options.events ? deps.openEvents(options.events) : undefined;
  const emit = (event: Record<string, unknown>) => {
    if (stream) stream.write(`${JSON.stringify(event)}\n`);
    else if (options.json) io.err(JSON.stringify(event));
  };
  try {
    return await execute(options, deps, emit, !stream && options.json);
  } catch (error) {
    // The error event goes where the other events go (main prints the human line on stderr).
    const impError = toImpError(error);
    emit({
      event: 'error',
      error: { code: impError.code, message: impError.message, details: impError.details },
    });
    throw error;
  } finally {
    await stream?.close();
  }
}

async function execute(
  options: ExecOptions,
  deps: Deps,
  emit: (event: Record<string, unknown>) => void,
  quiet: boolean,
): Promise<number> {
  const { io } = deps;
  const target = await brokerTarget(deps, options.broker);
  const identityFile = options.identityTokenFile ?? deps.env.IMP_IDENTITY_TOKEN_FILE;
  if (!identityFile && !options.ticket)
    throw new UsageError(`imp exec needs --ticket.\nUsage: ${spec.usage}`);
  const opened = identityFile
    ? await openAsMachine(options, deps, target, identityFile)
    : await openAsPerson(options, deps, target, emit);
  const { session, token } = opened;
  // The child never gets the broker token that opened the session, nor a way to a person's: a
  // credential for this one session's proxy, and an empty state directory instead of the one
  // holding credentials.json.
  const { credential } = await target.client.execCredential(token, session.id).catch(async (error) => {
    await target.client.endSession(token, session.id).catch(() => {});
    throw error;
  });
  const childState = mkdtempSync(join(tmpdir(), 'imp-exec-'));
  const { IMP_CREDENTIAL_STORE: _store, IMP_IDENTITY_TOKEN_FILE: _identity, ...base } = deps.env;
  emit({ event: 'session_started', session, ...(opened.machine ? { machine: opened.machine } : {}) });
  if (!quiet)
    io.err(
      `imp exec: session ${session.id} (${session.tenant}/${session.environment} read-only${opened.machine ? `, machine ${escapeUntrusted(opened.machine)}` : ''}) until ${session.expires_at}`,
    );

  const [command, ...args] = options.command;
  let recordingFailure = '';
  // A signal that arrives while the recording starts (before the command runs) is kept for it.
  let pending: NodeJS.Signals | null = null;
  let kill: (signal: NodeJS.Signals) => void = (signal) => {
    pending ??= signal;
  };
  const unsubscribe = deps.onSignal((signal) => kill(signal === 'SIGHUP' ? 'SIGHUP' : 'SIGTERM'));
  const recording = await startExecRecording(deps, target, token, session, options.command, (why) => {
    // Fail closed: a required recording that stops reaching the broker stops the command.
    recordingFailure = why;
    kill('SIGTERM');
  }).catch(async (error) => {
    unsubscribe();
    rmSync(childState, { recursive: true, force: true });
    await target.client.endSession(token, session.id).catch(() => {});
    throw error;
  });
  const child = deps.runChild(
    command!,
    args,
    {
      ...sessionEnv(base, session, target.url),
      [EXEC_CREDENTIAL_ENV]: credential,
      XDG_STATE_HOME: childState,
    },
    ...(recording ? [recording.tap] : []),
  );
  kill = (signal) => child.kill(signal);
  if (pending) kill(pending);
  const expiresAt = Date.parse(session.expires_at ?? '');
  let expired = false;
  const cancelExpiry = deps.clock.after(Math.max(0, expiresAt - deps.clock.now()), () => {
    expired = true;
    child.kill('SIGTERM');
  });
  const exit = await child.exited;
  cancelExpiry();
  unsubscribe();
  rmSync(childState, { recursive: true, force: true });
  await recording?.finish();
  if (recordingFailure)
    io.err(
      `imp: session ended — its recording could not be delivered: ${recordingFailure}. Policy requires this session to be recorded, so the command was stopped.`,
    );

  await target.client.endSession(token, session.id).catch(() => {});
  const summary = await target.client.summary(token, session.id).catch(() => null);
  emit({
    event: 'session_ended',
    reason: expired ? 'expired' : 'ended',
    exit_code: exit.code,
    signal: exit.signal,
    summary,
  });
  if (!quiet && summary) io.err(formatSummary(summary, 'text'));
  if (expired || recordingFailure) return EXIT.sessionOver;
  if (exit.code !== null) return exit.code;
  return exit.signal === 'SIGINT' ? EXIT.interrupted : 128 + signalNumber(exit.signal);
}

interface Opened {
  session: SessionView;
  /** The broker token that opened the session: it mints the child's credential, ends and summarises. */
  token: string;
  machine: string | null;
}

async function openAsPerson(
  options: ExecOptions,
  deps: Deps,
  target: BrokerTarget,
  emit: (event: Record<string, unknown>) => void,
): Promise<Opened> {
  const config = await target.client.config();
  const ux = { json: options.json, noBrowser: true, noLogin: options.noLogin, events: emit };
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
    // Only without --env: the tenant list needs a login.
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
  return { session: opened.session, token, machine: null };
}

// A machine identity: the workload token is exchanged once (its jti is single use) for a session
// and a broker token good for that session alone (the child gets an exec credential, like a person's).
async function openAsMachine(
  options: ExecOptions,
  deps: Deps,
  target: BrokerTarget,
  file: string,
): Promise<Opened> {
  let identityToken: string;
  try {
    identityToken = (await deps.readTextFile(file)).trim();
  } catch (error) {
    throw new AuthRequiredError(
      `Cannot read the identity token file ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'}): no machine identity to act as.`,
    );
  }
  if (identityToken === '') throw new AuthRequiredError(`The identity token file ${file} is empty.`);
  const ttl = options.ttl === undefined ? undefined : parseDuration(options.ttl, '--ttl');
  const answer = await target.client.exchangeMachineToken(identityToken, {
    tenant: options.tenant,
    environment: options.env,
    ticket: options.ticket || undefined,
    reason: options.reason,
    ttl,
  });
  return { session: answer.session, token: answer.access_token, machine: answer.machine };
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
  return (signal && numbers[signal]) ?? 1;
}
