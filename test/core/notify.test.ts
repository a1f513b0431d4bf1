/**
 * Notifications, the pure parts: which audit events announce what, routing by kind/tier/environment,
 * the policy section's refusals (each naming its key), and escaping per medium — control and bidi
 * characters neutralised everywhere, HTML for mail, & < > for Slack, Markdown for Teams.
 */
import { describe, expect, it } from 'vitest';
import { kindOfEvent } from '../../src/core/notify/kinds.js';
import { composeMessage, type NotificationFacts } from '../../src/core/notify/message.js';
import {
  escapeHtml,
  escapeSlack,
  escapeTeamsMarkdown,
  renderMail,
  renderSlack,
  renderTeams,
  renderText,
} from '../../src/core/notify/render.js';
import { parsePolicy } from '../../src/core/policy/load.js';
import { channelsFor } from '../../src/core/policy/notifications.js';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { slackProblems, teamsProblems } from '../helpers/chat-shapes.js';

const base = devPolicyYaml('http://127.0.0.1:7701', 'http://127.0.0.1:7702');
const withNotifications = (section: string) =>
  parsePolicy(`${base}notifications:\n${section}`, 'broker.yaml');

describe('which events announce what', () => {
  it.each([
    ['session.requested', 'pending', 'request.pending'],
    ['session.requested', 'active', null],
    ['session.approved', 'active', 'request.approved'],
    ['session.denied', null, 'request.denied'],
    ['request.expired', null, 'request.expired'],
    ['breakglass.requested', 'pending', 'breakglass.pending'],
    ['breakglass.expired', null, 'breakglass.expired'],
    ['breakglass.confirmed', 'active', 'breakglass.started'],
    ['breakglass.reviewed', null, 'breakglass.reviewed'],
    ['session.revoked', null, 'session.revoked'],
    ['audit.witness_refused', null, 'audit.alarm'],
    ['audit.witness_unreachable', null, 'audit.alarm'],
    ['session.started', 'active', null],
    ['notify.sent', null, null],
    ['notify.failed', null, null],
  ])('%s (%s) → %s', (type, state, kind) => expect(kindOfEvent(type, state)).toBe(kind));
});

