/**
 * Signed checkpoints pin the chain's head at intervals. The chain alone cannot show that its newest
 * events were deleted (the shorter log is still a valid chain); a checkpoint signed by the broker
 * key at seq N proves event N existed with that hash.
 */
import { canonicalJson } from './canonical-json.js';
import type { ChainProblem, CheckpointSignatureVerifier } from './verify-chain.js';

/** What the broker signs as a JWS (compact, payload = canonical JSON of this). */
export interface CheckpointClaims {
  seq: number;
  hash: string;
  ts: string;
}

/** A checkpoint as stored and exported: the claims in clear plus the compact JWS over them. */
export interface Checkpoint extends CheckpointClaims {
  jws: string;
}

/** The JWS `typ` header, so a checkpoint signature can never be mistaken for a broker token. */
export const CHECKPOINT_JWS_TYPE = 'imp-checkpoint+jws';

/** The exact JWS payload text for `claims`; signer and verifier both use this so they agree byte for byte. */
export function checkpointPayload(claims: CheckpointClaims): string {
  return canonicalJson({ seq: claims.seq, hash: claims.hash, ts: claims.ts });
}

/** Shape check for a decoded JWS payload or the clear fields of a stored checkpoint. */
export function isCheckpointClaims(value: unknown): value is CheckpointClaims {
  if (typeof value !== 'object' || value === null) return false;
  const { seq, hash, ts } = value as Record<string, unknown>;
  return (
    typeof seq === 'number' &&
    Number.isSafeInteger(seq) &&
    seq >= 1 &&
    typeof hash === 'string' &&
    /^[0-9a-f]{64}$/.test(hash) &&
    typeof ts === 'string'
  );
}

/** Shape check for a checkpoint read from an export file or the store. */
export function isCheckpoint(value: unknown): value is Checkpoint {
  return isCheckpointClaims(value) && typeof (value as { jws?: unknown }).jws === 'string';
}

/**
 * Checks every checkpoint's shape and signature, lowest seq first, and returns them sorted by seq,
 * or the first problem. Signatures are checked before any event: they are the trust anchors.
 */
export async function verifyCheckpoints(
  checkpoints: readonly Checkpoint[],
  verify: CheckpointSignatureVerifier,
): Promise<Checkpoint[] | ChainProblem> {
  const index = checkpoints.findIndex((cp) => !isCheckpoint(cp));
  if (index >= 0) {
    const broken: unknown = checkpoints[index];
    const seq = typeof broken === 'object' && broken !== null ? (broken as { seq?: unknown }).seq : undefined;
    const at = typeof seq === 'number' && Number.isSafeInteger(seq) ? seq : 0;
    return {
      seq: at,
      kind: 'malformed',
      message: `checkpoint ${at} is malformed: it needs seq, hash, ts and jws`,
    };
  }
  const sorted = [...checkpoints].sort((a, b) => a.seq - b.seq);
  const results = await Promise.allSettled(sorted.map((cp) => Promise.resolve().then(() => verify(cp))));
  for (const [i, cp] of sorted.entries()) {
    const result = results[i]!;
    let why: string | null = null;
    if (result.status === 'rejected') {
      const reason: unknown = result.reason;
      why = `has a bad signature: ${reason instanceof Error ? reason.message : String(reason)}`;
    } else if (!sameClaims(result.value, cp)) {
      why = 'differs from what was signed';
    }
    if (why) return { seq: cp.seq, kind: 'bad_signature', message: `checkpoint ${cp.seq} ${why}` };
  }
  return sorted;
}

function sameClaims(claims: CheckpointClaims, cp: Checkpoint): boolean {
  return claims.seq === cp.seq && claims.hash === cp.hash && claims.ts === cp.ts;
}
