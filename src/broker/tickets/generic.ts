/**
 * The generic HTTP contract, for any ticket system behind a small service of your own
 * (README: "Ticket system → generic HTTP contract"). `Authorization: Bearer <token>` when one is set.
 *   GET  {url}/tickets/{ticket}           200 {ticket, status, open, assignee: {email}|null,
 *                                              reporter: {email}|null, fields: {name: string|string[]}}
 *                                         404: no such ticket (or not visible to the broker)
 *   POST {url}/tickets/{ticket}/comments  {delivery, ticket, session, text, summary} → any 2xx;
 *                                         `delivery` repeats on retries: the receiver de-duplicates
 */
import type { TicketLookup } from '../../core/policy/tickets.js';
import { type AdapterDeps, fieldValues, limitsOf, type TicketAdapter } from './adapter.js';
import { callJson, need, obj, str, unexpectedStatus } from './http.js';

/** A generic-HTTP adapter. */
export function genericAdapter(deps: AdapterDeps): TicketAdapter {
  const headers: Record<string, string> = deps.token ? { authorization: `Bearer ${deps.token}` } : {};
  const ticketUrl = (ticket: string) => `${deps.system.url}/tickets/${encodeURIComponent(ticket)}`;
  const person = (value: unknown): { email: string | null } | null => {
    const record = obj(value);
    return record ? { email: str(record.email) ?? null } : null;
  };

  return {
    async lookup(ticket, signal): Promise<TicketLookup> {
      const answer = await callJson(limitsOf(deps, signal), ticketUrl(ticket), { method: 'GET', headers });
      if (answer.status === 404) return { found: false, detail: 'HTTP 404' };
      if (answer.status !== 200) unexpectedStatus(answer.status);
      const body = need(obj(answer.body), 'a JSON object');
      const open = body.open;
      const fields = obj(body.fields) ?? {};
      const field = deps.system.tenantField;
      return {
        found: true,
        facts: {
          key: str(body.ticket, 64) ?? ticket,
          status: need(str(body.status), 'status'),
          closed: need(typeof open === 'boolean' ? !open : undefined, 'open'),
          assignee: person(body.assignee),
          reporter: person(body.reporter),
          tenants: field !== null && Object.hasOwn(fields, field) ? fieldValues(fields[field]) : [],
        },
      };
    },

    async postNote(ticket, note, { signal }) {
      const answer = await callJson(limitsOf(deps, signal), `${ticketUrl(ticket)}/comments`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ ...note.json, delivery: note.delivery, ticket, text: note.lines.join('\n') }),
      });
      if (answer.status < 200 || answer.status >= 300) unexpectedStatus(answer.status);
      return { ref: str(obj(answer.body)?.id, 64) ?? null };
    },
  };
}
