/**
 * Where the CLI keeps its broker token: one secret (a JSON string) per broker URL.
 *
 * Preferred home is the OS keychain (macOS Keychain, Windows Credential Manager, the Secret Service
 * on Linux). When none answers, `auto` falls back to a 0600 JSON file and says so once on stderr.
 * Nothing here prints or logs a secret: error messages name the file or the keychain, never values.
 *
 * The keychain lives in credentials-keychain.ts, the file in credentials-file.ts.
 */
import { ConfigError } from '../core/errors.js';
import { FileCredentialStore } from './credentials-file.js';
import { DEFAULT_KEYCHAIN_SERVICE, KeychainCredentialStore, probeKeychain } from './credentials-keychain.js';

export { FileCredentialStore } from './credentials-file.js';
export { DEFAULT_KEYCHAIN_SERVICE, KeychainCredentialStore } from './credentials-keychain.js';

/** Which backend holds the credentials. */
export type CredentialStoreKind = 'keychain' | 'file' | 'memory';

/** One secret per account (the broker URL); implementations never log the secret. */
export interface CredentialStore {
  readonly kind: CredentialStoreKind;
  /** Set when `auto` fell back to the file: why the keychain was not used. */
  readonly fallbackReason?: string | null;
  /** The stored secret, or null when there is none. */
  get(account: string): Promise<string | null>;
  /** Stores (or replaces) the secret for `account`. */
  set(account: string, secret: string): Promise<void>;
  /** Removes the secret; true when something was removed. */
  delete(account: string): Promise<boolean>;
}

/** For tests. */
export class MemoryCredentialStore implements CredentialStore {
  readonly kind = 'memory' as const;
  private readonly secrets = new Map<string, string>();

  async get(account: string): Promise<string | null> {
    return this.secrets.get(account) ?? null;
  }

  async set(account: string, secret: string): Promise<void> {
    this.secrets.set(account, secret);
  }

  async delete(account: string): Promise<boolean> {
    return this.secrets.delete(account);
  }
}

/** Options for {@link openCredentialStore}. */
export interface OpenCredentialStoreOptions {
  mode: 'auto' | 'keychain' | 'file';
  /** The fallback (or forced) file, from client/paths.ts. */
  filePath: string;
  /** One line to stderr; used once, when `auto` falls back to the file. */
  warn: (message: string) => void;
  /** Keychain service name; 'imp' unless a test isolates itself. */
  service?: string;
  /**
   * Remembers which store the fallback warning was shown for, so it is said once per machine and
   * again only when the store changes. Without it the warning shows every time.
   */
  noticeFile?: string;
}

/** Picks the store: 'keychain' (IMP_CONFIG if none works), 'file', or 'auto' = probe the keychain (bounded to ~1.5 s) and fall back to the file with one warning. */
export async function openCredentialStore(options: OpenCredentialStoreOptions): Promise<CredentialStore> {
  if (options.mode === 'file') return new FileCredentialStore(options.filePath, options.warn);
  const service = options.service ?? DEFAULT_KEYCHAIN_SERVICE;
  const probe = await probeKeychain(service);
  if (probe.ok) return new KeychainCredentialStore(service);
  if (options.mode === 'keychain') {
    throw new ConfigError(
      `No OS keychain is available (${probe.reason}). On Linux, run a Secret Service (gnome-keyring or ` +
        'KWallet) in your session, or set IMP_CREDENTIAL_STORE=file to keep credentials in a file.',
    );
  }
  const store = new FileCredentialStore(options.filePath, options.warn, probe.reason);
  if (await firstNotice(options.noticeFile, `file ${store.filePath}`))
    options.warn(
      `warning: no OS keychain available (${oneLine(probe.reason)}); storing credentials in ${options.filePath} (mode 0600). ` +
        'Shown once; IMP_CREDENTIAL_STORE=file chooses the file for good (imp doctor shows the store).',
    );
  return store;
}

// True when `store` differs from the one last noted (and notes it); a notice that cannot be read or
// written errs on the side of warning again.
async function firstNotice(noticeFile: string | undefined, store: string): Promise<boolean> {
  if (!noticeFile) return true;
  const { mkdir, readFile, writeFile } = await import('node:fs/promises');
  const { dirname } = await import('node:path');
  const seen = await readFile(noticeFile, 'utf8').catch(() => null);
  if (seen?.trim() === store) return false;
  await mkdir(dirname(noticeFile), { recursive: true, mode: 0o700 })
    .then(() => writeFile(noticeFile, `${store}\n`, { mode: 0o600 }))
    .catch(() => undefined);
  return true;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

const CREDENTIAL_STORE_MODES = ['auto', 'keychain', 'file'] as const;

/** Parses IMP_CREDENTIAL_STORE (keychain|file|auto, default auto); anything else is an IMP_CONFIG error naming the allowed values. */
export function credentialStoreModeFromEnv(value: string | undefined): 'auto' | 'keychain' | 'file' {
  const mode = (value ?? '').trim();
  if (mode === '') return 'auto';
  for (const allowed of CREDENTIAL_STORE_MODES) if (mode === allowed) return allowed;
  throw new ConfigError(
    `IMP_CREDENTIAL_STORE must be one of keychain, file, auto (got ${JSON.stringify(mode.slice(0, 40))}).`,
  );
}

/**
 * A profile's view of a store: its accounts carry the profile name, so `--profile work` and the
 * default profile keep separate logins even for the same broker in the same keychain.
 */
export function profileStore(store: CredentialStore, profile: string | null): CredentialStore {
  if (!profile) return store;
  const account = (name: string) => `${name}#profile=${profile}`;
  return {
    kind: store.kind,
    fallbackReason: store.fallbackReason ?? null,
    get: (name) => store.get(account(name)),
    set: (name, secret) => store.set(account(name), secret),
    delete: (name) => store.delete(account(name)),
  };
}
