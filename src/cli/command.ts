/**
 * What a command module looks like (after gh's pkg/cmd/*): a cheap spec, a `parse` that turns argv
 * into typed options or throws a UsageError, and `run(options, deps)` that touches the world only
 * through deps.
 */
import { createRequire } from 'node:module';
import type * as Commander from 'commander';
import { UsageError } from '../core/errors.js';
import { nearest } from '../core/suggest.js';
import { type CommandSpec, GLOBAL_FLAGS } from './command-spec.js';
import type { Deps } from './deps.js';

export {
  type ArgSpec,
  COMMAND_GROUPS,
  type CommandGroup,
  type CommandSpec,
  type CompletionSource,
  type FlagSpec,
  GLOBAL_FLAGS,
} from './command-spec.js';

/** Parsed flags and positionals, before a command turns them into its options. */
export interface ParsedArgs {
  flags: Record<string, string | boolean | string[] | undefined>;
  args: string[];
  /** Words after `--` when the spec has passThrough. */
  rest: string[];
}

/** A loaded command. */
export interface CommandModule<Options = unknown> {
  spec: CommandSpec;
  parse(parsed: ParsedArgs): Options;
  run(options: Options, deps: Deps): Promise<number | undefined>;
}

// commander is loaded on first use: it is a third of what `imp --version` would otherwise spend
// starting, and `imp prompt` (run for every shell prompt) needs it only when given arguments.
let commander: typeof Commander | undefined;
function loadCommander(): typeof Commander {
  commander ??= createRequire(import.meta.url)('commander') as typeof Commander;
  return commander;
}

/** Parses argv against a spec with commander; any problem is a UsageError naming the nearest flag. */
export function parseArgv(spec: CommandSpec, argv: readonly string[]): ParsedArgs {
  const dashDash = spec.passThrough ? argv.indexOf('--') : -1;
  const own = dashDash >= 0 ? argv.slice(0, dashDash) : argv;
  const rest = dashDash >= 0 ? argv.slice(dashDash + 1) : [];
  const flags = [...spec.flags, ...GLOBAL_FLAGS];
  // Nothing to parse and nothing required: exactly what commander would return, without loading it.
  if (own.length === 0 && !(spec.args ?? []).some((arg) => arg.required))
    return { flags: Object.fromEntries(flags.map((flag) => [flag.name, undefined])), args: [], rest };
  const { Command, Option } = loadCommander();
  const program = new Command(`imp ${spec.name}`)
    .exitOverride()
    .helpOption(false)
    .allowExcessArguments(false)
    .configureOutput({ writeOut: () => {}, writeErr: () => {} });
  for (const flag of flags) {
    const long = flag.name.startsWith('no-') && !flag.value ? `--${flag.name}` : `--${flag.name}`;
    const text = `${flag.short ? `-${flag.short}, ` : ''}${long}${flag.value ? ` ${flag.value}` : ''}`;
    const option = new Option(text, flag.description);
    if (flag.choices) option.choices(flag.choices);
    if (flag.repeatable)
      option.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
    program.addOption(option);
  }
  for (const arg of spec.args ?? []) {
    const name = arg.variadic ? `${arg.name}...` : arg.name;
    program.argument(arg.required ? `<${name}>` : `[${name}]`);
  }
  try {
    program.parse([...own], { from: 'user' });
  } catch (error) {
    throw toUsageError(error, spec, own);
  }
  const options = program.opts<Record<string, string | boolean | string[] | undefined>>();
  const flagValues: ParsedArgs['flags'] = {};
  for (const flag of flags) {
    const key = camel(flag.name.startsWith('no-') ? flag.name.slice(3) : flag.name);
    const value = options[key];
    // commander turns `--no-x` into x=false; we keep the flag's own name as given in the spec.
    flagValues[flag.name] = flag.name.startsWith('no-') ? (value === false ? true : undefined) : value;
  }
  return { flags: flagValues, args: program.args, rest };
}

function toUsageError(error: unknown, spec: CommandSpec, argv: readonly string[]): UsageError {
  const usage = `Usage: ${spec.usage}`;
  if (error instanceof loadCommander().CommanderError) {
    if (error.code === 'commander.unknownOption') {
      const bad =
        argv.find((word) => word.startsWith('-') && error.message.includes(`'${word.split('=')[0]}'`)) ?? '';
      const flagName = bad.replace(/^-+/, '').split('=')[0] ?? '';
      const names = [...spec.flags, ...GLOBAL_FLAGS].map((flag) => flag.name);
      const guess = nearest(flagName, names);
      return new UsageError(
        `Unknown flag ${bad || 'given'} for imp ${spec.name}.${guess ? ` Did you mean --${guess}?` : ''}\n${usage}`,
      );
    }
    const message = error.message.replace(/^error: /, '');
    return new UsageError(`${capitalise(message)}.\n${usage}`);
  }
  return new UsageError(`${String(error)}\n${usage}`);
}

function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, ch: string) => ch.toUpperCase());
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1).replace(/\.$/, '');
}

/** Reads a string flag. */
export function stringFlag(parsed: ParsedArgs, name: string): string | undefined {
  const value = parsed.flags[name];
  return typeof value === 'string' ? value : undefined;
}

/** Reads a boolean flag. */
export function boolFlag(parsed: ParsedArgs, name: string): boolean {
  return parsed.flags[name] === true;
}
