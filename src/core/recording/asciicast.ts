/**
 * asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/): a header line (a JSON object with
 * `version: 2`, `width`, `height`, optional `timestamp`, `env`, …) then one JSON array per line,
 * `[seconds_since_start, code, data]` with code `o` (output), `i` (input) or `r` (resize, "COLSxROWS").
 * A recording travels as chunks of whole lines; chunk 0 starts with the header, and the recording
 * is the chunks concatenated in order, so each chunk's SHA-256 is over exactly the bytes stored.
 */
import { createHash } from 'node:crypto';

/** The header line's fields imp writes. */
export interface AsciicastHeader {
  version: 2;
  width: number;
  height: number;
  timestamp?: number;
  env?: Record<string, string>;
  title?: string;
}

/** One event: time in seconds since the start, its code and its data. */
export type AsciicastEvent = [number, 'o' | 'i' | 'r' | 'm', string];

/** A chunk as uploaded and stored. */
export interface RecordingChunk {
  session: string;
  seq: number;
  /** ms since the epoch, when the broker stored it */
  ts: number;
  data: string;
  sha256: string;
}

/** SHA-256 (hex) of a chunk's text as UTF-8: what the audit log pins. */
export function chunkHash(data: string): string {
  return createHash('sha256').update(data, 'utf8').digest('hex');
}

/** The header line (with its newline). */
export function headerLine(header: AsciicastHeader): string {
  return `${JSON.stringify(header)}\n`;
}

/** One event line (with its newline); times are kept to the microsecond as asciinema writes them. */
export function eventLine(seconds: number, code: AsciicastEvent[1], data: string): string {
  return `${JSON.stringify([Math.round(seconds * 1e6) / 1e6, code, data])}\n`;
}

/** Why a chunk is not acceptable as chunk `seq` of a recording, or null. */
export function chunkProblem(data: string, seq: number): string | null {
  if (data.length === 0) return 'a chunk cannot be empty';
  if (!data.endsWith('\n')) return 'a chunk must end with a newline (whole lines only)';
  const lines = data.slice(0, -1).split('\n');
  for (const [i, line] of lines.entries()) {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return `line ${i + 1} is not JSON`;
    }
    if (seq === 0 && i === 0) {
      const h = value as Partial<AsciicastHeader> | null;
      if (!h || typeof h !== 'object' || h.version !== 2 || !isSize(h.width) || !isSize(h.height))
        return 'chunk 0 must start with an asciicast v2 header ({"version": 2, "width": …, "height": …})';
      continue;
    }
    if (!isEvent(value)) return `line ${i + 1} is not an asciicast event [time, "o"|"i"|"r"|"m", text]`;
  }
  return null;
}

const isSize = (n: unknown) => typeof n === 'number' && Number.isInteger(n) && n > 0 && n < 10_000;

function isEvent(value: unknown): value is AsciicastEvent {
  return (
    Array.isArray(value) &&
    value.length === 3 &&
    typeof value[0] === 'number' &&
    value[0] >= 0 &&
    ['o', 'i', 'r', 'm'].includes(value[1]) &&
    typeof value[2] === 'string'
  );
}

/** A whole recording read back: its header and events (lines that do not parse are skipped). */
export function parseAsciicast(text: string): { header: AsciicastHeader | null; events: AsciicastEvent[] } {
  let header: AsciicastHeader | null = null;
  const events: AsciicastEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      continue;
    }
    if (header === null && value && typeof value === 'object' && !Array.isArray(value))
      header = value as AsciicastHeader;
    else if (isEvent(value)) events.push(value);
  }
  return { header, events };
}

/**
 * Event times as a player shows them: divided by `speed`, and no pause longer than `idleLimit`
 * seconds (asciinema's `--idle-time-limit`). Returns each event's playback time in seconds.
 */
export function playbackTimes(
  events: readonly AsciicastEvent[],
  speed: number,
  idleLimit: number | null,
): number[] {
  const times: number[] = [];
  let previous = 0;
  let at = 0;
  for (const [t] of events) {
    let gap = Math.max(0, t - previous);
    if (idleLimit !== null) gap = Math.min(gap, idleLimit);
    at += gap / speed;
    previous = t;
    times.push(at);
  }
  return times;
}
