/**
 * Time left in a session, one rule for every display (status line, terminal title, `imp status`,
 * `imp sessions`, `imp prompt`, the subshell's PS1): whole seconds under a minute, else whole
 * minutes, always rounded down so no display promises more time than there is. Its own module,
 * importing nothing, because `imp prompt` runs for every shell prompt and loads as little as it can.
 */

/** `45s`, `29m`, `90m` for a number of seconds left. */
export function formatSecondsLeft(secondsLeft: number): string {
  if (Number.isNaN(secondsLeft)) return '?';
  const seconds = Math.max(0, Math.floor(secondsLeft));
  return seconds < 60 ? `${seconds}s` : `${Math.floor(seconds / 60)}m`;
}

/** The time left until `expiresAtMs` at `nowMs`. */
export function formatTimeLeft(expiresAtMs: number, nowMs: number): string {
  return formatSecondsLeft((expiresAtMs - nowMs) / 1000);
}
