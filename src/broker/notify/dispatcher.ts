/**
 * Delivers the outbox (./outbox.ts) in the background: never on the request's path, so a receiver
 * that is slow or down neither delays nor undoes the operation. Each try is claimed in the store
 * (one broker per try, whatever the number of replicas); a failed try is retried after the next
 * delay of the backoff (timers through the injected clock); the outcome — `notify.sent` or
 * `notify.failed` — is audited with its channel and kind, never with a URL, token or secret.
 * Tries between the first and the outcome are not audited: the outcome carries their count.
 */
import type { CancelTimer } from '../../core/clock.js';
import type { NotificationKind } from '../../core/notify/kinds.js';
import { composeMessage } from '../../core/notify/message.js';
import type { NotificationChannel } from '../../core/policy/notifications.js';
import type { NotificationRecord } from '../../store/types.js';
import type { BrokerDeps } from '../context.js';
import { gatherFacts, peopleAddresses } from './facts.js';
import { SendError, send } from './senders.js';

/** How notifications are sent; injectable so tests run the backoff in milliseconds. */
export interface NotifySettings {
  /** The wait before each try (the first is 0): its length bounds the number of tries. */
  delaysMs: readonly number[];
  /** Per-try timeout (HTTP request, SMTP connection and each SMTP step). */
  timeoutMs: number;
  /** How often the outbox is read anyway (rows of a restarted broker or of another replica). */
  pollMs: number;
  /** Reads an env var the policy names. */
  env: (name: string) => string | undefined;
}

/** Six tries over about 6 minutes. */
export const DEFAULT_NOTIFY_SETTINGS: NotifySettings = {
  delaysMs: [0, 2000, 10_000, 30_000, 60_000, 240_000],
  timeoutMs: 10_000,
  pollMs: 30_000,
  env: (name) => process.env[name],
};

/** The outbox's delivery loop. */
export class Notifier {
  private readonly settings: NotifySettings;
  private readonly stop = new AbortController();
  private readonly running = new Set<Promise<void>>();
  private readonly timers = new Set<CancelTimer>();
  private draining: Promise<void> | null = null;
  private again = false;
  private stopPolling: CancelTimer = () => {};

  constructor(
    private readonly deps: BrokerDeps,
    settings: Partial<NotifySettings> = {},
  ) {
    this.settings = { ...DEFAULT_NOTIFY_SETTINGS, ...settings };
  }

  /** Starts: delivers what a previous run left in the outbox, then polls. */
  start(): void {
    if (this.deps.policy.notifications.routes.length === 0) return;
    for (const channel of this.deps.policy.notifications.channels) this.warnIfUnset(channel);
    this.stopPolling = this.deps.clock.every(this.settings.pollMs, () => this.kick(), { unref: true });
    this.kick();
  }

