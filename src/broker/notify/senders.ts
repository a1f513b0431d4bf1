/**
 * One try of one notification on one channel: a signed JSON webhook (the break-glass alert format),
 * a Slack or Teams incoming webhook, or a mail over SMTP (nodemailer, loaded only when a mail goes
 * out). A try either resolves or throws a {@link SendError} saying whether trying again can help.
 */
import { readFile } from 'node:fs/promises';
import type { Message, NotificationFacts } from '../../core/notify/message.js';
import { renderMail, renderSlack, renderTeams, renderText } from '../../core/notify/render.js';
import type { EmailChannel, NotificationChannel } from '../../core/policy/notifications.js';
import { signAlert } from '../alerts.js';

/** A failed try; `permanent`: the receiver refused the request itself and will not change its mind. */
export class SendError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

/** What a try needs from the broker. */
export interface SendContext {
  fetch: typeof fetch;
  /** Reads an env var the policy names (URLs of chat webhooks, secrets, SMTP credentials). */
  env: (name: string) => string | undefined;
  nowMs: number;
  timeoutMs: number;
  signal: AbortSignal;
  issuer: string;
  /** The outbox row id: the webhook's delivery id, the same on every retry. */
  delivery: string;
}

/** What was sent to whom (for the audit record: a count, never a URL or a secret). */
export interface Sent {
  status?: number;
  recipients?: number;
}

/** Sends one notification; throws SendError. */
export async function send(
  channel: NotificationChannel,
  facts: NotificationFacts,
  message: Message,
  people: string[],
  ctx: SendContext,
): Promise<Sent> {
  if (channel.type === 'email') return sendMail(channel, message, people, ctx);
  const url = channel.type === 'webhook' && channel.url ? channel.url : ctx.env(channel.urlEnv ?? '');
  if (!url)
    throw new SendError(`the env var ${channel.urlEnv} holding the URL is not set on the broker`, true);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'imp-broker' };
  let body: string;
  if (channel.type === 'webhook') {
    body = JSON.stringify(webhookBody(facts, message, ctx));
    headers['x-imp-event'] = facts.kind;
    headers['x-imp-delivery'] = ctx.delivery;
    if (channel.secretEnv) {
      const secret = ctx.env(channel.secretEnv);
      // Unsigned deliveries to a receiver that expects signatures would be dropped as forgeries.
      if (!secret) throw new SendError(`secret_env ${channel.secretEnv} is not set on the broker`, true);
      headers['x-imp-signature'] = signAlert(secret, Math.floor(ctx.nowMs / 1000), body);
    }
  } else body = JSON.stringify(channel.type === 'slack' ? renderSlack(message) : renderTeams(message));
  let response: Response;
  try {
    response = await ctx.fetch(url, {
      method: 'POST',
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(ctx.timeoutMs)]),
    });
  } catch (cause) {
    const inner = (cause as { cause?: { code?: string; message?: string } }).cause;
    throw new SendError(inner?.code ?? inner?.message ?? (cause as Error).message ?? String(cause), false);
  }
  await response.body?.cancel().catch(() => {});
  if (response.status >= 200 && response.status < 300) return { status: response.status };
  const retryable = response.status >= 500 || response.status === 408 || response.status === 429;
  throw new SendError(`HTTP ${response.status}`, !retryable);
}

/** The JSON a signed webhook receives (README: "Notifications"). */
export function webhookBody(
  facts: NotificationFacts,
  message: Message,
  ctx: Pick<SendContext, 'issuer' | 'delivery'>,
) {
  return {
    event: facts.kind,
    delivery: ctx.delivery,
    broker: ctx.issuer,
    audit_event: facts.eventId,
    at: facts.at,
    session_id: facts.sessionId,
    short_id: facts.shortId,
    tenant: facts.tenant,
    environment: facts.environment,
    scope: facts.scope,
    mode: facts.mode,
    ticket: facts.ticket,
    reason: facts.reason,
    requester: facts.requester,
    actor: facts.actor,
    detail: facts.detail,
    until: facts.until,
    command: facts.command,
    console_url: facts.link,
    // Ready to show: control and bidi characters already neutralised.
    text: renderText(message),
  };
}

async function sendMail(
  channel: EmailChannel,
  message: Message,
  people: string[],
  ctx: SendContext,
): Promise<Sent> {
  const to = [...new Set([...channel.to, ...(channel.people ? people : [])])];
  if (to.length === 0)
    throw new SendError(
      'no recipient: nobody it concerns has a known address (people directory or e-mail claim), and the channel has no to: list',
      true,
    );
  const { smtp } = channel;
  const user = smtp.userEnv ? ctx.env(smtp.userEnv) : undefined;
  const pass = smtp.passwordEnv ? ctx.env(smtp.passwordEnv) : undefined;
  if (smtp.userEnv && (!user || !pass))
    throw new SendError(`${smtp.userEnv} / ${smtp.passwordEnv} are not set on the broker`, true);
  const { createTransport } = (await import('nodemailer')).default;
  const transport = createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.security === 'tls',
    // STARTTLS is required, never opportunistic: a relay that does not offer it gets nothing.
    requireTLS: smtp.security === 'starttls',
    ignoreTLS: smtp.security === 'none',
    ...(user && pass ? { auth: { user, pass } } : {}),
    tls: smtp.caFile ? { ca: await readFile(smtp.caFile, 'utf8') } : {},
    connectionTimeout: ctx.timeoutMs,
    greetingTimeout: ctx.timeoutMs,
    socketTimeout: ctx.timeoutMs,
  });
  const mail = renderMail(message);
  try {
    await transport.sendMail({
      from: channel.from,
      to,
      subject: mail.subject,
      text: mail.text,
      html: mail.html,
    });
    return { recipients: to.length };
  } catch (cause) {
    const error = cause as { responseCode?: number; code?: string; message?: string };
    // 5xx from the relay is a refusal (bad sender, relaying denied); 4xx and network trouble may pass.
    const permanent = error.responseCode !== undefined && error.responseCode >= 500;
    throw new SendError(`${error.code ?? 'SMTP'}: ${error.message ?? String(cause)}`, permanent);
  } finally {
    transport.close();
  }
}
