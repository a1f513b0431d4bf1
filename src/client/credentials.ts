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
  options.warn(
    `warning: no OS keychain available (${probe.reason}); storing credentials in ${options.filePath} (mode 0600)`,
  );
  return new FileCredentialStore(options.filePath, options.warn);
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
