/**
 * The Jira adapter, contract-tested at the HTTP level: a local server answers as Jira's REST API is
 * documented to (no live Jira runs here; the README says so). Shapes from:
 *   Cloud v3 Get issue        https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-issueidorkey-get
 *   Cloud v3 Add comment      https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-comments/#api-rest-api-3-issue-issueidorkey-comment-post
 *   ADF                       https://developer.atlassian.com/cloud/jira/platform/apis/document/structure/
 *   Cloud Basic auth          https://developer.atlassian.com/cloud/jira/platform/basic-auth-for-rest-apis/
 *   DC v2 Get issue           https://docs.atlassian.com/software/jira/docs/api/REST/9.12.0/#api/2/issue-getIssue
 *   DC add comment (v2)       https://developer.atlassian.com/server/jira/platform/jira-rest-api-example-add-comment-8946422/
 *   DC personal access tokens https://confluence.atlassian.com/enterprise/using-personal-access-tokens-1026032365.html
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ticketAdapter } from '../../src/broker/tickets/service.js';
import { decideTicket, type TicketSystem } from '../../src/core/policy/tickets.js';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { json, startTicketServer, type TicketServer, ticketSystem } from '../helpers/ticket-server.js';

const SITE = 'https://your-domain.atlassian.net';

/** A user as Jira Cloud returns it; `emailAddress` is left out when the profile hides it. */
function cloudUser(email: string | null, accountId: string) {
  return {
    self: `${SITE}/rest/api/3/user?accountId=${accountId}`,
    accountId,
    ...(email ? { emailAddress: email } : {}),
    avatarUrls: { '48x48': `${SITE}/avatar.png` },
    displayName: email ?? 'Someone',
    active: true,
    timeZone: 'Europe/Berlin',
    accountType: 'atlassian',
  };
}

/** GET /rest/api/3/issue/{key} as documented (fields limited to those asked for). */
function cloudIssue(
  key: string,
  status: string,
  category: 'new' | 'indeterminate' | 'done',
  assignee: unknown,
  tenant: unknown,
) {
  return {
    expand: 'renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations',
    id: '10002',
    self: `${SITE}/rest/api/3/issue/10002`,
    key,
    fields: {
      status: {
        self: `${SITE}/rest/api/3/status/3`,
        description: '',
        iconUrl: `${SITE}/images/icons/statuses/inprogress.png`,
        name: status,
        id: '3',
        statusCategory: {
          self: `${SITE}/rest/api/3/statuscategory/4`,
          id: 4,
          key: category,
          colorName: 'yellow',
          name: status,
        },
      },
      assignee,
      reporter: cloudUser('bob@example.test', '5b10ac8d82e05b22cc7d4ef5'),
      customfield_10042: tenant,
    },
  };
}

const NOT_FOUND = {
  errorMessages: ['Issue does not exist or you do not have permission to see it.'],
  errors: {},
};
const ASK = { email: 'alice@example.test', tenant: { id: 'acme', name: 'Acme Corp' } };

