/** Help text, built from the registry (root) and a command's spec (per command). */
import {
  COMMAND_GROUPS,
  type CommandGroup,
  type CommandSpec,
  type FlagSpec,
  GLOBAL_FLAGS,
} from './command-spec.js';
import type { CommandEntry } from './registry.js';

const GROUP_TITLES: Record<CommandGroup, string> = {
  auth: 'Login',
  session: 'Sessions',
  approvals: 'Approvals',
  'break-glass': 'Break-glass',
  audit: 'Audit',
  admin: 'Admin',
};

/** `imp --help`: commands grouped, global flags, where to read more. */
export function rootHelp(commands: readonly CommandEntry[]): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  const lines = ['imp — act as a customer tenant, under control', '', 'Usage: imp <command> [flags]', ''];
  for (const group of COMMAND_GROUPS) {
    const inGroup = commands.filter((c) => c.group === group && !c.hidden);
    if (inGroup.length === 0) continue;
    lines.push(`${GROUP_TITLES[group]}:`);
    for (const c of inGroup) lines.push(`  ${c.name.padEnd(width)}${c.summary}`);
    lines.push('');
  }
  lines.push(
    'Flags:',
    ...flagLines([...GLOBAL_FLAGS, { name: 'version', description: 'Print the version' }]),
    '',
  );
  lines.push(
    'Examples:',
    '  imp login',
    '  imp start --tenant acme --ticket SUP-123 --reason "Customer cannot see invoices"',
    '',
  );
  lines.push(
    'Run "imp <command> --help" for a command\'s flags. Exit codes: 0 ok, 1 error, 2 usage, 3 auth, 4 denied, 5 timeout, 6 session over, 130 interrupted.',
  );
  return lines.join('\n');
}

/** `imp <command> --help`. */
export function commandHelp(spec: CommandSpec): string {
  const lines = [spec.summary, '', `Usage: ${spec.usage}`, ''];
  if (spec.args?.length) {
    lines.push('Arguments:');
    for (const arg of spec.args) lines.push(`  ${arg.name.padEnd(24)}${arg.description ?? ''}`);
    lines.push('');
  }
  if (spec.flags.length) lines.push('Flags:', ...flagLines(spec.flags), '');
  lines.push('Global flags:', ...flagLines(GLOBAL_FLAGS), '');
  if (spec.examples.length) lines.push('Examples:', ...spec.examples.map((e) => `  ${e}`));
  return lines.join('\n');
}

function flagLines(flags: readonly FlagSpec[]): string[] {
  return flags.map((flag) => {
    const left = `${flag.short ? `-${flag.short}, ` : '    '}--${flag.name}${flag.value ? ` ${flag.value}` : ''}`;
    return `  ${left.padEnd(28)}${flag.description}`;
  });
}

/** `imp broker --help`: the subcommands under a first word that is not itself a command. */
export function familyHelp(family: string, commands: readonly CommandEntry[]): string {
  const members = commands.filter((c) => !c.hidden && c.name.startsWith(`${family} `));
  const width = Math.max(...members.map((c) => c.name.length)) + 2;
  return [
    `Usage: imp ${family} <command> [flags]`,
    '',
    'Commands:',
    ...members.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    `Run "imp ${family} <command> --help" for a command's flags.`,
  ].join('\n');
}
