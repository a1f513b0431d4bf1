/**
 * Notifications end to end on one broker: a real SMTP server (STARTTLS with a throwaway certificate,
 * AUTH only over TLS) receives the approval-request mail; Slack and Teams bodies reach a local
 * receiver and validate against their documented shapes; a signed webhook that fails once gets
 * exactly one accepted delivery; a receiver that hangs does not hold up the approval; routing by
 * tenant tier and environment; every outcome audited without URL tokens or secrets.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleLink } from '../../src/core/links.js';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { slackProblems, teamsProblems } from '../helpers/chat-shapes.js';
import { startHttpReceiver, startSmtpServer, waitFor } from '../helpers/notify-receivers.js';

const SECRETS: Record<string, string> = {
  IMP_T_SMTP_USER: 'imp-relay',
  IMP_T_SMTP_PASS: 'smtp-password-not-for-logs',
  IMP_T_HOOK_SECRET: 'hook-secret-not-for-logs',
};
const CONSOLE = 'https://imp.example.test';
const REASON = 'Invoice <b>export</b> & "totals" [click](http://evil.example) *now*';

let t: TestBroker;
let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
let http: Awaited<ReturnType<typeof startHttpReceiver>>;
let approved: string;

function policy(issuer: string): string {
  return `${devPolicyYaml(issuer, 'http://127.0.0.1:9')}notifications:
  console_url: ${CONSOLE}
  channels:
    - { name: mail, type: email, from: 'imp <imp@example.test>', smtp: { host: 127.0.0.1, port: ${smtp.port}, security: starttls, user_env: IMP_T_SMTP_USER, password_env: IMP_T_SMTP_PASS, ca_file: ${smtp.caFile} } }
    - { name: chat, type: slack, url_env: IMP_T_SLACK_URL }
    - { name: teams, type: teams, url_env: IMP_T_TEAMS_URL }
    - { name: flaky, type: webhook, url: '${http.url}/flaky?token=url-token-not-for-logs', secret_env: IMP_T_HOOK_SECRET }
    - { name: hanging, type: webhook, url_env: IMP_T_HANG_URL }
  routes:
    - { events: [request.pending, breakglass.pending, session.revoked, request.denied, request.expired, audit.alarm], channels: [mail] }
    - { events: [request.pending], tiers: [enterprise], environments: [prod], channels: [chat, teams] }
    - { events: [request.approved], tiers: [enterprise], channels: [flaky, hanging] }
    - { events: [session.revoked], channels: [teams] }
  people: { directory: { user-bob: bob.lead@corp.example.test } }
`;
}

beforeAll(async () => {
  smtp = await startSmtpServer({ user: SECRETS.IMP_T_SMTP_USER!, pass: SECRETS.IMP_T_SMTP_PASS! });
  http = await startHttpReceiver({
    '/slack/T0/B0/slack-token': [200],
    '/teams': [202],
    '/flaky': [503, 200],
    '/hang': ['hang'],
  });
  const env: Record<string, string> = {
    ...SECRETS,
    IMP_T_SLACK_URL: `${http.url}/slack/T0/B0/slack-token`,
    IMP_T_TEAMS_URL: `${http.url}/teams`,
    IMP_T_HANG_URL: `${http.url}/hang`,
  };
  t = await startTestBroker({
    policyYaml: policy,
    // A hanging receiver is cut only when the broker stops: the approval must not wait for it.
    notifySettings: { delaysMs: [0, 30, 60], timeoutMs: 60_000, env: (name) => env[name] },
  });
}, 30_000);
afterAll(async () => {
  await t?.close();
  await http?.close();
  await smtp?.close();
});

const ask = (tenant: string) => ({
  tenant,
  environment: 'prod',
  scope: 'write',
  ticket: 'SUP-42',
  reason: REASON,
  ttl: 900,
});

async function outcomes(kind: string) {
  return (await t.store.readAudit({})).filter(
    (e) => (e.type === 'notify.sent' || e.type === 'notify.failed') && e.data.kind === kind,
  );
}

describe('a request waiting for approval', () => {
  it('mails the approvers over STARTTLS: escaped reason, the command, the console link, no token', async () => {
    await t.loginAs('bob'); // known to the broker as an approver (lead) by his latest login
    const alice = await t.loginAs('alice');
    const asked = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', alice, ask('acme'));
    expect(asked.status).toBe(202);
    approved = asked.body.session.id;
    const short = approved.slice(0, 8);
    const mail = await waitFor(() => smtp.mails.find((m) => m.parsed.text?.includes(short)));
    expect(mail.secure).toBe(true);
    expect(mail.user).toBe('imp-relay');
    // The approver by the policy's directory; never the requester.
    expect(mail.to).toEqual(['bob.lead@corp.example.test']);
    expect(mail.parsed.subject).toBe(
      '[imp] alice@example.test asks for WRITE access to Acme Corp (acme)/prod: approval needed',
    );
    const html = String(mail.parsed.html);
    expect(html).toContain('Invoice &#60;b&#62;export&#60;/b&#62; &#38; &#34;totals&#34;');
    expect(html).not.toContain('<b>export</b>');
    expect(html).toContain(`<code>imp approve ${short}</code>`);
    expect(html).toContain(`href="${consoleLink(CONSOLE, 'request', approved)}"`);
    expect(mail.parsed.text).toContain(`Reason: ${REASON}`);
    expect(mail.parsed.text).toContain(`To act: imp approve ${short}`);
    expect(mail.parsed.text).toContain(`Console: ${CONSOLE}/console/requests/${approved}`);
    for (const secret of [alice, ...Object.values(SECRETS)]) expect(mail.raw).not.toContain(secret);
  });

  it('posts to Slack and Teams for an enterprise prod tenant, in shapes both accept', async () => {
    const slack = await waitFor(() => http.posts.find((p) => p.path.startsWith('/slack/')));
    const teams = await waitFor(() => http.posts.find((p) => p.path === '/teams'));
    const slackBody = JSON.parse(slack.body);
    expect(slackProblems(slackBody)).toEqual([]);
    const slackText = JSON.stringify(slackBody.blocks);
    expect(slackText).toContain('Invoice &lt;b&gt;export&lt;/b&gt; &amp;');
    expect(slackText).toContain(`imp approve ${approved.slice(0, 8)}`);
    expect(slackText).toContain(`<${CONSOLE}/console/requests/${approved}|Open in the imp console>`);
    const teamsBody = JSON.parse(teams.body);
    expect(teamsProblems(teamsBody)).toEqual([]);
    const facts = teamsBody.attachments[0].content.body[1].facts as { title: string; value: string }[];
    expect(facts.find((f) => f.title === 'Reason')?.value).toBe(
      'Invoice \\<b\\>export\\<\\/b\\> & "totals" \\[click\\]\\(http://evil.example\\) \\*now\\*'.replace(
        '\\/',
        '/',
      ),
    );
    expect(teamsBody.attachments[0].content.actions[0].url).toBe(consoleLink(CONSOLE, 'request', approved));
    const sent = await waitFor(async () => {
      const events = await outcomes('request.pending');
      return events.length >= 3 ? events : undefined;
    });
    expect(sent.map((e) => [e.type, e.data.channel]).sort()).toEqual([
      ['notify.sent', 'chat'],
      ['notify.sent', 'mail'],
      ['notify.sent', 'teams'],
    ]);
    expect(sent.find((e) => e.data.channel === 'mail')?.data).toMatchObject({ recipients: 1, attempts: 1 });
    const audited = JSON.stringify(await t.store.readAudit({}));
    expect(audited).not.toContain('slack-token');
    expect(audited).not.toContain('url-token-not-for-logs');
    for (const secret of Object.values(SECRETS)) expect(audited).not.toContain(secret);
  });

  let standardTier = '';
  it('routes by tier and environment: a standard-tier tenant gets mail, not chat', async () => {
    t.clock.advance(1100); // each session needs a login of its own (per_session)
    const alice = await t.loginAs('alice');
    const asked = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', alice, ask('initech'));
    expect(asked.status).toBe(202);
    const id = asked.body.session.id;
    standardTier = id;
    await waitFor(() => smtp.mails.find((m) => m.parsed.text?.includes(id.slice(0, 8))));
    await waitFor(async () => (await outcomes('request.pending')).some((e) => e.session === id));
    const forIt = (await outcomes('request.pending')).filter((e) => e.session === id);
    expect(forIt.map((e) => e.data.channel)).toEqual(['mail']);
    expect(http.posts.filter((p) => p.body.includes(id.slice(0, 8)))).toEqual([]);
  });

  it('a denial is mailed to the requester with who denied it and why', async () => {
    const bob = await t.loginAs('bob');
    const denied = await t.call('POST', `/v1/requests/${standardTier.slice(0, 8)}/deny`, bob, {
      reason: 'Use a read session & ask <support-leads>',
    });
    expect(denied.status).toBe(200);
    const mail = await waitFor(() => smtp.mails.find((m) => m.parsed.subject?.includes('was denied')));
    expect(mail.to).toEqual(['alice@example.test']);
    expect(mail.parsed.subject).toBe(
      '[imp] Your request for Initech (initech)/prod was denied by bob@example.test',
    );
    expect(mail.parsed.text).toContain('Why denied: Use a read session & ask <support-leads>');
    expect(String(mail.parsed.html)).toContain('Use a read session &#38; ask &#60;support-leads&#62;');
  });

  it('a break-glass request is mailed to the people who may confirm it, not to its requester', async () => {
    await t.loginAs('dave');
    const carol = await t.loginAs('carol');
    const asked = await t.call<{ request: { id: string } }>('POST', '/v1/break-glass', carol, {
      tenant: 'globex',
      environment: 'prod',
      incident: 'INC-77',
      reason: 'Checkout is down for every customer',
    });
    expect(asked.status).toBe(202);
    const short = asked.body.request.id.slice(0, 8);
    const mail = await waitFor(() =>
      smtp.mails.find((m) => m.parsed.text?.includes(`imp break-glass confirm ${short}`)),
    );
    expect(mail.to).toEqual(['dave@example.test']);
    expect(mail.parsed.subject).toContain(
      'BREAK-GLASS: carol@example.test asks for emergency WRITE access to Globex (globex)/prod',
    );
    expect(mail.parsed.text).toContain('Incident: INC-77');
  });
});

describe('delivery never holds up the operation, and is retried to exactly one delivery', () => {
  it('approving answers while a receiver hangs; a receiver that fails once gets one accepted, signed delivery', async () => {
    const bob = await t.loginAs('bob');
    const started = Date.now();
    const answer = await t.call<{ session: { state: string } }>(
      'POST',
      `/v1/requests/${approved}/approve`,
      bob,
      {},
    );
    expect(answer.status).toBe(200);
    expect(answer.body.session.state).toBe('active');
    // The hanging receiver has the notification and has not answered; the approval did not wait for it.
    await waitFor(() => http.posts.some((p) => p.path === '/hang' && p.body.includes(approved)));
    expect(Date.now() - started).toBeLessThan(30_000);
    const sent = await waitFor(async () =>
      (await outcomes('request.approved')).find((e) => e.data.channel === 'flaky'),
    );
    expect(sent.type).toBe('notify.sent');
    expect(sent.data).toMatchObject({ attempts: 2, status: 200, channel_type: 'webhook' });
    const tries = http.posts.filter((p) => p.path === '/flaky');
    expect(tries.map((p) => p.status)).toEqual([503, 200]);
    // One delivery id for both tries (receivers deduplicate on it); each try signed over its body.
    expect(new Set(tries.map((p) => p.headers['x-imp-delivery'])).size).toBe(1);
    for (const p of tries) {
      const [, ts, mac] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(p.headers['x-imp-signature']))!;
      expect(createHmac('sha256', SECRETS.IMP_T_HOOK_SECRET!).update(`${ts}.${p.body}`).digest('hex')).toBe(
        mac,
      );
    }
    const body = JSON.parse(tries[1]!.body);
    expect(body).toMatchObject({
      event: 'request.approved',
      session_id: approved,
      short_id: approved.slice(0, 8),
      tenant: 'acme',
      requester: 'alice@example.test',
      actor: 'bob@example.test',
      reason: REASON,
    });
    // Nothing more arrives once it was accepted.
    expect((await outcomes('request.approved')).filter((e) => e.data.channel === 'flaky')).toHaveLength(1);
    expect(http.posts.filter((p) => p.path === '/flaky')).toHaveLength(2);
  });
});

describe('a revoked session', () => {
  it('tells its owner who revoked it and why', async () => {
    const erin = await t.loginAs('erin');
    const answer = await t.call('POST', `/v1/sessions/${approved}/revoke`, erin, {
      reason: 'Ticket <SUP-42> was closed',
    });
    expect(answer.status).toBe(200);
    const mail = await waitFor(() => smtp.mails.find((m) => m.parsed.subject?.includes('was revoked')));
    expect(mail.to).toEqual(['alice@example.test']);
    expect(mail.parsed.subject).toBe(
      '[imp] The session of alice@example.test on Acme Corp (acme)/prod was revoked by erin@example.test',
    );
    expect(mail.parsed.text).toContain('Why revoked: Ticket <SUP-42> was closed');
    expect(String(mail.parsed.html)).toContain('Ticket &#60;SUP-42&#62; was closed');
    const teams = await waitFor(() =>
      http.posts.find((p) => p.path === '/teams' && p.body.includes('revoked')),
    );
    expect(teamsProblems(JSON.parse(teams.body))).toEqual([]);
  });
});

describe('a request nobody decided', () => {
  it('expires, and the requester is told', async () => {
    t.clock.advance(1100);
    const alice = await t.loginAs('alice');
    const asked = await t.call<{ session: { id: string } }>('POST', '/v1/sessions', alice, ask('initech'));
    expect(asked.status).toBe(202);
    // Past approvals.request_ttl (1h): the sweeper expires it and audits request.expired.
    t.clock.advance(3601_000);
    const mail = await waitFor(() =>
      smtp.mails.find((m) => m.parsed.subject?.includes('expired without a decision')),
    );
    expect(mail.to).toEqual(['alice@example.test']);
    expect(mail.parsed.text).toContain(`Request: ${asked.body.session.id.slice(0, 8)}`);
  });
});

describe('an audit alarm', () => {
  it('a witness refusing the log mails the people with the audit role', async () => {
    await t.loginAs('erin');
    // What the witness pusher records when a witness refuses a checkpoint (src/broker/witnesses.ts).
    await t.store.transaction((tx) =>
      tx.appendAudit(
        {
          type: 'audit.witness_refused',
          data: {
            witness: 'https://w1.example.test',
            witness_name: 'w1.example.test',
            size: 42,
            status: 409,
            why: 'not an extension',
          },
        },
        t.clock.now(),
      ),
    );
    const mail = await waitFor(() => smtp.mails.find((m) => m.parsed.subject?.includes('Audit alarm')));
    expect(mail.to).toEqual(['erin@example.test']);
    expect(mail.parsed.text).toContain(
      'Alarm: witness w1.example.test (https://w1.example.test) refused checkpoint 42: not an extension',
    );
    expect(mail.parsed.text).toContain('To act: imp audit verify');
  });
});
