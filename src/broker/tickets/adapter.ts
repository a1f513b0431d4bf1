/** What every ticket-system adapter offers the broker, and how one is chosen from the policy. */
import type { TicketLookup, TicketSystem } from '../../core/policy/tickets.js';
import type { CallLimits } from './http.js';

/** A summary to post: its plain lines (src/core/ticket-note.ts), the delivery id, and the JSON for the generic contract. */
export interface TicketNote {
  delivery: string;
  lines: string[];
  json: Record<string, unknown>;
}

/** One ticket system, spoken to with the broker's own credential. */
export interface TicketAdapter {
  /** Found (with facts) or not found; throws TicketSystemError when the system gives no usable answer. */
  lookup(ticket: string, signal?: AbortSignal): Promise<TicketLookup>;
  /** Posts the note; throws TicketSystemError (with `permanent` when retrying cannot help). Returns the system's reference to it. */
  postNote(
    ticket: string,
    note: TicketNote,
    options: { retry: boolean; signal?: AbortSignal },
  ): Promise<{ ref: string | null }>;
}

/** What an adapter is built from: the policy's settings, the secret, and the injected fetch. */
export interface AdapterDeps {
  system: TicketSystem;
  /** The API key or token (from token_env / token_file); null when none is configured. */
  token: string | null;
  fetch: typeof fetch;
}

/** Call limits from the policy. */
export function limitsOf(deps: AdapterDeps, signal?: AbortSignal): CallLimits {
  return {
    fetch: deps.fetch,
    timeoutMs: deps.system.timeout * 1000,
    maxBodyBytes: deps.system.maxBodyBytes,
    ...(signal ? { signal } : {}),
  };
}

/** The values of a field that may be a string, a number, an option object ({value} or {name}) or a list of those. */
export function fieldValues(value: unknown): string[] {
  const one = (item: unknown): string[] => {
    if (typeof item === 'string') return item.length <= 256 ? [item] : [];
    if (typeof item === 'number') return [String(item)];
    if (typeof item === 'object' && item !== null && !Array.isArray(item)) {
      const record = item as Record<string, unknown>;
      return one(record.value ?? record.name);
    }
    return [];
  };
  if (Array.isArray(value)) return value.slice(0, 50).flatMap(one);
  return one(value).filter((text) => text.trim() !== '');
}
