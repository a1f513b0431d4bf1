/**
 * Time as an injected dependency: every read of the time and every timer (countdowns, polling,
 * long-polls, sweepers) goes through a Clock, so a 30-minute countdown test runs in milliseconds.
 */

/** Cancels a timer. */
export type CancelTimer = () => void;

/** Options for a timer: `unref` lets the process exit while it is pending (background work). */
export interface TimerOptions {
  unref?: boolean;
}

/** Reads the time and waits. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Calls `fn` once after `ms`, unless cancelled first. */
  after(ms: number, fn: () => void, options?: TimerOptions): CancelTimer;
  /** Calls `fn` every `ms` until cancelled. */
  every(ms: number, fn: () => void, options?: TimerOptions): CancelTimer;
}

interface FakeTimer {
  at: number;
  /** Repeats every `interval` ms; 0 for a one-off. */
  interval: number;
  fire: () => void;
}

/**
 * A clock tests move by hand. `advance` walks time forward to each due timer or sleeper in turn,
 * firing it at its own instant and letting the work it starts run before moving on.
 */
export class FakeClock implements Clock {
  private current: number;
  private timers = new Set<FakeTimer>();

  constructor(start = Date.UTC(2026, 10, 24, 12, 0, 0)) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const cancel = this.after(ms, resolve);
      signal?.addEventListener(
        'abort',
        () => {
          cancel();
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  after(ms: number, fn: () => void): CancelTimer {
    return this.add({ at: this.current + Math.max(0, ms), interval: 0, fire: fn });
  }

  every(ms: number, fn: () => void): CancelTimer {
    const interval = Math.max(1, ms);
    return this.add({ at: this.current + interval, interval, fire: fn });
  }

  /** Timers and sleepers still waiting. */
  pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way, in order. */
  async advance(ms: number): Promise<void> {
    const until = this.current + ms;
    for (;;) {
      let next: FakeTimer | undefined;
      for (const timer of this.timers) if (timer.at <= until && (!next || timer.at < next.at)) next = timer;
      if (!next) break;
      this.current = Math.max(this.current, next.at);
      if (next.interval > 0) next.at += next.interval;
      else this.timers.delete(next);
      next.fire();
      await settle();
    }
    this.current = until;
    await settle();
  }

  private add(timer: FakeTimer): CancelTimer {
    this.timers.add(timer);
    return () => {
      this.timers.delete(timer);
    };
  }
}

// Lets promise chains a timer started run to their next real wait (a macrotask turn).
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
