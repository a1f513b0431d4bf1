/** `@imp/verify`: what a tenant service imports to accept imp session tokens safely. */
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
} from './middleware.js';
export { DEFAULT_SESSION_AUDIENCE, SESSION_TOKEN_TYPE, type SessionMode } from './token-contract.js';
export {
  ALLOWED_ALGORITHMS,
  createVerifier,
  type ImpersonationContext,
  ImpersonationError,
  type ImpersonationErrorCode,
  type StatusCheckOptions,
  type Verifier,
  type VerifierOptions,
} from './verifier.js';
