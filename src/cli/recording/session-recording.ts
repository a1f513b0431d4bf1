/**
 * One session's recording on the CLI side: an asciicast recorder whose chunks go through the
 * on-disk uploader to the broker, flushed on a timer. Shared by the recorded shell (`imp start`)
 * and `imp exec`, which records its command line and what the command prints.
 */
import { join } from 'node:path';
import type { SessionView } from '../../core/api.js';
import type { RecordingTerms } from '../../core/policy/recording.js';
import type { AsciicastHeader } from '../../core/recording/asciicast.js';
import type { Deps } from '../deps.js';
import type { BrokerTarget } from '../login-flow.js';
import { AsciicastRecorder } from './recorder.js';
import { RecordingUploader } from './uploader.js';

/** How often pending output is sent as a chunk (the live view's latency). */
const FLUSH_MS = 200;
/** Undelivered chunks kept on disk at most. */
const MAX_BUFFER_BYTES = 16 * 1024 * 1024;

/** A recording in progress. */
export interface SessionRecording {
  recorder: AsciicastRecorder;
  /** Waits up to `timeoutMs` until every chunk so far is delivered; true when it is. */
  delivered(timeoutMs: number): Promise<boolean>;
  /** Sends what is left and stops; true when the broker has every chunk. */
  finish(): Promise<boolean>;
}

/** Starts recording `session` under `terms`; `onFail` ends the session when a required recording cannot be delivered. */
export function openRecording(
  deps: Pick<Deps, 'io' | 'clock' | 'paths'>,
  target: BrokerTarget,
  token: string,
  session: SessionView,
  terms: RecordingTerms,
  onFail: (why: string) => void,
  header: Omit<AsciicastHeader, 'version' | 'timestamp'>,
): SessionRecording {
  const { io, clock } = deps;
  const dir = join(deps.paths.recordingsDir, session.id);
  const uploader = new RecordingUploader({
    dir,
    required: terms.mode === 'required',
    maxOutageMs: terms.max_outage_seconds * 1000,
    maxBufferBytes: MAX_BUFFER_BYTES,
    clock,
    upload: (seq, data) => target.client.uploadRecordingChunk(token, session.id, seq, data),
    onFail,
    onWarn: (message) => io.err(`\r\n${message}`),
  });
  const recorder = new AsciicastRecorder({
    header: { version: 2, timestamp: Math.floor(clock.now() / 1000), ...header },
    startedAt: clock.now(),
    now: () => clock.now(),
    recordInput: terms.input,
    maxChunkBytes: terms.max_chunk_bytes,
    emit: (data) => uploader.push(data),
  });
  const stopFlushing = clock.every(FLUSH_MS, () => recorder.flush());
  return {
    recorder,
    delivered: (timeoutMs) => uploader.drain(timeoutMs),
    async finish() {
      stopFlushing();
      recorder.flush();
      const delivered = await uploader.drain(Math.min(terms.max_outage_seconds * 1000, 10_000));
      if (!delivered)
        io.err(
          `imp: ${uploader.backlog} recording chunk(s) could not be delivered to the broker; they are kept in ${dir}.`,
        );
      await uploader.close();
      return delivered;
    },
  };
}
