/**
 * Watches one session while a proxied call is in flight, so that ending, expiry or revocation
 * cuts the call instead of letting a long download run on. This broker's own changes arrive at
 * once (sessionChanges); another replica's, and expiry, within one poll (loadSession applies
 * expiry by the clock). The poll runs only while a call is open.
 */
import type { BrokerDeps } from './context.js';
import { loadSession, sessionChanges } from './sessions.js';

/** How often an open call re-reads its session: well inside the one second the cut is promised in. */
export const SESSION_WATCH_MS = 250;

/** Calls `onEnd(state)` once when the session is no longer active; returns a function that stops watching. */
export function watchSessionEnd(
  deps: BrokerDeps,
  sessionId: string,
  onEnd: (state: string) => void,
  pollMs = SESSION_WATCH_MS,
): () => void {
  const stop = new AbortController();
  let fired = false;
  const check = async () => {
    if (fired || stop.signal.aborted) return;
    const session = await loadSession(deps, sessionId);
    if (fired || stop.signal.aborted) return;
    if (session?.state !== 'active') {
      fired = true;
      stop.abort();
      onEnd(session?.state ?? 'gone');
    }
  };
  const onChange = () => {
    check().catch(() => {});
  };
  sessionChanges.on(sessionId, onChange);
  stop.signal.addEventListener('abort', () => sessionChanges.off(sessionId, onChange));
  void (async () => {
    while (!stop.signal.aborted) {
      try {
        await deps.clock.sleep(pollMs, stop.signal);
      } catch {
        return;
      }
      // A store that cannot be read right now is retried on the next tick; the call goes on meanwhile.
      await check().catch(() => {});
    }
  })();
  return () => stop.abort();
}
