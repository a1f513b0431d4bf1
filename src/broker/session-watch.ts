/**
 * Watches sessions while proxied calls are in flight, so that ending, expiry or revocation cuts the
 * call instead of letting a long download run on. This broker's own changes arrive at once
 * (sessionChanges); another replica's, and expiry, within one poll (loadSession applies expiry by
 * the clock). A poll runs only while a call on the session is open.
 *
 * One watch per session, shared by all of its calls in flight: a poll timer and a change listener
 * per session rather than per call. Under load every proxied call used to start a timer of its own
 * (an AbortController, a promise sleep and an abort at the end, ~8% of the broker's thread); now a
 * call only joins and leaves a set.
 */
import type { BrokerDeps } from './context.js';
import { loadSession, sessionChanges } from './sessions.js';

/** How often an open call re-reads its session: well inside the one second the cut is promised in. */
export const SESSION_WATCH_MS = 250;

interface Watch {
  /** The calls in flight on this session: each one's onEnd, called at most once. */
  calls: Set<(state: string) => void>;
  stop: () => void;
}

/** Sessions being watched, per broker (tests run several brokers in one process). */
const watches = new WeakMap<BrokerDeps, Map<string, Watch>>();

/** Calls `onEnd(state)` once when the session is no longer active; returns a function that stops watching. */
export function watchSessionEnd(
  deps: BrokerDeps,
  sessionId: string,
  onEnd: (state: string) => void,
  pollMs = SESSION_WATCH_MS,
): () => void {
  let forBroker = watches.get(deps);
  if (!forBroker) {
    forBroker = new Map();
    watches.set(deps, forBroker);
  }
  const watching = forBroker;
  let watch = watching.get(sessionId);
  if (!watch) watch = startWatch(deps, watching, sessionId, pollMs);
  const call = (state: string) => onEnd(state);
  watch.calls.add(call);
  const shared = watch;
  return () => {
    shared.calls.delete(call);
    if (shared.calls.size === 0) shared.stop();
  };
}

function startWatch(
  deps: BrokerDeps,
  watching: Map<string, Watch>,
  sessionId: string,
  pollMs: number,
): Watch {
  // One read at a time; a change announced during a read (which may have looked before it) reads again.
  let checking = false;
  let again = false;
  const check = async (): Promise<void> => {
    if (checking) {
      again = true;
      return;
    }
    checking = true;
    try {
      do {
        again = false;
        const session = await loadSession(deps, sessionId);
        if (watch.calls.size === 0) return;
        if (session?.state === 'active') continue;
        // Every call open now is cut; a call starting after this sees the session's state itself.
        const ended = [...watch.calls];
        watch.stop();
        for (const onEnd of ended) onEnd(session?.state ?? 'gone');
        return;
      } while (again);
    } finally {
      checking = false;
    }
  };
  // A store that cannot be read right now is retried on the next tick; the calls go on meanwhile.
  const onChange = () => {
    check().catch(() => {});
  };
  sessionChanges.on(sessionId, onChange);
  const cancelPoll = deps.clock.every(pollMs, onChange, { unref: true });
  let stopped = false;
  const watch: Watch = {
    calls: new Set(),
    stop: () => {
      if (stopped) return;
      stopped = true;
      watch.calls.clear();
      cancelPoll();
      sessionChanges.off(sessionId, onChange);
      if (watching.get(sessionId) === watch) watching.delete(sessionId);
    },
  };
  watching.set(sessionId, watch);
  return watch;
}
