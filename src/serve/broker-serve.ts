/** `imp broker serve`: the broker alone, against a real IdP, with the same code as the dev stack. */

import { migrateStore, startBroker } from '../broker/start.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../cli/command.js';
import type { Deps } from '../cli/deps.js';
import { UsageError } from '../core/errors.js';
import { storeUrlProblem } from '../core/policy/validate.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'broker serve',
  group: 'admin',
  summary: 'Run the broker against a real identity provider',
  usage:
    'imp broker serve --config <policy.yaml> [--store <postgres-url>] [--state-dir <dir>] [--port <n>] [--host <addr>] [--public-url <url>] [--audit-key <file|pkcs11:uri>] [--migrate-only]',
  flags: [
    { name: 'config', value: '<file>', description: 'Policy file (YAML)', complete: 'files' },
    {
      name: 'store',
      value: '<url>',
      description:
        'PostgreSQL shared by broker replicas, postgres://user@host/db?sslmode=verify-full (default: SQLite in --state-dir; also IMP_STORE or store: in the policy)',
    },
    { name: 'state-dir', value: '<dir>', description: 'SQLite file and signing keys (default ./imp-state)' },
    { name: 'port', value: '<n>', description: 'Port to listen on (default 7700)' },
    { name: 'host', value: '<addr>', description: 'Address to bind (default 127.0.0.1; put TLS in front)' },
    {
      name: 'public-url',
      value: '<url>',
      description: 'The URL clients use; the issuer of tokens (default http://host:port)',
    },
    {
      name: 'audit-key',
      value: '<file|pkcs11:uri>',
      description:
        'Key that signs audit checkpoints: a PRIVATE+KEY note key file outside --state-dir, or an Ed25519 key in an HSM as an RFC 7512 pkcs11: URI (default: derived from the audit key)',
      complete: 'files',
    },
    {
      name: 'migrate-only',
      description: 'Bring the PostgreSQL schema up to date, then exit (run as the schema owner)',
    },
  ],
  examples: [
    'imp broker serve --config broker.yaml --state-dir /var/lib/imp --public-url https://imp.example.com',
    'imp broker serve --config broker.yaml --store postgres://imp_broker@db.internal/imp?sslmode=verify-full --host 0.0.0.0',
    'imp broker serve --migrate-only --store postgres://imp_owner@db.internal/imp?sslmode=verify-full',
  ],
};

/** Typed options. */
export interface BrokerServeOptions {
  /** Absent only with --migrate-only and a store named elsewhere. */
  config: string | undefined;
  store: string | undefined;
  migrateOnly: boolean;
  stateDir: string;
  port: number;
  host: string;
  publicUrl: string | undefined;
  auditKey: string | undefined;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): BrokerServeOptions {
  const config = stringFlag(parsed, 'config');
  const migrateOnly = boolFlag(parsed, 'migrate-only');
  const store = stringFlag(parsed, 'store');
  if (!config && !migrateOnly) throw new UsageError('imp broker serve needs --config <policy.yaml>.');
  const storeProblem = store === undefined || store === 'sqlite' ? null : storeUrlProblem(store);
  if (storeProblem) throw new UsageError(`--store ${storeProblem}.`);
  const portText = stringFlag(parsed, 'port') ?? '7700';
  if (!/^\d+$/.test(portText) || Number(portText) > 65535)
    throw new UsageError(`--port must be a port number, not "${portText}".`);
  return {
    config,
    store: store === 'sqlite' ? undefined : store,
    migrateOnly,
    stateDir: stringFlag(parsed, 'state-dir') ?? 'imp-state',
    port: Number(portText),
    host: stringFlag(parsed, 'host') ?? '127.0.0.1',
    publicUrl: stringFlag(parsed, 'public-url'),
    auditKey: stringFlag(parsed, 'audit-key'),
    json: boolFlag(parsed, 'json'),
  };
}

/** Serves until SIGINT/SIGTERM, then closes cleanly. */
export async function run(options: BrokerServeOptions, deps: Deps): Promise<number> {
  // Flag, then environment (where a URL may carry a password), then the policy's `store:`.
  const storeUrl = options.store ?? (deps.env.IMP_STORE || undefined);
  if (options.migrateOnly) {
    const { from, to } = await migrateStore({
      ...(storeUrl ? { storeUrl } : {}),
      ...(options.config ? { policy: { file: options.config } } : {}),
      env: deps.env,
    });
    if (options.json) deps.io.out(JSON.stringify({ schema: { from, to } }));
    else
      deps.io.out(
        from === to ? `schema is current (version ${to})` : `schema migrated from version ${from} to ${to}`,
      );
    return 0;
  }
  const broker = await startBroker({
    policy: { file: options.config! },
    stateDir: options.stateDir,
    ...(storeUrl ? { storeUrl } : {}),
    env: deps.env,
    port: options.port,
    host: options.host,
    ...(options.publicUrl ? { publicUrl: options.publicUrl } : {}),
    ...(options.auditKey ? { auditKey: options.auditKey } : {}),
    clock: deps.clock,
    log: (level, message, fields) => deps.io.err(JSON.stringify({ level, message, ...fields })),
  });
  const note = broker.deps.auditNote!;
  if (options.json)
    deps.io.out(JSON.stringify({ broker: broker.url, audit: { origin: note.origin, key: note.vkey } }));
  else
    deps.io.err(
      `imp broker listening on ${broker.url} (policy ${options.config}, ${broker.deps.store.engine} store)\naudit log ${note.origin}, checkpoint key ${note.vkey} (${note.where})`,
    );
  await new Promise<void>((resolve) =>
    deps.interrupt.addEventListener('abort', () => resolve(), { once: true }),
  );
  await broker.close();
  return 0;
}