describe('Jira Cloud (REST v3), contract-tested', () => {
  let server: TicketServer;
  let system: TicketSystem;
  beforeAll(async () => {
    server = await startTicketServer();
    system = ticketSystem({
      type: 'jira',
      jiraApi: 'cloud',
      url: server.url,
      user: 'imp-bot@example.test',
      tenantField: 'customfield_10042',
    });
  });
  afterAll(() => server.close());
  const adapter = () => ticketAdapter(system, 'api-token-123', fetch);
  const decide = async (ticket: string) =>
    decideTicket(system, ticket, await adapter().lookup(ticket), ASK, (t) => JSON.stringify(t));

  it('asks GET /rest/api/3/issue/{key} for the needed fields with Basic e-mail:API-token, and accepts an open issue', async () => {
    server.handle((_req, res) =>
      json(
        res,
        200,
        cloudIssue(
          'SUP-1',
          'In Progress',
          'indeterminate',
          cloudUser('alice@example.test', '5b10a2844c20165700ede21g'),
          { self: `${SITE}/rest/api/3/customFieldOption/10100`, value: 'acme', id: '10100' },
        ),
      ),
    );
    expect(await decide('SUP-1')).toEqual({ ok: true, status: 'In Progress' });
    const [req] = server.received;
    expect(req?.method).toBe('GET');
    expect(req?.path).toBe('/rest/api/3/issue/SUP-1?fields=status,assignee,reporter,customfield_10042');
    expect(req?.headers.authorization).toBe(
      `Basic ${Buffer.from('imp-bot@example.test:api-token-123').toString('base64')}`,
    );
  });

  it.each([
    ['a 404 (missing, or not browsable)', 404, NOT_FOUND, 'ticket.not_found'],
    [
      'the done category',
      200,
      cloudIssue('SUP-1', 'Done', 'done', cloudUser('alice@example.test', 'a1'), 'acme'),
      'ticket.closed',
    ],
    [
      "someone else's issue",
      200,
      cloudIssue('SUP-1', 'To Do', 'new', cloudUser('bob@example.test', 'b1'), 'acme'),
      'ticket.not_assigned',
    ],
    ['an unassigned issue', 200, cloudIssue('SUP-1', 'To Do', 'new', null, 'acme'), 'ticket.not_assigned'],
    [
      "another tenant's issue (multi-select option field)",
      200,
      cloudIssue('SUP-1', 'To Do', 'new', cloudUser('alice@example.test', 'a1'), [
        { value: 'globex', id: '10101' },
      ]),
      'ticket.other_tenant',
    ],
  ])('%s is refused with %s', async (_what, status, body, rule) => {
    server.handle((_req, res) => json(res, status, body));
    expect(await decide('SUP-1')).toMatchObject({ ok: false, rule });
  });

  it('an assignee whose e-mail Jira Cloud hides (profile visibility) cannot be matched, and the message says why', async () => {
    server.handle((_req, res) =>
      json(res, 200, cloudIssue('SUP-1', 'To Do', 'new', cloudUser(null, 'a1'), 'acme')),
    );
    const decision = await decide('SUP-1');
    expect(decision).toMatchObject({ ok: false, rule: 'ticket.not_assigned' });
    expect(decision.ok ? '' : decision.message).toContain('hides the person');
  });

  it('a ticket id that is not an issue key is not found without asking Jira', async () => {
    server.handle((_req, res) => json(res, 500, {}));
    expect(await decide('SUP-1/../../admin')).toMatchObject({ ok: false, rule: 'ticket.not_found' });
    expect(server.received).toEqual([]);
  });

  it('posts the summary as an ADF document with the lines in a code block; 201 with the comment id', async () => {
    server.handle((_req, res) =>
      json(res, 201, {
        self: `${SITE}/rest/api/3/issue/10010/comment/10000`,
        id: '10000',
        body: {},
        created: '2026-11-29T08:00:00.000+0000',
      }),
    );
    const lines = ['imp session summary for SUP-1', 'Engineer:   alice@example.test', 'imp-delivery: d1'];
    expect(await adapter().postNote('SUP-1', { delivery: 'd1', lines, json: {} }, { retry: false })).toEqual({
      ref: 'comment 10000',
    });
    const [req] = server.received;
    expect(req?.method).toBe('POST');
    expect(req?.path).toBe('/rest/api/3/issue/SUP-1/comment');
    expect(req?.headers['content-type']).toBe('application/json');
    expect(req?.body).toEqual({
      body: {
        type: 'doc',
        version: 1,
        content: [
          { type: 'paragraph', content: [{ type: 'text', text: lines[0] }] },
          { type: 'codeBlock', content: [{ type: 'text', text: lines.join('\n') }] },
        ],
      },
    });
  });

  it('a retry reads the recent comments first: one a timed-out try saved (its delivery marker) is not posted again', async () => {
    const saved = {
      id: '10007',
      body: {
        type: 'doc',
        version: 1,
        content: [{ type: 'codeBlock', content: [{ type: 'text', text: 'summary\nimp-delivery: d7' }] }],
      },
    };
    server.handle((req, res) =>
      req.method === 'GET'
        ? json(res, 200, {
            startAt: 0,
            maxResults: 50,
            total: 2,
            comments: [{ id: '10001', body: {} }, saved],
          })
        : json(res, 201, { id: '10099' }),
    );
    const from = server.received.length;
    const note = (delivery: string) => ({
      delivery,
      lines: ['summary', `imp-delivery: ${delivery}`],
      json: {},
    });
    expect(await adapter().postNote('SUP-1', note('d7'), { retry: true })).toEqual({ ref: 'comment 10007' });
    expect(server.received.slice(from).map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /rest/api/3/issue/SUP-1/comment?orderBy=-created&maxResults=50',
    ]);
    // Another delivery's marker is not this one: posted.
    expect(await adapter().postNote('SUP-1', note('d8'), { retry: true })).toEqual({ ref: 'comment 10099' });
    expect(server.received.slice(from + 1).map((r) => r.method)).toEqual(['GET', 'POST']);
  });

  it('a 400 on the comment is not retried (Jira refused the request itself)', async () => {
    server.handle((_req, res) =>
      json(res, 400, { errorMessages: [], errors: { comment: 'Comment body can not be empty!' } }),
    );
    await expect(
      adapter().postNote('SUP-1', { delivery: 'd', lines: ['x'], json: {} }, { retry: false }),
    ).rejects.toMatchObject({ permanent: true, status: 400 });
  });
});

