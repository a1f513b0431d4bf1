/** Durations as people type them: `90s`, `10m`, `1h`, `1h30m`, `7d`. */
import { InvalidInputError } from './errors.js';

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
const DURATION_PATTERN = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/** Parses a duration into whole seconds; throws InvalidInputError naming the accepted forms. */
export function parseDuration(text: string, what = 'duration'): number {
  const trimmed = text.trim();
  const match = DURATION_PATTERN.exec(trimmed);
  if (!trimmed || !match || match.slice(1).every((part) => part === undefined)) {
    throw new InvalidInputError(
      `Invalid ${what} "${text}": use a number with a unit, such as 90s, 10m, 1h or 1h30m.`,
    );
  }
  const [, d, h, m, s] = match;
  const seconds =
    Number(d ?? 0) * UNIT_SECONDS.d! +
    Number(h ?? 0) * UNIT_SECONDS.h! +
    Number(m ?? 0) * UNIT_SECONDS.m! +
    Number(s ?? 0);
  if (!Number.isSafeInteger(seconds) || seconds <= 0) {
    throw new InvalidInputError(`Invalid ${what} "${text}": it must be longer than zero.`);
  }
  return seconds;
}

/** Formats seconds compactly for people: `29m`, `1h05m`, `45s`. */
export function formatDuration(totalSeconds: number): string {
  const seconds = Math.max(0, Math.floor(totalSeconds));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) {
    const m = Math.floor(seconds / 60);
    const s = seconds % 60;
    return s === 0 || m >= 10 ? `${m}m` : `${m}m${String(s).padStart(2, '0')}s`;
  }
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return m === 0 ? `${h}h` : `${h}h${String(m).padStart(2, '0')}m`;
}
