/**
 * The optional broker status check: `GET <url>` with the session token as bearer answers
 * `{ "active": boolean, "state": "active"|"ended"|"expired"|"revoked" }`. Answers are cached per
 * session id; concurrent questions about one session share one request; any failure refuses (503).
 */
import { ImpersonationError } from './errors.js';

/** Options of the broker status check. */
export interface StatusCheckOptions {
  /** Default `${issuer}/v1/token-status`. */
  url?: string;
  /** How long an answer is reused per session id; default 5. */
  cacheSeconds?: number;
  /** Give up on the broker after this long (then refuse: fail closed); default 2000. */
  timeoutMs?: number;
}

interface StatusAnswer {
  active: boolean;
  state: string;
  until: number;
}

const MAX_ENTRIES = 10_000;

/** Builds the check: resolves when the session is active, throws {@link ImpersonationError} otherwise. */
export function createStatusCheck(
  options: StatusCheckOptions,
  issuerBase: string,
  fetchImpl: typeof fetch,
  now: () => number,
): (sid: string, token: string) => Promise<void> {
  const url = options.url ?? `${issuerBase}/v1/token-status`;
  const ttl = (options.cacheSeconds ?? 5) * 1000;
  const timeout = options.timeoutMs ?? 2000;
  const cache = new Map<string, StatusAnswer>();
  const pending = new Map<string, Promise<StatusAnswer>>();

  async function ask(token: string): Promise<StatusAnswer> {
    let response: Response;
    try {
      // redirect: manual — the session token is never replayed to wherever a redirect points.
      response = await fetchImpl(url, {
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
        redirect: 'manual',
        signal: AbortSignal.timeout(timeout),
      });
    } catch (error) {
      throw unavailable((error as Error).message, error);
    }
    // The broker refuses the token outright: it does not know it as a live session.
    if (response.status === 401) {
      await response.body?.cancel();
      return { active: false, state: 'revoked', until: now() + ttl };
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw unavailable(`HTTP ${response.status}`);
    }
    let body: unknown;
    try {
      body = await response.json();
    } catch (error) {
      throw unavailable('the answer is not JSON', error);
    }
    const { active, state } = (body ?? {}) as { active?: unknown; state?: unknown };
    if (typeof active !== 'boolean') throw unavailable('the answer has no boolean `active`');
    const label = typeof state === 'string' ? state : active ? 'active' : 'revoked';
    return { active, state: label, until: now() + ttl };
  }

  return async (sid, token) => {
    let answer = cache.get(sid);
    if (!answer || answer.until <= now()) {
      let question = pending.get(sid);
      if (!question) {
        question = ask(token).finally(() => pending.delete(sid));
        pending.set(sid, question);
      }
      answer = await question;
      cache.delete(sid);
      if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value as string);
      cache.set(sid, answer);
    }
    if (!answer.active) {
      throw new ImpersonationError(
        'revoked',
        `The impersonation session is no longer active (${answer.state}).`,
      );
    }
  };
}

function unavailable(reason: string, cause?: unknown): ImpersonationError {
  const message = `The broker's session status could not be checked (${reason}); refusing until it can.`;
  return new ImpersonationError('status_unavailable', message, { cause });
}
