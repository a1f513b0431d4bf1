/**
 * The Sessions pages: the viewer's own sessions and (for supervise/revoke/audit/review roles)
 * everyone's live ones, with time left that counts down in the page and is corrected by the
 * broker's event stream (/console/sessions/:id/live, SSE); a session's detail with its summary
 * (each proxied call with status) and, for people who may, a revoke form with a reason.
 */
import type { SessionSummary, SessionView } from '../../core/api.js';
import type { AuditEvent } from '../../core/audit/event.js';
import { escapeUntrusted as text } from '../../core/escape.js';
import { page, type Viewer } from './pages.js';
import { SessionTimeline } from './session-timeline.js';

/** A person as the console names them. */
/** A person as the IdP named them: a claim, so controls and bidi marks are made visible (then HTML-escaped by the renderer). */
export const who = (person: { sub: string; email: string | null }) => text(person.email ?? person.sub);
/** A UTC time as the console shows it. */
export const at = (iso: string | null) => (iso ? `${iso.replace('T', ' ').slice(0, 19)} UTC` : '—');

/** Time left, counted down by the script and corrected by the session's event stream. */
function TimeLeft(props: { session: SessionView }) {
  const s = props.session;
  if (s.state !== 'active' || !s.expires_at) return <span>{s.state}</span>;
  return (
    <span class="time-left" data-expires={s.expires_at} data-live={`/console/sessions/${s.id}/live`}>
      until {at(s.expires_at)}
    </span>
  );
}

/** The watch page of a live session, offered to a `supervise` role on someone else's session (the route decides). */
function WatchLink(props: { session: SessionView; viewer: Viewer; canWatch: boolean }) {
  const s = props.session;
  if (!props.canWatch || s.state !== 'active' || s.requester.sub === props.viewer.session.user.sub)
    return null;
  return (
    <a
      class="watch"
      href={`/console/sessions/${s.id}/watch`}
      aria-label={`Watch live: ${who(s.requester)} on ${s.tenant}/${s.environment}`}
    >
      Watch live
    </a>
  );
}

