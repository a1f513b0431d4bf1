/** The optional live sink (`audit.sink`): every appended event as one JSON line, for a SIEM. */
import { appendFileSync } from 'node:fs';
import type { BrokerDeps } from './context.js';

/** Starts writing appended events to `stdout` or a file path; returns the unsubscribe function. */
export function startAuditSink(deps: BrokerDeps): () => void {
  const sink = deps.policy.audit.sink;
  if (!sink) return () => {};
  return deps.store.onAppended((events) => {
    const lines = events.map((event) => `${JSON.stringify(event)}\n`).join('');
    try {
      if (sink === 'stdout') process.stdout.write(lines);
      else appendFileSync(sink, lines, { mode: 0o600 });
    } catch (error) {
      // The chain in the store is the record; a failing sink is reported, never fatal.
      deps.log('error', 'audit sink write failed', { sink, message: (error as Error).message });
    }
  });
}
