/** `imp api METHOD PATH`: call the tenant API through the broker's audited proxy. */
import { STATUS_CODES } from 'node:http';
import { execCredentialFrom } from '../../client/exec-credential.js';
import { ImpError, InvalidInputError, UsageError } from '../../core/errors.js';
import { escapeUntrusted } from '../../core/escape.js';
import { resolveProxyTarget } from '../../core/proxy-path.js';
import { type ApiField, buildRequest, parseField } from '../api-request.js';
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
    "imp api <method> <path> [-f <key=value>]... [-F <key=value|key=@file>]... [--data <json>|@<file>|-] [-H 'Key: Value'] [--jq <filter>] [--include] [--session <id>] [--json]",
  args: [
    { name: 'method', required: true, description: METHODS.join(', ') },
    { name: 'path', required: true, description: 'Path on the tenant API, e.g. /v1/users' },
  ],
  flags: [
    {
      name: 'raw-field',
      short: 'f',
      value: '<key=value>',
      description: 'A string field: query parameter for GET, JSON body member otherwise (repeatable)',
      repeatable: true,
    },
    {
      name: 'field',
      short: 'F',
      value: '<key=value>',
      description: 'A typed field: true, false, null and numbers as JSON, @file reads a file (repeatable)',
      repeatable: true,
    },
    {
      name: 'jq',
      short: 'q',
      value: '<filter>',
      description: 'Select from the JSON answer with a jq filter; strings print raw',
    },
    { name: 'filter', value: '<filter>', description: 'Same as --jq' },
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
    {
      name: 'include',
      short: 'i',
      description: 'Print the HTTP status line and response headers before the body',
    },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
  ],
  examples: [
    'imp api GET /v1/users',
    'imp api PATCH /v1/settings --data \'{"theme":"dark"}\'',
    'imp api GET /v1/export/users.csv > users.csv',
    'imp api GET /v1/users -f role=admin --jq ".[].email"',
    'imp api POST /v1/notes -f title=Checked -F pinned=true -F body=@note.txt',
  ],
};

/** Typed options. */
export interface ApiOptions {
  method: string;
  path: string;
  data: string | undefined;
  fields: ApiField[];
  jq: string | undefined;
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
  // Checked here because fetch would quietly resolve `/../admin` into another broker route.
  const where = resolveProxyTarget('http://tenant.invalid/', path);
  if (!where.ok)
    throw new InvalidInputError(`Refused by rule path.escape: ${where.reason}.`, { rule: 'path.escape' });
  const jq = stringFlag(parsed, 'jq');
  const filter = stringFlag(parsed, 'filter');
  if (jq !== undefined && filter !== undefined && jq !== filter)
    throw new UsageError('Give the filter once: --jq and --filter are the same flag.');
  if ((jq ?? filter) !== undefined && boolFlag(parsed, 'json'))
    throw new UsageError('--jq selects from the answer itself; leave out --json.');
  const fields = [
    ...((parsed.flags['raw-field'] as string[] | undefined) ?? []).map((f) => parseField(f, false)),
    ...((parsed.flags.field as string[] | undefined) ?? []).map((f) => parseField(f, true)),
  ];
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
    fields,
    jq: jq ?? filter,
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
  const { path, body } = await buildRequest(deps, options.method, options.path, options.fields, options.data);
  const headers: Record<string, string> = Object.fromEntries(options.headers);
  if (body !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-type'))
    headers['content-type'] = 'application/json';
  // The broker's refusals throw coded errors: main maps them to exit codes like every command's.
  const response = await target.client.proxy(bearer, sessionId, options.method, path, {
    headers,
    ...(body !== undefined ? { body } : {}),
  });
  const { text } = response;

  // HTTP/2 has no reason phrase: name the status the way HTTP/1.1 would.
  const statusLine =
    `${response.status} ${response.statusText || STATUS_CODES[response.status] || ''}`.trim();
  io.err(statusLine);
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
      io.out(`HTTP ${statusLine}`);
      for (const [name, value] of response.headers) io.out(`${name}: ${escapeUntrusted(value)}`);
      io.out('');
    }
    const ok = response.status >= 200 && response.status < 300;
    if (options.jq !== undefined && ok) io.stdout.write(forTerminal(io, await runJqLazily(text, options.jq)));
    else io.stdout.write(bodyText(io, response, text));
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

async function runJqLazily(text: string, filter: string): Promise<string> {
  const { runJq } = await import('../jq.js');
  return runJq(text, filter);
}

// Escaped on a terminal (server text must not drive it); exact bytes into a pipe or file.
function forTerminal(io: Deps['io'], text: string): string {
  return io.stdoutIsTTY ? escapeUntrusted(text).replace(/\\n/g, '\n') : text;
}

// JSON is pretty on a terminal; JSON and text end with a newline when piped, so the next shell
// prompt or `while read` does not lose the last line. Other types (downloads) pass byte for byte.
function bodyText(io: Deps['io'], response: { headers: Headers }, text: string): string {
  const type = response.headers.get('content-type') ?? '';
  const isJson = type.includes('json');
  // JSON.stringify escapes C0 controls but leaves C1 (U+009B is a one-byte CSI) and bidi overrides
  // raw: each line of the pretty form goes through the escaping helper too.
  if (io.stdoutIsTTY && isJson)
    return `${JSON.stringify(parseMaybe(text), null, 2)
      .split('\n')
      .map((line) => escapeUntrusted(line))
      .join('\n')}\n`;
  const shown = forTerminal(io, text);
  const textual = isJson || type.startsWith('text/plain');
  return (io.stdoutIsTTY || textual) && shown !== '' && !shown.endsWith('\n') ? `${shown}\n` : shown;
}

function parseMaybe(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
