/**
 * Folds repeated refusals from one source so an anonymous client cannot turn junk requests into
 * durable audit writes (each one an fsync). Per window and per (source address, event type, reason),
 * the first `foldAfter` refusals are written as they happen, with all their detail; the rest are
 * counted and written as one `access.refusals` event when the window ends (or the broker stops).
 * A broker killed mid-window loses at most that window's count, never an individual event it wrote.
 */
import type { AuditDraft } from '../core/audit/event.js';
import type { BrokerDeps } from './context.js';

interface Folded {
  type: string;
  ip: string;
  reason: string;
  written: number;
  folded: number;
  firstFoldedAt: number | null;
  lastFoldedAt: number | null;
}

/** Refusal audit with folding; one per broker. */
export class RefusalFolder {
  private window = -1;
  private entries = new Map<string, Folded>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly deps: BrokerDeps) {
    // Flushes a finished window even when no new refusal arrives to notice it.
    this.timer = setInterval(() => {
      this.flushIfDue().catch((error: unknown) =>
        deps.log('error', 'could not audit folded refusals', { message: (error as Error).message }),
      );
    }, 1000);
    this.timer.unref();
  }

  /** Audits a refusal by an unauthenticated source: written now, or counted into the window's fold. */
  async record(draft: AuditDraft, source: { ip: string; reason: string }): Promise<void> {
    await this.flushIfDue();
    const now = this.deps.clock.now();
    const key = `${source.ip}\u0000${draft.type}\u0000${source.reason}`;
    let entry = this.entries.get(key);
    if (!entry) {
      entry = {
        type: draft.type,
        ip: source.ip,
        reason: source.reason,
        written: 0,
        folded: 0,
        firstFoldedAt: null,
        lastFoldedAt: null,
      };
      this.entries.set(key, entry);
    }
    if (entry.written < this.deps.policy.rateLimit.foldAfter) {
      entry.written++;
      await this.deps.store.transaction((tx) => tx.appendAudit(draft, now));
      return;
    }
    entry.folded++;
    entry.firstFoldedAt ??= now;
    entry.lastFoldedAt = now;
  }

  /** Writes what the current window folded (at shutdown, and when a window ends). */
  async flush(): Promise<void> {
    const pending = [...this.entries.values()].filter((entry) => entry.folded > 0);
    this.entries = new Map();
    if (pending.length === 0) return;
    const now = this.deps.clock.now();
    await this.deps.store.transaction(async (tx) => {
      for (const entry of pending)
        await tx.appendAudit(
          {
            type: 'access.refusals',
            actor: null,
            data: {
              refused: entry.type,
              reason: entry.reason,
              ip: entry.ip,
              count: entry.folded,
              first_at: new Date(entry.firstFoldedAt!).toISOString(),
              last_at: new Date(entry.lastFoldedAt!).toISOString(),
            },
          },
          now,
        );
    });
  }

  /** Stops the timer and writes what is left. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  private async flushIfDue(): Promise<void> {
    const windowMs = this.deps.policy.rateLimit.window * 1000;
    const current = Math.floor(this.deps.clock.now() / windowMs);
    if (current === this.window) return;
    this.window = current;
    await this.flush();
  }
}
