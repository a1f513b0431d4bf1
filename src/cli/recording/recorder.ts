/**
 * Turns what passes through the session's pty into asciicast v2 chunks: output always, keystrokes
 * only when policy asks, resizes. Lines are grouped into chunks no larger (JSON-escaped, as sent)
 * than the broker's limit; a single burst of output bigger than that is split over several lines.
 */
import { type AsciicastHeader, eventLine, headerLine } from '../../core/recording/asciicast.js';

/** What the recorder needs to know. */
export interface RecorderOptions {
  header: AsciicastHeader;
  /** ms since the epoch, when recording started (time 0 of the events). */
  startedAt: number;
  now: () => number;
  recordInput: boolean;
  maxChunkBytes: number;
  /** Receives each finished chunk, in order. */
  emit: (data: string) => void;
}

const encodedSize = (text: string) => Buffer.byteLength(JSON.stringify(text), 'utf8');

/** Builds chunks from pty traffic; `flush` ends the current chunk (called on a timer and at the end). */
export class AsciicastRecorder {
  private pending = '';
  private pendingSize = 0;
  private readonly pieceChars: number;

  constructor(private readonly options: RecorderOptions) {
    // Worst case one UTF-16 unit becomes 7 bytes (a control character escaped in the line, then again
    // in the chunk's JSON string), plus the line's own brackets and time.
    this.pieceChars = Math.max(64, Math.floor((options.maxChunkBytes - 200) / 7));
    this.add(headerLine(options.header));
  }

  /** Text the terminal showed. */
  output(data: string): void {
    this.event('o', data);
  }

  /** Keys the person typed (kept only where policy records input). */
  input(data: string): void {
    if (this.options.recordInput) this.event('i', data);
  }

  /** The window changed size. */
  resize(cols: number, rows: number): void {
    this.event('r', `${cols}x${rows}`);
  }

  /** Emits what is pending as a chunk, if anything. */
  flush(): void {
    if (!this.pending) return;
    const chunk = this.pending;
    this.pending = '';
    this.pendingSize = 0;
    this.options.emit(chunk);
  }

  private event(code: 'o' | 'i' | 'r', data: string): void {
    const seconds = Math.max(0, (this.options.now() - this.options.startedAt) / 1000);
    for (const piece of split(data, this.pieceChars)) this.add(eventLine(seconds, code, piece));
  }

  private add(line: string): void {
    const size = encodedSize(line);
    if (this.pendingSize + size > this.options.maxChunkBytes - 16) this.flush();
    this.pending += line;
    this.pendingSize += size;
  }
}

/** Splits text into pieces of at most `max` UTF-16 units without cutting a surrogate pair. */
function split(text: string, max: number): string[] {
  const pieces: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(text.length, start + max);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
    pieces.push(text.slice(start, end));
    start = end;
  }
  return pieces;
}
