/**
 * Audit checkpoints (C2SP tlog-checkpoint, signed with the audit note key): at least every
 * `checkpoint_every` events or `checkpoint_interval` seconds (when the log moved), on request
 * (export, receipt) and at shutdown; each is stored and offered to the witnesses.
 * The chain head is also signed as a JWS checkpoint (the pre-tree format), so the chain verifier
 * keeps locating edits to the exact seq and exports stay readable by older imp.
 */
import { CompactSign } from 'jose';
import { CHECKPOINT_JWS_TYPE, type Checkpoint, checkpointPayload } from '../core/audit/checkpoint.js';

import { parseNote, signNote } from '../core/audit/signed-note.js';
import { formatCheckpoint, parseCheckpoint } from '../core/audit/tlog-checkpoint.js';
import type { BrokerDeps } from './context.js';
import { BROKER_ALG } from './keys.js';
import type { AuditNoteKey } from './note-key.js';
import type { WitnessPusher } from './witnesses.js';

/** Signs a JWS checkpoint for the chain head. */
export async function signCheckpoint(
  deps: Pick<BrokerDeps, 'keys'>,
  head: { seq: number; hash: string },
  ts: string,
): Promise<Checkpoint> {
  const key = deps.keys.active('audit');
  const claims = { seq: head.seq, hash: head.hash, ts };
  const jws = await new CompactSign(new TextEncoder().encode(checkpointPayload(claims)))
    .setProtectedHeader({ alg: BROKER_ALG, kid: key.kid, typ: CHECKPOINT_JWS_TYPE })
    .sign(key.privateKey);
  return { ...claims, jws };
}

/** Keeps checkpoints coming; `close` writes the last one. */
export class Checkpointer {
  private lastSize = 0;
  private lastAt: number;
  private running: Promise<void> = Promise.resolve();
  /** The checkpoint queued behind the running one, not started yet (it covers every later request). */
  private queued: Promise<void> | undefined;
  private failing = false;
  private readonly stopTimer: () => void;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly deps: BrokerDeps,
    private readonly key: AuditNoteKey,
    private readonly witnesses: WitnessPusher,
  ) {
    this.lastAt = deps.clock.now();
    this.unsubscribe = deps.store.onAppended((events) => {
      const newest = events.at(-1)!.seq;
      if (newest - this.lastSize >= deps.policy.audit.checkpointEvery) void this.request();
    });
    this.stopTimer = deps.clock.every(
      1000,
      () => {
        if (this.deps.clock.now() - this.lastAt >= this.deps.policy.audit.checkpointInterval * 1000)
          void this.request();
      },
      { unref: true },
    );
  }

  /** Loads the newest checkpoint (call once at start) and offers it to the witnesses again. */
  async init(): Promise<void> {
    const latest = (await this.deps.store.listNotes()).at(-1);
    if (!latest) return;
    this.lastSize = latest.size;
    const body = parseCheckpoint(parseNote(latest.note).text);
    this.witnesses.offer({
      size: latest.size,
      root: body.root,
      note: stripCosignatures(latest.note, this.key.origin),
    });
  }

  /**
   * Checkpoints the current head if it moved; serialized so two never race. A failure (the HSM
   * refuses, the store is gone) is logged each time and audited once, as `audit.checkpoint_failed`,
   * and the recovery as `audit.checkpoint_recovered` — once each, so a failing signer cannot make
   * the log grow by itself.
   * Requests made while one waits to start share it: it reads the head when it starts, so it covers
   * them. Chaining one per request instead queued a checkpoint for every append made while one was
   * being signed — under steady load the queue (and the broker's memory) grew without bound.
   */
  request(): Promise<void> {
    if (this.queued) return this.queued;
    const queued = this.running
      .then(() => {
        this.queued = undefined;
        return this.checkpointNow();
      })
      .then(
        async () => {
          if (!this.failing) return;
          this.failing = false;
          await this.witnesses.audit('audit.checkpoint_recovered', {});
        },
        async (error: unknown) => {
          const message = (error as Error).message;
          this.deps.log('error', 'could not write an audit checkpoint', { message });
          if (this.failing) return;
          this.failing = true;
          await this.witnesses.audit('audit.checkpoint_failed', { message });
        },
      );
    this.queued = queued;
    this.running = queued;
    return queued;
  }

  private async checkpointNow(): Promise<void> {
    let head = await this.deps.store.treeHead();
    this.lastAt = this.deps.clock.now();
    if (head.size === 0 || head.size <= this.lastSize) return;
    // The log moved: the witnesses' routine cosignatures ride along, covered by this checkpoint.
    if (await this.witnesses.recordCosignatures()) head = await this.deps.store.treeHead();
    const chainHead = await this.deps.store.auditHead();
    if (chainHead) {
      const ts = new Date(this.deps.clock.now()).toISOString();
      await this.deps.store.insertCheckpoint(await signCheckpoint(this.deps, chainHead, ts));
    }
    const note = await signNote(
      formatCheckpoint({ origin: this.key.origin, size: head.size, root: head.root }),
      [this.key.signer],
    );
    await this.deps.store.insertNote(head.size, note);
    this.lastSize = head.size;
    this.witnesses.offer({ size: head.size, root: head.root, note });
  }

  /** Stops the timer and writes a final checkpoint. */
  async close(): Promise<void> {
    this.stopTimer();
    this.unsubscribe();
    // The last checkpoint covers everything acknowledged (PostgreSQL sequences after commit).
    await this.deps.store.settle().catch(() => {});
    await this.request();
  }
}

/** The note with only the log's own signature lines (witnesses get what the log signed). */
export function stripCosignatures(note: string, origin: string): string {
  const parsed = parseNote(note);
  const own = note
    .slice(parsed.text.length + 1)
    .split('\n')
    .filter((line) => line.startsWith(`\u2014 ${origin} `));
  return `${parsed.text}\n${own.map((line) => `${line}\n`).join('')}`;
}
