/**
 * Deliveries the broker makes after the fact (break-glass alerts, summaries on tickets): one try per
 * entry of a schedule, each delay slept on the injected clock, stopped by the broker stopping. One
 * loop, so every delivery counts its tries and words a stop the same way.
 */
import type { Clock } from '../core/clock.js';

/** One try: delivered, or failed with why and whether another try could change the answer. */
export type TryOutcome<T> = { ok: true; value: T } | { ok: false; error: string; permanent: boolean };

/** The success and how many tries it took, or the last error and how many were made. */
export type ScheduleOutcome<T> =
  | { ok: true; value: T; attempts: number }
  | { ok: false; error: string; attempts: number };

/** Tries `attempt` after each delay of `delaysMs` until one succeeds, one fails for good, or `signal` stops. */
export async function tryOnSchedule<T>(
  delaysMs: readonly number[],
  clock: Clock,
  signal: AbortSignal,
  attempt: (n: number) => Promise<TryOutcome<T>>,
): Promise<ScheduleOutcome<T>> {
  let attempts = 0;
  let error = 'not attempted';
  for (const delay of delaysMs) {
    if (delay > 0) {
      try {
        await clock.sleep(delay, signal);
      } catch {
        return { ok: false, error: `${error}; broker stopped before the next try`, attempts };
      }
    }
    if (signal.aborted) break;
    attempts++;
    const outcome = await attempt(attempts);
    if (outcome.ok) return { ok: true, value: outcome.value, attempts };
    error = outcome.error;
    if (outcome.permanent) break;
  }
  return { ok: false, error, attempts };
}
