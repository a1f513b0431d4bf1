/**
 * The shape of a command's spec, and the flags every command takes: all that help text and shell
 * completion need. Kept apart from argv parsing (command.ts) so that `imp --help` loads neither
 * commander nor the error machinery.
 */

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
  {
    name: 'profile',
    value: '<name>',
    description: 'Use this profile’s broker, login and config (or IMP_PROFILE)',
  },
  { name: 'help', short: 'h', description: 'Show help for this command' },
];
