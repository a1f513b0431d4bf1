/** What the broker decides about a session's recording: its mode and the terms the CLI records under. */
import { type RecordingMode, type RecordingTerms, recordingModeFor } from '../core/policy/recording.js';
import type { Policy } from '../core/policy/types.js';
import type { SessionRecord } from '../store/types.js';
import type { BrokerDeps } from './context.js';

/** The recording mode of a session under the current policy. */
export function recordingMode(
  policy: Policy,
  session: Pick<SessionRecord, 'tenant' | 'environment' | 'scope' | 'mode'>,
): RecordingMode {
  const tier = policy.tenants.find((t) => t.id === session.tenant)?.tier ?? 'standard';
  return recordingModeFor(policy.recording, { ...session, tier });
}

/** The terms a session is recorded under, as the CLI receives them. */
export function recordingTerms(
  policy: Policy,
  session: Pick<SessionRecord, 'tenant' | 'environment' | 'scope' | 'mode'>,
): RecordingTerms {
  return {
    mode: recordingMode(policy, session),
    input: policy.recording.input,
    max_outage_seconds: policy.recording.maxOutage,
    max_chunk_bytes: policy.recording.maxChunkBytes,
  };
}

/** The facts session.started records about recording and supervision. */
export function recordingFacts(
  policy: Policy,
  session: Pick<SessionRecord, 'tenant' | 'environment' | 'scope' | 'mode'>,
): { recorded: boolean; recording: RecordingMode; supervised_by: string[] } {
  const mode = recordingMode(policy, session);
  return { recorded: mode !== 'off', recording: mode, supervised_by: [] };
}

// Chunks are never removed through the API, so a recording seen started stays started: remembered
// to spare each later call a transaction (bounded; forgetting only costs one more read).
const started = new Set<string>();

/** False while a session whose recording policy requires has no stored chunk 0 (its calls wait for it). */
export async function recordingStarted(
  deps: Pick<BrokerDeps, 'policy' | 'store'>,
  session: SessionRecord,
): Promise<boolean> {
  if (recordingMode(deps.policy, session) !== 'required' || started.has(session.id)) return true;
  const count = await deps.store.transaction((tx) => tx.countRecordingChunks(session.id));
  if (count === 0) return false;
  if (started.size > 10_000) started.clear();
  started.add(session.id);
  return true;
}
