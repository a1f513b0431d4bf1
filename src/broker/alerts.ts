/**
 * Break-glass alerts: when a break-glass session opens, every webhook in `break_glass.alerts` gets a
 * JSON POST signed with HMAC-SHA256 (`X-Imp-Signature: t=<unix>,v1=<hex hmac of "t.body">`, the
 * secret read from the env var named by `secret_env`), retried with backoff a bounded number of
 * times. Alerts run after the session's transaction commits and never block or undo it; every
 * outcome is audited (`alert.delivered` / `alert.failed`) so a lost alert shows in `imp review`.
 */
import { createHmac, randomUUID } from 'node:crypto';
import type { AlertWebhook } from '../core/policy/types.js';
import type { SessionRecord } from '../store/types.js';
import type { BrokerDeps } from './context.js';
import { tryOnSchedule } from './retry.js';
import { sessionAudit } from './sessions.js';

/** How alerts are sent; injectable so tests run the retries in milliseconds. */
export interface AlertSettings {
  /** The wait before each try (the first is usually 0): its length bounds the number of tries. */
  delaysMs: readonly number[];
  /** Per-try timeout. */
  timeoutMs: number;
  /** Reads a signing secret by the env var name the policy gives (never the secret in the policy). */
  secret: (envName: string) => string | undefined;
}

/** Five tries over about 30 s. */
export const DEFAULT_ALERT_SETTINGS: AlertSettings = {
  delaysMs: [0, 1000, 3000, 8000, 18_000],
  timeoutMs: 5000,
  secret: (name) => process.env[name],
};

/** The JSON body receivers get. */
export interface BreakGlassAlert {
  event: 'break_glass.started';
  delivery: string;
  broker: string;
  session_id: string;
  tenant: string;
  environment: string;
  incident: string;
  reason: string;
  requester: { iss: string; sub: string; email: string | null };
  confirmer: { iss: string; sub: string; email: string | null } | null;
  started_at: string | null;
  expires_at: string | null;
}

/** The signature header value for `body` at unix time `t`. */
export function signAlert(secret: string, t: number, body: string): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

/** Sends alerts in the background and keeps track of them, so shutdown (and tests) can wait. */
export class AlertDispatcher {
  private readonly stop = new AbortController();
  private readonly running = new Set<Promise<void>>();
  private readonly settings: AlertSettings;

  constructor(
    private readonly deps: BrokerDeps,
    settings: Partial<AlertSettings> = {},
  ) {
    this.settings = { ...DEFAULT_ALERT_SETTINGS, ...settings };
    // Said at start, not first noticed in the middle of an incident.
    for (const hook of deps.policy.breakGlass.alerts) {
      if (hook.secretEnv && !this.settings.secret(hook.secretEnv))
        deps.log('warn', 'break-glass alert secret is not set: deliveries to this webhook will fail', {
          url: redactUrl(hook.url),
          secret_env: hook.secretEnv,
        });
    }
  }

  /** Starts delivery to every webhook for a break-glass session that just opened; returns at once. */
  dispatch(session: SessionRecord): void {
    for (const hook of this.deps.policy.breakGlass.alerts) {
      const run = this.deliver(hook, session).catch((error: unknown) =>
        this.deps.log('error', 'alert delivery could not be recorded', {
          session: session.id,
          message: (error as Error).message,
        }),
      );
      this.running.add(run);
      void run.finally(() => this.running.delete(run));
    }
  }

  /** Resolves when every delivery under way has finished (delivered or failed). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Stops retrying (what is still undelivered is audited as failed) and waits. */
  async close(): Promise<void> {
    this.stop.abort(new Error('broker stopping'));
    await this.idle();
  }

  private async deliver(hook: AlertWebhook, session: SessionRecord): Promise<void> {
    const { deps, settings } = this;
    const delivery = randomUUID();
    const url = redactUrl(hook.url);
    const body = JSON.stringify(alertBody(deps, session, delivery));
    const secret = hook.secretEnv ? settings.secret(hook.secretEnv) : null;
    if (hook.secretEnv && !secret) {
      // Unsigned alerts to a receiver that expects signatures would be dropped as forgeries: say so loudly.
      return this.record(session, 'alert.failed', {
        url,
        delivery,
        attempts: 0,
        error: `secret_env ${hook.secretEnv} is not set on the broker`,
      });
    }
    const outcome = await tryOnSchedule<number>(settings.delaysMs, deps.clock, this.stop.signal, async () => {
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'imp-broker',
        'x-imp-event': 'break_glass.started',
        'x-imp-delivery': delivery,
      };
      if (secret) headers['x-imp-signature'] = signAlert(secret, Math.floor(deps.clock.now() / 1000), body);
      try {
        const response = await deps.fetch(hook.url, {
          method: 'POST',
          headers,
          body,
          redirect: 'manual',
          signal: AbortSignal.any([this.stop.signal, AbortSignal.timeout(settings.timeoutMs)]),
        });
        await response.body?.cancel().catch(() => {});
        if (response.status >= 200 && response.status < 300) return { ok: true, value: response.status };
        return {
          ok: false,
          error: `HTTP ${response.status}`,
          // A receiver that rejects the request itself (bad signature, gone) will not change its mind.
          permanent:
            response.status >= 400 &&
            response.status < 500 &&
            response.status !== 408 &&
            response.status !== 429,
        };
      } catch (cause) {
        const inner = (cause as { cause?: { code?: string; message?: string } }).cause;
        const error = inner?.code ?? inner?.message ?? (cause as Error).message ?? String(cause);
        return { ok: false, error, permanent: false };
      }
    });
    const { attempts } = outcome;
    if (outcome.ok)
      return this.record(session, 'alert.delivered', { url, delivery, attempts, status: outcome.value });
    return this.record(session, 'alert.failed', {
      url,
      delivery,
      attempts,
      error: outcome.error.slice(0, 300),
    });
  }

  private async record(session: SessionRecord, type: string, data: Record<string, unknown>): Promise<void> {
    if (type === 'alert.failed') this.deps.log('warn', 'break-glass alert not delivered', data);
    await this.deps.store.transaction((tx) =>
      tx.appendAudit(sessionAudit(session, type, data, null), this.deps.clock.now()),
    );
  }
}

function alertBody(deps: BrokerDeps, session: SessionRecord, delivery: string): BreakGlassAlert {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    event: 'break_glass.started',
    delivery,
    broker: deps.issuer,
    session_id: session.id,
    tenant: session.tenant,
    environment: session.environment,
    incident: session.ticket,
    reason: session.reason,
    requester: { iss: session.requester.iss, sub: session.requester.sub, email: session.requester.email },
    confirmer: session.decidedBy,
    started_at: iso(session.startedAt),
    expires_at: iso(session.expiresAt),
  };
}

// Webhook URLs may carry a token in the query or userinfo; the audit log keeps only origin and path.
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return '(invalid url)';
  }
}
