/**
 * Durability of the SQLite store's commits, off the event loop. The writer connection commits with
 * `synchronous=NORMAL` (its COMMIT writes the WAL frames but does not fsync them); this module then
 * makes each committed group durable with one `fdatasync` of the `-wal` file, run on libuv's thread
 * pool, before any member of the group is acknowledged.
 *
 * The WAL is append-only between checkpoints and a sync covers every byte written to the file before
 * it started (fsync is per inode: any descriptor will do), so one sync in flight covers every group
 * committed before it began; groups committed while it runs wait for the next one. Groups are
 * acknowledged in commit order. If a sync fails, the store fails closed: every group not yet durable
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
  private syncing = false;
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
    if (this.syncing || this.failure || this.synced === this.committed) return;
    this.syncing = true;
    // Every group counted so far has finished its write(2)s: this sync covers all of them.
    const upTo = this.committed;
    this.sync(this.walFd).then(
      () => {
        this.syncing = false;
        this.synced = upTo;
        while (this.unsynced.length > 0 && this.unsynced[0]!.n <= upTo) this.unsynced.shift()!.durable();
        for (let i = 0; i < this.waiters.length; ) {
          if (this.waiters[i]!.n <= upTo) this.waiters.splice(i, 1)[0]!.resolve();
          else i++;
        }
        this.onSynced(upTo);
        this.kick();
      },
      (error: unknown) => {
        this.syncing = false;
        this.failure = new AuditUnavailableError(error);
        for (const group of this.unsynced.splice(0)) group.lost(this.failure);
        for (const waiter of this.waiters.splice(0)) waiter.reject(this.failure);
      },
    );
  }
}
