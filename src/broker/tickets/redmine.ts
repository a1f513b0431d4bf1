/**
 * Redmine's REST API (https://www.redmine.org/projects/redmine/wiki/Rest_api), with the broker's own
 * API key in `X-Redmine-API-Key`:
 *   GET /issues/:id.json          status {name, is_closed} (Redmine ≥ 5.0), assigned_to/author {id}, custom_fields [{name, value}]
 *   GET /users/:id.json           mail — shown to non-admins only when the user does not hide it
 *   PUT /issues/:id.json          {issue: {notes}} adds a journal note; answers 204 even when it saved
 *                                 nothing (no add_issue_notes permission), so the note is read back
 *   GET /issues/:id.json?include=journals   to find the note by its delivery marker
 * The issue id is the number at the end of the ticket (`RM-42`, `#42`, `42`). A 404 or 403 is a
 * ticket the broker cannot see; Redmine with login required answers a bad key 401.
 */
import type { TicketFacts, TicketLookup } from '../../core/policy/tickets.js';
import { deliveryMarker } from '../../core/ticket-note.js';
import { type AdapterDeps, fieldValues, limitsOf, type TicketAdapter } from './adapter.js';
import { callJson, need, obj, str, TicketSystemError, unexpectedStatus } from './http.js';

/** The Redmine issue number in a ticket id, or null. */
export function redmineIssueId(ticket: string): string | null {
  const match = /(\d{1,12})$/.exec(ticket);
  return match ? String(Number(match[1])) : null;
}

/** A Redmine adapter. */
export function redmineAdapter(deps: AdapterDeps): TicketAdapter {
  const headers = { 'x-redmine-api-key': deps.token ?? '' };
  const base = deps.system.url;

  async function user(id: unknown, signal?: AbortSignal): Promise<{ email: string | null }> {
    if (typeof id !== 'number' || !Number.isInteger(id)) return { email: null };
    const answer = await callJson(limitsOf(deps, signal), `${base}/users/${id}.json`, {
      method: 'GET',
      headers,
    });
    // A group, a locked user or one the broker may not see: a person without a known address.
    if (answer.status === 404 || answer.status === 403) return { email: null };
    if (answer.status !== 200) unexpectedStatus(answer.status);
    return { email: str(obj(obj(answer.body)?.user)?.mail) ?? null };
  }

  async function issue(id: string, signal: AbortSignal | undefined, journals: boolean) {
    const query = journals ? '?include=journals' : '';
    return callJson(limitsOf(deps, signal), `${base}/issues/${id}.json${query}`, { method: 'GET', headers });
  }

  async function hasNote(id: string, marker: string, signal?: AbortSignal): Promise<number | null> {
    const answer = await issue(id, signal, true);
    if (answer.status !== 200) unexpectedStatus(answer.status);
    const journals = need(obj(obj(answer.body)?.issue)?.journals, 'issue.journals');
    if (!Array.isArray(journals))
      throw new TicketSystemError('the answer is not in the expected shape (issue.journals)');
    const found = journals.find((j) => str(obj(j)?.notes, 100_000)?.includes(marker));
    return found ? Number(obj(found)?.id) || 0 : null;
  }

  return {
    async lookup(ticket, signal): Promise<TicketLookup> {
      const id = redmineIssueId(ticket);
      if (id === null) return { found: false, detail: 'no issue number in the ticket id' };
      const answer = await issue(id, signal, false);
      if (answer.status === 404 || answer.status === 403)
        return { found: false, detail: `HTTP ${answer.status}` };
      if (answer.status !== 200) unexpectedStatus(answer.status);
      const body = need(obj(obj(answer.body)?.issue), 'issue');
      const status = need(obj(body.status), 'issue.status');
      const name = need(str(status.name), 'issue.status.name');
      const { person, tenantField, openStatuses } = deps.system;
      if (typeof status.is_closed !== 'boolean' && openStatuses.length === 0)
        throw new TicketSystemError(
          'Redmine reports no is_closed (before 5.0): list open_statuses in the policy',
        );
      const customFields = Array.isArray(body.custom_fields) ? body.custom_fields : [];
      const field =
        tenantField === null
          ? undefined
          : customFields.map(obj).find((f) => f?.name === tenantField || String(f?.id) === tenantField);
      const wants = (role: 'assignee' | 'reporter') => person === role || person === 'assignee_or_reporter';
      const facts: TicketFacts = {
        key: `#${id}`,
        status: name,
        closed: status.is_closed === true,
        assignee:
          obj(body.assigned_to) && wants('assignee') ? await user(obj(body.assigned_to)?.id, signal) : null,
        reporter: obj(body.author) && wants('reporter') ? await user(obj(body.author)?.id, signal) : null,
        tenants: field ? fieldValues(field.value) : [],
      };
      return { found: true, facts };
    },

    async postNote(ticket, note, { retry, signal }) {
      const id = redmineIssueId(ticket);
      if (id === null) throw new TicketSystemError('no issue number in the ticket id', null, true);
      const marker = deliveryMarker(note.delivery);
      // A try that timed out may have saved the note: look before posting it again.
      if (retry) {
        const existing = await hasNote(id, marker, signal);
        if (existing !== null) return { ref: `journal ${existing}` };
      }
      // <pre> is preformatted in both of Redmine's formatters (Textile, CommonMark); the lines hold no markup.
      const notes = `<pre>\n${note.lines.join('\n')}\n</pre>`;
      const answer = await callJson(limitsOf(deps, signal), `${base}/issues/${id}.json`, {
        method: 'PUT',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ issue: { notes } }),
      });
      if (answer.status === 422) throw new TicketSystemError(`HTTP 422: Redmine refused the note`, 422, true);
      if (answer.status !== 204 && answer.status !== 200) unexpectedStatus(answer.status);
      // Redmine answers 204 even when it dropped the note (no permission to add notes): read it back.
      const saved = await hasNote(id, marker, signal);
      if (saved === null)
        throw new TicketSystemError(
          "Redmine answered 204 but saved no note: may the broker's account add notes to this project?",
          answer.status,
          true,
        );
      return { ref: `journal ${saved}` };
    },
  };
}
