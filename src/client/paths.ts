/**
 * Every file imp keeps on a person's machine. The README's "Files on disk" copies this tree.
 *
 *   $XDG_CONFIG_HOME/imp/             (default ~/.config/imp)
 *     config.json                     broker URL remembered by `imp login`
 *   $XDG_STATE_HOME/imp/              (default ~/.local/state/imp, mode 0700)
 *     credentials.json                broker tokens when no OS keychain is available (mode 0600)
 *     cache/tenants.json              tenant ids for shell completion (short-lived)
 *     recordings/<session-id>/        recording chunks not yet delivered to the broker (0700; files
 *       <seq>.cast                    0600, deleted once the broker has them; bounded)
 *
 * The broker's own state (SQLite file, signing keys) lives in its --state-dir, not here.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Resolved locations for one user. */
export interface Paths {
  configDir: string;
  configFile: string;
  stateDir: string;
  credentialsFile: string;
  cacheDir: string;
  /** Recording chunks waiting for the broker, one directory per session. */
  recordingsDir: string;
}

/** Computes the paths from the environment (XDG base directories). */
export function resolvePaths(env: NodeJS.ProcessEnv, home: string = homedir()): Paths {
  const configHome = absolute(env.XDG_CONFIG_HOME) ?? join(home, '.config');
  const stateHome = absolute(env.XDG_STATE_HOME) ?? join(home, '.local', 'state');
  const configDir = join(configHome, 'imp');
  const stateDir = join(stateHome, 'imp');
  return {
    configDir,
    configFile: join(configDir, 'config.json'),
    stateDir,
    credentialsFile: join(stateDir, 'credentials.json'),
    cacheDir: join(stateDir, 'cache'),
    recordingsDir: join(stateDir, 'recordings'),
  };
}

// The XDG spec says relative paths are invalid and must be ignored.
function absolute(value: string | undefined): string | undefined {
  return value?.startsWith('/') ? value : undefined;
}
