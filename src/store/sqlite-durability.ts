/**
 * Durability of the SQLite store's commits, off the event loop. The writer connection commits with
 * `synchronous=NORMAL` (its COMMIT writes the WAL frames but does not fsync them); this module then
 * makes each committed group durable with one `fdatasync` of the `-wal` file, run on libuv's thread
 * pool, before any member of the group is acknowledged.
 *
 * The WAL is append-only between checkpoints and a sync covers every byte written to the file before
 * it started (fsync is per inode: any descriptor will do), so a sync covers every group committed
 * before it began. A group committed while one runs does not wait for it to end: a second sync starts
 * at once (at most MAX_SYNCS at a time, to leave libuv's four threads to other work). Syncs are
 * acknowledged in the order they started, so groups are acknowledged in commit order. If a sync fails, the store fails closed: every group not yet durable
 * is rejected and so is everything after — the kernel may have dropped the dirty pages, so what the
 * connection shows can no longer be trusted to be on disk (restart the broker, which re-reads the file).
 */
import { fdatasync as fdatasyncCallback } from 'node:fs';
import { AuditUnavailableError } from '../core/errors.js';

/** Flushes a file's data to stable storage; the default runs `fdatasync(2)` on libuv's thread pool. */
export type Fdatasync = (fd: number) => Promise<void>;

/** `fs.fdatasync`, as a promise: the system call runs on libuv's thread pool, not the event loop. */
export const fdatasyncOffLoop: Fdatasync = (fd) =>
  new Promise((resolve, reject) => fdatasyncCallback(fd, (error) => (error ? reject(error) : resolve())));

/** Syncs in flight at once. */
const MAX_SYNCS = 2;

interface Committed {
  /** Its number in commit order (1, 2, …). */
  n: number;
  durable: () => void;
  lost: (error: unknown) => void;
}

/** Tracks committed groups and acknowledges each once a WAL sync that began after its COMMIT is done. */
export class WalDurability {
  private committed = 0;
  private synced = 0;
  private readonly unsynced: Committed[] = [];
  private readonly waiters: { n: number; resolve: () => void; reject: (error: unknown) => void }[] = [];
  /** Syncs started and not yet acknowledged, in the order they started. */
  private readonly inFlight: { upTo: number; done: boolean }[] = [];
  /** Syncs running now (started, not yet returned). */
  private running = 0;
  /** The last group a sync in flight (or done) covers. */
  private covered = 0;
  private failure: AuditUnavailableError | null = null;

  constructor(
    private readonly walFd: number,
    private readonly sync: Fdatasync,
    /** Called after each successful sync with how many groups are durable in all. */
    private readonly onSynced: (groups: number) => void = () => {},
  ) {}

  /** The error every write (and read) gets once a sync has failed, or null. */
  get failed(): AuditUnavailableError | null {
    return this.failure;
  }

  /** True when every committed group is durable (nothing waits for a sync). */
  get idle(): boolean {
    return this.synced === this.committed || this.failure !== null;
  }

  /**
   * Records a group whose COMMIT just returned and returns its number (1, 2, … in commit order):
   * `durable` runs once a sync covers it, `lost` if the sync fails. Must be called synchronously
   * after the COMMIT, before anything else can write.
   */
  committedGroup(durable: () => void, lost: (error: unknown) => void): number {
    if (this.failure) {
      lost(this.failure);
      return this.committed;
    }
    this.unsynced.push({ n: ++this.committed, durable, lost });
    this.kick();
    return this.committed;
  }

  /**
   * Resolves once the groups up to `group` (default: every group committed so far) are durable: a
   * read that may have seen them must not hand its result out before they are on disk.
   */
  barrier(group = this.committed): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.synced >= group) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ n: group, resolve, reject }));
  }

  /** Resolves when nothing waits for a sync (close waits for this). */
  async settled(): Promise<void> {
    while (!this.idle) await this.barrier().catch(() => {});
  }

  private kick(): void {
    if (this.running >= MAX_SYNCS || this.failure || this.covered === this.committed) return;
    this.running++;
    // Every group counted so far has finished its write(2)s: this sync covers all of them.
    const sync = { upTo: this.committed, done: false };
    this.covered = sync.upTo;
    this.inFlight.push(sync);
    this.sync(this.walFd).then(
      () => {
        this.running--;
        sync.done = true;
        // In start order only: Linux reports a writeback error to one of the fsyncs running on a
        // file, so a later sync's success says nothing while an earlier one may still fail.
        while (this.inFlight[0]?.done && !this.failure) this.acknowledge(this.inFlight.shift()!.upTo);
        this.kick();
      },
      (error: unknown) => {
        this.running--;
        if (this.failure) return;
        this.failure = new AuditUnavailableError(error);
        this.inFlight.length = 0;
        for (const group of this.unsynced.splice(0)) group.lost(this.failure);
        for (const waiter of this.waiters.splice(0)) waiter.reject(this.failure);
      },
    );
  }

  private acknowledge(upTo: number): void {
    this.synced = upTo;
    while (this.unsynced.length > 0 && this.unsynced[0]!.n <= upTo) this.unsynced.shift()!.durable();
    for (let i = 0; i < this.waiters.length; ) {
      if (this.waiters[i]!.n <= upTo) this.waiters.splice(i, 1)[0]!.resolve();
      else i++;
    }
    this.onSynced(upTo);
  }
}
