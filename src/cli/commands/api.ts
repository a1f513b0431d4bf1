/** `imp api METHOD PATH`: call the tenant API through the broker's audited proxy. */
import { readFile } from 'node:fs/promises';
import { execCredentialFrom } from '../../client/exec-credential.js';
import { ImpError, UsageError } from '../../core/errors.js';
import { escapeUntrusted } from '../../core/escape.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { EXIT } from '../exit-codes.js';
import { brokerTarget, requireStoredLogin } from '../login-flow.js';

const METHODS = ['GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH', 'DELETE'];

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'api',
  group: 'session',
  summary: 'Call the tenant API through the audited proxy of your session',
  usage:
    "imp api <method> <path> [--data <json>|@<file>|-] [-H 'Key: Value'] [--session <id>] [--include] [--json]",
  args: [
    { name: 'method', required: true, description: METHODS.join(', ') },
    { name: 'path', required: true, description: 'Path on the tenant API, e.g. /v1/users' },
  ],
  flags: [
    {
      name: 'data',
      short: 'd',
      value: '<body>',
      description: 'Request body: JSON text, @file, or - for stdin',
    },
    {
      name: 'header',
      short: 'H',
      value: '<header>',
      description: "Extra header 'Key: Value' (repeatable)",
      repeatable: true,
    },
    {
      name: 'session',
      value: '<id>',
      description: 'Session (default $IMP_SESSION_ID, else your only active one)',
      complete: 'sessions',
    },
    { name: 'include', short: 'i', description: 'Print the status line and headers before the body' },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
  ],
  examples: [
    'imp api GET /v1/users',
    'imp api PATCH /v1/settings --data \'{"theme":"dark"}\'',
    'imp api GET /v1/export/users.csv > users.csv',
  ],
};

/** Typed options. */
export interface ApiOptions {
  method: string;
  path: string;
  data: string | undefined;
  headers: [string, string][];
  session: string | undefined;
  include: boolean;
  broker: string | undefined;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): ApiOptions {
  const [rawMethod, path] = parsed.args;
  const method = (rawMethod ?? '').toUpperCase();
  if (!METHODS.includes(method))
    throw new UsageError(
      `Unknown method "${escapeUntrusted(rawMethod ?? '')}": use one of ${METHODS.join(', ')}.`,
    );
  if (!path?.startsWith('/')) throw new UsageError('The path must start with /, e.g. /v1/users.');
  const headerValues = (parsed.flags.header as string[] | undefined) ?? [];
  const headers = headerValues.map((h): [string, string] => {
    const at = h.indexOf(':');
    if (at <= 0) throw new UsageError(`Header "${escapeUntrusted(h)}" must look like 'Key: Value'.`);
    return [h.slice(0, at).trim(), h.slice(at + 1).trim()];
  });
  return {
    method,
    path,
    data: stringFlag(parsed, 'data'),
    headers,
    session: stringFlag(parsed, 'session'),
    include: boolFlag(parsed, 'include'),
    broker: stringFlag(parsed, 'broker'),
    json: boolFlag(parsed, 'json'),
  };
}

/** Makes the call: exit 0 when the tenant API answers 2xx, 1 for another answer; the broker's refusals throw. */
export async function run(options: ApiOptions, deps: Deps): Promise<number> {
  const { io } = deps;
  const target = await brokerTarget(deps, options.broker);
  // Under `imp exec`: the session's own credential, which opens only that session's proxy.
  const execCredential = execCredentialFrom(deps.env);
  const execSession = deps.env.IMP_SESSION_ID;
  let sessionId: string;
  let bearer: string;
  if (execCredential && execSession && (options.session === undefined || options.session === execSession)) {
    sessionId = execSession;
    bearer = execCredential;
  } else {
    const stored = await requireStoredLogin(deps, target);
    sessionId = await pickSession(deps, target, stored.token, options.session);
    bearer = stored.token;
  }
  const body = await readBody(deps, options.data);
  const headers: Record<string, string> = Object.fromEntries(options.headers);
  if (body !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-type'))
    headers['content-type'] = 'application/json';
  // The broker's refusals throw coded errors: main maps them to exit codes like every command's.
  const response = await target.client.proxy(bearer, sessionId, options.method, options.path, {
    headers,
    ...(body !== undefined ? { body } : {}),
  });
  const { text } = response;

  io.err(`${response.status} ${response.statusText}`);
  if (options.json) {
    io.out(
      JSON.stringify({
        status: response.status,
        headers: Object.fromEntries(response.headers),
        body: parseMaybe(text),
      }),
    );
  } else {
    if (options.include) {
      io.out(`HTTP ${response.status} ${response.statusText}`);
      for (const [name, value] of response.headers) io.out(`${name}: ${escapeUntrusted(value)}`);
      io.out('');
    }
    const pretty = io.stdoutIsTTY && (response.headers.get('content-type') ?? '').includes('json');
    // JSON.stringify escapes C0 controls but leaves C1 (U+009B is a one-byte CSI) and bidi
    // overrides raw: each line of the pretty form goes through the escaping helper too.
    io.stdout.write(
      pretty
        ? `${JSON.stringify(parseMaybe(text), null, 2)
            .split('\n')
            .map((line) => escapeUntrusted(line))
            .join('\n')}\n`
        : io.stdoutIsTTY
          ? escapeUntrusted(text).replace(/\\n/g, '\n')
          : text,
    );
  }
  return response.status >= 200 && response.status < 300 ? EXIT.ok : EXIT.error;
}

async function pickSession(
  deps: Deps,
  target: Awaited<ReturnType<typeof brokerTarget>>,
  token: string,
  flag: string | undefined,
): Promise<string> {
  const explicit = flag ?? deps.env.IMP_SESSION_ID;
  if (explicit) return explicit;
  const active = await target.client.listSessions(token, ['active']);
  if (active.length === 1) return active[0]!.id;
  if (active.length === 0)
    throw new ImpError('IMP_SESSION_ENDED', 'You have no active session. Start one: imp start --tenant <id>');
  if (!deps.io.canPrompt())
    throw new UsageError('You have several active sessions: pass --session <id> (imp status lists them).');
  const prompter = await deps.prompter();
  return prompter.select({
    message: 'Which session?',
    choices: active.map((s) => ({ value: s.id, name: `${s.tenant}/${s.environment} ${s.scope} (${s.id})` })),
  });
}

async function readBody(deps: Pick<Deps, 'io'>, data: string | undefined): Promise<string | undefined> {
  if (data === undefined) return undefined;
  if (data === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of deps.io.stdin) chunks.push(Buffer.from(chunk as Buffer));
    return Buffer.concat(chunks).toString('utf8');
  }
  if (data.startsWith('@'))
    return readFile(data.slice(1), 'utf8').catch((error: Error) =>
      Promise.reject(new UsageError(`Cannot read ${data.slice(1)}: ${error.message}`)),
    );
  return data;
}

function parseMaybe(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
