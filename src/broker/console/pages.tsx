/**
 * The console's pages, TSX rendered to strings on the server (preact-render-to-string): every value
 * interpolated into text or an attribute is escaped by the renderer, and nothing here uses
 * dangerouslySetInnerHTML, so a reason holding `<script>` is text. No inline script or style: the
 * CSP forbids both; the stylesheet and the small enhancement script are files under /console/assets/.
 */
import type { ComponentChildren } from 'preact';
import { render } from 'preact-render-to-string';
import { escapeUntrusted } from '../../core/escape.js';
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
              <span>{escapeUntrusted(viewer.session.user.email ?? viewer.session.user.sub)}</span>
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
