/**
 * The ticket system as a real check, against a real Redmine (Debian's package, seeded by
 * scripts/redmine-test.sh): one Redmine for the whole file. Alice may open a session on acme only
 * with an open Redmine issue assigned to her whose Tenant field says acme; every other ticket is
 * refused with its rule and audited; when her session ends, the summary is a note on the issue,
 * read back through Redmine's API (its PUT answers 204 even when it saved nothing).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/core/audit/event.js';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { makeUserEnv, runImp } from '../helpers/cli.js';
import { requireComponents } from '../helpers/components.js';
import { storeCliLogin } from '../helpers/id-tokens.js';
import { REDMINE, REDMINE_HOOK_TIMEOUT_MS, type Redmine, startRedmine } from '../helpers/redmine.js';

const present = requireComponents(REDMINE);
const KEY_ENV = 'IMP_TEST_REDMINE_KEY';
const BAD_KEY_ENV = 'IMP_TEST_REDMINE_BAD_KEY';
const BAD_KEY = 'feedc0de'.repeat(5);

function policy(issuer: string, redmineUrl: string, keyEnv: string): string {
  const system = `{ type: redmine, url: ${JSON.stringify(redmineUrl)}, token_env: ${keyEnv}, require_person: assignee, tenant_field: Tenant, on_unreachable: refuse, break_glass: warn, timeout: 10s }`;
  return devPolicyYaml(issuer, 'http://127.0.0.1:9').replace(
    /^tickets: .*$/m,
    // A function: the pattern's `$'` would be a replacement token in a replacement string.
    () => `tickets: { pattern: '^[A-Z][A-Z0-9]+-[0-9]+$', post_summary: true, system: ${system} }`,
  );
}

/** Waits (bounded, below the test timeout) for an audit event of one of `types` about a session. */
async function auditEvent(t: TestBroker, session: string, types: string[]): Promise<AuditEvent> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const found = (await t.store.readAudit({ session })).find((e) => types.includes(e.type));
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no ${types.join('/')} event for session ${session}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A fresh login each time: per-session re-authentication needs a newer auth_time. */
async function fresh(t: TestBroker, user: string): Promise<string> {
  t.clock.advance(1100);
  return t.loginAs(user);
}

interface Journal {
  id: number;
  notes: string;
  user: { id: number; name: string };
}

