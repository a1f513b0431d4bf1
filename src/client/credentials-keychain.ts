/**
 * The OS keychain through @napi-rs/keyring, and the probe that decides whether one answers.
 *
 * Linux quirks measured with @napi-rs/keyring 2.1.2:
 * - `new AsyncEntry()` connects to D-Bus synchronously on the calling thread; against a bus that
 *   accepts the connection but never answers it blocks forever and an AbortSignal cannot help. A
 *   worker thread stuck there also keeps the process from exiting. So the probe runs in a child
 *   process that can be SIGKILLed.
 * - Its default Linux store silently falls back to the kernel keyring (keyutils), which forgets
 *   everything at reboot and, in containers, answers `get` with null but refuses `set`. We pin the
 *   Secret Service so "keychain" means a store that persists.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ImpError } from '../core/errors.js';
import type { CredentialStore } from './credentials.js';

/** The keychain service name every imp credential is filed under. */
export const DEFAULT_KEYCHAIN_SERVICE = 'imp';

/** The account the probe reads; it is never written, so a successful probe leaves no trace. */
const PROBE_ACCOUNT = 'imp-keychain-probe';
/** Long enough for a cold Secret Service activation (~100 ms here), short enough not to stall the CLI. */
const PROBE_TIMEOUT_MS = 1500;

/** Pins Linux to the Secret Service; ignored on macOS and Windows. */
const ENTRY_OPTIONS = { linux: { store: 'secret-service' as const } };

type KeyringModule = typeof import('@napi-rs/keyring');
let keyringModule: Promise<KeyringModule> | undefined;

/** Loaded on first use only: `imp --help` must not pay for (or fail on) the native addon. */
function loadKeyring(): Promise<KeyringModule> {
  keyringModule ??= import('@napi-rs/keyring');
  return keyringModule;
}

/** OS keychain via @napi-rs/keyring (service name 'imp'); on Linux that is the Secret Service (gnome-keyring, KWallet). */
export class KeychainCredentialStore implements CredentialStore {
  readonly kind = 'keychain' as const;
  readonly service: string;

  constructor(service: string = DEFAULT_KEYCHAIN_SERVICE) {
    this.service = service;
  }

  async get(account: string): Promise<string | null> {
    try {
      const entry = await this.entry(account);
      // 2.x resolves null for a missing item (1.x threw NoEntry); `?? null` also covers undefined.
      return (await entry.getPassword()) ?? null;
    } catch (error) {
      throw keychainError('read', error);
    }
  }

  async set(account: string, secret: string): Promise<void> {
    try {
      const entry = await this.entry(account);
      await entry.setPassword(secret);
    } catch (error) {
      throw keychainError('store', error);
    }
  }

  async delete(account: string): Promise<boolean> {
    try {
      const entry = await this.entry(account);
      return await entry.deletePassword();
    } catch (error) {
      throw keychainError('delete', error);
    }
  }

  private async entry(account: string) {
    const { AsyncEntry } = await loadKeyring();
    return new AsyncEntry(this.service, account, ENTRY_OPTIONS);
  }
}

function keychainError(verb: 'read' | 'store' | 'delete', error: unknown): ImpError {
  return new ImpError(
    'IMP_CONFIG',
    `The OS keychain could not ${verb} the imp credential (${describe(error)}). ` +
      'To keep credentials in a file instead, set IMP_CREDENTIAL_STORE=file.',
    { cause: error },
  );
}

/** Whether a keychain answered, or why not. */
export type ProbeResult = { ok: true } | { ok: false; reason: string };

/**
 * Runs in a child `node -e` (CommonJS, so it needs no file on disk): loads the addon by absolute
 * path, does one real read, prints one JSON line. A real read, not just loading the addon, because
 * a locked or half-started keyring only fails (or hangs) once asked.
 */
const PROBE_SCRIPT = `
const [, addonPath, service, account] = process.argv;
const say = (result) => process.stdout.write(JSON.stringify(result) + '\\n');
try {
  const { AsyncEntry } = require(addonPath);
  new AsyncEntry(service, account, ${JSON.stringify(ENTRY_OPTIONS)}).getPassword().then(
    () => say({ ok: true }),
    (error) => say({ ok: false, reason: String((error && error.message) || error) }),
  );
} catch (error) {
  say({ ok: false, reason: String((error && error.message) || error) });
}
`;

/** Can the keychain answer a read within PROBE_TIMEOUT_MS? Costs one short-lived node (~90 ms). */
export async function probeKeychain(service: string): Promise<ProbeResult> {
  const noBus = missingLinuxSessionBus();
  if (noBus) return { ok: false, reason: noBus };
  let addonPath: string;
  try {
    addonPath = createRequire(import.meta.url).resolve('@napi-rs/keyring');
  } catch (error) {
    return { ok: false, reason: `the @napi-rs/keyring module cannot be found: ${describe(error)}` };
  }
  // NODE_OPTIONS could preload the user's hooks into the probe; it needs none of them.
  const { NODE_OPTIONS: _ignored, ...env } = process.env;
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['-e', PROBE_SCRIPT, addonPath, service, PROBE_ACCOUNT],
      { env, timeout: PROBE_TIMEOUT_MS, killSignal: 'SIGKILL', windowsHide: true, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error && (error.killed || error.signal === 'SIGKILL')) {
          done({ ok: false, reason: `the keychain did not answer within ${PROBE_TIMEOUT_MS / 1000} s` });
          return;
        }
        const answer = parseProbeAnswer(stdout);
        if (answer) {
          done(answer.ok ? answer : { ok: false, reason: oneLine(answer.reason) });
          return;
        }
        done({
          ok: false,
          // Not error.message: it quotes the whole command line, probe script included.
          reason: `the keychain probe failed: ${oneLine(stderr) || (error ? `exit code ${error.code}` : 'no answer')}`,
        });
      },
    );
  });
}

function parseProbeAnswer(stdout: string): ProbeResult | undefined {
  try {
    const value: unknown = JSON.parse(stdout.trim().split('\n').at(-1) ?? '');
    if (typeof value !== 'object' || value === null || !('ok' in value)) return undefined;
    if (value.ok === true) return { ok: true };
    const reason = 'reason' in value && typeof value.reason === 'string' ? value.reason : 'unknown error';
    return { ok: false, reason };
  } catch {
    return undefined;
  }
}

/**
 * The common headless case, answered without spawning anything: libdbus finds the session bus via
 * DBUS_SESSION_BUS_ADDRESS or, failing that, $XDG_RUNTIME_DIR/bus (X11 autolaunch is compiled out).
 */
function missingLinuxSessionBus(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  if (process.env.DBUS_SESSION_BUS_ADDRESS) return undefined;
  const runtimeDir = process.env.XDG_RUNTIME_DIR;
  if (runtimeDir && existsSync(join(runtimeDir, 'bus'))) return undefined;
  return 'no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is not set';
}

/** An error as one short line: keychain and D-Bus messages can span lines; warnings must not. */
export function describe(error: unknown): string {
  return oneLine(error instanceof Error ? error.message : String(error));
}

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}
