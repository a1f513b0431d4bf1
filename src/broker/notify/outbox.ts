/**
 * The outbox: a store wrapper that, whenever a transaction appends an audit event people are told
 * about (core/notify/kinds.ts), adds one outbox row per routed channel in that same transaction.
 * The notification is thus exactly as durable as the event: a refused or failed operation queues
 * nothing, a committed one cannot lose its notification to a crash or restart.
 */
import { randomUUID } from 'node:crypto';
import { kindOfEvent } from '../../core/notify/kinds.js';
import { channelsFor } from '../../core/policy/notifications.js';
import type { Policy } from '../../core/policy/types.js';
import type { Store, StoreTx, TransactionOptions } from '../../store/types.js';

/** `store`, queuing notifications with their events; `queued` runs after a commit that queued some. */
export function withOutbox(store: Store, policy: Policy, queued: () => void): Store {
  if (policy.notifications.routes.length === 0) return store;
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'transaction') {
        return async <T>(fn: (tx: StoreTx) => Promise<T>, options?: TransactionOptions): Promise<T> => {
          let count = 0;
          const result = await target.transaction(
            (tx) =>
              fn(
                outboxTx(tx, policy, () => {
                  count++;
                }),
              ),
            options,
          );
          if (count > 0) queued();
          return result;
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

function outboxTx(tx: StoreTx, policy: Policy, counted: () => void): StoreTx {
  return {
    ...tx,
    appendAudit: async (draft, nowMs) => {
      const event = await tx.appendAudit(draft, nowMs);
      // Only a new request needs its session's state (did it open at once, or does it wait?).
      const state =
        event.type === 'session.requested' && event.session
          ? ((await tx.getSession(event.session))?.state ?? null)
          : null;
      const kind = kindOfEvent(event.type, state);
      if (!kind) return event;
      const tier = policy.tenants.find((t) => t.id === event.tenant)?.tier ?? null;
      for (const channel of channelsFor(policy.notifications, kind, tier, event.environment ?? null)) {
        await tx.insertNotification({
          id: randomUUID(),
          eventId: event.id,
          kind,
          channel,
          state: 'pending',
          attempts: 0,
          nextAt: nowMs,
          createdAt: nowMs,
          lastError: null,
        });
        counted();
      }
      return event;
    },
  };
}
