/** The post-session summary as text (terminal), Markdown (paste into the ticket) or JSON. */
import type { SessionSummary } from '../core/api.js';
import { formatDuration } from '../core/duration.js';
import { escapeUntrusted } from '../core/escape.js';

/** Output formats of a summary. */
export type SummaryFormat = 'text' | 'markdown' | 'json';

/** Renders a summary. */
export function formatSummary(summary: SessionSummary, format: SummaryFormat): string {
  if (format === 'json') return JSON.stringify(summary);
  const s = summary.session;
  const who = escapeUntrusted(s.requester.email ?? s.requester.sub);
  const calls = summary.calls.map(
    (c) =>
      `${c.ts.slice(11, 19)} ${c.method} ${escapeUntrusted(c.path)} → ${c.outcome === 'denied' ? 'denied' : (c.status ?? 'failed')}`,
  );
  if (format === 'markdown') {
    // Cells are escaped for Markdown too: a reason must not be able to inject links or tables.
    const md = (text: string) => escapeUntrusted(text).replace(/([\\`*_[\]|<>#])/g, '\\$1');
    return [
      `### imp session ${s.id}`,
      '',
      '| | |',
      '|---|---|',
      `| Engineer | ${md(s.requester.email ?? s.requester.sub)} |`,
      `| Tenant | ${md(s.tenant)} / ${md(s.environment)} |`,
      `| Scope | ${s.scope}${s.mode === 'break_glass' ? ' (break-glass)' : ''} |`,
      `| Ticket | ${md(s.ticket)} |`,
      `| Reason | ${md(s.reason)} |`,
      `| Started | ${s.started_at ?? 'never'} |`,
      `| Ended | ${s.ended_at ?? 'still active'} (${s.state}) |`,
      `| Duration | ${formatDuration(summary.duration_seconds)} |`,
      `| Actions | ${summary.actions.read} read, ${summary.actions.write} write, ${summary.actions.export} export |`,
      `| Denied | ${summary.denials} |`,
      ...(s.decided_by ? [`| Approved by | ${md(s.decided_by.email ?? s.decided_by.sub)} |`] : []),
      '',
      ...(calls.length
        ? [
            'Calls:',
            '',
            ...summary.calls.map(
              (c) =>
                `- \`${c.ts}\` ${c.method} ${codeSpan(c.path)} → ${c.outcome === 'denied' ? 'denied' : (c.status ?? 'failed')}`,
            ),
          ]
        : ['No calls were made.']),
    ].join('\n');
  }
  return [
    `Session ${s.id} — ${s.state}`,
    `  ${who} as ${escapeUntrusted(s.tenant)}/${escapeUntrusted(s.environment)} (${s.scope}${s.mode === 'break_glass' ? ', break-glass' : ''}), ticket ${escapeUntrusted(s.ticket)}`,
    `  duration ${formatDuration(summary.duration_seconds)}; actions: ${summary.actions.read} read, ${summary.actions.write} write, ${summary.actions.export} export; denied: ${summary.denials}`,
    ...calls.map((line) => `    ${line}`),
  ].join('\n');
}

/**
 * A Markdown code span (CommonMark 6.1): backslashes are literal inside one, so nothing is escaped;
 * the fence is one backtick longer than any run inside, padded when the text starts or ends with one.
 */
export function codeSpan(text: string): string {
  const safe = escapeUntrusted(text).replace(/\r?\n/g, ' ');
  const longest = Math.max(0, ...(safe.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  const pad = safe.startsWith('`') || safe.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${safe}${pad}${fence}`;
}
