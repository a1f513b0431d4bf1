/** The real clock: the one place outside tests that reads the time and sets timers, for CLI and broker alike. */
import type { Clock } from '../core/clock.js';

/** Date.now and Node's timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  // node:timers/promises is loaded when something first waits, not at every `imp` start.
  sleep: async (ms, signal) => {
    const { setTimeout: delay } = await import('node:timers/promises');
    return delay(ms, undefined, signal ? { signal } : undefined);
  },
  after: (ms, fn, options) => {
    const timer = setTimeout(fn, ms);
    if (options?.unref) timer.unref();
    return () => clearTimeout(timer);
  },
  every: (ms, fn, options) => {
    const timer = setInterval(fn, ms);
    if (options?.unref) timer.unref();
    return () => clearInterval(timer);
  },
};
