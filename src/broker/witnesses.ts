/**
 * Pushes every checkpoint to the policy's witnesses (C2SP tlog-witness add-checkpoint) and keeps
 * their cosignatures with the checkpoint. One loop per witness always offers the newest checkpoint,
 * with a consistency proof from the size that witness last cosigned (learnt from a 409 when unknown),
 * retrying with backoff.
 *
 * Outcomes are audited: a refusal (the witness saw something inconsistent — a rewritten log) is a
 * security event, logged as an error, audited and sent to the alert webhooks; an unreachable witness
 * is audited when it goes away and when it comes back. Routine cosignatures are audited folded: one
 * `audit.witnessed` event, appended just before the next checkpoint the log needed anyway (it moved
 * for other reasons), names per witness the sizes it cosigned since the last one. An event per
 * cosignature would move the log and call for another checkpoint, forever; this one is covered by
 * the checkpoint it rides with, so an idle log stays still.
 *
 * The lag gate: when no quorum has cosigned an event for longer than `audit.witness_lag_max` (time
 * or event count), `lagging()` is true and the broker refuses work like an unwritable store.
 */

import type { AuditDraft } from '../core/audit/event.js';
import type { StoredNote } from '../core/audit/log-tree.js';
import { consistencyRanges, type Hash, nodesFor, rangeHash } from '../core/audit/merkle.js';
import { NoteError, openNote, parseNote } from '../core/audit/signed-note.js';
import { cosignatureVerifier } from '../core/audit/tlog-cosignature.js';
import { AuditUnavailableError } from '../core/errors.js';
import type { Store, TransactionOptions } from '../store/types.js';
import type { BrokerDeps } from './context.js';
import { CosignatureFold, sendRefusalAlert } from './witness-outcomes.js';

/** A checkpoint ready to push: its size, root and log-signed note. */
export interface SignedCheckpoint {
  size: number;
  root: Hash;
  note: string;
}

interface WitnessState {
  url: string;
  key: string;
  name: string;
  verifier: ReturnType<typeof cosignatureVerifier>;
  /** The size this witness last cosigned (null: unknown, ask with old 0). */
  cosigned: number | null;
  reachable: boolean;
  wake: (() => void) | null;
}

/** Retry delays after a failed push (the last one repeats). */
const RETRY_MS = [250, 1000, 5000];

/** The witnesses of one broker. */
export class WitnessPusher {
  private readonly witnesses: WitnessState[];
  private latest: SignedCheckpoint | null = null;
  private readonly stop = new AbortController();
  private readonly loops: Promise<void>[] = [];
  /** (first seq, time) of append batches not yet covered by a quorum, oldest first. */
  private uncovered: { last: number; at: number }[] = [];
  private head = 0;
  private readonly unsubscribe: () => void;
  private readonly routine = new CosignatureFold();

  constructor(
    private readonly deps: BrokerDeps,
    /** The store without the lag gate: the pusher must be able to audit while the gate is shut. */
    private readonly store: Store,
  ) {
    this.witnesses = deps.policy.audit.witnesses.map((w) => {
      const verifier = cosignatureVerifier(w.key);
      return { ...w, name: verifier.name, verifier, cosigned: null, reachable: true, wake: null };
    });
    const grew = (last: number) => {
      if (last <= this.head) return;
      this.head = last;
      if (last > this.quorumSize()) this.uncovered.push({ last, at: deps.clock.now() });
    };
    const offAppended = store.onAppended((events) => grew(events.at(-1)!.seq));
    // Replicas that do not sequence learn of the log's growth from the one that does.
    const offHead = store.onAuditHead?.(grew) ?? (() => {});
    this.unsubscribe = () => {
      offAppended();
      offHead();
    };
  }

  /** Learns what each witness cosigned from the stored cosignatures, and starts the loops. */
  async init(notes: readonly StoredNote[]): Promise<void> {
    for (const { size, note } of notes) {
      for (const sig of safeSignatures(note)) {
        const witness = this.witnesses.find((w) => w.name === sig.name && w.verifier.keyId === sig.keyId);
        if (witness) witness.cosigned = Math.max(witness.cosigned ?? 0, size);
      }
    }
    const head = await this.store.auditHead();
    this.head = head?.seq ?? 0;
    // Events already in the log and not covered count from now: a restart does not shut the gate at once.
    if (this.head > this.quorumSize()) this.uncovered.push({ last: this.head, at: this.deps.clock.now() });
    for (const witness of this.witnesses) this.loops.push(this.run(witness));
  }

