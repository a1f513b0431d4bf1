/**
 * External components the end-to-end tests need (Chromium, gnome-keyring, PostgreSQL, tmux …).
 * Under CI=true a missing component fails the run; elsewhere the test is skipped with a message
 * that names the Debian package to install. Never silently.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface Component {
  /** What the tests call it, e.g. "Chromium". */
  name: string;
  /** The Debian package(s) that provide it (scripts/install-test-deps.sh installs them). */
  debianPackage: string;
  /** True when the component is usable on this machine. */
  check: () => boolean;
}

/** True when every component is present; throws under CI when one is missing; warns otherwise. */
export function requireComponents(...components: Component[]): boolean {
  const missing = components.filter((c) => !safeCheck(c));
  if (missing.length === 0) return true;
  const list = missing.map((c) => `${c.name} (Debian package: ${c.debianPackage})`).join(', ');
  const message = `missing test component(s): ${list}. Install with: bash scripts/install-test-deps.sh`;
  if (process.env.CI === 'true' || process.env.CI === '1') {
    throw new Error(`CI=true and ${message}`);
  }
  process.stderr.write(`\n[imp tests] SKIPPING: ${message}\n`);
  return false;
}

function safeCheck(component: Component): boolean {
  try {
    return component.check();
  } catch {
    return false;
  }
}

function onPath(binary: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Debian's chromium at /usr/bin/chromium, driven by playwright-core. */
export const CHROMIUM: Component = {
  name: 'Chromium',
  debianPackage: 'chromium',
  check: () => existsSync('/usr/bin/chromium'),
};

/** A Secret Service: gnome-keyring-daemon run under dbus-run-session. */
export const GNOME_KEYRING: Component = {
  name: 'gnome-keyring + D-Bus',
  debianPackage: 'gnome-keyring dbus',
  check: () => onPath('gnome-keyring-daemon') && onPath('dbus-run-session'),
};

/** tmux, the pseudo-terminal the terminal-UX tests read like a person would. */
export const TMUX: Component = {
  name: 'tmux',
  debianPackage: 'tmux',
  check: () => onPath('tmux'),
};

/** PostgreSQL server binaries (initdb, pg_ctl). */
export const POSTGRES: Component = {
  name: 'PostgreSQL server',
  debianPackage: 'postgresql',
  check: () => existsSync('/usr/lib/postgresql') || onPath('initdb'),
};

/** The real asciinema player: recordings exported by `imp replay --format asciicast` must play in it. */
export const ASCIINEMA: Component = {
  name: 'asciinema',
  debianPackage: 'asciinema',
  check: () => onPath('asciinema'),
};

/** poppler-utils: pdftoppm (PDF page to PNG) and pdftotext, to look at a page printed to PDF. */
export const POPPLER: Component = {
  name: 'poppler-utils',
  debianPackage: 'poppler-utils',
  check: () => onPath('pdftoppm') && onPath('pdftotext'),
};
