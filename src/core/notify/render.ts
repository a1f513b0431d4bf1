/**
 * A notification shaped for each medium, with untrusted text escaped for that medium:
 *   plain text (mail text part, webhook `text`): control, bidi and invisible characters shown as \x.. / \u....
 *   mail HTML: the same, then HTML-escaped (& < > " ')
 *   Slack mrkdwn (Block Kit): the same, then & < > as &amp; &lt; &gt; (Slack's documented escaping,
 *     which also keeps <!channel> or <url|text> out of untrusted text)
 *   Teams Adaptive Card: the same, then Markdown punctuation backslash-escaped (TextBlock and
 *     FactSet render a Markdown subset: a reason must not become a link or bold text)
 */
import type { KnownBlock } from '@slack/types';
import { boundedEscape } from '../escape.js';
import type { Message } from './message.js';

// Reasons are at most 500 characters by policy; every value is bounded anyway (Slack: 3000 per text).
const neutral = (text: string, max = 600) => boundedEscape(text, max);

/** HTML text escaping (OWASP's five). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Slack mrkdwn escaping: https://docs.slack.dev/messaging/formatting-message-text#escaping */
export function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * Markdown punctuation backslash-escaped (CommonMark §2.4) for Teams' Markdown subset: emphasis,
 * links, code, headings anywhere, and a list marker at the start (values are one line by now).
 */
export function escapeTeamsMarkdown(text: string): string {
  return text.replace(/[\\`*_[\]()~<>#|]/g, (c) => `\\${c}`).replace(/^(\d+)([.)])|^([-+])/, '$1\\$2$3');
}

/** Plain text: title, fields, the command and the link. */
export function renderText(m: Message): string {
  const lines = [neutral(m.title), ''];
  for (const field of m.fields) lines.push(`${field.label}: ${neutral(field.value)}`);
  if (m.command) lines.push('', `To act: ${neutral(m.command)}`);
  if (m.link) lines.push(`Console: ${neutral(m.link, 2000)}`);
  return `${lines.join('\n')}\n`;
}

/** An e-mail: subject, text part, HTML part. */
export function renderMail(m: Message): { subject: string; text: string; html: string } {
  const h = (text: string, max?: number) => escapeHtml(neutral(text, max));
  const rows = m.fields
    .map(
      (f) => `<tr><th align="left" style="padding-right:1em">${h(f.label)}</th><td>${h(f.value)}</td></tr>`,
    )
    .join('\n');
  const html = [
    '<!doctype html><html><body>',
    `<p><strong>${h(m.title)}</strong></p>`,
    `<table>${rows}</table>`,
    m.command ? `<p>To act, run: <code>${h(m.command)}</code></p>` : '',
    m.link ? `<p><a href="${h(m.link, 2000)}">Open in the imp console</a></p>` : '',
    '</body></html>',
  ].join('\n');
  return { subject: `[imp] ${neutral(m.title, 200)}`, text: renderText(m), html };
}

/** A Slack incoming-webhook body: `text` (notification fallback) and Block Kit `blocks`. */
export function renderSlack(m: Message): { text: string; blocks: KnownBlock[] } {
  const s = (text: string, max?: number) => escapeSlack(neutral(text, max));
  const fields = m.fields.map((f) => `*${s(f.label)}:* ${s(f.value)}`).join('\n');
  const blocks: KnownBlock[] = [
    {
      type: 'section',
      text: { type: 'mrkdwn', text: `${m.urgent ? ':rotating_light: ' : ''}*${s(m.title)}*` },
    },
    { type: 'section', text: { type: 'mrkdwn', text: fields || ' ' } },
  ];
  const act: string[] = [];
  if (m.command) act.push(`To act: \`${s(m.command)}\``);
  if (m.link) act.push(`<${escapeSlack(m.link)}|Open in the imp console>`);
  if (act.length > 0)
    blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: act.join('  ·  ') }] });
  return { text: s(m.title), blocks };
}

/** A Teams incoming-webhook (Workflows) body: a message carrying one Adaptive Card 1.4. */
export function renderTeams(m: Message): TeamsMessage {
  const t = (text: string, max?: number) => escapeTeamsMarkdown(neutral(text, max));
  const body: TeamsCardElement[] = [
    {
      type: 'TextBlock',
      text: t(m.title),
      weight: 'Bolder',
      wrap: true,
      ...(m.urgent ? { color: 'Attention' as const } : {}),
    },
    { type: 'FactSet', facts: m.fields.map((f) => ({ title: t(f.label), value: t(f.value) })) },
  ];
  if (m.command)
    body.push({ type: 'TextBlock', text: `To act, run: ${t(m.command)}`, wrap: true, fontType: 'Monospace' });
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          body,
          // The URL is ours (consoleLink), not untrusted text: opened as is.
          ...(m.link
            ? { actions: [{ type: 'Action.OpenUrl', title: 'Open in the imp console', url: m.link }] }
            : {}),
        },
      },
    ],
  };
}

/** The elements imp puts on a card (a subset of the Adaptive Card schema). */
export type TeamsCardElement =
  | {
      type: 'TextBlock';
      text: string;
      wrap: boolean;
      weight?: 'Bolder';
      color?: 'Attention';
      fontType?: 'Monospace';
    }
  | { type: 'FactSet'; facts: { title: string; value: string }[] };

/** The body Teams' incoming webhooks (Power Automate "Workflows") accept. */
export interface TeamsMessage {
  type: 'message';
  attachments: {
    contentType: 'application/vnd.microsoft.card.adaptive';
    contentUrl: null;
    content: {
      $schema: string;
      type: 'AdaptiveCard';
      version: '1.4';
      body: TeamsCardElement[];
      actions?: { type: 'Action.OpenUrl'; title: string; url: string }[];
    };
  }[];
}
