/**
 * The Access review page (roles with `audit` or `review`): the report `imp review` prints, read
 * through the API's own audited GET /v1/review (so opening the page is an `audit.read` like the CLI's),
 * with its charts as server-rendered SVG and a print stylesheet, so the page printed to PDF is the
 * quarterly review's paper trail.
 */
import type { ReportPerson, ReviewReport } from '../../core/api.js';
import { formatDuration } from '../../core/duration.js';
import type { HandlerContext, HandlerResult } from '../context.js';
import { BarChart, PALETTE, StackedChart } from './charts.js';
import { apiErrorPage, callApi, html, toLogin, viewerOf } from './http.js';
import { page, type Viewer } from './pages.js';

const who = (p: ReportPerson) => p.email ?? p.sub;

/** The chart titles, also what a test finds in the printed PDF. */
export const REVIEW_CHARTS = {
  weekly: 'Sessions per week by tenant and scope',
  breakGlass: 'Break-glass sessions and their review',
  approvals: 'Approvals by approver (median wait)',
  unused: 'Unused roles',
  writeTime: 'People with the most write time',
} as const;

function breakGlassBars(r: ReviewReport) {
  const lines = r.break_glass_sessions;
  const count = (test: (l: (typeof lines)[number]) => boolean) => lines.filter(test).length;
  return [
    { label: 'Justified', value: count((l) => l.review?.outcome === 'justified') },
    { label: 'Unjustified', value: count((l) => l.review?.outcome === 'unjustified') },
    { label: 'Awaiting review', value: count((l) => !l.review && l.started_at !== null) },
    { label: 'Never started', value: count((l) => !l.review && l.started_at === null) },
  ];
}

function reviewPage(viewer: Viewer, since: string, r: ReviewReport): string {
  const weeks = [...new Set(r.weekly.map((w) => w.week))];
  const unusedByRole = new Map<string, number>();
  for (const u of r.unused_roles) unusedByRole.set(u.role, (unusedByRole.get(u.role) ?? 0) + 1);
  return page({
    title: 'Access review',
    viewer,
    current: 'review',
    children: (
      <>
        <form class="filters" method="get" action="/console/review">
          <p>
            <label for="f-since">Period (30d, 90d, or a UTC date such as 2026-10-01)</label>
            <input id="f-since" name="since" value={since} />
          </p>
          <div class="buttons">
            <button type="submit">Show</button>
          </div>
        </form>
        <dl class="facts">
          <dt>Period</dt>
          <dd>{`${r.since} to ${r.generated_at}`}</dd>
          <dt>Broker</dt>
          <dd>{r.broker}</dd>
          <dt>Sessions</dt>
          <dd>{`${r.totals.sessions} (${r.totals.write} write, ${r.totals.break_glass} break-glass)`}</dd>
          <dt>Refusals, step-ups</dt>
          <dd>{`${r.totals.denials}, ${r.totals.step_ups}`}</dd>
          <dt>Undelivered alerts</dt>
          <dd>{String(r.totals.alert_failures)}</dd>
        </dl>
        <StackedChart
          id="c-weekly"
          title={REVIEW_CHARTS.weekly}
          desc="Sessions started, by the UTC week (Monday) they started in; one colour per tenant and scope."
          stacks={weeks.map((week) => ({
            label: `week of ${week}`,
            parts: r.weekly
              .filter((w) => w.week === week)
              .map((w) => ({ series: `${w.tenant} ${w.scope}`, value: w.sessions })),
          }))}
        />
        <BarChart
          id="c-breakglass"
          title={REVIEW_CHARTS.breakGlass}
          desc={`${r.break_glass_sessions.length} break-glass session(s) requested in the period; ${r.awaiting_review.length} (any period) still await a third person's review.`}
          bars={breakGlassBars(r)}
          colour={PALETTE[1]}
        />
        <BarChart
          id="c-approvals"
          title={REVIEW_CHARTS.approvals}
          desc="Requests approved in the period, by approver; the median time from request to approval follows the count."
          bars={r.approvals.map((a) => ({
            label: who(a.approver),
            value: a.approvals,
            text: `${a.approvals} (median ${formatDuration(a.median_wait_seconds)})`,
          }))}
          colour={PALETTE[2]}
        />
        <BarChart
          id="c-unused"
          title={REVIEW_CHARTS.unused}
          desc="People per role whose groups grant it but who did not use it in the period: candidates to remove from the group."
          bars={[...unusedByRole].map(([role, n]) => ({ label: role, value: n, text: `${n} person(s)` }))}
          colour={PALETTE[3]}
        />
        {r.unused_roles.length ? (
          <div class="table-wrap">
            <table>
              <caption>Unused roles, person by person</caption>
              <thead>
                <tr>
                  <th scope="col">Person</th>
                  <th scope="col">Role</th>
                  <th scope="col">Through groups</th>
                  <th scope="col">Last login (UTC)</th>
                </tr>
              </thead>
              <tbody>
                {r.unused_roles.map((u) => (
                  <tr key={`${u.person.sub}-${u.role}`}>
                    <td>{who(u.person)}</td>
                    <td>{u.role}</td>
                    <td>{u.groups.join(', ')}</td>
                    <td>{u.last_login.replace('T', ' ').slice(0, 19)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
        <BarChart
          id="c-writetime"
          title={REVIEW_CHARTS.writeTime}
          desc="Time in write sessions started in the period (a live one counts up to now)."
          bars={r.write_time.slice(0, 10).map((w) => ({
            label: who(w.person),
            value: w.seconds,
            text: formatDuration(w.seconds),
          }))}
          colour={PALETTE[6]}
        />
      </>
    ),
  });
}

/** GET /console/review?since= */
export async function getConsoleReview(ctx: HandlerContext): Promise<HandlerResult> {
  const since = ctx.query.since?.trim() || '30d';
  const here = `/console/review?${new URLSearchParams({ since }).toString()}`;
  const viewer = viewerOf(ctx);
  if (!viewer) return toLogin(ctx, here);
  const answer = await callApi(ctx, viewer.session, 'GET', `/v1/review?${new URLSearchParams({ since })}`);
  if (answer.error) return apiErrorPage(ctx, viewer, answer.status, answer.error, '/console/review');
  return html(ctx.deps, reviewPage(viewer, since, answer.body as ReviewReport));
}
