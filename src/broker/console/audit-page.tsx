/**
 * The Audit page (roles with `audit`): search by person, tenant, type and time range through the
 * API's own audited read (GET /v1/audit/events), each event with whether the newest signed checkpoint
 * covers it and how many witnesses cosigned that checkpoint; export through GET /v1/audit/export
 * (the same file `imp audit export` writes, with its proofs, to check offline with `imp audit verify`).
 */
import type { AuditEvent } from '../../core/audit/event.js';
import type { HandlerContext, HandlerResult } from '../context.js';
import { apiErrorPage, callApi, html, toLogin, viewerOf } from './http.js';
import { page, type Viewer } from './pages.js';

const FILTERS = ['actor', 'tenant', 'type', 'since', 'until'] as const;

/** The newest checkpoint's size and cosignature count, from its signed note. */
function checkpointFacts(note: unknown): { size: number; cosignatures: number } | null {
  if (typeof note !== 'string') return null;
  const [body, signatures = ''] = note.split('\n\n');
  const size = Number(body?.split('\n')[1]);
  if (!Number.isInteger(size)) return null;
  const lines = signatures.split('\n').filter((line) => line.startsWith('— '));
  // The first signature is the log's own; the rest are witnesses'.
  return { size, cosignatures: Math.max(0, lines.length - 1) };
}

function auditPage(
  viewer: Viewer,
  filters: Record<string, string>,
  events: AuditEvent[],
  checkpoint: { size: number; cosignatures: number } | null,
): string {
  const exportQuery = new URLSearchParams(
    Object.entries(filters).filter(([k, v]) => (k === 'since' || k === 'until') && v),
  ).toString();
  return page({
    title: 'Audit',
    viewer,
    current: 'audit',
    children: (
      <>
        <form class="filters" method="get" action="/console/audit">
          {FILTERS.map((name) => (
            <p key={name}>
              <label for={`f-${name}`}>
                {name === 'actor'
                  ? 'Person (email or subject)'
                  : name === 'since' || name === 'until'
                    ? `${name} (UTC, 2026-11-24T10:00:00Z)`
                    : name}
              </label>
              <input id={`f-${name}`} name={name} value={filters[name] ?? ''} />
            </p>
          ))}
          <div class="buttons">
            <button type="submit">Search</button>
            <a class="button-link" href={`/console/audit/export${exportQuery ? `?${exportQuery}` : ''}`}>
              Export (with proofs)
            </a>
          </div>
        </form>
        <p>
          {checkpoint
            ? `The newest signed checkpoint covers ${checkpoint.size} events, cosigned by ${checkpoint.cosignatures} witness(es). Verify an export offline with: imp audit verify --witness-key …`
            : 'No signed checkpoint yet.'}
        </p>
        <div class="table-wrap">
          <table>
            <caption>{`${events.length} events, newest first`}</caption>
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">When (UTC)</th>
                <th scope="col">Type</th>
                <th scope="col">Who</th>
                <th scope="col">Tenant</th>
                <th scope="col">Details</th>
                <th scope="col">Proof</th>
              </tr>
            </thead>
            <tbody>
              {[...events].reverse().map((e) => (
                <tr key={e.id}>
                  <td>{e.seq}</td>
                  <td>{e.ts.replace('T', ' ').slice(0, 19)}</td>
                  <td class="code">{e.type}</td>
                  <td>{e.actor ? (e.actor.email ?? e.actor.sub) : '—'}</td>
                  <td>{e.tenant ? `${e.tenant}/${e.environment ?? ''}` : '—'}</td>
                  <td class="details">
                    {e.session ? (
                      <a href={`/console/sessions/${e.session}`}>session {e.session.slice(0, 8)}</a>
                    ) : null}{' '}
                    {typeof e.data.rule === 'string' ? `rule ${e.data.rule}` : ''}
                    {e.reason ? ` “${e.reason}”` : ''}
                  </td>
                  <td>{checkpoint && e.seq < checkpoint.size ? 'checkpointed' : 'not yet checkpointed'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </>
    ),
  });
}

function filtersOf(ctx: HandlerContext): Record<string, string> {
  const filters: Record<string, string> = {};
  for (const name of FILTERS) {
    const value = ctx.query[name]?.trim();
    if (value) filters[name] = value;
  }
  return filters;
}

/** GET /console/audit?actor=&tenant=&type=&since=&until= */
export async function getConsoleAudit(ctx: HandlerContext): Promise<HandlerResult> {
  const filters = filtersOf(ctx);
  const here = `/console/audit?${new URLSearchParams(filters).toString()}`;
  const viewer = viewerOf(ctx);
  if (!viewer) return toLogin(ctx, here);
  const answer = await callApi(
    ctx,
    viewer.session,
    'GET',
    `/v1/audit/events?${new URLSearchParams({ ...filters, limit: '500' }).toString()}`,
  );
  if (answer.error) return apiErrorPage(ctx, viewer, answer.status, answer.error, '/console/audit');
  const note = await callApi(ctx, viewer.session, 'GET', '/v1/audit/checkpoint');
  const events = (answer.body as { events: AuditEvent[] }).events;
  return html(
    ctx.deps,
    auditPage(viewer, filters, events, note.status === 200 ? checkpointFacts(note.body) : null),
  );
}

/** GET /console/audit/export?since=&until= — the API's export (audited as audit.export), as a download. */
export async function getConsoleAuditExport(ctx: HandlerContext): Promise<HandlerResult> {
  const filters = filtersOf(ctx);
  const viewer = viewerOf(ctx);
  if (!viewer) return toLogin(ctx, '/console/audit');
  const range = Object.fromEntries(Object.entries(filters).filter(([k]) => k === 'since' || k === 'until'));
  const answer = await callApi(
    ctx,
    viewer.session,
    'GET',
    `/v1/audit/export?${new URLSearchParams(range).toString()}`,
  );
  if (answer.error) return apiErrorPage(ctx, viewer, answer.status, answer.error, '/console/audit');
  const body = typeof answer.body === 'string' ? answer.body : `${JSON.stringify(answer.body)}\n`;
  return {
    body,
    headers: {
      'content-type': 'application/x-ndjson',
      'content-disposition': 'attachment; filename="imp-audit-export.jsonl"',
    },
  };
}
