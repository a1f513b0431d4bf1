/**
 * Signed checkpoints of the audit chain: at least every `checkpoint_every` events or
 * `checkpoint_interval` seconds (when the log moved), and at shutdown. A checkpoint is what makes
 * deleting the newest events detectable. Signed with the `audit` key, published in the JWKS.
 */
import { CompactSign } from 'jose';
import { CHECKPOINT_JWS_TYPE, type Checkpoint, checkpointPayload } from '../core/audit/checkpoint.js';
import type { BrokerDeps } from './context.js';
import { BROKER_ALG } from './keys.js';

/** Signs a checkpoint for the chain head. */
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
  private lastSeq = 0;
  private lastAt: number;
  private running: Promise<void> = Promise.resolve();
  private readonly stopTimer: () => void;
  private readonly unsubscribe: () => void;

  constructor(private readonly deps: BrokerDeps) {
    this.lastAt = deps.clock.now();
    this.unsubscribe = deps.store.onAppended((events) => {
      const newest = events.at(-1)!.seq;
      if (newest - this.lastSeq >= deps.policy.audit.checkpointEvery) this.request();
    });
    this.stopTimer = deps.clock.every(
      1000,
      () => {
        if (this.deps.clock.now() - this.lastAt >= this.deps.policy.audit.checkpointInterval * 1000)
          this.request();
      },
      { unref: true },
    );
  }

  /** Loads where the last checkpoint is (call once at start). */
  async init(): Promise<void> {
    this.lastSeq = (await this.deps.store.listCheckpoints()).at(-1)?.seq ?? 0;
  }

  /** Checkpoints the current head if it moved; serialized so two never race. */
  request(): Promise<void> {
    this.running = this.running
      .then(() => this.checkpointNow())
      .catch((error: unknown) => {
        this.deps.log('error', 'could not write an audit checkpoint', { message: (error as Error).message });
      });
    return this.running;
  }

  private async checkpointNow(): Promise<void> {
    const head = await this.deps.store.auditHead();
    this.lastAt = this.deps.clock.now();
    if (!head || head.seq <= this.lastSeq) return;
    const checkpoint = await signCheckpoint(this.deps, head, new Date(this.deps.clock.now()).toISOString());
    await this.deps.store.insertCheckpoint(checkpoint);
    this.lastSeq = head.seq;
  }

  /** Stops the timer and writes a final checkpoint. */
  async close(): Promise<void> {
    this.stopTimer();
    this.unsubscribe();
    await this.request();
  }
}
