/** The real clock: the one place outside tests that reads the time for CLI and broker alike. */
import { setTimeout as delay } from 'node:timers/promises';
import type { Clock } from '../core/clock.js';

/** Date.now and timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) => delay(ms, undefined, signal ? { signal } : undefined),
};
