/**
 * Before the banner: `imp start` checks tenant, environment and time limit with the broker, and one
 * --env rule holds for start and exec — a tenant's single environment is implied; with several,
 * --env is needed (or chosen at a prompt on a terminal).
 */
import { describe, expect, it } from 'vitest';
import { main } from '../../../src/cli/main.js';
import type { ScriptedAnswer } from '../../../src/cli/prompter.js';
import {
  BROKER_CONFIG,
  makeTestDeps,
  STORED_ALICE_LOGIN,
  type StubCall,
  stubBroker,
} from '../../helpers/cli-deps.js';

const BROKER = 'http://127.0.0.1:7700';
const stored = STORED_ALICE_LOGIN;
const config = BROKER_CONFIG;
const configCall: StubCall = { method: 'GET', path: '/v1/config', status: 200, body: config };
const tenantsCall: StubCall = {
  method: 'GET',
  path: '/v1/tenants',
  status: 200,
  body: {
    tenants: [
      { id: 'acme', name: 'Acme', environments: ['prod', 'staging'] },
      { id: 'globex', name: 'Globex', environments: ['prod'] },
    ],
  },
};
const denied = (path: string, rule: string, message: string): StubCall => ({
  method: 'POST',
  path,
  status: 403,
  body: { error: { code: 'IMP_POLICY_DENIED', message, details: { rule } } },
});
const BANNER = 'You are about to act as tenant';
const given = ['--ticket', 'SUP-1', '--reason', 'Customer cannot see invoices'];

async function imp(
  argv: string[],
  calls: StubCall[],
  options: { tty?: boolean; answers?: ScriptedAnswer[] } = {},
) {
  const fetch = stubBroker(calls);
  const t = makeTestDeps({
    fetch,
    env: { IMP_BROKER_URL: BROKER },
    ...(options.tty ? { tty: true } : {}),
    answers: options.answers ?? [],
  });
  await t.credentials.set(BROKER, stored);
  const code = await main(argv, t.deps, 'test');
  return { code, stderr: t.io.stderrText(), remaining: fetch.remaining(), prompter: t.prompter };
}

describe('imp start checks before the banner', () => {
  it('a time limit over the maximum is invalid input (exit 2), and no banner was shown', async () => {
    const result = await imp(
      ['start', '--tenant', 'globex', '--env', 'prod', '--ttl', '5h', ...given, '--no-input'],
      [
        configCall,
        denied(
          '/v1/sessions/check',
          'ttl.max',
          'Denied by rule ttl.max: The time limit 5h is over the maximum of 1h your roles allow on globex/prod.',
        ),
      ],
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      'error: Denied by rule ttl.max: The time limit 5h is over the maximum of 1h',
    );
    expect(result.stderr).not.toContain(BANNER);
    expect(result.remaining).toEqual([]);
  });

  it('an unknown tenant is invalid input (exit 2) naming the tenants there are, with no banner', async () => {
    const result = await imp(
      ['start', '--tenant', 'nope', ...given, '--no-input'],
      [configCall, tenantsCall],
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('error: There is no tenant "nope" (tenants: acme, globex).');
    expect(result.stderr).not.toContain(BANNER);
  });

  it('an unknown environment given with --env is refused by the broker check (exit 2), with no banner', async () => {
    const result = await imp(
      ['start', '--tenant', 'globex', '--env', 'qa', ...given, '--no-input'],
      [
        configCall,
        denied('/v1/sessions/check', 'tenant.environment', 'Tenant globex has no environment "qa"'),
      ],
    );
    expect(result.code).toBe(2);
    expect(result.stderr).not.toContain(BANNER);
  });

  it('a role refusal stays a policy denial (exit 4)', async () => {
    const result = await imp(
      ['start', '--tenant', 'globex', '--env', 'prod', ...given, '--no-input'],
      [configCall, denied('/v1/sessions/check', 'role.none', 'Denied by rule role.none: no role')],
    );
    expect(result.code).toBe(4);
    expect(result.stderr).not.toContain(BANNER);
  });

  it('the banner shows the time limit the broker will grant (the policy default without --ttl)', async () => {
    let checked: unknown;
    const result = await imp(
      ['start', '--tenant', 'globex', ...given, '--no-input'],
      [
        configCall,
        tenantsCall,
        {
          method: 'POST',
          path: '/v1/sessions/check',
          status: 200,
          body: { decision: 'allow', rule: 'role.support', message: '', ttl: 1800, max_ttl: 3600 },
          check: ({ body }) => {
            checked = body;
          },
        },
        denied('/v1/sessions', 'role.none', 'stop here'),
      ],
    );
    expect(checked).toMatchObject({ tenant: 'globex', environment: 'prod', scope: 'read' });
    expect(result.stderr).toContain(`${BANNER} globex in prod with read-only access for up to 30m.`);
    expect(result.code).toBe(4);
  });
});

describe('one --env rule for start and exec', () => {
  it('start: a tenant with one environment needs no --env, even with --no-input', async () => {
    const result = await imp(
      ['start', '--tenant', 'globex', ...given, '--no-input'],
      [configCall, tenantsCall, denied('/v1/sessions/check', 'role.none', 'stop here')],
    );
    expect(result.stderr).not.toContain('--env');
    expect(result.code).toBe(4);
  });

  it('start: several environments without --env and without a terminal is a usage error (exit 2)', async () => {
    const result = await imp(
      ['start', '--tenant', 'acme', ...given, '--no-input'],
      [configCall, tenantsCall],
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      'error: Tenant acme has several environments (prod, staging): pass --env <env>.',
    );
  });

  it('start: several environments on a terminal are offered as a choice', async () => {
    let environment: unknown;
    const result = await imp(
      ['start', '--tenant', 'acme', ...given],
      [
        configCall,
        tenantsCall,
        {
          ...denied('/v1/sessions/check', 'role.none', 'stop here'),
          check: ({ body }) => {
            environment = (body as { environment: string }).environment;
          },
        },
      ],
      { tty: true, answers: [{ match: 'Environment of acme', answer: 'staging' }] },
    );
    expect(environment).toBe('staging');
    expect(result.code).toBe(4);
    result.prompter.assertDone();
  });

  it('exec: several environments without --env is a usage error (exit 2), never a silent pick', async () => {
    const result = await imp(['exec', '--tenant', 'acme', ...given, '--', 'true'], [configCall, tenantsCall]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('pass --env <env>');
  });

  it('exec: a single environment is implied', async () => {
    let environment: unknown;
    const result = await imp(
      ['exec', '--tenant', 'globex', ...given, '--', 'true'],
      [
        configCall,
        tenantsCall,
        {
          ...denied('/v1/sessions', 'role.none', 'stop here'),
          check: ({ body }) => {
            environment = (body as { environment: string }).environment;
          },
        },
      ],
    );
    expect(environment).toBe('prod');
    expect(result.code).toBe(4);
  });

  it('exec: a time limit over the maximum exits 2', async () => {
    const result = await imp(
      ['exec', '--tenant', 'globex', '--env', 'prod', '--ttl', '9h', ...given, '--', 'true'],
      [configCall, denied('/v1/sessions', 'ttl.max', 'Denied by rule ttl.max: over the maximum')],
    );
    expect(result.code).toBe(2);
  });
});
