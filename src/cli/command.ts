/**
 * What a command module looks like (after gh's pkg/cmd/*): a cheap spec, a `parse` that turns argv
 * into typed options or throws a UsageError, and `run(options, deps)` that touches the world only
 * through deps.
 */
import { Command, CommanderError, Option } from 'commander';
import { UsageError } from '../core/errors.js';
import { nearest } from '../core/suggest.js';
import type { Deps } from './deps.js';

/** Help groups, in the order `imp --help` lists them. */
export const COMMAND_GROUPS = ['auth', 'session', 'approvals', 'break-glass', 'audit', 'admin'] as const;
/** One of {@link COMMAND_GROUPS}. */
export type CommandGroup = (typeof COMMAND_GROUPS)[number];

/** One flag of a command. */
export interface FlagSpec {
  /** Long name without dashes: `tenant`, `no-browser`. */
  name: string;
  short?: string;
  /** Placeholder when the flag takes a value: `<id>`. */
  value?: string;
  description: string;
  /** May be given several times (collected into an array). */
  repeatable?: boolean;
  /** Fixed set of values, offered by completions and checked by parse. */
  choices?: readonly string[];
  /** Where shell completion finds values for this flag. */
  complete?: CompletionSource;
}

/** Dynamic completion sources (`imp __complete <source>`), or file names. */
export type CompletionSource = 'tenants' | 'environments' | 'sessions' | 'requests' | 'files';

/** A positional argument. */
export interface ArgSpec {
  name: string;
  required: boolean;
  variadic?: boolean;
  description?: string;
  complete?: CompletionSource;
}

/** Everything help and completions need to know about a command, without running it. */
export interface CommandSpec {
  /** Words after `imp`: `login`, `audit verify`. */
  name: string;
  summary: string;
  usage: string;
  group: CommandGroup;
  flags: FlagSpec[];
  args?: ArgSpec[];
  examples: string[];
  /** Everything after `--` is passed through untouched (imp exec). */
  passThrough?: boolean;
}

/** The flags every command accepts. */
export const GLOBAL_FLAGS: FlagSpec[] = [
  { name: 'json', description: 'Machine-readable JSON on stdout' },
  { name: 'no-input', description: 'Never prompt; missing values are usage errors' },
  { name: 'no-color', description: 'No colour or decoration' },
  { name: 'help', short: 'h', description: 'Show help for this command' },
];

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

/** Parses argv against a spec with commander; any problem is a UsageError naming the nearest flag. */
export function parseArgv(spec: CommandSpec, argv: readonly string[]): ParsedArgs {
  const dashDash = spec.passThrough ? argv.indexOf('--') : -1;
  const own = dashDash >= 0 ? argv.slice(0, dashDash) : argv;
  const rest = dashDash >= 0 ? argv.slice(dashDash + 1) : [];
  const program = new Command(`imp ${spec.name}`)
    .exitOverride()
    .helpOption(false)
    .allowExcessArguments(false)
    .configureOutput({ writeOut: () => {}, writeErr: () => {} });
  const flags = [...spec.flags, ...GLOBAL_FLAGS];
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
  if (error instanceof CommanderError) {
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
