/** Verifies audit checkpoint signatures against a JWKS — the same code online (broker) and offline (CLI). */
import { compactVerify, createLocalJWKSet, type JSONWebKeySet } from 'jose';
import { CHECKPOINT_JWS_TYPE, isCheckpointClaims } from '../core/audit/checkpoint.js';
import type { CheckpointSignatureVerifier } from '../core/audit/verify-chain.js';

/** A verifier that accepts only `imp-checkpoint+jws` signatures by a key in `jwks`. */
export function checkpointVerifier(jwks: JSONWebKeySet): CheckpointSignatureVerifier {
  const keys = createLocalJWKSet(jwks);
  return async (checkpoint) => {
    const { payload, protectedHeader } = await compactVerify(checkpoint.jws, keys, {
      algorithms: ['ES256', 'EdDSA'],
    });
    if (protectedHeader.typ !== CHECKPOINT_JWS_TYPE)
      throw new Error(`typ is ${String(protectedHeader.typ)}, not ${CHECKPOINT_JWS_TYPE}`);
    const claims: unknown = JSON.parse(new TextDecoder().decode(payload));
    if (!isCheckpointClaims(claims)) throw new Error('the signed payload is not a checkpoint');
    return claims;
  };
}
