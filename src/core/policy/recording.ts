/**
 * Which sessions are recorded. `recording.rules` match on tenant tier, environment and scope; the
 * strictest matching rule wins (required > optional > off), `default` applies where none matches,
 * and a break-glass session is at least `break_glass` (required unless the policy says otherwise).
 */
import type { Scope } from './types.js';

/** How a session's terminal is recorded. */
export type RecordingMode = 'required' | 'optional' | 'off';
/** All modes, weakest first (the order strictness is compared in). */
export const RECORDING_MODES: readonly RecordingMode[] = ['off', 'optional', 'required'];

/** One `recording.rules` entry; empty lists match everything. */
export interface RecordingRule {
  tiers: string[];
  environments: string[];
  scopes: Scope[];
  mode: RecordingMode;
}

/** The validated `recording:` section. */
export interface RecordingPolicy {
  default: RecordingMode;
  breakGlass: RecordingMode;
  rules: RecordingRule[];
  /** Keystrokes are recorded too (they can hold secrets, so off unless asked for). */
  input: boolean;
  /** Seconds a required recording may stay undelivered before the CLI ends the session. */
  maxOutage: number;
  /** The largest chunk the broker accepts, in bytes of its JSON string (≤ 60 KiB: the broker's body limit is 64 KiB). */
  maxChunkBytes: number;
}

/** The defaults when a policy has no `recording:` section: nothing recorded but break-glass. */
export const DEFAULT_RECORDING: RecordingPolicy = {
  default: 'off',
  breakGlass: 'required',
  rules: [],
  input: false,
  maxOutage: 30,
  maxChunkBytes: 32 * 1024,
};

/** What the CLI is told about a session's recording (part of the session view). */
export interface RecordingTerms {
  mode: RecordingMode;
  input: boolean;
  max_outage_seconds: number;
  max_chunk_bytes: number;
}

const matches = (list: readonly string[], value: string) =>
  list.length === 0 || list.includes('*') || list.includes(value);

/** The stricter of two modes. */
export function stricter(a: RecordingMode, b: RecordingMode): RecordingMode {
  return RECORDING_MODES.indexOf(a) >= RECORDING_MODES.indexOf(b) ? a : b;
}

/** The recording mode of a session on a tenant of `tier`. */
export function recordingModeFor(
  policy: RecordingPolicy,
  session: { tier: string; environment: string; scope: Scope; mode: 'standard' | 'break_glass' },
): RecordingMode {
  const matching = policy.rules.filter(
    (rule) =>
      matches(rule.tiers, session.tier) &&
      matches(rule.environments, session.environment) &&
      matches(rule.scopes, session.scope),
  );
  let mode = matching.length === 0 ? policy.default : matching.map((r) => r.mode).reduce(stricter, 'off');
  if (session.mode === 'break_glass') mode = stricter(mode, policy.breakGlass);
  return mode;
}
