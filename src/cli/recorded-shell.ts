/**
 * The session subshell when policy records it: the shell runs on its own pty, its traffic becomes
 * asciicast chunks streamed to the broker (buffered on disk through short outages). A required
 * recording that cannot be delivered ends the session: fail closed, with the reason on screen.
 */
import { join } from 'node:path';
import type { SessionView } from '../core/api.js';
import type { RecordingTerms } from '../core/policy/recording.js';
import type { Deps } from './deps.js';
import type { BrokerTarget } from './login-flow.js';
import { AsciicastRecorder } from './recording/recorder.js';
import { RecordingUploader } from './recording/uploader.js';
import type { ShellLaunch } from './subshell.js';

/** How often pending output is sent as a chunk (the live view's latency). */
const FLUSH_MS = 200;
/** Undelivered chunks kept on disk at most. */
const MAX_BUFFER_BYTES = 16 * 1024 * 1024;

/** The running recorded shell. */
export interface RecordedShell {
  exited: Promise<unknown>;
  kill(signal: NodeJS.Signals): void;
  /** Sends what is left; true when the broker has every chunk. */
  finish(): Promise<boolean>;
}

/** Starts the shell on a pty and records it under `terms`. */
export async function startRecordedShell(
  deps: Pick<Deps, 'io' | 'clock' | 'paths' | 'runPty'>,
  target: BrokerTarget,
  token: string,
  session: SessionView,
  terms: RecordingTerms,
  launch: ShellLaunch,
  onFail: (why: string) => void,
): Promise<RecordedShell> {
  const { io, clock } = deps;
  const uploader = new RecordingUploader({
    dir: join(deps.paths.recordingsDir, session.id),
    required: terms.mode === 'required',
    maxOutageMs: terms.max_outage_seconds * 1000,
    maxBufferBytes: MAX_BUFFER_BYTES,
    clock,
    upload: (seq, data) => target.client.uploadRecordingChunk(token, session.id, seq, data),
    onFail,
    onWarn: (message) => io.err(`\r\n${message}`),
  });
  let recorder: AsciicastRecorder | null = null;
  const early: ['output' | 'input', string][] = [];
  const child = await deps.runPty(launch.command, launch.args, launch.env, {
    output: (data) => (recorder ? recorder.output(data) : early.push(['output', data])),
    input: (data) => (recorder ? recorder.input(data) : early.push(['input', data])),
    resize: (cols, rows) => recorder?.resize(cols, rows),
  });
  recorder = new AsciicastRecorder({
    header: {
      version: 2,
      width: child.cols,
      height: child.rows,
      timestamp: Math.floor(clock.now() / 1000),
      env: { SHELL: launch.command, TERM: launch.env.TERM ?? 'xterm-256color' },
      title: `imp ${session.tenant}/${session.environment} ${session.id}`,
    },
    startedAt: clock.now(),
    now: () => clock.now(),
    recordInput: terms.input,
    maxChunkBytes: terms.max_chunk_bytes,
    emit: (data) => uploader.push(data),
  });
  for (const [kind, data] of early) recorder[kind](data);
  const stopFlushing = clock.every(FLUSH_MS, () => recorder?.flush());
  return {
    exited: child.exited,
    kill: (signal) => child.kill(signal),
    async finish() {
      stopFlushing();
      recorder?.flush();
      const delivered = await uploader.drain(Math.min(terms.max_outage_seconds * 1000, 10_000));
      if (!delivered)
        io.err(
          `imp: ${uploader.backlog} recording chunk(s) could not be delivered to the broker; they are kept in ${join(deps.paths.recordingsDir, session.id)}.`,
        );
      await uploader.close();
      return delivered;
    },
  };
}
