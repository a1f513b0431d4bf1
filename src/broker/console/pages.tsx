/**
 * The console's pages, TSX rendered to strings on the server (preact-render-to-string): every value
 * interpolated into text or an attribute is escaped by the renderer, and nothing here uses
 * dangerouslySetInnerHTML, so a reason holding `<script>` is text. No inline script or style: the
 * CSP forbids both; the stylesheet and the small enhancement script are files under /console/assets/.
 */
import type { ComponentChildren } from 'preact';
import { render } from 'preact-render-to-string';
import type { SessionView } from '../../core/api.js';
import type { ConsoleSession } from './state.js';

/** Who is looking, and the token their forms carry. */
export interface Viewer {
  session: ConsoleSession;
}

const NAV = [
  ['requests', 'Requests', '/console/requests'],
  ['sessions', 'Sessions', '/console/sessions'],
  ['audit', 'Audit', '/console/audit'],
  ['review', 'Access review', '/console/review'],
] as const;

/** Renders a whole document. */
export function page(props: {
  title: string;
  viewer?: Viewer;
  current?: string;
  children: ComponentChildren;
  refreshTo?: string;
  /** Loads asciinema-player (before console.js, which starts it) on pages that replay or watch a session. */
  player?: boolean;
}): string {
  const { viewer } = props;
  return `<!doctype html>${render(
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        {props.refreshTo ? <meta http-equiv="refresh" content={`0;url=${props.refreshTo}`} /> : null}
        <title>{`${props.title} — imp console`}</title>
        <link rel="stylesheet" href="/console/assets/console.css" />
        {props.player ? <link rel="stylesheet" href="/console/assets/asciinema-player.css" /> : null}
        {props.player ? <script src="/console/assets/asciinema-player.js" defer /> : null}
        <script src="/console/assets/console.js" defer />
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="top">
          <span class="brand">imp console</span>
          {viewer ? (
            <nav aria-label="Console">
              <ul>
                {NAV.map(([key, label, href]) => (
                  <li key={key}>
                    <a href={href} aria-current={props.current === key ? 'page' : undefined}>
                      {label}
                    </a>
                  </li>
                ))}
              </ul>
            </nav>
          ) : null}
          {viewer ? (
            <form class="who" method="post" action="/console/logout">
              <span>{viewer.session.user.email ?? viewer.session.user.sub}</span>
              <input type="hidden" name="csrf" value={viewer.session.csrf} />
              <button type="submit">Log out</button>
            </form>
          ) : null}
        </header>
        <main id="main">
          <h1>{props.title}</h1>
          {props.children}
        </main>
      </body>
    </html>,
  )}`;
}

/** A plain notice (errors, "signed out", refusals). */
export function messagePage(
  title: string,
  message: string,
  viewer?: Viewer,
  link?: [string, string],
): string {
  return page({
    title,
    ...(viewer ? { viewer } : {}),
    children: (
      <>
        <p role="alert" class="notice">
          {message}
        </p>
        {link ? (
          <p>
            <a href={link[0]}>{link[1]}</a>
          </p>
        ) : null}
      </>
    ),
  });
}

/** A same-site hop: a meta refresh, so the SameSite=Strict cookie is sent on the next request. */
export function hopPage(to: string): string {
  return page({
    title: 'Continue',
    refreshTo: to,
    children: (
      <p>
        <a href={to}>Continue</a>
      </p>
    ),
  });
}

const who = (person: { sub: string; email: string | null }) => person.email ?? person.sub;

function ttlText(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/** The facts an approver decides on, as a description list. */
function RequestFacts(props: { request: SessionView }) {
  const r = props.request;
  return (
    <dl class="facts">
      <dt>Requested by</dt>
      <dd>{who(r.requester)}</dd>
      <dt>Tenant</dt>
      <dd>
        {r.tenant}/{r.environment}
      </dd>
      <dt>Scope</dt>
      <dd>
        <span class={`scope scope-${r.scope}`}>{r.scope === 'write' ? 'WRITE' : 'read'}</span>
        {r.mode === 'break_glass' ? <span class="badge">break-glass</span> : null}
      </dd>
      <dt>Duration</dt>
      <dd>{ttlText(r.ttl)}</dd>
      <dt>Ticket</dt>
      <dd>{r.ticket}</dd>
      <dt>Reason</dt>
      <dd class="reason">{r.reason}</dd>
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

/** Pending requests the viewer may decide (the API never lists their own). */
export function requestsPage(viewer: Viewer, requests: SessionView[]): string {
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
                  {who(r.requester)} → {r.tenant}/{r.environment} {r.scope === 'write' ? 'WRITE' : 'read'}
                </a>
              </h2>
              <p class="meta">
                {r.ticket} · {ttlText(r.ttl)}
              </p>
              <p class="reason">{r.reason}</p>
            </li>
          ))}
        </ul>
      ),
  });
}

/** One request; decision forms only when the viewer may decide it (never their own). */
export function requestPage(viewer: Viewer, request: SessionView, canDecide: boolean, note?: string): string {
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
          {request.decision_comment ? ` (“${request.decision_comment}”)` : ''}
        </p>
        <RequestFacts request={request} />
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
            <label for="comment">Comment (optional)</label>
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

/** Asks for the passkey confirmation an action needs, then lets the person finish it. */
export function passkeyPage(
  viewer: Viewer,
  action: { label: string; ceremony: { url: string; userCode: string } },
): string {
  return page({
    title: 'Confirm with your passkey',
    viewer,
    children: (
      <>
        <p>
          To <strong>{action.label}</strong>, confirm it is you with your passkey.
        </p>
        <ol>
          <li>
            <a href={action.ceremony.url} target="_blank" rel="noopener">
              Open the passkey confirmation
            </a>{' '}
            and check it shows the code <strong class="code">{action.ceremony.userCode}</strong>.
          </li>
          <li>Come back here and continue.</li>
        </ol>
        <form method="post" action="/console/step-up">
          <input type="hidden" name="csrf" value={viewer.session.csrf} />
          <button type="submit">Continue</button>
        </form>
      </>
    ),
  });
}
