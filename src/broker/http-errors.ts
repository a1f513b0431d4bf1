/** The one table from error codes to HTTP statuses, and the error body every route sends. */
import type { ErrorBody } from '../core/api.js';
import { type ErrorCode, type ImpError, StepUpRequiredError } from '../core/errors.js';

const STATUS: Record<ErrorCode, number> = {
  IMP_USAGE: 400,
  IMP_INVALID_INPUT: 400,
  IMP_AUTH_REQUIRED: 401,
  IMP_AUTH_FAILED: 401,
  IMP_STEP_UP_REQUIRED: 401,
  IMP_FORBIDDEN: 403,
  IMP_POLICY_DENIED: 403,
  IMP_APPROVAL_DENIED: 403,
  IMP_NOT_FOUND: 404,
  IMP_CONFLICT: 409,
  IMP_RATE_LIMITED: 429,
  IMP_SESSION_EXPIRED: 410,
  IMP_SESSION_ENDED: 410,
  IMP_TIMEOUT: 504,
  IMP_INTERRUPTED: 499,
  IMP_AUDIT_UNAVAILABLE: 503,
  IMP_AUDIT_BROKEN: 500,
  IMP_UNREACHABLE: 502,
  IMP_UPSTREAM: 502,
  IMP_POLICY_INVALID: 500,
  IMP_CONFIG: 500,
  IMP_INTERNAL: 500,
};

// 5xx whose messages are written on purpose for the caller (the proxy's "the tenant API did not answer
// within 30s"); every other 5xx body is generic so internals never leak.
const EXPOSED_5XX: ReadonlySet<ErrorCode> = new Set([
  'IMP_AUDIT_UNAVAILABLE',
  'IMP_UNREACHABLE',
  'IMP_TIMEOUT',
  'IMP_UPSTREAM',
]);

/** HTTP status for an error code. */
export function statusFor(code: ErrorCode): number {
  return STATUS[code];
}

/** Status, headers and body for an error; 5xx bodies are generic except the deliberate 503. */
export function errorResponse(
  error: ImpError,
  requestId: string,
): { status: number; headers: Record<string, string>; body: ErrorBody } {
  const status = statusFor(error.code);
  const headers: Record<string, string> = {};
  if (error instanceof StepUpRequiredError) {
    // RFC 9470 §3: tells the client to authenticate again, recently enough.
    headers['www-authenticate'] =
      `Bearer error="insufficient_user_authentication", error_description="A fresh login is required", max_age=${error.maxAge}`;
  } else if (status === 401) {
    headers['www-authenticate'] = 'Bearer';
  }
  const exposed = status < 500 || EXPOSED_5XX.has(error.code);
  const body: ErrorBody = {
    error: exposed
      ? { code: error.code, message: error.message, details: error.details, request_id: requestId }
      : {
          code: 'IMP_INTERNAL',
          message: `Internal error (request ${requestId}); the broker log has the details.`,
          request_id: requestId,
        },
  };
  return { status, headers, body };
}