describe('Jira Data Center (REST v2), contract-tested', () => {
  let server: TicketServer;
  let system: TicketSystem;
  beforeAll(async () => {
    server = await startTicketServer();
    system = ticketSystem({
      type: 'jira',
      jiraApi: 'datacenter',
      url: server.url,
      person: 'assignee_or_reporter',
      tenantField: 'customfield_10200',
    });
  });
  afterAll(() => server.close());

  const dcUser = (name: string, email: string) => ({
    self: `${server.url}/rest/api/2/user?username=${name}`,
    name,
    key: `JIRAUSER${name.length}`,
    emailAddress: email,
    avatarUrls: {},
    displayName: name,
    active: true,
    timeZone: 'UTC',
  });

  it('asks /rest/api/2 with the personal access token as Bearer; the reporter counts with assignee_or_reporter', async () => {
    server.handle((_req, res) =>
      json(res, 200, {
        expand: 'renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations',
        id: '10100',
        self: `${server.url}/rest/api/2/issue/10100`,
        key: 'OPS-7',
        fields: {
          status: {
            name: 'Open',
            id: '1',
            statusCategory: { id: 2, key: 'new', colorName: 'blue-gray', name: 'To Do' },
          },
          assignee: dcUser('bob', 'bob@example.test'),
          reporter: dcUser('alice', 'Alice@Example.test'),
          customfield_10200: 'ACME',
        },
      }),
    );
    const adapter = ticketAdapter(system, 'pat-xyz', fetch);
    const lookup = await adapter.lookup('OPS-7');
    expect(decideTicket(system, 'OPS-7', lookup, ASK, String)).toEqual({ ok: true, status: 'Open' });
    expect(server.received[0]?.path).toBe(
      '/rest/api/2/issue/OPS-7?fields=status,assignee,reporter,customfield_10200',
    );
    expect(server.received[0]?.headers.authorization).toBe('Bearer pat-xyz');
  });

  it('posts wiki markup inside {noformat}', async () => {
    server.handle((_req, res) =>
      json(res, 201, { self: `${server.url}/rest/api/2/issue/10100/comment/10500`, id: '10500', body: 'x' }),
    );
    const adapter = ticketAdapter(system, 'pat-xyz', fetch);
    await adapter.postNote(
      'OPS-7',
      { delivery: 'd', lines: ['title', 'Engineer: a'], json: {} },
      { retry: false },
    );
    expect(server.received[0]?.path).toBe('/rest/api/2/issue/OPS-7/comment');
    expect(server.received[0]?.body).toEqual({ body: 'title\n{noformat}\ntitle\nEngineer: a\n{noformat}' });
  });
});

