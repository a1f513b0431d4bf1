/**
 * The Requests pages: what an approver decides on (who, tenant/environment, scope, duration, the
 * ticket — linked into the ticket system when one is configured — the reason, and the requester's
 * recent access to that tenant), the decision forms, and the passkey confirmation an action waits
 * for. Untrusted text goes through escapeUntrusted (controls, C1, bidi) and then the renderer's HTML
 * escaping; a ticket link is built by core/ticket-link.ts from the policy's URL and a checked id only.
 */
import type { PendingRequestView, RecentAccessView, SessionView } from '../../core/api.js';
import { escapeUntrusted as text } from '../../core/escape.js';
import { type TicketLinkSystem, ticketLink } from '../../core/ticket-link.js';
import { page, type Viewer } from './pages.js';

/** What the Requests pages need besides the requests: the ticket system to link into, and now (ms). */
export interface RequestPageContext {
  tickets: TicketLinkSystem | null;
  now: number;
}

const who = (person: { sub: string; email: string | null }) => text(person.email ?? person.sub);

function ttlText(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

function durationText(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  if (minutes < 1) return 'under a minute';
  if (minutes < 120) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

const utc = (at: string) => `${at.replace('T', ' ').slice(0, 16)} UTC`;

/** The ticket id, as a link into the ticket system when it has a safe shape, else as escaped text. */
function Ticket(props: { ticket: string; context: RequestPageContext }) {
  const href = ticketLink(props.context.tickets, props.ticket);
  const shown = text(props.ticket);
  return href ? (
    <a class="ticket" href={href} rel="noreferrer">
      {shown}
    </a>
  ) : (
    <span class="ticket">{shown}</span>
  );
}

/** How an earlier session came about: approved, denied, break-glass, or nobody had to decide. */
function outcomeOf(r: RecentAccessView): string {
  const by = r.decided_by ? who(r.decided_by) : null;
  if (r.mode === 'break_glass') return by ? `break-glass, confirmed by ${by}` : 'break-glass, not confirmed';
  if (r.state === 'denied') return `denied${by ? ` by ${by}` : ''}`;
  if (r.state === 'pending') return 'waiting for approval';
  if (r.state === 'cancelled') return 'cancelled before a decision';
  if (r.state === 'request_expired') return 'request expired undecided';
  return by ? `approved by ${by}` : 'no approval needed';
}

/** How long it ran, and how it ended. */
function runText(r: RecentAccessView, now: number): string {
  if (!r.started_at) return 'never started';
  const started = Date.parse(r.started_at);
  if (r.state === 'active') return `active for ${durationText(now - started)} so far`;
  const ended = r.ended_at ? Date.parse(r.ended_at) : null;
  return ended === null ? r.state : `${r.state} after ${durationText(ended - started)}`;
}

/** The requester's earlier sessions on this tenant, newest first (absent when the API did not list them). */
function RecentAccess(props: {
  request: PendingRequestView;
  context: RequestPageContext;
  heading: 'h2' | 'h3';
}) {
  const rows = props.request.recent_access;
  if (!rows) return null;
  const Heading = props.heading;
  const id = `recent-${props.request.id}`;
  return (
    <section class="recent" aria-labelledby={id}>
      <Heading id={id}>
        Recent access by {who(props.request.requester)} to {text(props.request.tenant)}
      </Heading>
      {rows.length === 0 ? (
        <p>None: no earlier session or request on this tenant.</p>
      ) : (
        <ul>
          {rows.map((r) => (
            <li key={r.id}>
              <time datetime={r.created_at}>{utc(r.created_at)}</time> · {text(r.environment)} ·{' '}
              <span class={`scope scope-${r.scope}`}>{r.scope === 'write' ? 'WRITE' : 'read'}</span> ·{' '}
              <Ticket ticket={r.ticket} context={props.context} /> · {outcomeOf(r)} ·{' '}
              {runText(r, props.context.now)}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/** The facts an approver decides on, as a description list. */
function RequestFacts(props: { request: SessionView; context: RequestPageContext }) {
  const r = props.request;
  return (
    <dl class="facts">
      <dt>Requested by</dt>
      <dd>{who(r.requester)}</dd>
      <dt>Tenant</dt>
      <dd>
        {text(r.tenant)}/{text(r.environment)}
      </dd>
      <dt>Scope</dt>
      <dd>
        <span class={`scope scope-${r.scope}`}>{r.scope === 'write' ? 'WRITE' : 'read'}</span>
        {r.mode === 'break_glass' ? <span class="badge">break-glass</span> : null}
      </dd>
      <dt>Duration</dt>
      <dd>{ttlText(r.ttl)}</dd>
      <dt>{r.mode === 'break_glass' ? 'Incident' : 'Ticket'}</dt>
      <dd>
        <Ticket ticket={r.ticket} context={props.context} />
      </dd>
      <dt>Reason</dt>
      <dd class="reason">{text(r.reason)}</dd>
      <dt>Requested at</dt>
      <dd>
        <time datetime={r.created_at}>{r.created_at.replace('T', ' ').slice(0, 19)} UTC</time>
      </dd>
      {r.request_expires_at ? (
        <>
          <dt>Expires unless decided</dt>
          <dd>
            <time datetime={r.request_expires_at}>
              {r.request_expires_at.replace('T', ' ').slice(0, 19)} UTC
            </time>
          </dd>
        </>
      ) : null}
    </dl>
  );
}

/** Pending requests the viewer may decide (the API never lists their own), newest first. */
export function requestsPage(
  viewer: Viewer,
  requests: PendingRequestView[],
  context: RequestPageContext,
): string {
  const newest = [...requests].sort((a, b) => b.created_at.localeCompare(a.created_at));
  return page({
    title: 'Requests',
    viewer,
    current: 'requests',
    children:
      newest.length === 0 ? (
        <p>Nothing is waiting for you.</p>
      ) : (
        <ul class="cards">
          {newest.map((r) => (
            <li key={r.id} class="card">
              <h2>
                <a href={`/console/requests/${r.id}`}>
                  {who(r.requester)} → {text(r.tenant)}/{text(r.environment)}{' '}
                  {r.scope === 'write' ? 'WRITE' : 'read'}
                  {r.mode === 'break_glass' ? ' break-glass' : ''}
                </a>
              </h2>
              <p class="meta">
                {r.mode === 'break_glass' ? 'Incident' : 'Ticket'}{' '}
                <Ticket ticket={r.ticket} context={context} /> · {ttlText(r.ttl)} · requested{' '}
                <time datetime={r.created_at}>{utc(r.created_at)}</time>
              </p>
              <p class="reason">{text(r.reason)}</p>
              <RecentAccess request={r} context={context} heading="h3" />
            </li>
          ))}
        </ul>
      ),
  });
}

/** One request; decision forms only when the viewer may decide it (never their own). */
export function requestPage(
  viewer: Viewer,
  request: PendingRequestView,
  canDecide: boolean,
  context: RequestPageContext,
  note?: string,
): string {
  const pending = request.state === 'pending';
  return page({
    title: `Request ${request.id.slice(0, 8)}`,
    viewer,
    current: 'requests',
    children: (
      <>
        {note ? (
          <p role="status" class="notice">
            {note}
          </p>
        ) : null}
        <p>
          State: <strong class={`state state-${request.state}`}>{request.state}</strong>
          {request.decided_by ? ` — by ${who(request.decided_by)}` : ''}
          {request.decision_comment ? ` (“${text(request.decision_comment)}”)` : ''}
        </p>
        <RequestFacts request={request} context={context} />
        <RecentAccess request={request} context={context} heading="h2" />
        {pending && canDecide && request.mode === 'break_glass' ? (
          <form class="decide" method="post" action={`/console/requests/${request.id}/decide`}>
            <input type="hidden" name="csrf" value={viewer.session.csrf} />
            <p>Confirming starts a write session at once; a fresh login is asked for, and alerts go out.</p>
            <div class="buttons">
              <button type="submit" name="decision" value="confirm" class="deny">
                Confirm break-glass
              </button>
            </div>
          </form>
        ) : pending && canDecide ? (
          <form class="decide" method="post" action={`/console/requests/${request.id}/decide`}>
            <input type="hidden" name="csrf" value={viewer.session.csrf} />
            <label for="comment">
              Comment (optional to approve; to deny, say why: the requester is shown it)
            </label>
            <textarea id="comment" name="comment" rows={3} maxLength={500} />
            <div class="buttons">
              <button type="submit" name="decision" value="approve" class="approve">
                Approve
              </button>
              <button type="submit" name="decision" value="deny" class="deny">
                Deny
              </button>
            </div>
          </form>
        ) : pending ? (
          <p class="notice">
            You cannot decide this request{isOwn(viewer, request) ? ': it is your own' : ''}.
          </p>
        ) : null}
      </>
    ),
  });
}

function isOwn(viewer: Viewer, request: SessionView): boolean {
  return request.requester.sub === viewer.session.user.sub;
}
