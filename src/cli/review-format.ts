/**
 * The access review as text (terminal) or Markdown (to attach to a monthly access review). Every
 * value from the broker is untrusted: escaped for the terminal, and for Markdown also so a reason
 * cannot inject links, tables or headings.
 */
import type { ReportPerson, ReviewReport, ReviewSessionLine } from '../core/api.js';
import { escapeUntrusted } from '../core/escape.js';

/** Output formats of the review. */
export type ReviewFormat = 'text' | 'markdown' | 'json';

const md = (text: string) => escapeUntrusted(text).replace(/([\\`*_[\]|<>#])/g, '\\$1');
const who = (p: ReportPerson | null) => (p ? (p.email ?? p.sub) : 'unknown');
const when = (iso: string | null) => (iso ? iso.slice(0, 16).replace('T', ' ') : '—');

/** Renders the report. */
export function formatReview(report: ReviewReport, format: ReviewFormat): string {
  if (format === 'json') return JSON.stringify(report);
  return format === 'markdown' ? markdown(report) : text(report);
}

function summaryRows(r: ReviewReport): [string, string][] {
  return [
    [
      'Sessions started',
      `${r.totals.sessions} (${r.totals.write} write, ${r.totals.break_glass} break-glass)`,
    ],
    ['Break-glass awaiting review', String(r.awaiting_review.length)],
    ['Denials', String(r.totals.denials)],
    ['Step-up challenges and refused logins', String(r.totals.step_ups)],
    ['Failed alert deliveries', String(r.totals.alert_failures)],
    ['Roles held but not used', String(r.unused_roles.length)],
    [
      `Machine identities unused for ${r.unused_days ?? 30} days`,
      String((r.machines ?? []).filter((m) => m.unused).length),
    ],
  ];
}

function table(headers: string[], rows: string[][]): string[] {
  if (rows.length === 0) return ['None.'];
  return [
    `| ${headers.join(' | ')} |`,
    `|${headers.map(() => '---').join('|')}|`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ];
}

function reviewText(line: ReviewSessionLine): string {
  if (line.review) return `${line.review.outcome} (${line.review.by.email ?? line.review.by.sub})`;
  return line.started_at ? 'awaiting review' : 'not confirmed';
}

function markdown(r: ReviewReport): string {
  const bg = (s: ReviewSessionLine) => [
    when(s.created_at),
    md(who(s.requester)),
    md(s.decided_by ? who(s.decided_by) : '—'),
    `${md(s.tenant)}/${md(s.environment)}`,
    md(s.ticket),
    md(s.reason),
    s.state,
    md(reviewText(s)),
  ];
  return [
    `# imp access review: ${when(r.since)} to ${when(r.generated_at)} UTC`,
    '',
    `Broker ${md(r.broker)}, generated ${r.generated_at}.`,
    '',
    '## Summary',
    '',
    ...table(['What', 'Count'], summaryRows(r)),
    '',
    '## Break-glass sessions awaiting review',
    '',
    ...(r.awaiting_review.length === 0
      ? ['None.']
      : r.awaiting_review.map(
          (s) =>
            `- [ ] \`${s.id}\` ${md(who(s.requester))} on ${md(s.tenant)}/${md(s.environment)}, incident ${md(s.ticket)}, confirmed by ${md(who(s.decided_by))}, started ${when(s.started_at)}. Review: \`imp break-glass review ${s.id}\``,
        )),
    '',
    '## Sessions per person',
    '',
    ...table(
      ['Person', 'Sessions', 'Write', 'Break-glass'],
      r.by_person.map((p) => [md(who(p.person)), String(p.sessions), String(p.write), String(p.break_glass)]),
    ),
    '',
    '## Machine identities',
    '',
    ...table(
      ['Machine', 'Subject', 'Sessions', 'Denials', 'Last used', 'Flag'],
      (r.machines ?? []).map((m) => [
        md(m.name),
        md(m.subject),
        String(m.sessions),
        String(m.denials),
        when(m.last_used),
        m.unused ? `unused for ${r.unused_days} days` : '',
      ]),
    ),
    '',
    '## Sessions per tenant',
    '',
    ...table(
      ['Tenant', 'Sessions', 'Write', 'Break-glass'],
      r.by_tenant.map((t) => [md(t.tenant), String(t.sessions), String(t.write), String(t.break_glass)]),
    ),
    '',
    '## Write sessions',
    '',
    ...table(
      ['Started', 'Person', 'Approved by', 'Tenant', 'Ticket', 'Reason', 'State'],
      r.write_sessions.map((s) => [
        when(s.started_at),
        md(who(s.requester)),
        md(s.decided_by ? who(s.decided_by) : '—'),
        `${md(s.tenant)}/${md(s.environment)}`,
        md(s.ticket),
        md(s.reason),
        s.state,
      ]),
    ),
    '',
    '## Break-glass',
    '',
    ...table(
      ['Requested', 'Person', 'Confirmed by', 'Tenant', 'Incident', 'Reason', 'State', 'Review'],
      r.break_glass_sessions.map(bg),
    ),
    '',
    '## Denials',
    '',
    ...table(
      ['Time', 'Person', 'Event', 'Rule', 'Tenant'],
      r.denials.map((d) => [when(d.ts), md(who(d.person)), d.type, md(d.rule ?? '—'), md(d.tenant ?? '—')]),
    ),
    '',
    '## Step-up challenges and refused logins',
    '',
    ...table(
      ['Time', 'Person', 'Event', 'Why'],
      r.step_ups.map((s) => [when(s.ts), md(who(s.person)), s.type, md(s.why ?? '—')]),
    ),
    '',
    '## Failed alert deliveries',
    '',
    ...table(
      ['Time', 'Session', 'Webhook', 'Tries', 'Error'],
      r.alert_failures.map((a) => [
        when(a.ts),
        `\`${a.session ?? '—'}\``,
        md(a.url),
        String(a.attempts),
        md(a.error),
      ]),
    ),
    '',
    '## Roles held but not used (candidates to remove)',
    '',
    ...table(
      ['Person', 'Role', 'Via groups', 'Last login'],
      r.unused_roles.map((u) => [md(who(u.person)), md(u.role), md(u.groups.join(', ')), when(u.last_login)]),
    ),
    '',
    'Reviewed by: ____________________  Date: ____________  Decision: ____________',
  ].join('\n');
}

function text(r: ReviewReport): string {
  const t = escapeUntrusted;
  const section = (title: string, lines: string[]) => ['', title, ...(lines.length ? lines : ['  none'])];
  const sessionLine = (s: ReviewSessionLine) =>
    `  ${when(s.created_at)}  ${s.id}  ${t(who(s.requester))}  ${t(s.tenant)}/${t(s.environment)}  ${t(s.ticket)}  ${s.state}${s.decided_by ? `  by ${t(who(s.decided_by))}` : ''}`;
  return [
    `Access review ${when(r.since)} → ${when(r.generated_at)} UTC (${t(r.broker)})`,
    ...summaryRows(r).map(([k, v]) => `  ${k}: ${v}`),
    ...section(
      'Break-glass awaiting review:',
      r.awaiting_review.map((s) => `${sessionLine(s)}  → imp break-glass review ${s.id}`),
    ),
    ...section(
      'Sessions per person:',
      r.by_person.map(
        (p) => `  ${t(who(p.person))}: ${p.sessions} (${p.write} write, ${p.break_glass} break-glass)`,
      ),
    ),
    ...section(
      'Machine identities:',
      (r.machines ?? []).map(
        (m) =>
          `  ${t(m.name)} (${t(m.subject)}): ${m.sessions} session(s), ${m.denials} denial(s), last used ${when(m.last_used)}${m.unused ? `  UNUSED for ${r.unused_days} days` : ''}`,
      ),
    ),
    ...section(
      'Sessions per tenant:',
      r.by_tenant.map(
        (x) => `  ${t(x.tenant)}: ${x.sessions} (${x.write} write, ${x.break_glass} break-glass)`,
      ),
    ),
    ...section('Write sessions:', r.write_sessions.map(sessionLine)),
    ...section(
      'Break-glass:',
      r.break_glass_sessions.map((s) => `${sessionLine(s)}  [${t(reviewText(s))}]`),
    ),
    ...section(
      'Denials:',
      r.denials.map(
        (d) => `  ${when(d.ts)}  ${t(who(d.person))}  ${d.type}  ${t(d.rule ?? '—')}  ${t(d.tenant ?? '')}`,
      ),
    ),
    ...section(
      'Step-ups and refused logins:',
      r.step_ups.map((s) => `  ${when(s.ts)}  ${t(who(s.person))}  ${s.type}  ${t(s.why ?? '')}`),
    ),
    ...section(
      'Failed alert deliveries:',
      r.alert_failures.map(
        (a) =>
          `  ${when(a.ts)}  session ${a.session ?? '—'}  ${t(a.url)}  ${a.attempts} tries: ${t(a.error)}`,
      ),
    ),
    ...section(
      'Roles held but not used (candidates to remove):',
      r.unused_roles.map(
        (u) =>
          `  ${t(who(u.person))}  ${t(u.role)}  (groups ${t(u.groups.join(', '))}; last login ${when(u.last_login)})`,
      ),
    ),
  ].join('\n');
}