  /** Reads the outbox now (after a commit that queued something, after a backoff delay). */
  kick(): void {
    if (this.stop.signal.aborted) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = this.drain()
      .catch((error: unknown) =>
        this.deps.log('error', 'could not read the notification outbox', {
          message: (error as Error).message,
        }),
      )
      .finally(() => {
        this.draining = null;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Stops (rows still pending stay in the outbox for the next start) and waits for tries under way. */
  async close(): Promise<void> {
    this.stop.abort(new Error('broker stopping'));
    this.stopPolling();
    for (const cancel of this.timers) cancel();
    this.timers.clear();
    await Promise.allSettled([this.draining, ...this.running]);
  }

  private async drain(): Promise<void> {
    const { store, clock } = this.deps;
    const now = clock.now();
    const due = await store.transaction((tx) => tx.listDueNotifications(now, 50));
    for (const row of due) {
      // Claimed by moving the attempt count on; the lease keeps other replicas off it until the try ends.
      const lease = now + this.settings.timeoutMs * 3;
      const claimed = await store.transaction((tx) =>
        tx.updateNotification(row.id, row.attempts, { attempts: row.attempts + 1, nextAt: lease }),
      );
      if (!claimed) continue;
      const run = this.deliver({ ...row, attempts: row.attempts + 1 }).catch((error: unknown) =>
        this.deps.log('error', 'notification outcome could not be recorded', {
          notification: row.id,
          message: (error as Error).message,
        }),
      );
      this.running.add(run);
      void run.finally(() => this.running.delete(run));
    }
    if (due.length === 50) this.again = true;
  }

  private async deliver(row: NotificationRecord): Promise<void> {
    const { deps, settings } = this;
    const kind = row.kind as NotificationKind;
    const channel = deps.policy.notifications.channels.find((c) => c.name === row.channel);
    // Queued with its event: wait until the sequencer has given the event its place in the log.
    const [event] = await deps.store.sequenced([row.eventId]);
    if (!channel || !event)
      return this.settle(row, null, 'failed', {
        error: channel ? 'the announced audit event is missing' : 'no such channel in the policy now',
      });
    const session = event.session ? await deps.store.getSession(event.session) : null;
    const facts = gatherFacts(deps, kind, event, session);
    try {
      const people =
        channel.type === 'email' && channel.people ? await peopleAddresses(deps, kind, session) : [];
      const sent = await send(channel, facts, composeMessage(facts), people, {
        fetch: deps.fetch,
        env: settings.env,
        nowMs: deps.clock.now(),
        timeoutMs: settings.timeoutMs,
        signal: this.stop.signal,
        issuer: deps.issuer,
        delivery: row.id,
      });
      return this.settle(row, event, 'sent', { ...sent });
    } catch (cause) {
      const error = scrub(cause instanceof SendError ? cause.message : String(cause), channel, settings);
      const permanent = cause instanceof SendError && cause.permanent;
      const delay = settings.delaysMs[row.attempts];
      if (permanent || delay === undefined || this.stop.signal.aborted) {
        // Stopping is not an outcome: the row waits in the outbox for the next start.
        if (this.stop.signal.aborted && !permanent) return this.retryLater(row, 0, error);
        return this.settle(row, event, 'failed', { error });
      }
      return this.retryLater(row, delay, error);
    }
  }

  private async retryLater(row: NotificationRecord, delay: number, error: string): Promise<void> {
    const { store, clock } = this.deps;
    await store.transaction((tx) =>
      tx.updateNotification(row.id, row.attempts, { nextAt: clock.now() + delay, lastError: error }),
    );
    if (this.stop.signal.aborted) return;
    const cancel = clock.after(
      delay,
      () => {
        this.timers.delete(cancel);
        this.kick();
      },
      { unref: true },
    );
    this.timers.add(cancel);
  }

  private async settle(
    row: NotificationRecord,
    event: Awaited<ReturnType<BrokerDeps['store']['readAudit']>>[number] | null,
    state: 'sent' | 'failed',
    data: Record<string, unknown>,
  ): Promise<void> {
    const { deps } = this;
    const channel = deps.policy.notifications.channels.find((c) => c.name === row.channel);
    const type = state === 'sent' ? 'notify.sent' : 'notify.failed';
    const facts = {
      channel: row.channel,
      channel_type: channel?.type ?? null,
      kind: row.kind,
      event: row.eventId,
      attempts: row.attempts,
      ...data,
    };
    if (state === 'failed') deps.log('warn', 'notification not delivered', facts);
    // The outcome and the row's state change together: a failed audit write leaves the row to retry.
    await deps.store.transaction(async (tx) => {
      if (
        !(await tx.updateNotification(row.id, row.attempts, {
          state,
          lastError: state === 'failed' ? String(data.error ?? '') : null,
        }))
      )
        return;
      await tx.appendAudit(
        {
          type,
          actor: null,
          tenant: event?.tenant ?? null,
          environment: event?.environment ?? null,
          session: event?.session ?? null,
          ticket: event?.ticket ?? null,
          data: facts,
        },
        deps.clock.now(),
      );
    });
  }

  private warnIfUnset(channel: NotificationChannel): void {
    const names =
      channel.type === 'email'
        ? [channel.smtp.userEnv, channel.smtp.passwordEnv]
        : channel.type === 'webhook'
          ? [channel.urlEnv, channel.secretEnv]
          : [channel.urlEnv];
    for (const name of names)
      if (name && !this.settings.env(name))
        this.deps.log(
          'warn',
          'a notification channel names an env var that is not set: its deliveries will fail',
          {
            channel: channel.name,
            env: name,
          },
        );
  }
}

// An error message must not carry what the policy keeps out of it: chat webhook URLs (their path is
// the token), webhook URLs with a token in the query, secrets.
function scrub(message: string, channel: NotificationChannel, settings: NotifySettings): string {
  const secrets: string[] = [];
  if (channel.type === 'webhook') {
    if (channel.url) secrets.push(channel.url);
    if (channel.urlEnv) secrets.push(settings.env(channel.urlEnv) ?? '');
    if (channel.secretEnv) secrets.push(settings.env(channel.secretEnv) ?? '');
  } else if (channel.type === 'email') {
    secrets.push(settings.env(channel.smtp.passwordEnv ?? '') ?? '');
  } else secrets.push(settings.env(channel.urlEnv) ?? '');
  let out = message;
  for (const secret of secrets.filter((s) => s.length >= 4)) out = out.split(secret).join('[redacted]');
  return out.slice(0, 300);
}
