/** What the broker decides about a session's recording: its mode and the terms the CLI records under. */
import { type RecordingMode, type RecordingTerms, recordingModeFor } from '../core/policy/recording.js';
import type { Policy } from '../core/policy/types.js';
import type { SessionRecord } from '../store/types.js';

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
