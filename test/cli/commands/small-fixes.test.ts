/**
 * The small things a new user tripped over: a swapped-letter command gets "did you mean", `imp
 * broker --help` lists its commands, `imp policy explain --groups` exists (the broker suggests it),
 * and paths in the Markdown summary are code spans without backslashes in them.
 */
import { describe, expect, it } from 'vitest';
import { main } from '../../../src/cli/main.js';
import { codeSpan, formatSummary } from '../../../src/cli/summary-format.js';
import type { SessionSummary } from '../../../src/core/api.js';
import { makeTestDeps, stubBroker } from '../../helpers/cli-deps.js';

async function imp(argv: string[], fetch = stubBroker([])) {
  const t = makeTestDeps({ fetch, env: { IMP_BROKER_URL: 'http://127.0.0.1:7700' } });
  await t.credentials.set(
    'http://127.0.0.1:7700',
    JSON.stringify({ token: 'tok', expires_at: '2099-01-01T00:00:00Z', auth_time: 1, user: { sub: 'erin' } }),
  );
  const code = await main(argv, t.deps, 'test');
  return { code, stdout: t.io.stdoutText(), stderr: t.io.stderrText() };
}

describe('commands people mistype or guess', () => {
  it('imp strat: did you mean "imp start"', async () => {
    const result = await imp(['strat']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'error: Unknown command "strat". Did you mean "imp start"? Run "imp --help" for the list.\n',
    );
  });

  it('imp broker --help lists serve and rotate-keys (exit 0); bare imp broker shows them on stderr (exit 2)', async () => {
    const help = await imp(['broker', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: imp broker <command> [flags]');
    expect(help.stdout).toMatch(/broker serve\s+Run the broker/);
    expect(help.stdout).toMatch(/broker rotate-keys\s+Start a new broker signing key/);
    const bare = await imp(['broker']);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('broker serve');
    const audit = await imp(['audit', '--help']);
    expect(audit.stdout).toContain('audit verify');
    expect((await imp(['broker', 'srve'])).stderr).toContain('Did you mean "imp broker serve"?');
  });
});

describe('imp policy explain --groups', () => {
  it('asks the broker for a set of groups instead of a person', async () => {
    let query: URLSearchParams | undefined;
    const fetch = (async (input: string | URL | Request) => {
      query = new URL(String(input)).searchParams;
      return new Response(
        JSON.stringify({
          user: 'groups [support]',
          roles: ['support'],
          decision: 'allow',
          rule: 'role.support',
          message: 'ok',
        }),
        { status: 200 },
      );
    }) as unknown as ReturnType<typeof stubBroker>;
    const result = await imp(['policy', 'explain', '--groups', 'support', '--tenant', 'acme'], fetch);
    expect(result.code).toBe(0);
    expect(Object.fromEntries(query!)).toEqual({
      groups: 'support',
      tenant: 'acme',
      env: 'prod',
      scope: 'read',
    });
    expect(result.stdout).toContain('ALLOW: groups [support]');
  });

  it('needs --user or --groups, not both (exit 2)', async () => {
    expect((await imp(['policy', 'explain', '--tenant', 'acme'])).stderr).toContain(
      'needs --tenant and --user (or --groups)',
    );
    expect((await imp(['policy', 'explain', '--tenant', 'acme', '--user', 'a', '--groups', 'b'])).code).toBe(
      2,
    );
  });
});

describe('the Markdown summary', () => {
  it('puts paths in code spans as they are: no backslash escapes inside, backticks fenced', () => {
    expect(codeSpan('/v1/users_list/*')).toBe('`/v1/users_list/*`');
    expect(codeSpan('/a`b')).toBe('``/a`b``');
    expect(codeSpan('`x')).toBe('`` `x ``');
    expect(codeSpan('/x\u001b[2J')).toBe('`/x\\x1b[2J`');
    const summary = {
      session: {
        id: 's-1',
        state: 'ended',
        mode: 'standard',
        tenant: 'acme',
        environment: 'prod',
        scope: 'read',
        ticket: 'SUP_1',
        reason: 'r',
        ttl: 60,
        requester: { sub: 'a', email: 'a@x' },
        created_at: '',
        request_expires_at: null,
        decided_by: null,
        decision_comment: null,
        started_at: null,
        expires_at: null,
        ended_at: null,
        review_required: false,
      },
      duration_seconds: 5,
      actions: { read: 1, write: 0, export: 0 },
      writes: 0,
      denials: 0,
      calls: [
        {
          ts: '2026-01-01T00:00:00.000Z',
          method: 'GET',
          path: '/v1/users_list',
          status: 200,
          kind: 'read',
          outcome: 'completed',
        },
      ],
    } as SessionSummary;
    const markdown = formatSummary(summary, 'markdown');
    expect(markdown).toContain('GET `/v1/users_list` → 200');
    expect(markdown).toContain('| Ticket | SUP\\_1 |');
  });
});
