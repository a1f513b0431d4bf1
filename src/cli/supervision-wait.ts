/**
 * A session that policy says must be supervised waits — like a request waits for approval — until a
 * supervisor joins with `imp watch`; its time starts then. Ctrl-C gives it up (the session is ended).
 */
import type { SessionView } from '../core/api.js';
import { InterruptedError } from '../core/errors.js';
import { escapeUntrusted } from '../core/escape.js';
import type { Deps } from './deps.js';
import type { BrokerTarget } from './login-flow.js';
import { startSpinner } from './spinner.js';

/** How often the waiting CLI asks whether a supervisor has joined. */
const SUPERVISOR_POLL_MS = 1000;

/** Returns the session once a supervisor watches it (or once it is no longer active). */
export async function waitForSupervisor(
  deps: Pick<Deps, 'io' | 'interrupt' | 'clock'>,
  target: BrokerTarget,
  token: string,
  session: SessionView,
  json: boolean,
): Promise<SessionView> {
  if (!session.supervision?.required || session.supervision.supervisors.length > 0) return session;
  const { io } = deps;
  if (json) io.out(JSON.stringify({ event: 'supervision_pending', session }));
  else {
    io.err(`Policy requires session ${session.id} to be supervised. A supervisor joins with:`);
    io.err(`  imp watch ${session.id}`);
  }
  const spinner = json
    ? null
    : await startSpinner(io, 'Waiting for a supervisor… (Ctrl-C gives up the session)');
  try {
    let current = session;
    while (current.state === 'active' && (current.supervision?.supervisors.length ?? 0) === 0) {
      try {
        await deps.clock.sleep(SUPERVISOR_POLL_MS, deps.interrupt);
        current = await target.client.getSession(token, session.id);
      } catch (error) {
        if (!deps.interrupt.aborted) throw error;
        await target.client.endSession(token, session.id).catch(() => {});
        throw new InterruptedError(`Session ${session.id} given up before a supervisor joined.`);
      }
    }
    const who = current.supervision?.supervisors ?? [];
    if (json) io.out(JSON.stringify({ event: 'supervised', by: who }));
    else if (who.length > 0) io.err(`Supervised by ${who.map(escapeUntrusted).join(', ')}.`);
    return current;
  } finally {
    spinner?.stop();
  }
}
