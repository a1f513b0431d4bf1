/**
 * Jira, contract-tested against the documented shapes (no live Jira was run):
 *   Cloud, REST v3, Basic `e-mail:API token`
 *     https://developer.atlassian.com/cloud/jira/platform/basic-auth-for-rest-apis/
 *     GET  /rest/api/3/issue/{key}?fields=…   https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-issueidorkey-get
 *     POST /rest/api/3/issue/{key}/comment    https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-comments/#api-rest-api-3-issue-issueidorkey-comment-post
 *          body in Atlassian Document Format   https://developer.atlassian.com/cloud/jira/platform/apis/document/structure/
 *   Data Center, REST v2, Bearer personal access token
 *     https://confluence.atlassian.com/enterprise/using-personal-access-tokens-1026032365.html
 *     GET  /rest/api/2/issue/{key}            https://docs.atlassian.com/software/jira/docs/api/REST/9.12.0/#api/2/issue-getIssue
 *     POST /rest/api/2/issue/{key}/comment    {body: wiki markup} https://developer.atlassian.com/server/jira/platform/jira-rest-api-example-add-comment-8946422/
 * An issue: {key, fields: {status: {name, statusCategory: {key: new|indeterminate|done}}, assignee,
 * reporter: {emailAddress?, accountId|name} | null, <tenant field>}}. Cloud may leave emailAddress
 * out (the user's profile visibility). Jira answers 404 both for a missing issue and for one the
 * account may not browse; 201 with the comment {id} once it is saved. Before a retry the recent
 * comments are read back (GET …/issue/{key}/comment?orderBy=-created, {comments: [{id, body}]}):
 * a try that timed out may have saved the comment, found by its delivery marker.
 *     https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-comments/#api-rest-api-3-issue-issueidorkey-comment-get
 */
import type { TicketLookup } from '../../core/policy/tickets.js';
import { deliveryMarker } from '../../core/ticket-note.js';
import { type AdapterDeps, fieldValues, limitsOf, type TicketAdapter } from './adapter.js';
import { callJson, need, obj, str, TicketSystemError, unexpectedStatus } from './http.js';

const KEY = /^[A-Za-z][A-Za-z0-9_]*-\d{1,12}$/;

/** A Jira adapter (Cloud v3 or Data Center v2, per `tickets.system.api`). */
export function jiraAdapter(deps: AdapterDeps): TicketAdapter {
  const { system } = deps;
  const cloud = system.jiraApi === 'cloud';
  const rest = `${system.url}/rest/api/${cloud ? 3 : 2}`;
  const authorization = cloud
    ? `Basic ${Buffer.from(`${system.user ?? ''}:${deps.token ?? ''}`).toString('base64')}`
    : `Bearer ${deps.token ?? ''}`;
  const headers = { authorization };

  const person = (value: unknown): { email: string | null } | null => {
    const record = obj(value);
    return record ? { email: str(record.emailAddress) ?? null } : null;
  };

  /** The id of a recent comment on `ticket` whose body holds `marker`, or null. */
  async function commentWith(ticket: string, marker: string, signal?: AbortSignal): Promise<string | null> {
    const answer = await callJson(
      limitsOf(deps, signal),
      `${rest}/issue/${encodeURIComponent(ticket)}/comment?orderBy=-created&maxResults=50`,
      { method: 'GET', headers },
    );
    if (answer.status !== 200) unexpectedStatus(answer.status);
    const comments = need(obj(answer.body)?.comments, 'comments');
    if (!Array.isArray(comments))
      throw new TicketSystemError('the answer is not in the expected shape (comments)');
    // An ADF body is a JSON document; the marker (letters, digits, '-', ':' and a space) reads the
    // same inside its serialisation as in wiki markup.
    const found = comments.find((c) => {
      const body = obj(c)?.body;
      return (typeof body === 'string' ? body : JSON.stringify(body ?? '')).includes(marker);
    });
    return found ? (str(obj(found)?.id, 64) ?? '?') : null;
  }

  return {
    async lookup(ticket, signal): Promise<TicketLookup> {
      if (!KEY.test(ticket)) return { found: false, detail: 'not a Jira issue key' };
      const fields = ['status', 'assignee', 'reporter', ...(system.tenantField ? [system.tenantField] : [])];
      const url = `${rest}/issue/${encodeURIComponent(ticket)}?fields=${fields.map(encodeURIComponent).join(',')}`;
      const answer = await callJson(limitsOf(deps, signal), url, { method: 'GET', headers });
      if (answer.status === 404 || answer.status === 403)
        return { found: false, detail: `HTTP ${answer.status}` };
      if (answer.status !== 200) unexpectedStatus(answer.status);
      const body = need(obj(answer.body), 'issue');
      const issueFields = need(obj(body.fields), 'fields');
      const status = need(obj(issueFields.status), 'fields.status');
      const category = str(obj(status.statusCategory)?.key);
      if (category === undefined && system.openStatuses.length === 0)
        throw new TicketSystemError(
          'the answer is not in the expected shape (fields.status.statusCategory.key)',
        );
      return {
        found: true,
        facts: {
          key: str(body.key, 64) ?? ticket,
          status: need(str(status.name), 'fields.status.name'),
          closed: category === 'done',
          assignee: person(issueFields.assignee),
          reporter: person(issueFields.reporter),
          tenants: system.tenantField ? fieldValues(issueFields[system.tenantField]) : [],
        },
      };
    },

    async postNote(ticket, note, { retry, signal }) {
      if (!KEY.test(ticket)) throw new TicketSystemError('not a Jira issue key', null, true);
      // A try that timed out may have saved the comment: look before posting it again.
      if (retry) {
        const existing = await commentWith(ticket, deliveryMarker(note.delivery), signal);
        if (existing !== null) return { ref: `comment ${existing}` };
      }
      const text = note.lines.join('\n');
      // The lines carry no markup; a code block (ADF) or {noformat} (wiki markup) keeps them verbatim.
      const body = cloud
        ? {
            body: {
              type: 'doc',
              version: 1,
              content: [
                { type: 'paragraph', content: [{ type: 'text', text: note.lines[0] }] },
                { type: 'codeBlock', content: [{ type: 'text', text }] },
              ],
            },
          }
        : { body: `${note.lines[0]}\n{noformat}\n${text}\n{noformat}` };
      const answer = await callJson(
        limitsOf(deps, signal),
        `${rest}/issue/${encodeURIComponent(ticket)}/comment`,
        {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        },
      );
      if (answer.status !== 201 && answer.status !== 200) unexpectedStatus(answer.status);
      const id = str(obj(answer.body)?.id, 64);
      if (id === undefined)
        throw new TicketSystemError(
          'the answer is not in the expected shape (comment id)',
          answer.status,
          true,
        );
      return { ref: `comment ${id}` };
    },
  };
}
