/**
 * Every file imp keeps on a person's machine. The README's "Files on disk" copies this tree.
 *
 *   $XDG_CONFIG_HOME/imp/             (default ~/.config/imp)
 *     config.json                     broker URL remembered by `imp login`
 *     profiles/<name>/config.json     the same for `--profile <name>` / IMP_PROFILE=<name>
 *   $XDG_STATE_HOME/imp/              (default ~/.local/state/imp, mode 0700)
 *     credentials.json                broker tokens when no OS keychain is available (mode 0600)
 *     credential-store.notice         which store the keychain warning was last shown for
 *     cache/tenants.json              tenant ids for shell completion (short-lived)
 *     profiles/<name>/                credentials.json and cache/ of a profile
 *     recordings/<session-id>/        recording chunks not yet delivered to the broker (0700; files
 *       <seq>.cast                    0600, deleted once the broker has them; bounded)
 *
 * A profile's keychain entries are its own too (the account carries the profile name). The
 * broker's own state (SQLite file, signing keys) lives in its --state-dir, not here.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../core/errors.js';

/** Resolved locations for one user and profile. */
export interface Paths {
  /** The profile in use; null for the default one. */
  profile: string | null;
  configDir: string;
  configFile: string;
  /** `$XDG_STATE_HOME/imp`, shared by every profile. */
  rootStateDir: string;
  /** The profile's state directory (the root one for the default profile). */
  stateDir: string;
  credentialsFile: string;
  cacheDir: string;
  noticeFile: string;
  /** Recording chunks waiting for the broker, one directory per session. */
  recordingsDir: string;
}

const PROFILE_NAME = /^[a-z0-9][a-z0-9_-]{0,39}$/;

/** Checks a profile name (from --profile or IMP_PROFILE); `default` or empty means no profile. */
export function parseProfileName(name: string | undefined, where = '--profile'): string | null {
  if (name === undefined || name === '' || name === 'default') return null;
  if (!PROFILE_NAME.test(name))
    throw new UsageError(
      `${where} must be a profile name: lowercase letters, digits, - and _ (at most 40), e.g. work.`,
    );
  return name;
}

/** Computes the paths from the environment (XDG base directories and IMP_PROFILE). */
export function resolvePaths(env: NodeJS.ProcessEnv, home: string = homedir()): Paths {
  const configHome = absolute(env.XDG_CONFIG_HOME) ?? join(home, '.config');
  const stateHome = absolute(env.XDG_STATE_HOME) ?? join(home, '.local', 'state');
  const base = {
    configDir: join(configHome, 'imp'),
    rootStateDir: join(stateHome, 'imp'),
  };
  // An invalid IMP_PROFILE is reported by main() as a usage error before any command runs.
  const profile =
    PROFILE_NAME.test(env.IMP_PROFILE ?? '') && env.IMP_PROFILE !== 'default' ? env.IMP_PROFILE! : null;
  return withProfile(base, profile);
}

/** The same user's paths for another profile. */
export function withProfile(paths: Pick<Paths, 'configDir' | 'rootStateDir'>, profile: string | null): Paths {
  const { configDir, rootStateDir } = paths;
  const stateDir = profile ? join(rootStateDir, 'profiles', profile) : rootStateDir;
  return {
    profile,
    configDir,
    configFile: profile
      ? join(configDir, 'profiles', profile, 'config.json')
      : join(configDir, 'config.json'),
    rootStateDir,
    stateDir,
    credentialsFile: join(stateDir, 'credentials.json'),
    cacheDir: join(stateDir, 'cache'),
    noticeFile: join(rootStateDir, 'credential-store.notice'),
    recordingsDir: join(stateDir, 'recordings'),
  };
}

// The XDG spec says relative paths are invalid and must be ignored.
function absolute(value: string | undefined): string | undefined {
  return value?.startsWith('/') ? value : undefined;
}