describe('Jira through the broker: a session on a Jira Cloud issue, and its summary as a comment', () => {
  let server: TicketServer;
  let t: TestBroker;
  beforeAll(async () => {
    server = await startTicketServer();
    process.env.IMP_TEST_JIRA_TOKEN = 'jira-secret-token';
    const system = `{ type: jira, api: cloud, url: ${JSON.stringify(server.url)}, user: imp-bot@example.test, token_env: IMP_TEST_JIRA_TOKEN, require_person: assignee, tenant_field: customfield_10042 }`;
    t = await startTestBroker({
      policyYaml: (issuer) =>
        devPolicyYaml(issuer, 'http://127.0.0.1:9').replace(
          /^tickets: .*$/m,
          () => `tickets: { pattern: '^[A-Z][A-Z0-9]+-[0-9]+$', post_summary: true, system: ${system} }`,
        ),
      ticketSettings: { delaysMs: [0] },
    });
  });
  afterAll(async () => {
    await t.close();
    await server.close();
  });

  it('opens, ends, posts; the token never reaches the audit log', async () => {
    server.handle((req, res) =>
      req.method === 'GET'
        ? json(
            res,
            200,
            cloudIssue('SUP-9', 'In Progress', 'indeterminate', cloudUser('alice@example.test', 'a1'), {
              value: 'acme',
            }),
          )
        : json(res, 201, { id: '20001', self: `${SITE}/rest/api/3/issue/10010/comment/20001` }),
    );
    const token = await t.loginAs('alice');
    const opened = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', token, {
      tenant: 'acme',
      environment: 'prod',
      ticket: 'SUP-9',
      reason: 'Customer reports missing invoices',
    });
    expect(opened.status).toBe(201);
    const id = opened.body.session.id;
    await t.call('POST', `/v1/sessions/${id}/end`, token, {});
    await t.broker.deps.tickets?.idle();
    const posted = (await t.store.readAudit({ session: id })).find((e) => e.type === 'ticket.summary_posted');
    expect(posted?.data).toMatchObject({ system: 'jira', ref: 'comment 20001', attempts: 1 });
    const comment = server.received.find((r) => r.method === 'POST');
    expect(JSON.stringify(comment?.body)).toContain(`Session:    ${id} (ended)`);
    expect(JSON.stringify(await t.store.readAudit())).not.toContain('jira-secret-token');
  });

  async function openOnSup9(ttl?: number): Promise<{ token: string; id: string }> {
    t.clock.advance(1100); // per-session re-authentication: each session needs a newer login
    const token = await t.loginAs('alice');
    const opened = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', token, {
      tenant: 'acme',
      environment: 'prod',
      ticket: 'SUP-9',
      reason: 'Customer reports missing invoices',
      ...(ttl ? { ttl } : {}),
    });
    expect(opened.status).toBe(201);
    return { token, id: opened.body.session.id };
  }

  it.each([
    [
      'expires',
      async ({ token, id }: { token: string; id: string }) => {
        t.clock.advance(61_000);
        await t.call('GET', `/v1/sessions/${id}`, token);
      },
      'expired',
    ],
    [
      'is revoked',
      async ({ id }: { token: string; id: string }) => {
        t.clock.advance(1100);
        const erin = await t.loginAs('erin');
        const revoked = await t.call('POST', `/v1/sessions/${id}/revoke`, erin, { reason: 'Left running' });
        expect(revoked.status).toBe(200);
      },
      'revoked',
    ],
  ])('with post_summary, a session that %s gets its summary posted too, once', async (_how, end, state) => {
    server.handle((req, res) =>
      req.method === 'GET'
        ? json(
            res,
            200,
            cloudIssue('SUP-9', 'In Progress', 'indeterminate', cloudUser('alice@example.test', 'a1'), {
              value: 'acme',
            }),
          )
        : json(res, 201, { id: '20002' }),
    );
    const opened = await openOnSup9(60);
    await end(opened);
    // The sweeper may be the one that expires it, a moment later: wait for the outcome (bounded).
    const deadline = Date.now() + 10_000;
    while (
      !(await t.store.readAudit({ session: opened.id })).some((e) => e.type.startsWith('ticket.summary_'))
    ) {
      if (Date.now() > deadline) throw new Error('no ticket.summary_* event');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await t.broker.deps.tickets?.idle();
    const posted = (await t.store.readAudit({ session: opened.id })).filter(
      (e) => e.type === 'ticket.summary_posted',
    );
    expect(posted).toHaveLength(1);
    const comments = server.received.filter((r) => r.method === 'POST');
    expect(comments).toHaveLength(1);
    expect(JSON.stringify(comments[0]?.body)).toContain(`Session:    ${opened.id} (${state})`);
  });
});
