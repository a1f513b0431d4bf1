/** `imp broker serve`: the broker alone, against a real IdP, with the same code as the dev stack. */

import { startBroker } from '../../broker/start.js';
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../../cli/command.js';
import type { Deps } from '../../cli/deps.js';
import { UsageError } from '../../core/errors.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'broker serve',
  group: 'admin',
  summary: 'Run the broker against a real identity provider',
  usage:
    'imp broker serve --config <policy.yaml> [--state-dir <dir>] [--port <n>] [--host <addr>] [--public-url <url>]',
  flags: [
    { name: 'config', value: '<file>', description: 'Policy file (YAML)', complete: 'files' },
    { name: 'state-dir', value: '<dir>', description: 'SQLite file and signing keys (default ./imp-state)' },
    { name: 'port', value: '<n>', description: 'Port to listen on (default 7700)' },
    { name: 'host', value: '<addr>', description: 'Address to bind (default 127.0.0.1; put TLS in front)' },
    {
      name: 'public-url',
      value: '<url>',
      description: 'The URL clients use; the issuer of tokens (default http://host:port)',
    },
  ],
  examples: [
    'imp broker serve --config broker.yaml --state-dir /var/lib/imp --public-url https://imp.example.com',
  ],
};

/** Typed options. */
export interface BrokerServeOptions {
  config: string;
  stateDir: string;
  port: number;
  host: string;
  publicUrl: string | undefined;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): BrokerServeOptions {
  const config = stringFlag(parsed, 'config');
  if (!config) throw new UsageError('imp broker serve needs --config <policy.yaml>.');
  const portText = stringFlag(parsed, 'port') ?? '7700';
  if (!/^\d+$/.test(portText) || Number(portText) > 65535)
    throw new UsageError(`--port must be a port number, not "${portText}".`);
  return {
    config,
    stateDir: stringFlag(parsed, 'state-dir') ?? 'imp-state',
    port: Number(portText),
    host: stringFlag(parsed, 'host') ?? '127.0.0.1',
    publicUrl: stringFlag(parsed, 'public-url'),
    json: boolFlag(parsed, 'json'),
  };
}

/** Serves until SIGINT/SIGTERM, then closes cleanly. */
export async function run(options: BrokerServeOptions, deps: Deps): Promise<number> {
  const broker = await startBroker({
    policy: { file: options.config },
    stateDir: options.stateDir,
    port: options.port,
    host: options.host,
    ...(options.publicUrl ? { publicUrl: options.publicUrl } : {}),
    clock: deps.clock,
    log: (level, message, fields) => deps.io.err(JSON.stringify({ level, message, ...fields })),
  });
  if (options.json) deps.io.out(JSON.stringify({ broker: broker.url }));
  else deps.io.err(`imp broker listening on ${broker.url} (policy ${options.config})`);
  await new Promise<void>((resolve) =>
    deps.interrupt.addEventListener('abort', () => resolve(), { once: true }),
  );
  await broker.close();
  return 0;
}
