/**
 * Delivers recording chunks to the broker in order, surviving a short outage: each chunk is first
 * written under the state directory (0600, in a 0700 directory per session) and deleted once the
 * broker has it. The buffer is bounded. A required recording that stays undelivered longer than
 * the policy's bound (or overflows the buffer) is a failure the session must not outlive: `onFail`
 * is called once and the caller ends the session. An optional one keeps buffering and catches up,
 * and stops recording (with a warning) only if the buffer fills.
 */
import { mkdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CancelTimer, Clock } from '../../core/clock.js';
import { ImpError } from '../../core/errors.js';

/** What the uploader works with. */
export interface UploaderOptions {
  dir: string;
  required: boolean;
  maxOutageMs: number;
  maxBufferBytes: number;
  clock: Clock;
  upload: (seq: number, data: string) => Promise<void>;
  /** A required recording could not be delivered: end the session, saying why. */
  onFail: (why: string) => void;
  /** An optional recording has a problem worth telling the user once. */
  onWarn: (message: string) => void;
}

interface Pending {
  seq: number;
  data: string;
  bytes: number;
  since: number;
  file: string;
  /** Settles once the chunk is on disk. */
  written: Promise<void>;
}

/** The queue between the recorder and the broker. */
export class RecordingUploader {
  private readonly queue: Pending[] = [];
  private nextSeq = 0;
  private buffered = 0;
  private pumping: Promise<void> | null = null;
  private lastError = '';
  private failed = false;
  private stopped = false;
  private warnedOutage = false;
  private readonly ready: Promise<unknown>;
  private readonly stopWatchdog: CancelTimer;

  constructor(private readonly options: UploaderOptions) {
    this.ready = mkdir(options.dir, { recursive: true, mode: 0o700 });
    this.stopWatchdog = options.clock.every(250, () => this.check());
  }

  /** Chunks not yet delivered. */
  get backlog(): number {
    return this.queue.length;
  }

  /** Queues the next chunk (kept on disk until delivered). */
  push(data: string): void {
    if (this.stopped || this.failed) return;
    const bytes = Buffer.byteLength(data, 'utf8');
    if (this.buffered + bytes > this.options.maxBufferBytes) {
      const why = `the local recording buffer is full (${Math.round(this.options.maxBufferBytes / 1024)} KiB undelivered${this.lastError ? `; ${this.lastError}` : ''})`;
      if (this.options.required) this.fail(why);
      else {
        this.stopped = true;
        this.options.onWarn(`imp: recording stopped: ${why}.`);
      }
      return;
    }
    const seq = this.nextSeq++;
    const item: Pending = {
      seq,
      data,
      bytes,
      since: this.options.clock.now(),
      file: join(this.options.dir, `${seq}.cast`),
      written: Promise.resolve(),
    };
    // On disk at once, before any upload: temp + rename, so a crash never leaves half a chunk.
    item.written = this.ready
      .then(() => writeFile(`${item.file}.tmp`, data, { mode: 0o600 }))
      .then(() => rename(`${item.file}.tmp`, item.file))
      .catch(() => {});
    this.queue.push(item);
    this.buffered += bytes;
    this.pumping ??= this.pump();
  }

  /** Tries to deliver everything within `timeoutMs`; true when nothing is left. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = this.options.clock.now() + timeoutMs;
    while (this.queue.length > 0 && !this.failed && this.options.clock.now() < deadline) {
      this.pumping ??= this.pump();
      await Promise.race([this.pumping, this.options.clock.sleep(100)]);
    }
    return this.queue.length === 0;
  }

  /** Stops the watchdog; removes the session's directory when everything was delivered. */
  async close(): Promise<void> {
    this.stopWatchdog();
    this.stopped = true;
    if (this.queue.length === 0) await rmdir(this.options.dir).catch(() => {});
  }

  private check(): void {
    const oldest = this.queue[0];
    if (!oldest || this.failed) return;
    const late = this.options.clock.now() - oldest.since;
    if (late <= this.options.maxOutageMs) return;
    const why = `the broker has not taken it for ${Math.round(late / 1000)} s${this.lastError ? ` (${this.lastError})` : ''}`;
    if (this.options.required) this.fail(why);
    else if (!this.warnedOutage) {
      this.warnedOutage = true;
      this.options.onWarn(
        `imp: the recording is not reaching the broker (${why}); buffering it locally and catching up later.`,
      );
    }
  }

  private fail(why: string): void {
    if (this.failed) return;
    this.failed = true;
    this.options.onFail(why);
  }

  private async pump(): Promise<void> {
    try {
      await this.ready;
      let delay = 200;
      while (this.queue.length > 0 && !this.failed) {
        const head = this.queue[0]!;
        await head.written;
        try {
          await this.options.upload(head.seq, head.data);
        } catch (error) {
          this.lastError =
            error instanceof Error ? error.message.split('\n')[0]!.slice(0, 200) : String(error);
          if (isRefusal(error)) {
            // The broker answered and said no: retrying cannot help.
            if (this.options.required) this.fail(`the broker refused it: ${this.lastError}`);
            else {
              this.stopped = true;
              this.options.onWarn(`imp: recording stopped: the broker refused it: ${this.lastError}`);
            }
            return;
          }
          await this.options.clock.sleep(delay);
          delay = Math.min(delay * 2, 2000);
          continue;
        }
        delay = 200;
        this.lastError = '';
        this.warnedOutage = false;
        this.queue.shift();
        this.buffered -= head.bytes;
        await rm(head.file, { force: true });
      }
    } finally {
      this.pumping = null;
    }
  }
}

function isRefusal(error: unknown): boolean {
  if (!(error instanceof ImpError)) return false;
  const status = (error.details as { status?: number } | undefined)?.status;
  return typeof status === 'number' && status >= 400 && status < 500;
}
