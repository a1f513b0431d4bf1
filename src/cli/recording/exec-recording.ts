/**
 * `imp exec`'s recording, where policy asks for one: the command line first — delivered before the
 * command starts, since the broker refuses a required recording's calls until chunk 0 is stored —
 * then what the command prints on stdout and stderr, as a terminal would have shown it.
 */
import type { SessionView } from '../../core/api.js';
import { ImpError } from '../../core/errors.js';
import type { ChildTap, Deps } from '../deps.js';
import type { BrokerTarget } from '../login-flow.js';
import { openRecording } from './session-recording.js';

/** A running exec recording. */
export interface ExecRecording {
  /** Hand to runChild: sees the command's output. */
  tap: ChildTap;
  /** Sends what is left; true when the broker has every chunk. */
  finish(): Promise<boolean>;
}

/** Starts recording `command` in `session`, or returns null where policy records nothing. */
export async function startExecRecording(
  deps: Pick<Deps, 'io' | 'clock' | 'paths'>,
  target: BrokerTarget,
  token: string,
  session: SessionView,
  command: readonly string[],
  onFail: (why: string) => void,
): Promise<ExecRecording | null> {
  const terms = session.recording;
  if (!terms || terms.mode === 'off') return null;
  let failure = '';
  const recording = openRecording(
    deps,
    target,
    token,
    session,
    terms,
    (why) => {
      failure = why;
      onFail(why);
    },
    { width: 120, height: 40, title: `imp exec ${session.tenant}/${session.environment} ${session.id}` },
  );
  recording.recorder.output(`$ ${command.map(shellWord).join(' ')}\r\n`);
  recording.recorder.flush();
  const delivered = await recording.delivered(Math.min(terms.max_outage_seconds * 1000, 10_000));
  if (!delivered && terms.mode === 'required') {
    await recording.finish();
    throw new ImpError(
      'IMP_UNREACHABLE',
      `The session's recording could not be delivered${failure ? ` (${failure})` : ''}; policy requires this session to be recorded, so the command was not run.`,
    );
  }
  return {
    // Piped output has bare newlines; a terminal (and asciinema) needs CR LF to start each line at column 0.
    tap: (_stream, data) => recording.recorder.output(data.replace(/\r?\n/g, '\r\n')),
    finish: () => recording.finish(),
  };
}

/** The word as a shell would need it typed: plain words bare, anything else single-quoted. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
