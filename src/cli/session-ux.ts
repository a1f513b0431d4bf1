/**
 * A session in the terminal, shared by `imp start` and `imp break-glass`: the wait for approval,
 * then the subshell (or --no-shell countdown) with the countdown in the title, warnings at 5 and 1
 * minutes, forced logout at expiry or revocation, and the summary at the end.
 */

import type { SessionView } from '../core/api.js';
import { formatDuration } from '../core/duration.js';
import { ImpError, InterruptedError, TimeoutError } from '../core/errors.js';
import { escapeUntrusted } from '../core/escape.js';
import { consoleLink } from '../core/links.js';
import type { RecordingTerms } from '../core/policy/recording.js';
import { shortId } from '../core/short-id.js';
import { formatSecondsLeft, formatTimeLeft } from '../core/time-left.js';
import type { Deps } from './deps.js';
import { EXIT } from './exit-codes.js';
import type { BrokerTarget } from './login-flow.js';
import { startRecordedShell } from './recorded-shell.js';
import { startSpinner } from './spinner.js';
import { prepareShell, sessionEnv, sessionLabel } from './subshell.js';
import { formatSummary } from './summary-format.js';
import { waitForSupervisor } from './supervision-wait.js';

/** How long the subshell gets to exit after SIGHUP before SIGKILL. */
const FORCED_LOGOUT_GRACE_MS = 3000;
/** How often the parent asks the broker whether the session was revoked. */
const STATUS_POLL_MS = 5000;
/** Warnings before a forced logout, largest first. */
const WARN_AT_SECONDS = [300, 60];

/** Waits while a request is pending; Ctrl-C withdraws it. Returns the decided session. */
export async function waitForApproval(
  deps: Pick<Deps, 'io' | 'interrupt'>,
  target: BrokerTarget,
  token: string,
  session: SessionView,
  json: boolean,
): Promise<SessionView> {
  const { io } = deps;
  const link = consoleLink(target.url, 'request', session.id);
  if (json) io.out(JSON.stringify({ event: 'approval_pending', request: session, console_url: link }));
  else {
    io.err(`Request ${shortId(session.id)} needs approval by a second person. They run:`);
    io.err(`  imp approve ${shortId(session.id)}`);
    io.err(`or open: ${link}`);
  }
  const decided = await waitWhilePending(
    deps,
    target,
    token,
    session,
    json ? null : 'Waiting for approval… (Ctrl-C withdraws the request)',
  );
  if (decided.state === 'active') {
    const by = decided.decided_by;
    if (json) io.out(JSON.stringify({ event: 'approved', by, comment: decided.decision_comment ?? null }));
    else io.err(`Approved by ${personText(by)}${commentText(decided.decision_comment)}.`);
  }
  return decided;
}

function personText(person: { sub: string; email: string | null } | null | undefined): string {
  return escapeUntrusted(person?.email ?? person?.sub ?? 'someone');
}

function commentText(comment: string | null | undefined): string {
  return comment ? `: "${escapeUntrusted(comment)}"` : ' (no comment)';
}

/** Long-polls while a request is pending, with a spinner unless `spinnerText` is null; Ctrl-C withdraws it. */
export async function waitWhilePending(
  deps: Pick<Deps, 'io' | 'interrupt'>,
  target: BrokerTarget,
  token: string,
  session: SessionView,
  spinnerText: string | null,
): Promise<SessionView> {
  const spinner = spinnerText === null ? null : await startSpinner(deps.io, spinnerText);
  try {
    let current = session;
    while (current.state === 'pending') {
      try {
        current = await target.client.getSession(token, session.id, 25, deps.interrupt);
      } catch (error) {
        if (!deps.interrupt.aborted) throw error;
        await target.client.endSession(token, session.id).catch(() => {});
        throw new InterruptedError(`Request ${shortId(session.id)} withdrawn.`);
      }
    }
    return current;
  } finally {
    spinner?.stop();
  }
}

/** Turns a decided request into an error unless it became active. */
export function requireActive(session: SessionView): SessionView {
  if (session.state === 'active') return session;
  if (session.state === 'denied') {
    throw new ImpError(
      'IMP_APPROVAL_DENIED',
      `Request denied by ${escapeUntrusted(session.decided_by?.email ?? 'an approver')}: ${escapeUntrusted(session.decision_comment ?? 'no reason given')}`,
    );
  }
  if (session.state === 'request_expired')
    throw new TimeoutError(`Nobody approved request ${shortId(session.id)} in time; it expired.`);
  throw new ImpError('IMP_SESSION_ENDED', `Request ${shortId(session.id)} is ${session.state}.`);
}

/** Options for {@link runActiveSession}. */
export interface ActiveSessionOptions {
  json: boolean;
  noShell: boolean;
}

type EndReason = 'ended' | 'expired' | 'revoked' | 'recording';

