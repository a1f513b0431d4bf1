/** The one error `imp/verify` raises: a stable code for the caller and the HTTP status to answer with. */

/** Why a token or request was refused. */
export type ImpersonationErrorCode =
  | 'missing_token'
  | 'invalid_token'
  | 'expired'
  | 'wrong_audience'
  | 'wrong_issuer'
  | 'insufficient_scope'
  | 'wrong_tenant'
  | 'revoked'
  | 'status_unavailable';

const STATUS_OF: Record<ImpersonationErrorCode, 401 | 403 | 503> = {
  missing_token: 401,
  invalid_token: 401,
  expired: 401,
  wrong_audience: 401,
  wrong_issuer: 401,
  revoked: 401,
  insufficient_scope: 403,
  wrong_tenant: 403,
  // The broker (status or keys) could not be asked: the token may be fine, so not a 401; fail closed.
  status_unavailable: 503,
};

/** A refused token or request; `status` is the HTTP status to answer with. */
export class ImpersonationError extends Error {
  readonly code: ImpersonationErrorCode;
  readonly status: 401 | 403 | 503;

  constructor(code: ImpersonationErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ImpersonationError';
    this.code = code;
    this.status = STATUS_OF[code];
  }
}

/** An `invalid_token` refusal with a reason a service owner can act on. */
export function invalidToken(reason: string, cause?: unknown): ImpersonationError {
  return new ImpersonationError('invalid_token', `The session token was refused: ${reason}.`, { cause });
}
