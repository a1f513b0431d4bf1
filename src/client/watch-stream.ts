/**
 * The CLI's side of GET /v1/sessions/:id/watch: the broker's Server-Sent Events, parsed by
 * eventsource-parser (the WHATWG event-stream rules), as typed events. Loaded only by `imp watch`.
 */
import { EventSourceParserStream } from 'eventsource-parser/stream';
import type { WatchEventName, WatchEvents } from '../core/api.js';
import type { BrokerClient } from './broker-client.js';

/** One event of the watch stream. */
export type WatchEvent = { [K in WatchEventName]: { name: K; data: WatchEvents[K] } }[WatchEventName];

const NAMES = new Set<string>(['hello', 'output', 'action', 'supervision', 'end']);

/** Yields the stream's events until the broker closes it (after `end`) or `signal` aborts. */
export async function* watchEvents(
  client: BrokerClient,
  token: string,
  id: string,
  signal: AbortSignal,
): AsyncGenerator<WatchEvent> {
  const response = await client.openStream(`/v1/sessions/${encodeURIComponent(id)}/watch`, token, signal);
  if (!response.body) return;
  const reader = response.body
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(new EventSourceParserStream())
    .getReader();
  // The reader does not always notice an abort by itself while it waits for the next chunk.
  const cancel = () => reader.cancel().catch(() => {});
  signal.addEventListener('abort', cancel, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      if (!value.event || !NAMES.has(value.event)) continue;
      yield { name: value.event, data: JSON.parse(value.data) } as WatchEvent;
    }
  } finally {
    signal.removeEventListener('abort', cancel);
    await reader.cancel().catch(() => {});
  }
}
