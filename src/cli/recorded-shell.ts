/**
 * The session subshell when policy records it: the shell runs on its own pty, its traffic becomes
 * asciicast chunks streamed to the broker (buffered on disk through short outages). A required
 * recording that cannot be delivered ends the session: fail closed, with the reason on screen.
 */
import type { SessionView } from '../core/api.js';
import type { RecordingTerms } from '../core/policy/recording.js';
import type { Deps } from './deps.js';
import type { BrokerTarget } from './login-flow.js';
import type { AsciicastRecorder } from './recording/recorder.js';
import { openRecording } from './recording/session-recording.js';
import type { ShellLaunch } from './subshell.js';

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
  let recorder: AsciicastRecorder | null = null;
  const early: ['output' | 'input', string][] = [];
  const child = await deps.runPty(launch.command, launch.args, launch.env, {
    output: (data) => (recorder ? recorder.output(data) : early.push(['output', data])),
    input: (data) => (recorder ? recorder.input(data) : early.push(['input', data])),
    resize: (cols, rows) => recorder?.resize(cols, rows),
  });
  const recording = openRecording(deps, target, token, session, terms, onFail, {
    width: child.cols,
    height: child.rows,
    env: { SHELL: launch.command, TERM: launch.env.TERM ?? 'xterm-256color' },
    title: `imp ${session.tenant}/${session.environment} ${session.id}`,
  });
  recorder = recording.recorder;
  for (const [kind, data] of early) recorder[kind](data);
  // Chunk 0 at once: the broker refuses the session's calls until it has it (rule recording.not_started).
  recorder.flush();
  return {
    exited: child.exited,
    kill: (signal) => child.kill(signal),
    finish: () => recording.finish(),
  };
}
