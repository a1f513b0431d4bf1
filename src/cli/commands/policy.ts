/** `imp policy check FILE` (offline) and `imp policy explain` (asks the broker; auditors only). */
import { readFile } from 'node:fs/promises';
import { UsageError } from '../../core/errors.js';
import { escapeUntrusted } from '../../core/escape.js';
import { parsePolicy } from '../../core/policy/load.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';
import { brokerTarget, withLogin } from '../login-flow.js';

/** `imp policy check`. */
export const checkSpec: CommandSpec = {
  name: 'policy check',
  group: 'admin',
  summary: 'Validate a policy file (errors name file, line and key)',
  usage: 'imp policy check <file> [--json]',
  args: [{ name: 'file', required: true, description: 'Policy YAML', complete: 'files' }],
  flags: [],
  examples: ['imp policy check broker.yaml'],
};

/** `imp policy explain`. */
export const explainSpec: CommandSpec = {
  name: 'policy explain',
  group: 'admin',
  summary: 'Could this person open this session, and why not? (role with audit)',
  usage:
    'imp policy explain (--user <login> | --groups <g1,g2>) --tenant <id> [--env <env>] [--scope read|write] [--json]',
  flags: [
    { name: 'user', value: '<login>', description: 'Login, email or subject of someone who has logged in' },
    {
      name: 'groups',
      value: '<g1,g2>',
      description: 'Explain for these IdP groups instead (someone who never logged in)',
    },
    { name: 'tenant', value: '<id>', description: 'Tenant', complete: 'tenants' },
    { name: 'env', value: '<env>', description: 'Environment (default prod)', complete: 'environments' },
    {
      name: 'scope',
      value: '<scope>',
      description: 'read or write (default read)',
      choices: ['read', 'write'],
    },
    { name: 'broker', value: '<url>', description: 'Broker URL' },
  ],
  examples: [
    'imp policy explain --user alice --tenant acme --env prod --scope write',
    'imp policy explain --groups support,sre-oncall --tenant acme',
  ],
};

/** Validates a file; exit 0 when valid, 2 with every problem when not. */
export async function runCheck(file: string, json: boolean, deps: Pick<Deps, 'io'>): Promise<number> {
  const text = await readFile(file, 'utf8').catch((error: Error) => {
    throw new UsageError(`Cannot read ${file}: ${error.message}`);
  });
  const policy = parsePolicy(text, file);
  if (json)
    deps.io.out(
      JSON.stringify({ valid: true, roles: policy.roles.length, tenants: policy.tenants.map((t) => t.id) }),
    );
  else deps.io.out(`${file}: valid (${policy.roles.length} roles, ${policy.tenants.length} tenants)`);
  return 0;
}

/** Asks the broker to explain a decision. */
export async function runExplain(
  options: {
    user: string | undefined;
    groups: string | undefined;
    tenant: string;
    env: string;
    scope: string;
    broker: string | undefined;
    json: boolean;
  },
  deps: Deps,
): Promise<number> {
  const target = await brokerTarget(deps, options.broker);
  const answer = await withLogin(
    deps,
    target,
    { json: options.json, noBrowser: true },
    async (token) =>
      (
        await target.client.request<{
          user: string;
          roles: string[];
          decision: string;
          rule: string;
          message: string;
        }>('GET', '/v1/policy/explain', {
          token,
          query: {
            ...(options.groups !== undefined ? { groups: options.groups } : { user: options.user ?? '' }),
            tenant: options.tenant,
            env: options.env,
            scope: options.scope,
          },
        })
      ).body,
  );
  if (options.json) deps.io.out(JSON.stringify(answer));
  else {
    const verdict =
      answer.decision === 'allow' ? 'ALLOW' : answer.decision === 'approval' ? 'NEEDS APPROVAL' : 'DENY';
    deps.io.out(
      `${verdict}: ${escapeUntrusted(answer.user)} (roles: ${answer.roles.join(', ') || 'none'}) ${options.scope} on ${options.tenant}/${options.env}`,
    );
    deps.io.out(`  rule ${escapeUntrusted(answer.rule)}: ${escapeUntrusted(answer.message)}`);
  }
  return answer.decision === 'deny' ? 4 : 0;
}

/** Parses explain flags. */
export function parseExplain(parsed: ParsedArgs) {
  const user = stringFlag(parsed, 'user');
  const tenant = stringFlag(parsed, 'tenant');
  const groups = stringFlag(parsed, 'groups');
  if ((!user && groups === undefined) || !tenant)
    throw new UsageError(
      `imp policy explain needs --tenant and --user (or --groups).\nUsage: ${explainSpec.usage}`,
    );
  if (user && groups !== undefined) throw new UsageError('Give --user or --groups, not both.');
  return {
    user,
    groups,
    tenant,
    env: stringFlag(parsed, 'env') ?? 'prod',
    scope: stringFlag(parsed, 'scope') ?? 'read',
    broker: stringFlag(parsed, 'broker'),
    json: boolFlag(parsed, 'json'),
  };
}