describe.skipIf(!present)('tickets.system: redmine (real Redmine from Debian)', () => {
  let redmine: Redmine;
  let t: TestBroker;

  beforeAll(async () => {
    const started = Date.now();
    redmine = await startRedmine();
    process.stderr.write(
      `[tickets-redmine] Redmine booted in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
    process.env[KEY_ENV] = redmine.brokerKey;
    t = await startTestBroker({
      policyYaml: (issuer) => policy(issuer, redmine.url, KEY_ENV),
      ticketSettings: { delaysMs: [0, 50, 100] },
    });
  }, REDMINE_HOOK_TIMEOUT_MS);

  afterAll(async () => {
    await t?.close();
    await redmine?.stop();
  });

  const ask = (ticket: string) => ({
    tenant: 'acme',
    environment: 'prod',
    scope: 'read',
    ticket,
    reason: 'Customer reports missing invoices',
  });

  async function refusedEvent(rule: string): Promise<AuditEvent | undefined> {
    return (await t.store.readAudit({ type: 'session.refused' })).find((e) => e.data.rule === rule);
  }

  it.each([
    ['a missing issue', () => 'RM-99999', 'ticket.not_found', /does not exist in redmine/],
    ['a closed issue', () => `RM-${redmine.issues.closed}`, 'ticket.closed', /is "Closed", not open/],
    [
      "bob's issue",
      () => `RM-${redmine.issues.bobs}`,
      'ticket.not_assigned',
      /is not assigned to "alice@example\.test"/,
    ],
    [
      "another tenant's issue",
      () => `RM-${redmine.issues.globex}`,
      'ticket.other_tenant',
      /is about "globex", not acme/,
    ],
  ])('%s is refused with its rule, and the refusal is audited', async (_what, ticket, rule, message) => {
    const token = await fresh(t, 'alice');
    const answer = await t.call<{ error: { code: string; message: string; details: { rule: string } } }>(
      'POST',
      '/v1/sessions',
      token,
      ask(ticket()),
    );
    expect(answer.status).toBe(403);
    expect(answer.body.error.code).toBe('IMP_POLICY_DENIED');
    expect(answer.body.error.details.rule).toBe(rule);
    expect(answer.body.error.message).toMatch(message);
    const event = await refusedEvent(rule);
    expect(event).toMatchObject({ ticket: ticket(), tenant: 'acme', actor: { email: 'alice@example.test' } });
    expect(event?.data).toMatchObject({ rule, ticket_system: 'redmine' });
  });

  it('the dry run (POST /v1/sessions/check) refuses a closed ticket before any banner', async () => {
    const token = await fresh(t, 'alice');
    const answer = await t.call<{ error: { details: { rule: string } } }>(
      'POST',
      '/v1/sessions/check',
      token,
      ask(`RM-${redmine.issues.closed}`),
    );
    expect(answer.status).toBe(403);
    expect(answer.body.error.details.rule).toBe('ticket.closed');
  });

  it("alice starts on her open acme issue; when she ends, the summary is a note on it, written by the broker's account", async () => {
    const ticket = `RM-${redmine.issues.open}`;
    const token = await fresh(t, 'alice');
    const opened = await t.call<{ session: { id: string; state: string } }>(
      'POST',
      '/v1/sessions',
      token,
      ask(ticket),
    );
    expect(opened.status).toBe(201);
    const id = opened.body.session.id;
    const requested = await auditEvent(t, id, ['session.requested']);
    expect(requested.data.ticket_check).toEqual({ system: 'redmine', outcome: 'verified', status: 'New' });

    const ended = await t.call<{ ticket_note: string | null }>('POST', `/v1/sessions/${id}/end`, token, {});
    expect(ended.status).toBe(200);
    expect(ended.body.ticket_note).toBe('posting');
    const posted = await auditEvent(t, id, ['ticket.summary_posted', 'ticket.summary_failed']);
    expect(posted.type).toBe('ticket.summary_posted');
    expect(posted.data).toMatchObject({ system: 'redmine', attempts: 1, trigger: 'policy' });

    const read = await redmine.api('GET', `/issues/${redmine.issues.open}.json?include=journals`);
    const journals = (read.body as { issue: { journals: Journal[] } }).issue.journals;
    const note = journals.find((j) => j.notes.includes(id));
    expect(note?.user.name).toBe('Imp Example');
    expect(posted.data.ref).toBe(`journal ${note?.id}`);
    const endEvent = await auditEvent(t, id, ['session.ended']);
    expect(note?.notes).toContain(`imp session summary for ${ticket}`);
    expect(note?.notes).toContain('Engineer:   alice@example.test');
    expect(note?.notes).toContain('Tenant:     acme / prod');
    expect(note?.notes).toContain('Actions:    0 read, 0 write, 0 export');
    expect(note?.notes).toContain(`Audit proof: imp audit receipt ${endEvent.id}`);
    expect(note?.notes).toContain(`/console/sessions/${id}`);
    // The reason is not the ticket's business and never lands there.
    expect(note?.notes).not.toContain('missing invoices');
  });

  it('a project where the broker may not add notes: Redmine answers 204 and saves nothing, which is caught and audited', async () => {
    const token = await fresh(t, 'alice');
    const opened = await t.call<{ session: { id: string } }>(
      'POST',
      '/v1/sessions',
      token,
      ask(`RM-${redmine.issues.quiet}`),
    );
    expect(opened.status).toBe(201);
    const id = opened.body.session.id;
    await t.call('POST', `/v1/sessions/${id}/end`, token, {});
    const outcome = await auditEvent(t, id, ['ticket.summary_posted', 'ticket.summary_failed']);
    expect(outcome.type).toBe('ticket.summary_failed');
    expect(outcome.data.error).toMatch(/answered 204 but saved no note/);
    expect(outcome.data.attempts).toBe(1);
    const read = await redmine.api('GET', `/issues/${redmine.issues.quiet}.json?include=journals`);
    expect((read.body as { issue: { journals: Journal[] } }).issue.journals).toEqual([]);
  });

  it('the real CLI: imp end --post prints the summary, says it is being posted, and the note lands', async () => {
    const token = await fresh(t, 'alice');
    const opened = await t.call<{ session: { id: string } }>(
      'POST',
      '/v1/sessions',
      token,
      ask(`RM-${redmine.issues.open}`),
    );
    expect(opened.status).toBe(201);
    const id = opened.body.session.id;
    const { env } = makeUserEnv();
    await storeCliLogin(env, t.broker.url, token);
    const result = await runImp(
      ['end', id, '--post', '--broker', t.broker.url, '--format', 'markdown'],
      env,
      {
        timeoutMs: 40_000,
      },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`### imp session ${id}`);
    expect(result.stderr).toContain('The broker is posting this summary on the ticket');
    const posted = await auditEvent(t, id, ['ticket.summary_posted', 'ticket.summary_failed']);
    expect(posted.data).toMatchObject({ system: 'redmine', trigger: 'requested' });
    const read = await redmine.api('GET', `/issues/${redmine.issues.open}.json?include=journals`);
    const notes = (read.body as { issue: { journals: Journal[] } }).issue.journals.filter((j) =>
      j.notes.includes(id),
    );
    expect(notes).toHaveLength(1);
  });

  it('a broker whose API key Redmine does not know is refused by rule ticket.unreachable, not treated as anonymous', async () => {
    process.env[BAD_KEY_ENV] = BAD_KEY;
    const other = await startTestBroker({ policyYaml: (issuer) => policy(issuer, redmine.url, BAD_KEY_ENV) });
    try {
      const token = await other.loginAs('alice');
      const answer = await other.call<{
        error: { code: string; message: string; details: { rule: string } };
      }>('POST', '/v1/sessions', token, ask(`RM-${redmine.issues.open}`));
      expect(answer.status).toBe(502);
      expect(answer.body.error).toMatchObject({
        code: 'IMP_UNREACHABLE',
        details: { rule: 'ticket.unreachable' },
      });
      expect(answer.body.error.message).toContain("refused the broker's credential");
      expect(answer.body.error.message).not.toContain(BAD_KEY);
      const refused = (await other.store.readAudit({ type: 'session.refused' })).find(
        (e) => e.data.rule === 'ticket.unreachable',
      );
      expect(refused?.data.error).toContain('HTTP 401');
      expect(JSON.stringify(await other.store.readAudit())).not.toContain(BAD_KEY);
    } finally {
      await other.close();
    }
  });
});
