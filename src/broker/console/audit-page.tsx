/**
 * The Audit page (roles with `audit`): search by person, tenant, type and time range through the
 * API's own audited read (GET /v1/audit/events), each event with its proof status (audit-proofs.ts:
 * its receipt checked by the broker against the newest checkpoint and the policy's witness keys);
 * export through GET /v1/audit/export (the same file `imp audit export` writes, with its proofs, to
 * check offline with `imp audit verify`).
 */
import type { AuditEvent } from '../../core/audit/event.js';
import { escapeUntrusted as text } from '../../core/escape.js';
import type { HandlerContext, HandlerResult } from '../context.js';
import { type CheckpointStatus, type ProofStatus, proveEvents } from './audit-proofs.js';
import { apiErrorPage, callApi, html, toLogin, viewerOf } from './http.js';
import { page, type Viewer } from './pages.js';

const FILTERS = ['actor', 'tenant', 'type', 'since', 'until'] as const;

/** Whether the verified cosignatures reach the policy's quorum, in words. */
function quorumText(cp: CheckpointStatus): string {
  if (cp.witnesses === 0) return 'no witnesses in policy: nothing outside this broker vouches for it';
  const met = cp.cosigners.length >= cp.quorum;
  return `cosigned by ${cp.cosigners.length} of ${cp.witnesses} witnesses, quorum ${cp.quorum} ${met ? 'met' : 'NOT met'}`;
}

/** The Proof cell: text first (never colour alone), FAILED loud and with its reason. */
function proofCell(status: ProofStatus | undefined, cp: CheckpointStatus | null) {
  if (!status || status.kind === 'pending')
    return <span>{`not yet checkpointed (newest checkpoint: ${cp?.size ?? 0} events)`}</span>;
  if (status.kind === 'failed')
    return <strong class="proof-failed">{`FAILED: ${text(status.reason)}`}</strong>;
  return (
    <span class="proof-ok">{`verified: included in the checkpoint of size ${status.size}, ${cp ? quorumText(cp) : ''}`}</span>
  );
}

/** The header line about the newest checkpoint, with what was verified and what failed. */
function checkpointSummary(cp: CheckpointStatus | null) {
  if (!cp) return <p>No signed checkpoint yet: no event can be proven yet.</p>;
  return (
    <div class="proof-summary">
      <p>
        {`Newest checkpoint: ${cp.size} events${cp.problem ? '' : ', signed with this broker’s audit key'}; witness cosignatures verified with the keys in policy: ${cp.cosigners.length} of ${cp.witnesses}`}
        {cp.witnesses > 0
          ? ` (quorum ${cp.quorum} ${cp.cosigners.length >= cp.quorum ? 'met' : 'NOT met'})`
          : ''}
        {cp.cosigners.length > 0 ? `: ${cp.cosigners.map(text).join(', ')}` : ''}.
      </p>
      {cp.problem ? <p class="proof-failed">{`FAILED: ${text(cp.problem)}`}</p> : null}
      {cp.forged.length > 0 ? (
        <p class="proof-failed">
          {`FAILED: cosignatures that do not verify with the witness’s key in policy (edited or forged), not counted: ${cp.forged.map(text).join(', ')}.`}
        </p>
      ) : null}
      <p class="meta">
        What this is: the broker recomputing each shown event’s leaf from its stored bytes, checking its
        inclusion proof against that checkpoint, the checkpoint’s signature and each witness’s cosignature.
        The broker cannot forge a witness’s cosignature, but this is still the broker checking its own store.
        The independent check is offline, with your own witness keys: export, then imp audit verify --file
        FILE --witness-key KEY (or imp audit receipt SEQ, then imp audit verify --receipt FILE).
      </p>
    </div>
  );
}

function auditPage(
  viewer: Viewer,
  filters: Record<string, string>,
  events: AuditEvent[],
  proofs: Awaited<ReturnType<typeof proveEvents>>,
): string {
  const { checkpoint, statuses } = proofs;
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
        {checkpointSummary(checkpoint)}
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
                <tr key={e.id} id={`event-${e.seq}`}>
                  <td>{e.seq}</td>
                  <td>{e.ts.replace('T', ' ').slice(0, 19)}</td>
                  <td class="code">{text(e.type)}</td>
                  <td>{e.actor ? text(e.actor.email ?? e.actor.sub) : '—'}</td>
                  <td>{e.tenant ? text(`${e.tenant}/${e.environment ?? ''}`) : '—'}</td>
                  <td class="details">
                    {e.session ? (
                      <a href={`/console/sessions/${e.session}`}>session {e.session.slice(0, 8)}</a>
                    ) : null}{' '}
                    {typeof e.data.rule === 'string' ? `rule ${text(e.data.rule)}` : ''}
                    {e.reason ? ` “${text(e.reason)}”` : ''}
                  </td>
                  <td>{proofCell(statuses.get(e.id), checkpoint)}</td>
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
  const events = (answer.body as { events: AuditEvent[] }).events;
  return html(ctx.deps, auditPage(viewer, filters, events, await proveEvents(ctx.deps, events)));
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
