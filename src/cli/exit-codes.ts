/** The one table from error codes to exit codes (see README "Exit codes"). */
import type { ErrorCode } from '../core/errors.js';

/** Stable exit codes, as documented. */
export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  auth: 3,
  denied: 4,
  timeout: 5,
  sessionOver: 6,
  interrupted: 130,
} as const;

const BY_CODE: Record<ErrorCode, number> = {
  IMP_USAGE: EXIT.usage,
  IMP_INVALID_INPUT: EXIT.usage,
  IMP_AUTH_REQUIRED: EXIT.auth,
  IMP_AUTH_FAILED: EXIT.auth,
  IMP_STEP_UP_REQUIRED: EXIT.auth,
  IMP_FORBIDDEN: EXIT.denied,
  IMP_POLICY_DENIED: EXIT.denied,
  IMP_APPROVAL_DENIED: EXIT.denied,
  IMP_NOT_FOUND: EXIT.error,
  IMP_CONFLICT: EXIT.error,
  IMP_RATE_LIMITED: EXIT.error,
  IMP_SESSION_EXPIRED: EXIT.sessionOver,
  IMP_SESSION_ENDED: EXIT.sessionOver,
  IMP_TIMEOUT: EXIT.timeout,
  IMP_INTERRUPTED: EXIT.interrupted,
  IMP_AUDIT_UNAVAILABLE: EXIT.error,
  IMP_AUDIT_BROKEN: EXIT.error,
  IMP_UNREACHABLE: EXIT.error,
  IMP_UPSTREAM: EXIT.error,
  IMP_POLICY_INVALID: EXIT.usage,
  IMP_CONFIG: EXIT.error,
  IMP_INTERNAL: EXIT.error,
};

/** Maps an error code to the process exit code. */
export function exitCodeFor(code: ErrorCode): number {
  return BY_CODE[code];
}
