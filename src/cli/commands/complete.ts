/**
 * `imp __complete <source> [--tenant T]`: values for shell completion, one per line. Never
 * prompts, never logs in, never fails loudly, and gives up after ~200 ms (`IMP_COMPLETE_BUDGET_MS`
 * for a slow link to the broker): a TAB press must not hang. Tenants and environments are cached for
 * 5 minutes in $XDG_STATE_HOME/imp/cache/tenants.json.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BrokerClient } from '../../client/broker-client.js';
import { loadConfig, resolveBrokerUrl } from '../../client/config.js';
import { readLogin } from '../../client/login-state.js';
import { type CommandSpec, type ParsedArgs, stringFlag } from '../command.js';
import type { Deps } from '../deps.js';

const SOURCES = ['tenants', 'environments', 'sessions', 'requests'] as const;
type Source = (typeof SOURCES)[number];
const CACHE_MS = 5 * 60 * 1000;
const DEFAULT_BUDGET_MS = 200;
const MAX_BUDGET_MS = 10_000;

/** How long a TAB press may wait for the broker: `IMP_COMPLETE_BUDGET_MS` (1–10000), else 200 ms. */
export function completionBudgetMs(env: Readonly<Record<string, string | undefined>>): number {
  const value = Number(env.IMP_COMPLETE_BUDGET_MS);
  return Number.isInteger(value) && value >= 1 ? Math.min(value, MAX_BUDGET_MS) : DEFAULT_BUDGET_MS;
}

/** Help (hidden from `imp --help`). */
export const spec: CommandSpec = {
  name: '__complete',
  group: 'admin',
  summary: 'Values for shell completion',
  usage: 'imp __complete tenants|environments|sessions|requests [--tenant <id>]',
  args: [{ name: 'source', required: true }],
  flags: [{ name: 'tenant', value: '<id>', description: 'Tenant (for environments)' }],
  examples: ['imp __complete tenants'],
};

/** What to list. */
export interface CompleteOptions {
  source: Source | null;
  tenant: string | undefined;
}

/** argv → options (an unknown source lists nothing rather than failing inside a completion). */
export function parse(parsed: ParsedArgs): CompleteOptions {
  const source = SOURCES.find((s) => s === parsed.args[0]) ?? null;
  return { source, tenant: stringFlag(parsed, 'tenant') };
}

interface TenantCache {
  broker: string;
  at: number;
  tenants: { id: string; environments: string[] }[];
}

/** Prints the values; always exits 0. */
export async function run(
  options: CompleteOptions,
  deps: Pick<Deps, 'io' | 'env' | 'paths' | 'fetch' | 'credentials' | 'clock'>,
): Promise<number> {
  try {
    if (!options.source) return 0;
    const broker = resolveBrokerUrl(undefined, deps.env, await loadConfig(deps.paths.configFile));
    const values = await Promise.race([
      list(options, deps, broker),
      new Promise<string[]>((resolve) =>
        deps.clock.after(completionBudgetMs(deps.env), () => resolve([]), { unref: true }),
      ),
    ]);
    for (const value of values) if (/^[A-Za-z0-9._:-]+$/.test(value)) deps.io.out(value);
  } catch {
    // Completion must never print errors into someone's command line.
  }
  return 0;
}

async function list(
  options: CompleteOptions,
  deps: Pick<Deps, 'env' | 'paths' | 'fetch' | 'credentials' | 'clock'>,
  broker: string,
): Promise<string[]> {
  const source = options.source!;
  if (source === 'tenants' || source === 'environments') {
    const tenants = await tenantsFor(deps, broker);
    if (source === 'tenants') return tenants.map((t) => t.id);
    const chosen = tenants.filter((t) => !options.tenant || t.id === options.tenant);
    return [...new Set(chosen.flatMap((t) => t.environments))];
  }
  const login = await readLogin(await deps.credentials(), broker);
  if (!login) return [];
  const client = new BrokerClient(broker, withTimeout(deps.fetch, completionBudgetMs(deps.env)));
  const sessions =
    source === 'sessions'
      ? await client.listSessions(login.token, ['active', 'pending'])
      : await client.listRequests(login.token);
  return sessions.map((s) => s.id);
}

async function tenantsFor(
  deps: Pick<Deps, 'env' | 'paths' | 'fetch' | 'credentials' | 'clock'>,
  broker: string,
): Promise<TenantCache['tenants']> {
  const file = join(deps.paths.cacheDir, 'tenants.json');
  try {
    const cache = JSON.parse(await readFile(file, 'utf8')) as TenantCache;
    if (cache.broker === broker && deps.clock.now() - cache.at < CACHE_MS) return cache.tenants;
  } catch {
    // no cache yet
  }
  const login = await readLogin(await deps.credentials(), broker);
  if (!login) return [];
  const tenants = (
    await new BrokerClient(broker, withTimeout(deps.fetch, completionBudgetMs(deps.env))).tenants(login.token)
  ).map((t) => ({
    id: t.id,
    environments: t.environments,
  }));
  await mkdir(deps.paths.cacheDir, { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, JSON.stringify({ broker, at: deps.clock.now(), tenants } satisfies TenantCache), {
    mode: 0o600,
  });
  await rename(temp, file);
  return tenants;
}

function withTimeout(fetchImpl: typeof fetch, budgetMs: number): typeof fetch {
  return (input, init) => fetchImpl(input, { ...init, signal: AbortSignal.timeout(budgetMs) });
}