  /** Offers a new checkpoint to every witness. */
  offer(checkpoint: SignedCheckpoint): void {
    if (this.latest && checkpoint.size <= this.latest.size) return;
    this.latest = checkpoint;
    for (const witness of this.witnesses) witness.wake?.();
  }

  /** The largest size a quorum of witnesses has cosigned (everything, with no witnesses). */
  quorumSize(): number {
    const quorum = this.deps.policy.audit.witnessQuorum;
    if (this.witnesses.length === 0 || quorum === 0) return Number.MAX_SAFE_INTEGER;
    const sizes = this.witnesses.map((w) => w.cosigned ?? 0).sort((a, b) => b - a);
    return sizes[quorum - 1] ?? 0;
  }

  /** Why the broker must refuse work now (witnesses too far behind), or null. */
  lagging(): string | null {
    const covered = this.quorumSize();
    this.uncovered = this.uncovered.filter((batch) => batch.last > covered);
    const { seconds, events } = this.deps.policy.audit.witnessLagMax;
    if (this.head - covered > events)
      return `${this.head - covered} events are not cosigned by a quorum of witnesses (max ${events})`;
    const oldest = this.uncovered[0];
    if (oldest && this.deps.clock.now() - oldest.at > seconds * 1000)
      return `no quorum of witnesses has cosigned for more than ${seconds}s`;
    return null;
  }

  /** Waits until every witness has cosigned at least `size` (tests, export). Resolves false on timeout. */
  async settled(size: number, timeoutMs: number): Promise<boolean> {
    const deadline = this.deps.clock.now() + timeoutMs;
    while (this.quorumSize() < size) {
      if (this.deps.clock.now() > deadline || this.stop.signal.aborted) return false;
      await this.deps.clock.sleep(20, this.stop.signal).catch(() => {});
    }
    return true;
  }

  /**
   * Appends the folded `audit.witnessed` event when witnesses cosigned since the last one. The
   * checkpointer calls it only when the log has moved, right before signing, so the checkpoint covers
   * it. True when appended. On failure the outcomes stay pending (logged; the next checkpoint retries).
   */
  async recordCosignatures(): Promise<boolean> {
    const pending = this.routine.take();
    if (pending.length === 0) return false;
    try {
      const event = await this.store.transaction((tx) =>
        tx.appendAudit({ type: 'audit.witnessed', data: { witnesses: pending } }, this.deps.clock.now()),
      );
      // The checkpoint about to be signed must cover it: wait for its place in the tree (if that
      // takes too long, the next checkpoint covers it).
      await this.store
        .sequenced([event.id])
        .catch((error: Error) =>
          this.deps.log('warn', 'audit.witnessed is not sequenced yet', { message: error.message }),
        );
      return true;
    } catch (error) {
      this.deps.log('error', 'could not audit witness cosignatures', { message: (error as Error).message });
      this.routine.restore(pending);
      return false;
    }
  }

  /** Stops the loops. */
  async close(): Promise<void> {
    this.unsubscribe();
    this.stop.abort(new Error('broker stopping'));
    for (const witness of this.witnesses) witness.wake?.();
    await Promise.allSettled(this.loops);
  }

  private async run(witness: WitnessState): Promise<void> {
    let failures = 0;
    while (!this.stop.signal.aborted) {
      const checkpoint = this.latest;
      if (!checkpoint || (witness.cosigned ?? -1) >= checkpoint.size) {
        await new Promise<void>((resolve) => {
          witness.wake = resolve;
        });
        witness.wake = null;
        continue;
      }
      const ok = await this.pushOnce(witness, checkpoint).catch((error: unknown) => {
        this.deps.log('warn', 'witness push failed', {
          witness: witness.url,
          message: (error as Error).message,
        });
        return false;
      });
      if (ok) {
        failures = 0;
        continue;
      }
      const delay = RETRY_MS[Math.min(failures++, RETRY_MS.length - 1)]!;
      await this.deps.clock.sleep(delay, this.stop.signal).catch(() => {});
    }
  }