/** Runs the active session until the user leaves, it expires or is revoked; prints the summary. */
export async function runActiveSession(
  deps: Deps,
  target: BrokerTarget,
  token: string,
  session: SessionView,
  options: ActiveSessionOptions,
): Promise<number> {
  const { io } = deps;
  // A supervised session's time starts when its first supervisor joins: the view is re-read then.
  session = await waitForSupervisor(deps, target, token, session, options.json);
  const expiresAt = Date.parse(session.expires_at ?? '');
  const label = sessionLabel(session);
  const link = consoleLink(target.url, 'session', session.id);
  if (options.json) io.out(JSON.stringify({ event: 'session_started', session, console_url: link }));
  else
    io.err(
      `Session ${shortId(session.id)} is active: ${label}, until ${session.expires_at} (${formatDuration((expiresAt - deps.clock.now()) / 1000)}).\n  ${link}`,
    );

  const stop = new AbortController();
  let reason: EndReason | null = null;
  let revoked: SessionView | null = null;
  let recordingFailure = '';
  const finish = (why: EndReason) => {
    reason ??= why;
    stop.abort();
  };
  // A session that starts with less than a threshold left was told its length by the banner: no
  // warning for that threshold, and never two in one tick (a 4-minute session warns once, at 1 min).
  const initialLeft = Math.floor((expiresAt - deps.clock.now()) / 1000);
  const warned = new Set(WARN_AT_SECONDS.filter((threshold) => threshold >= initialLeft));
  const tick = () => {
    const left = Math.max(0, Math.floor((expiresAt - deps.clock.now()) / 1000));
    if (io.stderrIsTTY && !options.json)
      io.stderr.write(`\u001b]0;imp ${label} — ${formatTimeLeft(expiresAt, deps.clock.now())} left\u0007`);
    const due = WARN_AT_SECONDS.filter((threshold) => left <= threshold && !warned.has(threshold));
    const threshold = due.at(-1);
    if (threshold !== undefined && left > 0) {
      for (const t of due) warned.add(t);
      if (options.json) io.out(JSON.stringify({ event: 'session_warning', seconds_left: left }));
      else
        io.err(
          `\r\nimp: ${threshold === 60 ? 'less than 1 minute' : 'less than 5 minutes'} left in session ${label} (forced logout at ${session.expires_at}).`,
        );
    }
    // Shown time is rounded down, but the session is over only when the broker's expiry has passed.
    if (expiresAt - deps.clock.now() <= 0) finish('expired');
    return left;
  };

  // With `on_leave: pause` the broker refuses calls while nobody watches: say so when it starts and stops.
  let paused = false;
  const watchSupervisors = (now: SessionView) => {
    if (!now.supervision?.required || now.state !== 'active') return;
    const none = now.supervision.supervisors.length === 0;
    if (none === paused) return;
    paused = none;
    const message = none
      ? `imp: the last supervisor left session ${session.id}; ${now.supervision.on_leave === 'end' ? 'policy ends it.' : 'tenant calls are paused (rule supervision.paused) until one rejoins (imp watch).'}`
      : `imp: supervised again by ${now.supervision.supervisors.map(escapeUntrusted).join(', ')}; tenant calls resume.`;
    if (options.json) io.out(JSON.stringify({ event: 'session_warning', reason: 'supervision', message }));
    else io.err(`\r\n${message}`);
  };
  const timers = [
    deps.clock.every(1000, tick),
    deps.clock.every(STATUS_POLL_MS, async () => {
      try {
        const now = await target.client.getSession(token, session.id);
        watchSupervisors(now);
        if (now.state === 'revoked') {
          revoked = now;
          finish('revoked');
        } else if (now.state === 'expired') finish('expired');
        else if (now.state === 'ended') finish('ended');
      } catch {
        // A broker blip must not end the session locally; expiry still does.
      }
    }),
  ];
  tick();

  try {
    if (options.noShell && session.recording?.mode === 'required') {
      // No terminal to record: the broker refuses this session's tenant calls (recording.not_started).
      const message = `imp: policy requires session ${session.id} to be recorded, and --no-shell runs no terminal to record: the broker refuses its tenant calls (rule recording.not_started). Start it without --no-shell (or use imp exec) to work in it.`;
      if (options.json) io.out(JSON.stringify({ event: 'session_warning', reason: 'recording', message }));
      else io.err(message);
    }
    if (options.noShell) await runForeground(deps, label, tick, stop.signal, () => finish('ended'));
    else {
      // Every answer that makes a session active carries its terms; a broker without recording sends none.
      const terms = session.recording;
      const recording =
        terms && terms.mode !== 'off'
          ? {
              token,
              terms,
              onFail: (why: string) => {
                recordingFailure = why;
                finish('recording');
              },
            }
          : null;
      await runSubshell(deps, target, session, recording, stop.signal, () => finish('ended'));
    }
  } finally {
    for (const cancel of timers) cancel();
    if (io.stderrIsTTY && !options.json) io.stderr.write('\u001b]0;\u0007');
  }

  const why = (reason as EndReason | null) ?? 'ended';
  const revokedView = revoked as SessionView | null;
  if (why === 'ended' || why === 'recording')
    await target.client
      .endSession(token, session.id)
      .catch((error: unknown) => (why === 'recording' ? undefined : ignoreAlreadyOver(error)));
  if (why === 'recording') {
    // Fail closed: a session whose required recording cannot reach the broker does not go on unrecorded.
    const message = `imp: session ended — its recording could not be delivered: ${recordingFailure}. Policy requires this session to be recorded, so it cannot continue.`;
    if (options.json) io.out(JSON.stringify({ event: 'session_warning', reason: 'recording', message }));
    io.err(`\r\n${message}`);
  } else if (why !== 'ended' && !options.json)
    io.err(
      `\r\nimp: session ${why === 'expired' ? 'expired' : `was revoked${revokedText(revokedView)}`} — you have been logged out of ${label}.`,
    );
  const summary = await target.client.summary(token, session.id).catch(() => null);
  if (options.json) {
    const by =
      why === 'revoked'
        ? { by: revokedView?.ended_by ?? null, comment: revokedView?.decision_comment ?? null }
        : {};
    io.out(JSON.stringify({ event: 'session_ended', reason: why, ...by, summary }));
  } else if (summary) io.err(formatSummary(summary, 'text'));
  return why === 'ended' ? EXIT.ok : EXIT.sessionOver;
}

