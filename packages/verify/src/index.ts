/**
 * `@imp/verify`: what a tenant service imports to accept imp session tokens safely, and what anyone
 * handed an audit receipt uses to check it offline.
 */
export type { JSONWebKeySet } from 'jose';
export {
  type AccessRequirement,
  authorizeRequest,
  checkAccess,
  type FastifyImpersonationOptions,
  type FastifyLikeReply,
  type FastifyLikeRequest,
  fastifyImpersonation,
  type ImpersonatedRequest,
  impersonationErrorResponse,
  type RequireImpersonationOptions,
  requireImpersonation,
  requireWriteSession,
} from './middleware.js';
export {
  type AuditEvent,
  type AuditReceipt,
  type ReceiptOptions,
  type ReceiptVerification,
  verifyReceipt,
  witnessKey,
} from './receipt.js';
export { DEFAULT_SESSION_AUDIENCE, SESSION_TOKEN_TYPE, type SessionMode } from './token-contract.js';
export {
  ALLOWED_ALGORITHMS,
  createVerifier,
  DEFAULT_CLOCK_TOLERANCE_SECONDS,
  type ImpersonationContext,
  ImpersonationError,
  type ImpersonationErrorCode,
  SESSION_KEY_PREFIX,
  type StatusCheckOptions,
  type Verifier,
  type VerifierOptions,
} from './verifier.js';
