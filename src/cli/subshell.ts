/**
 * How the session subshell is launched so its prompt shows the session, e.g.
 * `[imp acme/prod RO 29m] $`. bash and zsh get a wrapper rc file that sources the user's own and
 * then prefixes the prompt with a live time-left; other shells get a static PS1.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { SessionView } from '../core/api.js';

/** What to run, with which environment, and what to clean up afterwards. */
export interface ShellLaunch {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cleanup(): void;
}

/** The short label of a session: `acme/prod RO` or `acme/prod RW`. */
export function sessionLabel(
  session: Pick<SessionView, 'tenant' | 'environment' | 'scope' | 'mode'>,
): string {
  return `${session.tenant}/${session.environment} ${session.scope === 'write' ? 'RW' : 'RO'}${session.mode === 'break_glass' ? ' BREAK-GLASS' : ''}`;
}

/** The environment every process inside a session sees. */
export function sessionEnv(
  base: NodeJS.ProcessEnv,
  session: SessionView,
  brokerUrl: string,
): NodeJS.ProcessEnv {
  return {
    ...base,
    IMP_SESSION_ID: session.id,
    IMP_TENANT: session.tenant,
    IMP_ENV: session.environment,
    IMP_SCOPE: session.scope,
    IMP_MODE: session.mode,
    IMP_EXPIRES_AT: session.expires_at ?? '',
    IMP_BROKER_URL: brokerUrl,
  };
}

// Tenant and environment ids are [a-z0-9-] (checked by the broker), so they are safe inside a prompt.
const LEFT_FUNCTION = `__imp_left() { __l=$(( IMP_EXPIRES_EPOCH - $(date +%s) )); [ "$__l" -lt 0 ] && __l=0; if [ "$__l" -lt 60 ]; then printf '%ss' "$__l"; else printf '%sm' $(( __l / 60 )); fi; }`;

/** Prepares the user's shell ($SHELL, else /bin/sh) for a session. */
export function prepareShell(env: NodeJS.ProcessEnv, session: SessionView): ShellLaunch {
  const shell = env.SHELL?.startsWith('/') ? env.SHELL : '/bin/sh';
  const label = sessionLabel(session);
  const expiresEpoch = String(Math.floor(Date.parse(session.expires_at ?? '') / 1000));
  const shellEnv: NodeJS.ProcessEnv = { ...env, IMP_EXPIRES_EPOCH: expiresEpoch };
  const name = basename(shell);
  if (name === 'bash' || name === 'zsh') {
    const dir = mkdtempSync(join(tmpdir(), 'imp-shell-'));
    const cleanup = () => rmSync(dir, { recursive: true, force: true });
    if (name === 'bash') {
      const rc = join(dir, 'bashrc');
      writeFileSync(
        rc,
        [
          `[ -f "$HOME/.bashrc" ] && . "$HOME/.bashrc"`,
          LEFT_FUNCTION,
          `PS1="[imp ${label} \\$(__imp_left)] \${PS1:-\\\\s-\\\\v\\\\$ }"`,
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      return { command: shell, args: ['--rcfile', rc, '-i'], env: shellEnv, cleanup };
    }
    writeFileSync(
      join(dir, '.zshrc'),
      [
        `[ -f "$HOME/.zshrc" ] && ZDOTDIR="$HOME" . "$HOME/.zshrc"`,
        'setopt PROMPT_SUBST',
        LEFT_FUNCTION,
        `PROMPT="[imp ${label} \\$(__imp_left)] \${PROMPT:-%# }"`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    return { command: shell, args: ['-i'], env: { ...shellEnv, ZDOTDIR: dir }, cleanup };
  }
  return {
    command: shell,
    args: ['-i'],
    env: { ...shellEnv, PS1: `[imp ${label}] ${env.PS1 ?? '$ '}` },
    cleanup: () => {},
  };
}
