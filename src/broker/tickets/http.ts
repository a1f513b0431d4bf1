/**
 * Talking to a ticket system without trusting it: every call is bounded in time (an abort signal)
 * and size (the body is read up to a limit, then the stream is cancelled), redirects are not
 * followed (the broker's credential must not travel to another host), and a body that is not JSON
 * is an error, never a guess. Adapters validate the JSON's shape themselves.
 */

/** Why the ticket system gave no usable answer: the broker cannot decide on the ticket. */
export class TicketSystemError extends Error {
  /** Retrying cannot help (the system refused the request itself, or accepted it and saved nothing). */
  readonly permanent: boolean;
  constructor(
    message: string,
    /** The HTTP status, when there was one. */
    readonly status: number | null = null,
    permanent?: boolean,
  ) {
    super(message);
    this.name = 'TicketSystemError';
    this.permanent =
      permanent ?? (status !== null && status >= 400 && status < 500 && status !== 408 && status !== 429);
  }
}

/** An answer: its status and parsed JSON body (null for an empty body). */
export interface JsonAnswer {
  status: number;
  body: unknown;
}

/** How one call is bounded. */
export interface CallLimits {
  fetch: typeof fetch;
  timeoutMs: number;
  maxBodyBytes: number;
  /** Aborted when the broker stops or the caller gives up. */
  signal?: AbortSignal;
}

/** One JSON call: bounded, no redirects; throws TicketSystemError for transport failures and non-JSON bodies. */
export async function callJson(
  limits: CallLimits,
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
): Promise<JsonAnswer> {
  const timeout = AbortSignal.timeout(limits.timeoutMs);
  const signal = limits.signal ? AbortSignal.any([limits.signal, timeout]) : timeout;
  let response: Response;
  try {
    response = await limits.fetch(url, {
      method: init.method,
      headers: { accept: 'application/json', ...init.headers },
      ...(init.body !== undefined ? { body: init.body } : {}),
      redirect: 'manual',
      signal,
    });
  } catch (cause) {
    throw new TicketSystemError(
      timeout.aborted ? `no answer within ${limits.timeoutMs / 1000} s` : transportError(cause),
    );
  }
  let text: string;
  try {
    text = await readBounded(response, limits.maxBodyBytes);
  } catch (cause) {
    if (cause instanceof TicketSystemError) throw cause;
    throw new TicketSystemError(
      timeout.aborted
        ? `the answer did not arrive within ${limits.timeoutMs / 1000} s`
        : transportError(cause),
      response.status,
    );
  }
  if (response.status >= 300 && response.status < 400)
    throw new TicketSystemError(`HTTP ${response.status} redirect (not followed)`, response.status);
  if (text.trim() === '') return { status: response.status, body: null };
  try {
    return { status: response.status, body: JSON.parse(text) as unknown };
  } catch {
    throw new TicketSystemError(`HTTP ${response.status} with a body that is not JSON`, response.status);
  }
}

async function readBounded(response: Response, maxBytes: number): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (declared > maxBytes) {
    await response.body?.cancel().catch(() => {});
    throw new TicketSystemError(`the answer is larger than ${maxBytes} bytes`, response.status);
  }
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new TicketSystemError(`the answer is larger than ${maxBytes} bytes`, response.status);
    }
    chunks.push(value);
  }
  return new TextDecoder('utf-8', { fatal: false }).decode(Buffer.concat(chunks));
}

function transportError(cause: unknown): string {
  const inner = (cause as { cause?: { code?: string; message?: string } }).cause;
  return String(inner?.code ?? inner?.message ?? (cause as Error).message ?? cause).slice(0, 200);
}

/** Throws the usual TicketSystemError for a status an adapter does not handle itself. */
export function unexpectedStatus(status: number): never {
  if (status === 401)
    throw new TicketSystemError("HTTP 401: the ticket system refused the broker's credential", status);
  if (status === 429)
    throw new TicketSystemError('HTTP 429: the ticket system is rate-limiting the broker', status);
  throw new TicketSystemError(`HTTP ${status}`, status);
}

/** A JSON object, or undefined. */
export function obj(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** A string of at most `max` characters, or undefined. */
export function str(value: unknown, max = 256): string | undefined {
  return typeof value === 'string' && value.length <= max ? value : undefined;
}

/** Throws "the answer has no <what>" when a required field is missing or of the wrong shape. */
export function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new TicketSystemError(`the answer is not in the expected shape (${what})`);
  return value;
}
