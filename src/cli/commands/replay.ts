/**
 * `imp replay <session-id>`: plays a session's recording in the terminal (speed, idle limit; on a
 * TTY: space pauses, → and ← seek 5 s, q quits), or `--format asciicast` writes the recording as
 * an asciicast v2 file that asciinema plays. Allowed to the session's owner and the audit and
 * review roles; the broker audits every replay.
 */

import { ImpError, UsageError } from '../../core/errors.js';
import { escapeUntrusted } from '../../core/escape.js';
import { type AsciicastEvent, parseAsciicast, playbackTimes } from '../../core/recording/asciicast.js';
import { type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { EXIT } from '../exit-codes.js';
import { brokerTarget, requireStoredLogin } from '../login-flow.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'replay',
  group: 'audit',
  summary: "Play a session's terminal recording, or export it for asciinema",
  usage: 'imp replay <session-id> [--speed <x>] [--idle-limit <seconds>] [--format play|asciicast]',
  args: [{ name: 'session-id', required: true, description: 'The recorded session', complete: 'sessions' }],
  flags: [
    { name: 'speed', value: '<x>', description: 'Playback speed, e.g. 2 for twice as fast (default 1)' },
    { name: 'idle-limit', value: '<seconds>', description: 'Shorten pauses to at most this long' },
    {
      name: 'format',
      value: '<format>',
      description: 'play (default) or asciicast (the file, for asciinema play/cat)',
      choices: ['play', 'asciicast'],
    },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
  ],
  examples: [
    'imp replay 3f2c… --speed 2 --idle-limit 1',
    'imp replay 3f2c… --format asciicast > session.cast && asciinema play session.cast',
  ],
};

/** Typed options. */
export interface ReplayOptions {
  id: string;
  speed: number;
  idleLimit: number | null;
  format: 'play' | 'asciicast';
  broker: string | undefined;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): ReplayOptions {
  const id = parsed.args[0];
  if (!id) throw new UsageError(`imp replay needs a session id.\nUsage: ${spec.usage}`);
  const number = (name: string, fallback: number | null) => {
    const text = stringFlag(parsed, name);
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value <= 0) throw new UsageError(`--${name} must be a positive number.`);
    return value;
  };
  return {
    id,
    speed: number('speed', 1) ?? 1,
    idleLimit: number('idle-limit', null),
    format: (stringFlag(parsed, 'format') ?? 'play') as ReplayOptions['format'],
    broker: stringFlag(parsed, 'broker'),
  };
}

/** Fetches the recording and plays or exports it. */
export async function run(
  options: ReplayOptions,
  deps: Pick<Deps, 'io' | 'env' | 'paths' | 'fetch' | 'credentials' | 'clock'>,
): Promise<number> {
  const { io } = deps;
  const target = await brokerTarget(deps, options.broker);
  const stored = await requireStoredLogin(deps, target);
  const recording = await target.client.getRecording(
    stored.token,
    options.id,
    options.format === 'asciicast' ? 'export' : 'replay',
  );
  if (recording.chunks.length === 0)
    throw new ImpError('IMP_NOT_FOUND', `Session ${escapeUntrusted(options.id)} has no recording.`);
  const text = recording.chunks.map((chunk) => chunk.data).join('');
  if (options.format === 'asciicast') {
    io.stdout.write(text);
    return EXIT.ok;
  }
  const s = recording.session;
  io.err(
    `Replaying session ${s.id}: ${escapeUntrusted(s.requester.email ?? s.requester.sub)} on ${escapeUntrusted(s.tenant)}/${escapeUntrusted(s.environment)}, ticket ${escapeUntrusted(s.ticket)}${io.stdinIsTTY ? ' — space pauses, ←/→ seek 5 s, q quits' : ''}.`,
  );
  const { events } = parseAsciicast(text);
  await play(
    deps,
    events.filter((e) => e[1] === 'o'),
    options,
  );
  io.err('\r\nEnd of recording.');
  return EXIT.ok;
}

const SEEK_SECONDS = 5;

// Output goes to the terminal as it was recorded; the recorded text is what the session's own
// terminal showed, escape sequences included, which is the point of a terminal replay.
async function play(
  deps: Pick<Deps, 'io' | 'clock'>,
  events: AsciicastEvent[],
  options: ReplayOptions,
): Promise<void> {
  const { io, clock } = deps;
  const times = playbackTimes(events, options.speed, options.idleLimit);
  const keys = io.stdinIsTTY ? watchKeys(io.stdin as NodeJS.ReadStream) : null;
  let index = 0;
  let offset = 0; // seconds of playback time skipped (+) or rewound (−) by seeking
  let started = clock.now();
  try {
    while (index < events.length) {
      const key = keys?.take();
      if (key === 'q') return;
      if (key === ' ') {
        const pausedAt = clock.now();
        io.err('\r\n[paused — space resumes]');
        while (keys && keys.take() !== ' ') await clock.sleep(50);
        started += clock.now() - pausedAt;
        continue;
      }
      if (key === 'right' || key === 'left') {
        const now = (clock.now() - started) / 1000 + offset;
        const goal = Math.max(0, now + (key === 'right' ? SEEK_SECONDS : -SEEK_SECONDS));
        if (key === 'left') {
          io.stdout.write('\u001bc');
          index = 0;
        }
        while (index < events.length && times[index]! <= goal) io.stdout.write(events[index++]![2]);
        offset += goal - now;
        continue;
      }
      const due = times[index]! - ((clock.now() - started) / 1000 + offset);
      if (due > 0) await clock.sleep(Math.min(due * 1000, keys ? 50 : due * 1000));
      else io.stdout.write(events[index++]![2]);
    }
  } finally {
    keys?.stop();
  }
}

function watchKeys(stdin: NodeJS.ReadStream): { take(): string | null; stop(): void } {
  const queue: string[] = [];
  const wasRaw = stdin.isRaw;
  stdin.setRawMode?.(true);
  stdin.setEncoding('utf8');
  const onData = (data: string) => {
    if (data === '\u001b[C') queue.push('right');
    else if (data === '\u001b[D') queue.push('left');
    else if (data === '\u0003') queue.push('q');
    else queue.push(...data);
  };
  stdin.on('data', onData);
  stdin.resume();
  return {
    take: () => queue.shift() ?? null,
    stop: () => {
      stdin.off('data', onData);
      stdin.setRawMode?.(wasRaw);
      stdin.pause();
    },
  };
}
