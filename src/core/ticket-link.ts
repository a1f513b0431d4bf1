/**
 * Where a person reads a ticket in the ticket system (`tickets.system`), for the console's Requests
 * page. The link is built only from the policy's own base URL (or its `link` template) and a ticket
 * id that passed a strict shape check here — never from the ticket text as given — so a ticket such
 * as `javascript:alert(1)` or `"><script>` gets no link at all and is shown as escaped text.
 *
 *   redmine  {url}/issues/{number}   the number at the end of the ticket, as the adapter looks it up
 *   jira     {url}/browse/{KEY-123}  a Jira issue key
 *   http     the policy's `link` template only (the contract's {url}/tickets/… is an API, not a page)
 *   any      `link` (a template holding `{ticket}`) replaces the default when given
 */

/** What the link needs from the policy's ticket system. */
export interface TicketLinkSystem {
  type: 'redmine' | 'jira' | 'http';
  /** The system's base URL (validated by the policy reader: https, or http on loopback). */
  url: string;
  /** A URL template with `{ticket}` (absent: the default for the type). */
  link?: string;
}

// Letters, digits and - _ . only (a leading # for Redmine's own spelling): nothing a URL or HTML parser
// could read as anything but a path segment.
const SAFE_TICKET = /^#?[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const JIRA_KEY = /^[A-Za-z][A-Za-z0-9_]{0,30}-[0-9]{1,12}$/;
const TRAILING_NUMBER = /([0-9]{1,12})$/;

/** The ticket's page in the configured ticket system, or null (no system, or an id of unsafe shape). */
export function ticketLink(system: TicketLinkSystem | null, ticket: string): string | null {
  if (!system || !SAFE_TICKET.test(ticket)) return null;
  const base = system.url.replace(/\/+$/, '');
  let href: string | null = null;
  if (system.link !== undefined) href = system.link.split('{ticket}').join(encodeURIComponent(ticket));
  else if (system.type === 'redmine') {
    const number = TRAILING_NUMBER.exec(ticket)?.[1];
    href = number ? `${base}/issues/${Number(number)}` : null;
  } else if (system.type === 'jira') href = JIRA_KEY.test(ticket) ? `${base}/browse/${ticket}` : null;
  return href !== null && isWebUrl(href) ? href : null;
}

/** True for an absolute http(s) URL (a `link` template is checked with a sample id by the policy reader). */
export function isWebUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}