  /** One add-checkpoint exchange (two when the witness's size was unknown). True when cosigned. */
  private async pushOnce(witness: WitnessState, checkpoint: SignedCheckpoint): Promise<boolean> {
    const old = witness.cosigned ?? 0;
    const body = `old ${old}\n${(await this.proof(old, checkpoint.size)).map((h) => `${Buffer.from(h).toString('base64')}\n`).join('')}\n${checkpoint.note}`;
    let response: Response;
    try {
      response = await this.deps.fetch(`${witness.url}/add-checkpoint`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain; charset=utf-8' },
        body,
        signal: AbortSignal.any([this.stop.signal, AbortSignal.timeout(5000)]),
      });
    } catch (error) {
      if (witness.reachable) {
        witness.reachable = false;
        await this.record('audit.witness_unreachable', witness, checkpoint, {
          error: (error as Error).message,
        });
      }
      return false;
    }
    const text = await response.text();
    if (!witness.reachable) {
      witness.reachable = true;
      await this.record('audit.witness_reachable', witness, checkpoint, {});
    }
    if (response.status === 409) {
      const size = /^(0|[1-9][0-9]*)\n$/.test(text) ? Number(text.trim()) : Number.NaN;
      if (Number.isSafeInteger(size) && size <= checkpoint.size && size !== witness.cosigned) {
        witness.cosigned = size;
        return this.pushOnce(witness, checkpoint);
      }
      return this.refused(
        witness,
        checkpoint,
        409,
        `the witness has cosigned size ${text.trim()}: larger than this log`,
      );
    }
    if (response.status !== 200)
      return this.refused(witness, checkpoint, response.status, text.slice(0, 200));
    try {
      const { verified } = openNote(checkpoint.note + text, [witness.verifier]);
      if (verified.length === 0) throw new NoteError('unverified', 'no cosignature');
      const lines = text.split('\n').filter((line) => line.startsWith(`\u2014 ${witness.name} `));
      await this.store.addCosignatures(
        checkpoint.size,
        lines.map((line) => ({ witness: witness.name, line: `${line}\n` })),
      );
    } catch (error) {
      return this.refused(
        witness,
        checkpoint,
        200,
        `its cosignature does not verify: ${(error as Error).message}`,
      );
    }
    witness.cosigned = checkpoint.size;
    this.routine.add(witness.url, witness.name, checkpoint.size);
    return true;
  }

  private async proof(old: number, size: number): Promise<Hash[]> {
    if (old === 0 || old === size) return [];
    const ranges = consistencyRanges(old, size);
    const nodes = nodesFor(ranges);
    const hashes = await this.store.treeNodes(nodes);
    const byKey = new Map(nodes.map((n, i) => [`${n.level}/${n.index}`, hashes[i]!]));
    return ranges.map((range) => rangeHash(range, (n) => byKey.get(`${n.level}/${n.index}`)!));
  }

  private async refused(
    witness: WitnessState,
    checkpoint: SignedCheckpoint,
    status: number,
    why: string,
  ): Promise<false> {
    this.deps.log('error', 'SECURITY: a witness refused the audit checkpoint', {
      witness: witness.url,
      size: checkpoint.size,
      status,
      why,
    });
    await this.record('audit.witness_refused', witness, checkpoint, { status, why });
    await sendRefusalAlert(this.deps, { witness: witness.url, size: checkpoint.size, status, why });
    return false;
  }

  private record(
    type: string,
    witness: WitnessState,
    checkpoint: SignedCheckpoint,
    data: Record<string, unknown>,
  ) {
    return this.audit(type, {
      witness: witness.url,
      witness_name: witness.name,
      size: checkpoint.size,
      ...data,
    });
  }

  /** Audits an outcome of the audit machinery itself, past the lag gate (it must be heard while shut). */
  async audit(type: string, data: Record<string, unknown>): Promise<void> {
    const draft: AuditDraft = { type, data };
    await this.store
      .transaction((tx) => tx.appendAudit(draft, this.deps.clock.now()))
      .catch((error: unknown) =>
        this.deps.log('error', 'could not audit an audit outcome', {
          type,
          message: (error as Error).message,
        }),
      );
  }
}

function safeSignatures(note: string) {
  try {
    return parseNote(note).signatures;
  } catch {
    return [];
  }
}

/**
 * The store as handlers see it: while `lagging` names a reason, every transaction fails with
 * AuditUnavailableError before it runs (503, nothing forwarded), exactly like an unwritable store.
 */
export function gateStore(store: Store, lagging: () => string | null): Store {
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'transaction') {
        return <T>(fn: Parameters<Store['transaction']>[0], options?: TransactionOptions) => {
          const why = lagging();
          if (why) return Promise.reject(new AuditUnavailableError(new Error(`witnesses lag: ${why}`)));
          return target.transaction(fn as never, options) as Promise<T>;
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
