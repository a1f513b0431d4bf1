/**
 * Policy files as operators meet them: `imp policy check`, the broker refusing a bad file at start
 * (file, line and key), `imp policy explain` for auditors, and the live audit sink.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { makeUserEnv, runImp, startDev } from '../helpers/cli.js';
import { CHROMIUM, requireComponents } from '../helpers/components.js';
import { cliLogin } from '../helpers/login.js';
import { makeTempDir } from '../helpers/temp.js';

const dir = makeTempDir('imp-policy-');
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe('imp policy check and imp broker serve with a bad file', () => {
  const { env } = makeUserEnv();

  it('accepts the dev policy', async () => {
    const result = await runImp(
      [
        'policy',
        'check',
        file('good.yaml', devPolicyYaml('https://idp.example.com', 'https://api.example.com')),
      ],
      env,
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('valid (4 roles, 3 tenants)');
  });

  it('names file, line and key for every problem, exit 2', async () => {
    const bad = file(
      'bad.yaml',
      'identity:\n  issuer: http://idp.example.com\nroles:\n  - name: support\n    scopes: [read, admin]\n    max_ttl: forever\n',
    );
    const result = await runImp(['policy', 'check', bad], env);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${bad}:2: identity.issuer: must be https`);
    expect(result.stderr).toContain(`${bad}:5: roles[0].scopes: unknown scope "admin"`);
    expect(result.stderr).toContain(`${bad}:6: roles[0].max_ttl: "forever" is not a duration`);
  });

  it('the broker refuses to start on it, with the same message', async () => {
    const bad = file(
      'bad2.yaml',
      'identity: { issuer: https://idp.example.com }\ntenants:\n  - { id: Acme, upstream: {} }\n',
    );
    const result = await runImp(
      ['broker', 'serve', '--config', bad, '--state-dir', join(dir, 'state'), '--port', '0'],
      env,
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${bad}:3: tenants[0].id: must be lowercase letters, digits and dashes`);
    expect(result.stderr).toContain('tenants[0].upstream: needs at least one environment');
  });
});

const run = requireComponents(CHROMIUM);

describe.skipIf(!run)('imp policy explain and the audit sink (imp dev)', () => {
  let dev: Awaited<ReturnType<typeof startDev>>;
  const sink = join(dir, 'sink.jsonl');
  beforeAll(async () => {
    // No identity and no upstreams: imp dev fills them in with its own IdP and demo tenant API.
    const policy = file(
      'dev-with-sink.yaml',
      `audit: { sink: ${sink} }
roles:
  - { name: support, groups: [support], tenants: ['*'], environments: ['*'], scopes: [read, write], max_ttl: 1h }
  - { name: security, groups: [security], audit: true }
tenants:
  - { id: acme, name: Acme, approval_required: [write] }
  - { id: globex, name: Globex }
`,
    );
    dev = await startDev(['--policy', policy]);
  });
  afterAll(async () => {
    await dev?.stop();
  });

  it('explains allow, approval and deny naming the rule; only auditors may ask', async () => {
    const erin = makeUserEnv({ IMP_BROKER_URL: dev.info.broker });
    const alice = makeUserEnv({ IMP_BROKER_URL: dev.info.broker });
    await cliLogin(alice.env, dev.info.broker, 'alice');
    await cliLogin(erin.env, dev.info.broker, 'erin');
    const write = await runImp(
      ['policy', 'explain', '--user', 'alice', '--tenant', 'acme', '--env', 'prod', '--scope', 'write'],
      erin.env,
    );
    expect(write.code, write.stderr).toBe(0);
    expect(write.stdout).toContain('NEEDS APPROVAL: alice@example.test (roles: support) write on acme/prod');
    expect(write.stdout).toContain('rule tenant.approval_required');
    const read = await runImp(
      ['policy', 'explain', '--user', 'alice', '--tenant', 'globex', '--json'],
      erin.env,
    );
    expect(JSON.parse(read.stdout)).toMatchObject({ decision: 'allow', rule: 'role.support' });
    const deny = await runImp(['policy', 'explain', '--user', 'alice', '--tenant', 'nosuch'], erin.env);
    expect(deny.code).toBe(4);
    expect(deny.stdout).toContain('rule tenant.unknown');
    const notAuditor = await runImp(['policy', 'explain', '--user', 'erin', '--tenant', 'acme'], alice.env);
    expect(notAuditor.code).toBe(4);
    expect(notAuditor.stderr).toContain('role.audit');
  });

  it('the sink received every event as a JSON line, the policy load first', async () => {
    const lines = readFileSync(sink, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ type: 'policy.loaded' });
    expect(lines.some((e) => e.type === 'auth.login' && e.actor.email === 'erin@example.test')).toBe(true);
    for (let i = 1; i < lines.length; i++) expect(lines[i].prev).toBe(lines[i - 1].hash);
  });
});