describe('policy notifications', () => {
  const policy = withNotifications(`  channels:
    - { name: mail, type: email, from: imp@example.test, smtp: { host: smtp.example.test } }
    - { name: chat, type: slack, url_env: SLACK_URL }
    - { name: sec, type: webhook, url: 'https://hooks.example.test/imp', secret_env: HOOK_SECRET }
  routes:
    - { events: [request.pending], channels: [mail] }
    - { events: [request.pending], tiers: [enterprise], environments: [prod], channels: [chat, mail] }
    - { events: ['*'], tiers: [enterprise], channels: [sec] }
    - { events: [audit.alarm], channels: [sec] }
`);

  it('reads channels with defaults (STARTTLS on 587, people on) and the e-mail claim on by default', () => {
    expect(policy.notifications.channels[0]).toEqual({
      type: 'email',
      name: 'mail',
      smtp: {
        host: 'smtp.example.test',
        port: 587,
        security: 'starttls',
        userEnv: null,
        passwordEnv: null,
        caFile: null,
      },
      from: 'imp@example.test',
      to: [],
      people: true,
    });
    expect(policy.notifications.people).toEqual({ emailClaim: true, directory: {} });
  });

  it.each([
    ['request.pending', 'enterprise', 'prod', ['mail', 'chat', 'sec']],
    ['request.pending', 'enterprise', 'staging', ['mail', 'sec']],
    ['request.pending', 'standard', 'prod', ['mail']],
    ['session.revoked', 'standard', 'prod', []],
    ['session.revoked', 'enterprise', 'prod', ['sec']],
    // An event with no tenant matches only routes without tiers/environments.
    ['audit.alarm', null, null, ['sec']],
  ] as const)('%s on %s/%s goes to %j', (kind, tier, environment, channels) => {
    expect(channelsFor(policy.notifications, kind, tier, environment)).toEqual(channels);
  });

  it.each([
    [
      'an unknown event',
      '  routes: [{ events: [request.maybe], channels: [] }]\n',
      'notifications.routes[0].events: unknown event "request.maybe"',
    ],
    [
      'a route to no channel',
      '  channels: []\n  routes: [{ events: [request.pending], channels: [nope] }]\n',
      'no channel named "nope"',
    ],
    [
      'a tier no tenant has',
      '  channels: [{ name: c, type: slack, url_env: U }]\n  routes: [{ tiers: [gold], channels: [c] }]\n',
      'no tenant has tier "gold"',
    ],
    [
      'a chat URL in the policy',
      "  channels: [{ name: c, type: slack, url: 'https://hooks.slack.com/services/T/B/x' }]\n",
      'notifications.channels[0].url: unknown key',
    ],
    [
      'an env var name that is not one',
      '  channels: [{ name: c, type: teams, url_env: "my url" }]\n',
      'must be an environment variable name',
    ],
    [
      'SMTP without TLS to another host',
      '  channels: [{ name: m, type: email, from: a@b.c, smtp: { host: smtp.example.test, security: none } }]\n',
      'none (no TLS) is only allowed to a loopback relay',
    ],
    [
      'a user without a password',
      '  channels: [{ name: m, type: email, from: a@b.c, smtp: { host: h, user_env: U } }]\n',
      'give both user_env and password_env',
    ],
    [
      'plain http to a remote webhook',
      "  channels: [{ name: w, type: webhook, url: 'http://hooks.example.test/x' }]\n",
      'must be https',
    ],
    [
      'two channels with one name',
      '  channels: [{ name: c, type: slack, url_env: A }, { name: c, type: teams, url_env: B }]\n',
      'duplicate channel "c"',
    ],
    [
      'a directory entry that is no address',
      '  people: { directory: { user-bob: bob } }\n',
      'must be an e-mail address',
    ],
  ])('refuses %s', (_what, section, message) => {
    expect(() => withNotifications(section)).toThrow(message);
  });
});

const facts = (overrides: Partial<NotificationFacts> = {}): NotificationFacts => ({
  kind: 'request.pending',
  eventId: 'e1',
  at: '2026-11-24T12:00:00.000Z',
  actor: 'alice@example.test',
  requester: 'alice@example.test',
  tenant: 'acme',
  tenantName: 'Acme Corp',
  environment: 'prod',
  scope: 'write',
  mode: 'standard',
  ticket: 'SUP-1',
  reason: 'Fix <b>it</b> & "go" [x](http://evil) *bold* \u001b]0;pwned\u0007 \u202egnp.exe\u200b',
  sessionId: '7f3a1c2d-0000-4000-8000-000000000001',
  shortId: '7f3a1c2d',
  minutes: 15,
  until: '2026-11-24T13:00:00.000Z',
  detail: null,
  command: 'imp approve 7f3a1c2d',
  link: 'https://imp.example.test/console/requests/7f3a1c2d-0000-4000-8000-000000000001',
  ...overrides,
});

