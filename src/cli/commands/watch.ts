/**
 * `imp watch <session-id>`: a supervisor watches someone's live session — its terminal as it is
 * recorded, its proxied calls as they happen — with a status line (who, tenant, scope, time left) in
 * the terminal's title. On a TTY `t` terminates the session (a revocation by the watcher) and `q`
 * stops watching. The broker audits joining and leaving; one's own session is refused.
 */
import type { SessionView, WatchEvents } from '../../core/api.js';
import { UsageError } from '../../core/errors.js';
import { escapeUntrusted } from '../../core/escape.js';
import { formatTimeLeft } from '../../core/time-left.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { EXIT } from '../exit-codes.js';
import { brokerTarget, requireStoredLogin, withLogin } from '../login-flow.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'watch',
  group: 'admin',
  summary: "Watch someone's live session; t terminates it (role with supervise)",
  usage: 'imp watch <session-id> [--json]',
  args: [{ name: 'session-id', required: true, description: 'The live session', complete: 'sessions' }],
  flags: [{ name: 'broker', value: '<url>', description: 'Broker URL' }],
  examples: ['imp sessions --tenant acme', 'imp watch 3f2c…'],
};

/** Typed options. */
export interface WatchOptions {
  id: string;
  json: boolean;
  broker: string | undefined;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): WatchOptions {
  const id = parsed.args[0];
  if (!id) throw new UsageError(`imp watch needs a session id.\nUsage: ${spec.usage}`);
  return { id, json: boolFlag(parsed, 'json'), broker: stringFlag(parsed, 'broker') };
}

/** Streams the session until it ends or the watcher leaves. */
export async function run(options: WatchOptions, deps: Deps): Promise<number> {
  const { io, clock } = deps;
  const target = await brokerTarget(deps, options.broker);
  const stored = await requireStoredLogin(deps, target);
  const { watchEvents } = await import('../../client/watch-stream.js');
  const leave = new AbortController();
  const onInterrupt = () => leave.abort();
  deps.interrupt.addEventListener('abort', onInterrupt, { once: true });
  const interactive = io.stdinIsTTY && !options.json;
  let session: SessionView | null = null;
  let terminating: Promise<void> | null = null;
  const terminate = () => {
    terminating ??= withLogin(deps, target, { json: options.json, noBrowser: true }, (token) =>
      target.client.terminateSession(token, options.id),
    ).then(
      () => io.err('\r\nimp: terminating the session…'),
      (error: unknown) => io.err(`\r\nimp: could not terminate: ${(error as Error).message}`),
    );
  };
  const keys = interactive
    ? readKeys(io.stdin as NodeJS.ReadStream, (key) => {
        if (key === 't') terminate();
        else if (key === 'q' || key === '\u0003') leave.abort();
      })
    : null;
  const title = () => {
    if (!session || !io.stderrIsTTY || options.json) return;
    const left = formatTimeLeft(Date.parse(session.expires_at ?? ''), clock.now());
    io.stderr.write(
      `\u001b]0;imp watch ${statusText(session)} — ${left} left — t terminates, q leaves\u0007`,
    );
  };
  const stopTitle = clock.every(1000, title);
  let ended: WatchEvents['end'] | null = null;
  try {
    for await (const event of watchEvents(target.client, stored.token, options.id, leave.signal)) {
      if (options.json) io.out(JSON.stringify({ event: event.name, ...event.data }));
      if (event.name === 'hello') {
        session = event.data.session;
        title();
        if (!options.json)
          io.err(
            `Watching session ${session.id}: ${statusText(session)}, ${formatTimeLeft(Date.parse(session.expires_at ?? ''), clock.now())} left. Supervisors now: ${event.data.supervisors.map(escapeUntrusted).join(', ')}.${interactive ? ' Press t to terminate it, q to stop watching.' : ''}`,
          );
      } else if (options.json) {
        if (event.name === 'end') ended = event.data;
      } else if (event.name === 'output') {
        // The watched terminal's own bytes, escape sequences included: that is what a terminal view is.
        for (const [, code, text] of event.data.events) if (code === 'o') io.stdout.write(text);
      } else if (event.name === 'action') {
        const line = actionLine(event.data);
        if (line) io.err(`\r\n[imp] ${line}`);
      } else if (event.name === 'supervision')
        io.err(`\r\n[imp] ${escapeUntrusted(event.data.who)} ${event.data.type} the watch.`);
      else if (event.name === 'end') ended = event.data;
    }
  } finally {
    stopTitle();
    keys?.();
    deps.interrupt.removeEventListener('abort', onInterrupt);
    if (io.stderrIsTTY && !options.json) io.stderr.write('\u001b]0;\u0007');
  }
  await terminating;
  if (!ended) {
    if (!options.json) io.err('\r\nimp: stopped watching; the session goes on.');
    return EXIT.ok;
  }
  if (!options.json)
    io.err(
      `\r\nimp: session ${options.id} is ${ended.state}${ended.by ? ` by ${escapeUntrusted(ended.by)}` : ''}${ended.comment ? ` ("${escapeUntrusted(ended.comment)}")` : ''}.`,
    );
  return EXIT.ok;
}

function statusText(s: SessionView): string {
  return `${escapeUntrusted(s.requester.email ?? s.requester.sub)} on ${escapeUntrusted(s.tenant)}/${escapeUntrusted(s.environment)} ${s.scope === 'write' ? 'WRITE' : 'read-only'}${s.mode === 'break_glass' ? ' (break-glass)' : ''}, ticket ${escapeUntrusted(s.ticket)}`;
}

function actionLine(a: WatchEvents['action']): string | null {
  const call = `${escapeUntrusted(a.method ?? '?')} ${escapeUntrusted(a.path ?? '?')}`;
  switch (a.type) {
    case 'action.requested':
      return null;
    case 'action.completed':
      return `${call} → ${a.status ?? '?'}`;
    case 'action.denied':
      return `${call} denied (rule ${escapeUntrusted(a.rule ?? '?')})`;
    case 'action.cut':
      return `${call} cut (the session ended mid-call)`;
    default:
      return `${call} failed`;
  }
}

// Raw keys while watching; returns the function that restores the terminal.
function readKeys(stdin: NodeJS.ReadStream, onKey: (key: string) => void): () => void {
  const wasRaw = stdin.isRaw;
  stdin.setRawMode?.(true);
  stdin.setEncoding('utf8');
  const onData = (data: string) => {
    for (const key of data) onKey(key);
  };
  stdin.on('data', onData);
  stdin.resume();
  return () => {
    stdin.off('data', onData);
    stdin.setRawMode?.(wasRaw);
    stdin.pause();
  };
}