function SessionTable(props: {
  sessions: SessionView[];
  caption: string;
  viewer: Viewer;
  canWatch: boolean;
}) {
  return (
    <div class="table-wrap">
      <table>
        <caption>{props.caption}</caption>
        <thead>
          <tr>
            <th scope="col">Who</th>
            <th scope="col">Tenant</th>
            <th scope="col">Scope</th>
            <th scope="col">Ticket</th>
            <th scope="col">Time left</th>
          </tr>
        </thead>
        <tbody>
          {props.sessions.map((s) => (
            <tr key={s.id}>
              <td>
                <a href={`/console/sessions/${s.id}`}>{who(s.requester)}</a>
              </td>
              <td>
                {text(s.tenant)}/{text(s.environment)}
              </td>
              <td class={`scope-${s.scope}`}>{s.scope === 'write' ? 'WRITE' : 'read'}</td>
              <td>{text(s.ticket)}</td>
              <td>
                <TimeLeft session={s} />{' '}
                <WatchLink session={s} viewer={props.viewer} canWatch={props.canWatch} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Who, where, what and why of a session: the facts every session page starts from. */
export function SessionFacts(props: { session: SessionView }) {
  const s = props.session;
  return (
    <>
      <dt>Who</dt>
      <dd>{who(s.requester)}</dd>
      <dt>Tenant</dt>
      <dd>
        {text(s.tenant)}/{text(s.environment)}
      </dd>
      <dt>Scope</dt>
      <dd class={`scope-${s.scope}`}>{s.scope === 'write' ? 'WRITE' : 'read'}</dd>
      <dt>Ticket</dt>
      <dd>{text(s.ticket)}</dd>
      <dt>Reason</dt>
      <dd class="reason">{text(s.reason)}</dd>
    </>
  );
}

/** Revoke with a reason: POST /console/sessions/:id/revoke (the API's revoke, its fresh login and audit). */
export function RevokeForm(props: { viewer: Viewer; session: SessionView }) {
  return (
    <form class="decide" method="post" action={`/console/sessions/${props.session.id}/revoke`}>
      <input type="hidden" name="csrf" value={props.viewer.session.csrf} />
      <label for="reason">Reason for revoking</label>
      <textarea id="reason" name="reason" rows={3} required minLength={3} maxLength={500} />
      <div class="buttons">
        <button type="submit" class="revoke">
          Revoke session
        </button>
      </div>
    </form>
  );
}

/** Everyone's live sessions (when the viewer may see them) and the viewer's own. */
export function sessionsPage(
  viewer: Viewer,
  live: SessionView[] | null,
  own: SessionView[],
  canWatch = false,
): string {
  return page({
    title: 'Sessions',
    viewer,
    current: 'sessions',
    children: (
      <>
        {live === null ? null : live.length === 0 ? (
          <p>No live sessions.</p>
        ) : (
          <SessionTable sessions={live} caption="Live sessions" viewer={viewer} canWatch={canWatch} />
        )}
        {own.length === 0 ? (
          <p>You have no sessions.</p>
        ) : (
          <SessionTable sessions={own} caption="Your sessions" viewer={viewer} canWatch={canWatch} />
        )}
      </>
    ),
  });
}

/** One session: facts, time left, the calls it made, and revoke for those who may. */
export function sessionPage(
  viewer: Viewer,
  session: SessionView,
  summary: SessionSummary | null,
  canRevoke: boolean,
  note?: string,
  canReview = false,
  /** Show the recording's player (decided by the handler, which also sets the player's CSP). */
  replay = false,
  timeline: AuditEvent[] | null = null,
  canWatch = false,
): string {
  const s = session;
  return page({
    title: `Session ${s.id.slice(0, 8)}`,
    viewer,
    current: 'sessions',
    player: replay,
    children: (
      <>
        {note ? (
          <p role="status" class="notice">
            {note}
          </p>
        ) : null}
        <dl class="facts">
          <dt>State</dt>
          <dd>
            <strong class={`state state-${s.state}`}>{s.state}</strong>
            {s.state === 'revoked' && s.ended_by ? ` by ${who(s.ended_by)}` : ''}
            {s.state === 'revoked' && s.decision_comment ? ` (“${text(s.decision_comment)}”)` : ''}
          </dd>
          <dt>Time left</dt>
          <dd>
            <TimeLeft session={s} /> <WatchLink session={s} viewer={viewer} canWatch={canWatch} />
          </dd>
          <SessionFacts session={s} />
          <dt>Requested</dt>
          <dd>{at(s.created_at)}</dd>
          <dt>Approved</dt>
          <dd>
            {s.decided_by
              ? `${who(s.decided_by)}${s.decision_comment && s.state !== 'revoked' ? ` (“${text(s.decision_comment)}”)` : ''}`
              : '—'}
          </dd>
          <dt>Started</dt>
          <dd>{at(s.started_at)}</dd>
          <dt>Ended</dt>
          <dd>{at(s.ended_at)}</dd>
        </dl>
        {summary ? (
          <>
            <h2>Summary</h2>
            <p>
              {summary.actions.read} reads, {summary.actions.write} writes, {summary.actions.export} exports,{' '}
              {summary.denials} denied; {Math.round(summary.duration_seconds / 60)} min.
            </p>
            {summary.calls.length > 0 ? (
              <div class="table-wrap">
                <table>
                  <caption>Calls through the audited proxy</caption>
                  <thead>
                    <tr>
                      <th scope="col">When</th>
                      <th scope="col">Call</th>
                      <th scope="col">Status</th>
                      <th scope="col">Outcome</th>
                    </tr>
                  </thead>
                  <tbody>
                    {summary.calls.map((c, i) => (
                      <tr key={`${c.ts}-${i}`}>
                        <td>{at(c.ts)}</td>
                        <td class="code">
                          {c.method} {text(c.path)}
                        </td>
                        <td>{c.status ?? '—'}</td>
                        <td>{c.outcome}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            ) : null}
          </>
        ) : null}
        {timeline ? (
          <>
            <h2>Timeline</h2>
            <SessionTimeline events={timeline} />
          </>
        ) : null}
        {replay ? (
          <section aria-labelledby="replay-title">
            <h2 id="replay-title">Recording</h2>
            <p class="meta">Each replay is audited (recording.replayed).</p>
            <div class="player" data-cast={`/console/sessions/${s.id}/cast`} />
            <p>
              <a href={`/console/sessions/${s.id}/cast`} download={`${s.id}.cast`}>
                Download the recording (asciicast v2)
              </a>{' '}
              — play it with <span class="code">asciinema play</span> or <span class="code">imp replay</span>.
            </p>
          </section>
        ) : null}
        {canRevoke && s.state === 'active' ? <RevokeForm viewer={viewer} session={s} /> : null}
        {canReview && s.mode === 'break_glass' && s.review_required && !s.review && s.state !== 'active' ? (
          <form class="decide" method="post" action={`/console/sessions/${s.id}/review`}>
            <input type="hidden" name="csrf" value={viewer.session.csrf} />
            <fieldset>
              <legend>Review this break-glass session (a fresh login is asked for)</legend>
              <label>
                <input type="radio" name="outcome" value="justified" required /> Justified
              </label>{' '}
              <label>
                <input type="radio" name="outcome" value="unjustified" /> Unjustified
              </label>
            </fieldset>
            <label for="notes">Notes (what you checked)</label>
            <textarea id="notes" name="notes" rows={3} required maxLength={2000} />
            <div class="buttons">
              <button type="submit">Record review</button>
            </div>
          </form>
        ) : null}
        {s.review ? (
          <p class="notice">{`Reviewed: ${s.review.outcome} by ${who(s.review.by)} at ${s.review.at}.`}</p>
        ) : null}
      </>
    ),
  });
}
