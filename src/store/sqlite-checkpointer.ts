/**
 * WAL checkpoints of the SQLite store, in a worker thread. The writer connection never checkpoints
 * (`wal_autocheckpoint=0`: with `synchronous=NORMAL` it would copy pages into the database file and
 * fsync it on the event loop). A second connection, in a worker thread with `synchronous=FULL`, runs
 * `PRAGMA wal_checkpoint(PASSIVE)`, which syncs the WAL before it copies a page into the database
 * file and syncs the database file after — so no page reaches the database file before the WAL frame
 * it came from is on disk — and never takes the writer's lock. SQLite's WAL page names this split
 * ("turn off the automatic checkpoints and run checkpoints … in a separate thread or process").
 *
 * A checkpoint running beside the writer copies only what was committed when it began, so under a
 * steady load the WAL would never be wholly copied and SQLite would never rewind it (it grows without
 * bound: "checkpoint starvation"). So once the WAL holds REWIND_FRAMES frames, the next checkpoint
 * runs while the store holds its next group back (requests keep being served; only their
 * transactions wait); then the whole log is copied and the next COMMIT starts the WAL from the top.
 * SQLite syncs the rewound WAL's new header once then (on the event loop, once per ~1,000 pages):
 * that sync is what keeps stale frames from an earlier cycle from being replayed after a power loss.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * About this many WAL pages between checkpoints (SQLite's own default is 1,000). The store cannot see
 * pages, only groups, so the number of groups between checkpoints is re-estimated from each
 * checkpoint's report of the WAL's length.
 */
const CHECKPOINT_PAGES = 500;
/** A WAL this long (in pages) is rewound: the next checkpoint holds writes until it has copied everything. */
const REWIND_FRAMES = 1000;

// CommonJS run by the worker (`eval`): a file of its own would not load under the TypeScript test runner.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = ' + workerData.busyTimeoutMs);
db.pragma('synchronous = FULL');
db.pragma('wal_autocheckpoint = 0');
parentPort.on('message', ({ id, mode }) => {
  try {
    if (mode === 'CLOSE') {
      db.pragma('wal_checkpoint(TRUNCATE)');
      db.close();
      parentPort.postMessage({ id, busy: 0, log: 0, checkpointed: 0 });
      parentPort.close();
      return;
    }
    const [row] = db.pragma('wal_checkpoint(' + mode + ')');
    parentPort.postMessage({ id, busy: row.busy, log: row.log, checkpointed: row.checkpointed });
  } catch (error) {
    parentPort.postMessage({ id, error: { message: String(error && error.message), code: error && error.code } });
  }
});
`;

/** What `PRAGMA wal_checkpoint` reports: busy (1 if it could not finish), WAL frames, frames copied. */
export interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}

type Reply = CheckpointResult & { id: number; error?: { message: string; code?: string } };

/** Runs the store's checkpoints on a connection of its own in a worker thread. */
export class WalCheckpointer {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly replies = new Map<
    number,
    { resolve: (r: CheckpointResult) => void; reject: (e: Error) => void }
  >();
  private running: Promise<void> | null = null;
  /** Durable groups when the last checkpoint was asked for, and the WAL's length it reported. */
  private lastAt = 0;
  private walFrames = 0;
  private every = 16;
  /** Durable groups so far, and before how many no rewind is tried again (one that a reader blocked). */
  private groups = 0;
  private rewindAfter = 0;
  private error: Error | null = null;
  private dead = false;
  private closed = false;

  constructor(file: string, busyTimeoutMs: number) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, file, busyTimeoutMs } });
    // Only an answer being waited for keeps the process alive (see request()).
    this.worker.unref();
    this.worker.on('message', (reply: Reply) => {
      const waiting = this.replies.get(reply.id);
      this.replies.delete(reply.id);
      if (this.replies.size === 0) this.worker.unref();
      if (!waiting) return;
      if (reply.error)
        waiting.reject(Object.assign(new Error(reply.error.message), { code: reply.error.code }));
      else waiting.resolve(reply);
    });
    const dead = (error: Error) => {
      this.dead = true;
      this.error = error;
      for (const waiting of this.replies.values()) waiting.reject(error);
      this.replies.clear();
    };
    this.worker.on('error', dead);
    this.worker.on('exit', (code) => {
      if (!this.closed) dead(new Error(`the checkpoint worker exited with code ${code}`));
    });
  }

  /** The last checkpoint's error (an I/O error copying into the database file), for health checks. */
  get lastError(): Error | null {
    return this.error;
  }

  /** True when the WAL is long enough that the next checkpoint should run with writes held. */
  get wantsRewind(): boolean {
    return (
      this.walFrames >= REWIND_FRAMES &&
      this.groups >= this.rewindAfter &&
      !this.closed &&
      this.running === null
    );
  }

  /** Called after each WAL sync with the number of durable groups: starts a checkpoint now and then. */
  synced(groups: number): void {
    this.groups = groups;
    if (this.running || this.closed || groups - this.lastAt < this.every) return;
    const since = groups - this.lastAt;
    const framesBefore = this.walFrames;
    this.lastAt = groups;
    this.run().then(() => {
      // Pages per group since the last checkpoint (a rewound WAL restarted from zero meanwhile).
      const added = this.walFrames >= framesBefore ? this.walFrames - framesBefore : this.walFrames;
      const perGroup = Math.max(1, added / since);
      this.every = Math.min(256, Math.max(4, Math.round(CHECKPOINT_PAGES / perGroup)));
    });
  }

  /** A checkpoint while the caller holds writes back: it copies the whole WAL, so SQLite can rewind it. */
  async rewind(): Promise<void> {
    await (this.running ?? this.run(true));
  }

  /** A final checkpoint (TRUNCATE, synchronous=FULL), then the worker ends. */
  async close(): Promise<void> {
    if (this.running) await this.running;
    this.closed = true;
    await this.request('CLOSE').catch(() => {});
    await this.worker.terminate();
  }

  private run(writesHeld = false): Promise<void> {
    const running = this.request('PASSIVE').then(
      (result) => {
        this.error = null;
        // Beside a running writer a log wholly copied still grows before the next COMMIT can rewind
        // it; with writes held, the next COMMIT does rewind it.
        this.walFrames = writesHeld && result.checkpointed === result.log ? 0 : result.log;
        // Another connection (an export, an operator's sqlite3) kept part of the WAL: holding every
        // group for another try would only stall writes until it lets go.
        if (writesHeld && this.walFrames > 0) this.rewindAfter = this.groups + this.every;
      },
      (error: Error) => {
        // The WAL still holds every frame (nothing is lost); the next checkpoint tries again.
        this.error = error;
      },
    );
    this.running = running.finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private request(mode: 'PASSIVE' | 'CLOSE'): Promise<CheckpointResult> {
    if (this.dead) return Promise.reject(this.error);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.replies.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ id, mode });
    });
  }
}