function revokedText(session: SessionView | null): string {
  const comment = session?.decision_comment ? ` ("${escapeUntrusted(session.decision_comment)}")` : '';
  // The broker itself ends a supervised session whose last supervisor left: no person, but a reason.
  if (!session?.ended_by) return comment;
  return ` by ${personText(session.ended_by)}${comment}`;
}

function ignoreAlreadyOver(error: unknown): void {
  if (
    error instanceof ImpError &&
    (error.code === 'IMP_SESSION_ENDED' || error.code === 'IMP_SESSION_EXPIRED')
  )
    return;
  throw error;
}

async function runSubshell(
  deps: Deps,
  target: BrokerTarget,
  session: SessionView,
  recording: { token: string; terms: RecordingTerms; onFail: (why: string) => void } | null,
  stop: AbortSignal,
  onExit: () => void,
): Promise<void> {
  const { io } = deps;
  const launch = prepareShell(sessionEnv(deps.env, session, target.url), session);
  io.err(`Starting ${launch.command} in the session. Leave it (exit or Ctrl-D) to end the session.`);
  if (recording)
    io.err(
      `This session is recorded (${recording.terms.mode}${recording.terms.input ? ', keystrokes included' : ', output only'}).`,
    );
  const child = recording
    ? await startRecordedShell(
        deps,
        target,
        recording.token,
        session,
        recording.terms,
        launch,
        recording.onFail,
      )
    : deps.runChild(launch.command, launch.args, launch.env);
  // Ctrl-C belongs to the shell while it runs; SIGTERM/SIGHUP to imp end the session.
  const unsubscribe = deps.onSignal((signal) => {
    if (signal !== 'SIGINT') onExit();
  });
  try {
    const stopped = new Promise<'stop'>((resolve) =>
      stop.addEventListener('abort', () => resolve('stop'), { once: true }),
    );
    const first = await Promise.race([child.exited.then(() => 'exited' as const), stopped]);
    if (first === 'exited') onExit();
    else {
      child.kill('SIGHUP');
      const cancelKill = deps.clock.after(FORCED_LOGOUT_GRACE_MS, () => child.kill('SIGKILL'));
      await child.exited;
      cancelKill();
    }
    if ('finish' in child) await child.finish();
  } finally {
    unsubscribe();
    launch.cleanup();
  }
}

async function runForeground(
  deps: Deps,
  label: string,
  tick: () => number,
  stop: AbortSignal,
  onInterrupt: () => void,
): Promise<void> {
  const spinner = await startSpinner(deps.io, `Session ${label} active — Ctrl-C ends it`);
  const cancelRefresh = deps.clock.every(1000, () =>
    spinner.update(`Session ${label} active — ${formatSecondsLeft(tick())} left — Ctrl-C ends it`),
  );
  try {
    await new Promise<void>((resolve) => {
      if (stop.aborted || deps.interrupt.aborted) return resolve();
      stop.addEventListener('abort', () => resolve(), { once: true });
      deps.interrupt.addEventListener(
        'abort',
        () => {
          onInterrupt();
          resolve();
        },
        { once: true },
      );
    });
  } finally {
    cancelRefresh();
    spinner.stop();
  }
}
