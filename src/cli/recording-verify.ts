/**
 * The recording half of `imp audit verify`: every `recording.chunk` event pins one chunk's SHA-256;
 * the stored chunks are fetched (the broker audits the read) and compared, so a chunk changed or
 * removed in the database — even by its administrator — is named.
 */

import type { BrokerClient } from '../client/broker-client.js';
import type { AuditEvent } from '../core/audit/event.js';
import { chunkHash } from '../core/recording/asciicast.js';

/** One recording chunk that does not match the log. */
export interface RecordingProblem {
  session: string;
  chunk: number;
  /** The audit event that pins it. */
  seq: number;
  kind: 'changed' | 'missing' | 'unlogged';
  message: string;
}

/** Checks the chunks of every recorded session in `events` against their logged hashes. */
export async function verifyRecordings(
  client: BrokerClient,
  token: string,
  events: readonly AuditEvent[],
): Promise<{ sessions: number; chunks: number; problems: RecordingProblem[] }> {
  const logged = new Map<string, Map<number, { sha256: string; seq: number }>>();
  for (const event of events) {
    if (event.type !== 'recording.chunk' || !event.session) continue;
    const data = event.data as { chunk?: number; sha256?: string };
    if (typeof data.chunk !== 'number' || typeof data.sha256 !== 'string') continue;
    if (!logged.has(event.session)) logged.set(event.session, new Map());
    logged.get(event.session)!.set(data.chunk, { sha256: data.sha256, seq: event.seq });
  }
  const problems: RecordingProblem[] = [];
  let chunks = 0;
  for (const [session, pins] of logged) {
    const stored = new Map(
      (await client.getRecording(token, session, 'verify')).chunks.map((c) => [c.seq, c]),
    );
    for (const [chunk, pin] of [...pins].sort((a, b) => a[0] - b[0])) {
      chunks++;
      const found = stored.get(chunk);
      if (!found)
        problems.push({
          session,
          chunk,
          seq: pin.seq,
          kind: 'missing',
          message: `recording chunk ${chunk} of session ${session} is missing (logged at seq ${pin.seq})`,
        });
      else if (chunkHash(found.data) !== pin.sha256)
        problems.push({
          session,
          chunk,
          seq: pin.seq,
          kind: 'changed',
          message: `recording chunk ${chunk} of session ${session} was changed: its SHA-256 differs from the one logged at seq ${pin.seq}`,
        });
    }
    for (const chunk of stored.keys())
      if (!pins.has(chunk))
        problems.push({
          session,
          chunk,
          seq: 0,
          kind: 'unlogged',
          message: `recording chunk ${chunk} of session ${session} is not in the audit log`,
        });
  }
  return { sessions: logged.size, chunks, problems };
}
