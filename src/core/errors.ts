/**
 * Every failure imp reports carries a stable `code`. The CLI maps codes to exit codes once
 * (src/cli/exit-codes.ts); the broker maps them to HTTP statuses once (src/broker/http-errors.ts).
 */

/** The stable error codes, shared by the CLI, the broker and the wire format. */
export const ERROR_CODES = [
  'IMP_USAGE',
  'IMP_INVALID_INPUT',
  'IMP_AUTH_REQUIRED',
  'IMP_AUTH_FAILED',
  'IMP_STEP_UP_REQUIRED',
  'IMP_FORBIDDEN',
  'IMP_POLICY_DENIED',
  'IMP_APPROVAL_DENIED',
  'IMP_NOT_FOUND',
  'IMP_CONFLICT',
  'IMP_RATE_LIMITED',
  'IMP_SESSION_EXPIRED',
  'IMP_SESSION_ENDED',
  'IMP_TIMEOUT',
  'IMP_INTERRUPTED',
  'IMP_AUDIT_UNAVAILABLE',
  'IMP_AUDIT_BROKEN',
  'IMP_UNREACHABLE',
  'IMP_UPSTREAM',
  'IMP_POLICY_INVALID',
  'IMP_CONFIG',
  'IMP_INTERNAL',
] as const;

/** One of {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** True when `value` is one of the known error codes (used when decoding broker answers). */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

/** Base of every error imp raises on purpose. */
export class ImpError extends Error {
  readonly code: ErrorCode;
  /** Extra machine-readable facts (the rule that denied, a max_age …); safe to show to the caller. */
  readonly details: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details ?? {};
  }
}

/** Bad command line: unknown command or flag, missing value. Exit 2. */
export class UsageError extends ImpError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('IMP_USAGE', message, details ? { details } : {});
  }
}

/** A value was given but is not acceptable (ticket pattern, reason, TTL …). Exit 2 / HTTP 400. */
export class InvalidInputError extends ImpError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('IMP_INVALID_INPUT', message, details ? { details } : {});
  }
}

/** No usable login. Exit 3 / HTTP 401. */
export class AuthRequiredError extends ImpError {
  constructor(
    message = 'Not logged in. Run: imp login',
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super('IMP_AUTH_REQUIRED', message, options);
  }
}

/** A login was attempted and refused (bad token, denied in the browser, expired code). Exit 3 / HTTP 401. */
export class AuthFailedError extends ImpError {
  constructor(message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super('IMP_AUTH_FAILED', message, options);
  }
}

/** The login is valid but not fresh enough for this operation (RFC 9470 step-up). */
export class StepUpRequiredError extends ImpError {
  /** Seconds: the IdP must have authenticated the user within this many seconds. */
  readonly maxAge: number;
  constructor(maxAge: number, message = 'A fresh login is required for this operation.') {
    super('IMP_STEP_UP_REQUIRED', message, { details: { max_age: maxAge } });
    this.maxAge = maxAge;
  }
}

/** Authenticated, but the caller lacks the role or ownership needed. Exit 4 / HTTP 403. */
export class ForbiddenError extends ImpError {
  constructor(message: string, rule?: string) {
    super('IMP_FORBIDDEN', message, rule ? { details: { rule } } : {});
  }
}

/** The policy refused the request; `rule` names which rule. Exit 4 / HTTP 403. */
export class PolicyDeniedError extends ImpError {
  readonly rule: string;
  constructor(rule: string, message: string) {
    super('IMP_POLICY_DENIED', message, { details: { rule } });
    this.rule = rule;
  }
}

/** Something asked for does not exist (or is not visible to the caller). Exit 1 / HTTP 404. */
export class NotFoundError extends ImpError {
  constructor(message: string) {
    super('IMP_NOT_FOUND', message);
  }
}

/** The request conflicts with current state (a second active session, a decided request). HTTP 409. */
export class ConflictError extends ImpError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('IMP_CONFLICT', message, details ? { details } : {});
  }
}

/** The audit log could not be written: the operation did not happen. HTTP 503. */
export class AuditUnavailableError extends ImpError {
  constructor(cause?: unknown) {
    super(
      'IMP_AUDIT_UNAVAILABLE',
      'The audit log cannot be written right now, so the operation was not performed. Try again later.',
      {
        cause,
      },
    );
  }
}

/** A network peer (broker, IdP) could not be reached. Exit 1. */
export class UnreachableError extends ImpError {
  constructor(message: string, cause?: unknown) {
    super('IMP_UNREACHABLE', message, { cause });
  }
}

/** Waiting ran out of time. Exit 5. */
export class TimeoutError extends ImpError {
  constructor(message: string) {
    super('IMP_TIMEOUT', message);
  }
}

/** The user interrupted (Ctrl-C). Exit 130. */
export class InterruptedError extends ImpError {
  constructor(message = 'Interrupted.') {
    super('IMP_INTERRUPTED', message);
  }
}

/** A configuration or policy file is invalid; the message names file, line and key. */
export class ConfigError extends ImpError {
  constructor(message: string, code: 'IMP_CONFIG' | 'IMP_POLICY_INVALID' = 'IMP_CONFIG') {
    super(code, message);
  }
}

/** Wraps anything unexpected so callers always see an ImpError. */
export function toImpError(error: unknown): ImpError {
  if (error instanceof ImpError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new ImpError('IMP_INTERNAL', message, { cause: error });
}
