/** Ticket links for the console: the policy's URL and a checked id, or no link at all. */
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/core/policy/load.js';
import { type TicketLinkSystem, ticketLink } from '../../src/core/ticket-link.js';

const redmine: TicketLinkSystem = { type: 'redmine', url: 'https://redmine.example/' };
const jira: TicketLinkSystem = { type: 'jira', url: 'https://example.atlassian.net' };
const generic: TicketLinkSystem = { type: 'http', url: 'https://tickets-api.example' };
const templated: TicketLinkSystem = { ...generic, link: 'https://desk.example/ticket/{ticket}#top' };

describe('ticketLink', () => {
  it.each([
    [redmine, 'RM-42', 'https://redmine.example/issues/42'],
    [redmine, '#0042', 'https://redmine.example/issues/42'],
    [redmine, '42', 'https://redmine.example/issues/42'],
    [redmine, 'SUP-', null],
    [jira, 'SUP-7', 'https://example.atlassian.net/browse/SUP-7'],
    [jira, 'SUP7', null],
    [generic, 'SUP-7', null],
    [templated, 'SUP-7', 'https://desk.example/ticket/SUP-7#top'],
    [
      { ...redmine, link: 'https://rm.example/x?id={ticket}&a={ticket}' },
      'RM-1',
      'https://rm.example/x?id=RM-1&a=RM-1',
    ],
    [null, 'SUP-7', null],
  ])('%o %s → %s', (system, ticket, expected) => {
    expect(ticketLink(system, ticket)).toBe(expected);
  });

  it.each([
    'javascript:alert(1)',
    '"><script>alert(1)</script>1',
    "SUP-1' onmouseover='x",
    'SUP-1/../../admin',
    'SUP-1?x=1',
    'SUP-1\u202e',
    ' SUP-1',
    '//evil.example/1',
    `SUP-${'1'.repeat(80)}`,
  ])('no link for %j, whatever the system', (ticket) => {
    for (const system of [redmine, jira, generic, templated]) expect(ticketLink(system, ticket)).toBeNull();
  });
});

describe('policy tickets.system.link', () => {
  const policy = (link: string) =>
    parsePolicy(
      `identity: { issuer: https://idp.example, client_id: imp-cli }
tickets:
  pattern: '^SUP-[0-9]+$'
  system: { type: http, url: https://tickets-api.example, link: '${link}' }
roles: []
tenants: []
`,
      'p.yaml',
    );

  it('is kept when it is an https template holding {ticket}', () => {
    expect(policy('https://desk.example/t/{ticket}').tickets.system?.link).toBe(
      'https://desk.example/t/{ticket}',
    );
  });

  it.each([
    ['https://desk.example/t/', 'must hold {ticket}'],
    ['javascript:alert({ticket})', 'must be https'],
    ['http://desk.example/{ticket}', 'must be https'],
  ])('refuses %s', (link, message) => {
    expect(() => policy(link)).toThrow(message);
  });
});