describe('escaping per medium', () => {
  it('has the escapes each medium documents', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;');
    expect(escapeSlack('<!channel> & <https://evil|click>')).toBe(
      '&lt;!channel&gt; &amp; &lt;https://evil|click&gt;',
    );
    expect(escapeTeamsMarkdown('[x](http://evil) *b* _i_ `c` # h')).toBe(
      '\\[x\\]\\(http://evil\\) \\*b\\* \\_i\\_ \\`c\\` \\# h',
    );
    expect(escapeTeamsMarkdown('1. first')).toBe('1\\. first');
    expect(escapeTeamsMarkdown('- item')).toBe('\\- item');
  });

  const message = composeMessage(facts());
  const controls = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u200b-\u200f]/;

  it('plain text: who, what, where, ticket, reason, the command and the link; controls neutralised', () => {
    const text = renderText(message);
    expect(text).toContain(
      'alice@example.test asks for WRITE access to Acme Corp (acme)/prod: approval needed',
    );
    expect(text).toContain('Who: alice@example.test');
    expect(text).toContain('What: WRITE session, 15 min');
    expect(text).toContain('Where: Acme Corp (acme)/prod');
    expect(text).toContain('Ticket: SUP-1');
    expect(text).toContain(
      'Reason: Fix <b>it</b> & "go" [x](http://evil) *bold* \\x1b]0;pwned\\x07 \\u202egnp.exe\\u200b',
    );
    expect(text).toContain('To act: imp approve 7f3a1c2d');
    expect(text).toContain('Console: https://imp.example.test/console/requests/7f3a1c2d-');
    expect(text.replace(/\n/g, '')).not.toMatch(controls);
  });

  it('mail: HTML-escaped, controls neutralised in every part and in the subject', () => {
    const mail = renderMail(message);
    expect(mail.html).toContain('Fix &#60;b&#62;it&#60;/b&#62; &#38; &#34;go&#34;');
    expect(mail.html).not.toContain('<b>it</b>');
    expect(mail.html).toContain('\\x1b]0;pwned\\x07 \\u202egnp.exe');
    expect(mail.html.replace(/\n/g, '')).not.toMatch(controls);
    const hostileTitle = renderMail(composeMessage(facts({ requester: 'eve\r\nBcc: all@example.test' })));
    expect(hostileTitle.subject).toBe(
      '[imp] eve\\r\\nBcc: all@example.test asks for WRITE access to Acme Corp (acme)/prod: approval needed',
    );
  });

  it('Slack: valid Block Kit, & < > escaped so nothing becomes a mention or a link', () => {
    const slack = renderSlack(
      composeMessage(facts({ reason: '<!channel> ping <https://evil|login> & more' })),
    );
    expect(slackProblems(slack)).toEqual([]);
    const text = JSON.stringify(slack);
    expect(text).toContain('&lt;!channel&gt; ping &lt;https://evil|login&gt; &amp; more');
    expect(text).not.toContain('<!channel>');
    expect(text).toContain(
      '<https://imp.example.test/console/requests/7f3a1c2d-0000-4000-8000-000000000001|Open in the imp console>',
    );
  });

  it('Teams: an Adaptive Card Microsoft’s parser accepts, Markdown in untrusted text escaped', () => {
    const teams = renderTeams(message);
    expect(teamsProblems(teams)).toEqual([]);
    const reason = teams.attachments[0]!.content.body[1];
    expect(reason).toMatchObject({ type: 'FactSet' });
    const value = (reason as { facts: { title: string; value: string }[] }).facts.find(
      (f) => f.title === 'Reason',
    )!.value;
    expect(value).toContain('\\[x\\]\\(http://evil\\) \\*bold\\*');
    expect(value).not.toMatch(controls);
  });

  it('the shape checks fail on what the services would refuse', () => {
    expect(slackProblems({ blocks: [{ type: 'section', text: { type: 'mrkdwn', text: '' } }] })).toEqual([
      'text: a non-empty fallback is required with blocks',
      'blocks[0].text.text: 1..3000 characters',
    ]);
    const card = renderTeams(message);
    card.attachments[0]!.content.body.push({ type: 'Bogus' } as never);
    expect(teamsProblems(card).join()).toContain('Unknown element type "Bogus"');
  });

  it('says who acted and why, for decisions, revocations, reviews and alarms', () => {
    const revoked = renderText(
      composeMessage(
        facts({
          kind: 'session.revoked',
          actor: 'erin@example.test',
          detail: 'left the team',
          command: null,
        }),
      ),
    );
    expect(revoked).toContain(
      'The session of alice@example.test on Acme Corp (acme)/prod was revoked by erin@example.test',
    );
    expect(revoked).toContain('Why revoked: left the team');
    const alarm = renderText(
      composeMessage(
        facts({
          kind: 'audit.alarm',
          actor: null,
          tenant: null,
          detail: 'witness w1 refused',
          command: 'imp audit verify',
          link: null,
        }),
      ),
    );
    expect(alarm).toContain('Audit alarm');
    expect(alarm).toContain('Alarm: witness w1 refused');
    expect(alarm).not.toContain('Reason:');
  });
});
