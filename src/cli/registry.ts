/**
 * The cheap list of commands (changesets-style lazy loading): names, groups and summaries for
 * `imp --help`, and a loader per command so only the command that runs is imported.
 */
import type { CommandGroup, CommandModule } from './command.js';

/** One entry of the command tree. */
export interface CommandEntry {
  name: string;
  group: CommandGroup;
  summary: string;
  load: () => Promise<CommandModule<never>>;
  /** Left out of help and completion (plumbing such as `__complete`). */
  hidden?: boolean;
}

// `never`: each module has its own Options type; main only passes parse()'s result back to run().
const entry = (
  name: string,
  group: CommandGroup,
  summary: string,
  load: () => Promise<unknown>,
): CommandEntry => ({
  name,
  group,
  summary,
  load: load as () => Promise<CommandModule<never>>,
});

/** Every command, in help order within its group. */
// biome-ignore format: a table reads best one command per line
export const COMMANDS: readonly CommandEntry[] = [
  entry('login', 'auth', 'Log in with your identity provider (device flow)', () => import('./commands/login.js')),
  entry('whoami', 'auth', 'Show who is logged in, your roles and login age', () => import('./commands/whoami.js')),
  entry('passkey add', 'auth', 'Enrol a passkey the broker will ask for', () => import('./commands/passkey-add.js')),
  entry('passkey list', 'auth', 'List your passkeys', () => import('./commands/passkey-list.js')),
  entry('passkey remove', 'auth', 'Remove one of your passkeys', () => import('./commands/passkey-remove.js')),
  entry('passkey reset', 'admin', "Reset someone else's passkeys (passkey_reset)", () => import('./commands/passkey-reset.js')),
  entry('logout', 'auth', 'Remove the stored login', () => import('./commands/logout.js')),
  entry('start', 'session', 'Open a session on a tenant and work in it', () => import('./commands/start.js')),
  entry('api', 'session', 'Call the tenant API through the audited proxy', () => import('./commands/api.js')),
  entry('exec', 'session', 'Run a command inside a read-only session', () => import('./commands/exec.js')),
  entry('status', 'session', 'Show your active and pending sessions', () => import('./commands/status.js')),
  entry('end', 'session', 'End a session and print its summary', () => import('./commands/end.js')),
  entry('prompt', 'session', 'Print a session segment for your prompt', () => import('./commands/prompt.js')),
  entry('requests', 'approvals', 'List pending requests you may approve', () => import('./commands/requests.js')),
  entry('approve', 'approvals', 'Approve a pending session request', () => import('./commands/approve.js')),
  entry('deny', 'approvals', 'Deny a pending session request', () => import('./commands/deny.js')),
  entry('break-glass', 'break-glass', 'Emergency write access in an incident; a second person confirms', () => import('./commands/break-glass.js')),
  entry('break-glass confirm', 'break-glass', "Confirm someone else's break-glass request", () => import('./commands/break-glass-confirm.js')),
  entry('break-glass review', 'break-glass', 'Record the review of an ended break-glass session', () => import('./commands/break-glass-review.js')),
  entry('audit list', 'audit', 'List audit events', () => import('./commands/audit-list.js')),
  entry('audit show', 'audit', 'Show one audit event in full', () => import('./commands/audit-show.js')),
  entry('audit export', 'audit', 'Export the audit log (JSONL or CSV)', () => import('./commands/audit-export.js')),
  entry('audit receipt', 'audit', 'Write a receipt proving one event is logged', () => import('./commands/audit-receipt.js')),
  entry('audit verify', 'audit', 'Verify the audit chain and checkpoints', () => import('./commands/audit-verify.js')),
  entry('replay', 'audit', "Play a session's recording, or export it for asciinema", () => import('./commands/replay.js')),
  entry('review', 'audit', 'Access review: sessions, break-glass, denials, unused roles', () => import('./commands/review.js')),
  entry('sessions', 'admin', "List everyone's live sessions (security roles)", () => import('./commands/sessions.js')),
  entry('revoke', 'admin', "Revoke someone's session at once", () => import('./commands/revoke.js')),
  entry('watch', 'admin', "Watch someone's live session; t terminates it", () => import('./commands/watch.js')),
  entry('policy check', 'admin', 'Validate a policy file', () => import('./commands/policy-check.js')),
  entry('policy explain', 'admin', 'Explain a policy decision', () => import('./commands/policy-explain.js')),
  entry('doctor', 'admin', 'Check broker, IdP, keychain, clock and login', () => import('./commands/doctor.js')),
  entry('completion', 'admin', 'Print the shell completion script (bash, zsh, fish)', () => import('./commands/completion.js')),
  entry('dev', 'admin', 'Run the local stack (IdP, broker, tenant API)', () => import('../dev/commands/dev.js')),
  entry('broker serve', 'admin', 'Run the broker against a real IdP', () => import('../serve/broker-serve.js')),
  entry('witness serve', 'admin', 'Run a witness that cosigns audit checkpoints', () => import('../serve/witness-serve.js')),
  entry('broker rotate-keys', 'admin', 'Start a new broker signing key', () => import('../serve/broker-rotate-keys.js')),
  { ...entry('__complete', 'admin', 'Values for shell completion', () => import('./commands/complete.js')), hidden: true },
];

/** Finds the longest command name that prefixes argv (`audit verify` before `audit`). */
export function findCommand(argv: readonly string[]): { entry: CommandEntry; rest: string[] } | undefined {
  let best: { entry: CommandEntry; rest: string[] } | undefined;
  for (const candidate of COMMANDS) {
    const words = candidate.name.split(' ');
    if (
      words.every((word, i) => argv[i] === word) &&
      (!best || words.length > best.entry.name.split(' ').length)
    ) {
      best = { entry: candidate, rest: argv.slice(words.length) };
    }
  }
  return best;
}
