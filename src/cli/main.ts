/**
 * `main(argv, deps)`: find the command, parse, run, and map any error to an exit code in one place.
 * Commands never call process.exit; bin/imp.js sets process.exitCode from the returned number.
 */

import { parseProfileName, withProfile } from '../client/paths.js';
import { ImpError, toImpError, UsageError } from '../core/errors.js';
import { escapeUntrusted } from '../core/escape.js';
import { nearest } from '../core/suggest.js';
import { parseArgv } from './command.js';
import type { Deps } from './deps.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { colorEnabled } from './io.js';
import { COMMANDS, findCommand } from './registry.js';

/** Runs imp with argv (without node and script) and returns the exit code. */
export async function main(args: readonly string[], deps: Deps, version: string): Promise<number> {
  let argv = args;
  const json = argv.includes('--json');
  let stdoutIsTheChilds = false;
  try {
    // `imp --profile work login`: a profile given before the command, as gh and gcloud take it.
    const lead = leadingProfile(argv);
    argv = lead.argv;
    if (lead.profile !== undefined) selectProfile(deps, lead.profile);
    else if (deps.env.IMP_PROFILE) selectProfile(deps, deps.env.IMP_PROFILE, 'IMP_PROFILE');
    if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
      const target = argv[0] === 'help' ? findCommand(argv.slice(1)) : undefined;
      const { commandHelp, rootHelp } = await loadHelp();
      if (target) {
        deps.io.out(commandHelp((await target.entry.load()).spec));
      } else {
        deps.io.out(rootHelp(COMMANDS));
      }
      return argv.length === 0 ? EXIT.usage : EXIT.ok;
    }
    if (argv[0] === '--version' || argv[0] === '-v' || argv[0] === 'version') {
      deps.io.out(json ? JSON.stringify({ version }) : `imp ${version}`);
      return EXIT.ok;
    }
    const found = findCommand(argv);
    if (!found && isFamily(argv[0])) {
      // `imp broker` / `imp audit --help`: list the family's commands (bare, it is still a usage error).
      const help = (await loadHelp()).familyHelp(argv[0]!, COMMANDS);
      const asked = argv[1] === '--help' || argv[1] === '-h';
      if (asked) deps.io.out(help);
      else if (argv.length === 1) deps.io.err(help);
      else throw unknownCommand(argv);
      return asked ? EXIT.ok : EXIT.usage;
    }
    if (!found) throw unknownCommand(argv);
    const module = await found.entry.load();
    // A command that runs another program (exec) leaves stdout to it and reports its own error event.
    stdoutIsTheChilds = module.spec.passThrough === true;
    if (found.rest.includes('--help') || found.rest.includes('-h')) {
      const dashDash = found.rest.indexOf('--');
      const helpAt = Math.max(found.rest.indexOf('--help'), found.rest.indexOf('-h'));
      if (dashDash < 0 || helpAt < dashDash) {
        deps.io.out((await loadHelp()).commandHelp(module.spec));
        return EXIT.ok;
      }
    }
    const parsed = parseArgv(module.spec, found.rest);
    const profile = parsed.flags.profile;
    if (typeof profile === 'string') selectProfile(deps, profile);
    if (parsed.flags['no-input'] === true) deps.io.noInput = true;
    if (parsed.flags['no-color'] === true) deps.io.color = false;
    else deps.io.color = deps.io.color && colorEnabled(deps.env, deps.io.stderrIsTTY, false);
    const options = module.parse(parsed);
    return (await module.run(options, deps)) ?? EXIT.ok;
  } catch (error) {
    return report(error, deps, json && !stdoutIsTheChilds);
  }
}

function leadingProfile(argv: readonly string[]): { argv: readonly string[]; profile?: string } {
  if (argv[0] === '--profile') {
    if (argv[1] === undefined) throw new UsageError('--profile needs a name, e.g. imp --profile work login.');
    return { argv: argv.slice(2), profile: argv[1] };
  }
  if (argv[0]?.startsWith('--profile=')) return { argv: argv.slice(1), profile: argv[0].slice(10) };
  return { argv };
}

// Switches paths (config, credential file) to the profile and exports it to child processes, so
// `imp api` inside a session shell opened with --profile uses the same login.
function selectProfile(deps: Deps, name: string, where = '--profile'): void {
  const profile = parseProfileName(name, where);
  deps.paths = withProfile(deps.paths, profile);
  deps.env = profile ? { ...deps.env, IMP_PROFILE: profile } : { ...deps.env, IMP_PROFILE: undefined };
}

// Help text is built only when asked for: every other run (a shell prompt's `imp prompt`) skips it.
function loadHelp(): Promise<typeof import('./help.js')> {
  return import('./help.js');
}

// A first word shared by several commands that is not a command itself (broker, audit, policy).
function isFamily(word: string | undefined): boolean {
  return (
    word !== undefined &&
    !COMMANDS.some((c) => c.name === word) &&
    COMMANDS.some((c) => !c.hidden && c.name.startsWith(`${word} `))
  );
}

function unknownCommand(argv: readonly string[]): UsageError {
  const words = argv.filter((word) => !word.startsWith('-'));
  const typed = words.slice(0, 2).join(' ');
  const names = COMMANDS.map((c) => c.name);
  const firstWords = [...new Set(names.map((n) => n.split(' ')[0]!))];
  const guess =
    (words[0] && firstWords.includes(words[0]) ? nearest(typed, names) : undefined) ??
    nearest(words[0] ?? '', firstWords);
  const shown = escapeUntrusted(words[0] ?? argv[0] ?? '');
  return new UsageError(
    `Unknown command "${shown}".${guess ? ` Did you mean "imp ${guess}"?` : ''} Run "imp --help" for the list.`,
  );
}

function report(error: unknown, deps: Deps, json: boolean): number {
  const impError = toImpError(error);
  const code = exitCodeFor(impError.code);
  if (json) {
    deps.io.out(
      JSON.stringify({
        event: 'error',
        error: { code: impError.code, message: impError.message, details: impError.details },
      }),
    );
  }
  // Withdrawing with Ctrl-C is what the user asked for, not a failure: no `error:` prefix.
  if (impError.code === 'IMP_INTERRUPTED') deps.io.err(escapeMultiline(impError.message));
  else {
    const unexpected = !(impError instanceof ImpError) || impError.code === 'IMP_INTERNAL';
    const hint = unexpected && !deps.env.IMP_DEBUG ? ' (unexpected; IMP_DEBUG=1 shows where)' : '';
    deps.io.err(`error: ${escapeMultiline(impError.message)}${hint}`);
  }
  if (impError.code === 'IMP_INTERNAL' && deps.env.IMP_DEBUG && impError.cause instanceof Error) {
    deps.io.err(escapeMultiline(impError.cause.stack ?? ''));
  }
  return code;
}

// Messages may carry server text: escape controls but keep our own line breaks.
function escapeMultiline(text: string): string {
  return text
    .split('\n')
    .map((line) => escapeUntrusted(line))
    .join('\n');
}
