/**
 * `imp witness serve`: run a witness for imp audit logs (see src/witness/server.ts). Another team
 * runs it, with its own key file and state file; brokers list its URL and key under
 * `audit.witnesses`, verifiers pass them to `imp audit verify --witness … --witness-key …`.
 */
import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../cli/command.js';
import type { Deps } from '../cli/deps.js';
import { UsageError } from '../core/errors.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'witness serve',
  group: 'admin',
  summary: 'Run a witness that cosigns audit checkpoints (C2SP tlog-witness)',
  usage:
    'imp witness serve --log <vkey>… --key <file> --state <file> [--name <name>] [--port <n>] [--host <addr>] [--json]',
  flags: [
    {
      name: 'log',
      value: '<vkey>',
      description: "A log to witness: the broker's checkpoint key (repeatable)",
      repeatable: true,
    },
    {
      name: 'key',
      value: '<file>',
      description: "The witness's private key (created if missing, mode 0600)",
      complete: 'files',
    },
    {
      name: 'state',
      value: '<file>',
      description: 'Where the latest cosigned checkpoint per log is kept',
      complete: 'files',
    },
    {
      name: 'name',
      value: '<name>',
      description: 'Key name for a new key (default witness.imp.local/<random>)',
    },
    { name: 'port', value: '<n>', description: 'Port to listen on (default 7710; 0 = any free port)' },
    { name: 'host', value: '<addr>', description: 'Address to bind (default 127.0.0.1)' },
  ],
  examples: [
    'imp witness serve --log "imp/4f…+1a2b3c4d+AR…" --key /etc/imp-witness/key --state /var/lib/imp-witness/state.json',
  ],
};

/** Typed options. */
export interface WitnessServeOptions {
  logs: string[];
  key: string;
  state: string;
  name: string | undefined;
  port: number;
  host: string;
  json: boolean;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): WitnessServeOptions {
  const logs = (parsed.flags.log as string[] | undefined) ?? [];
  const key = stringFlag(parsed, 'key');
  const state = stringFlag(parsed, 'state');
  if (logs.length === 0)
    throw new UsageError('imp witness serve needs at least one --log <vkey> to witness.');
  if (!key || !state) throw new UsageError('imp witness serve needs --key <file> and --state <file>.');
  const portText = stringFlag(parsed, 'port') ?? '7710';
  if (!/^\d+$/.test(portText) || Number(portText) > 65535)
    throw new UsageError(`--port must be a port number, not "${portText}".`);
  return {
    logs,
    key,
    state,
    name: stringFlag(parsed, 'name'),
    port: Number(portText),
    host: stringFlag(parsed, 'host') ?? '127.0.0.1',
    json: boolFlag(parsed, 'json'),
  };
}

/** Serves until interrupted. */
export async function run(options: WitnessServeOptions, deps: Deps): Promise<number> {
  const { startWitness, loadOrCreateKey } = await import('../witness/server.js');
  const witness = await startWitness({
    key: await loadOrCreateKey(options.key, options.name),
    logs: options.logs,
    stateFile: options.state,
    now: () => deps.clock.now(),
    port: options.port,
    host: options.host,
    log: (message, fields) => deps.io.err(JSON.stringify({ level: 'warn', message, ...fields })),
  });
  if (options.json) deps.io.out(JSON.stringify({ witness: { url: witness.url, key: witness.vkey } }));
  else deps.io.err(`imp witness listening on ${witness.url}\nwitness key ${witness.vkey}`);
  await new Promise<void>((resolve) =>
    deps.interrupt.addEventListener('abort', () => resolve(), { once: true }),
  );
  await witness.close();
  return 0;
}
