/**
 * The watch page: one live session's facts, its terminal (asciinema-player fed by the watch stream)
 * and its action stream (each proxied call as the audit log records it), and a revoke form. The
 * live parts are the script's (console.js, `data-watch`); without script the page says how to watch
 * from the terminal instead.
 */
import type { SessionView } from '../../core/api.js';
import { page, type Viewer } from './pages.js';
import { at, RevokeForm, SessionFacts } from './session-pages.js';

/** The path of a session's watch page. */
export const watchPath = (id: string) => `/console/sessions/${id}/watch`;

/** Watching `session` live; `canRevoke` offers the revoke form. */
export function watchPage(viewer: Viewer, session: SessionView, canRevoke: boolean): string {
  const s = session;
  return page({
    title: `Watching session ${s.id.slice(0, 8)}`,
    viewer,
    current: 'sessions',
    player: true,
    children: (
      <>
        <p class="notice">
          While this page is open you supervise this session: your joining and leaving are audited
          (supervision.joined, supervision.left) and named in its summary.
        </p>
        <dl class="facts">
          <SessionFacts session={s} />
          <dt>Time left</dt>
          <dd>
            {/* Counted down by the script and corrected by the watch stream itself (hello, end): a
                supervise role need not be able to read the session otherwise. */}
            <span id="watch-left" class="time-left" data-expires={s.expires_at ?? undefined}>
              {s.expires_at ? `until ${at(s.expires_at)}` : s.state}
            </span>
          </dd>
        </dl>
        <p id="watch-status" role="status" class="meta">
          The live view needs JavaScript. From a terminal: <span class="code">imp watch {s.id}</span>
        </p>
        <section aria-labelledby="terminal-title">
          <h2 id="terminal-title">Terminal</h2>
          <div class="player" data-watch={`${watchPath(s.id)}/stream`} />
        </section>
        <section aria-labelledby="actions-title">
          <h2 id="actions-title">Actions</h2>
          <div class="table-wrap">
            <table>
              <caption>Calls through the audited proxy, as the log records them</caption>
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Call</th>
                  <th scope="col">Status</th>
                  <th scope="col">Outcome</th>
                </tr>
              </thead>
              <tbody id="watch-actions" />
            </table>
          </div>
        </section>
        {canRevoke ? <RevokeForm viewer={viewer} session={s} /> : null}
        <p>
          <a href={`/console/sessions/${s.id}`}>Session details</a>
        </p>
      </>
    ),
  });
}
