/**
 * What the broker does with witness outcomes beyond the push loop: folding routine cosignatures into
 * one `audit.witnessed` event (see witnesses.ts for when it is written), and sending a refusal to the
 * alert webhooks.
 */
import { DEFAULT_ALERT_SETTINGS, signAlert } from './alerts.js';
import type { BrokerDeps } from './context.js';

/** Routine cosignatures of one witness not yet in an `audit.witnessed` event (the event's data). */
export interface RoutineCosignatures {
  witness: string;
  witness_name: string;
  /** The first and last checkpoint sizes it cosigned in this span, and how many checkpoints. */
  from_size: number;
  size: number;
  checkpoints: number;
}

/** Cosignatures per witness since the last `audit.witnessed` event. */
export class CosignatureFold {
  private spans = new Map<string, RoutineCosignatures>();

  /** One more cosigned checkpoint of `size` by the witness at `url`. */
  add(url: string, name: string, size: number): void {
    const span = this.spans.get(url);
    this.spans.set(url, {
      witness: url,
      witness_name: name,
      from_size: span?.from_size ?? size,
      size,
      checkpoints: (span?.checkpoints ?? 0) + 1,
    });
  }

  /** Everything pending, emptied (synchronously: no cosignature lands between the read and the reset). */
  take(): RoutineCosignatures[] {
    const pending = [...this.spans.values()];
    this.spans = new Map();
    return pending;
  }

  /** Puts back what `take` returned when it could not be written, merged with anything newer. */
  restore(pending: readonly RoutineCosignatures[]): void {
    for (const old of pending) {
      const newer = this.spans.get(old.witness);
      this.spans.set(
        old.witness,
        newer
          ? { ...newer, from_size: old.from_size, checkpoints: old.checkpoints + newer.checkpoints }
          : old,
      );
    }
  }
}

/** Sends a witness refusal to the alert webhooks (break_glass.alerts), signed like break-glass alerts. */
export async function sendRefusalAlert(
  deps: Pick<BrokerDeps, 'issuer' | 'clock' | 'policy' | 'alertSettings' | 'fetch' | 'log'>,
  refusal: { witness: string; size: number; status: number; why: string },
): Promise<void> {
  const body = JSON.stringify({
    event: 'audit.witness_refused',
    broker: deps.issuer,
    ...refusal,
    at: new Date(deps.clock.now()).toISOString(),
  });
  for (const hook of deps.policy.breakGlass.alerts) {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'imp-broker',
      'x-imp-event': 'audit.witness_refused',
    };
    const lookup = deps.alertSettings?.secret ?? DEFAULT_ALERT_SETTINGS.secret;
    const secret = hook.secretEnv ? lookup(hook.secretEnv) : undefined;
    if (secret) headers['x-imp-signature'] = signAlert(secret, Math.floor(deps.clock.now() / 1000), body);
    await deps
      .fetch(hook.url, {
        method: 'POST',
        headers,
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(5000),
      })
      .catch((error: unknown) =>
        deps.log('error', 'witness refusal alert failed', { message: (error as Error).message }),
      );
  }
}
