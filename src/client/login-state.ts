/** The stored login for one broker: the broker token and what the CLI may show without asking. */
import type { LoginResponse } from '../core/api.js';
import type { CredentialStore } from './credentials.js';

/** What is kept in the credential store, keyed by broker URL. */
export interface StoredLogin {
  token: string;
  expires_at: string;
  auth_time: number;
  user: LoginResponse['user'];
}

/** The stored login, or null when none (or the stored value is unreadable). */
export async function readLogin(store: CredentialStore, brokerUrl: string): Promise<StoredLogin | null> {
  const raw = await store.get(brokerUrl);
  if (!raw) return null;
  try {
    const parsed = JSON.parse(raw) as StoredLogin;
    return typeof parsed.token === 'string' ? parsed : null;
  } catch {
    return null;
  }
}

/** Saves the login from a broker answer. */
export async function saveLogin(
  store: CredentialStore,
  brokerUrl: string,
  login: LoginResponse,
): Promise<StoredLogin> {
  const stored: StoredLogin = {
    token: login.token,
    expires_at: login.expires_at,
    auth_time: login.auth_time,
    user: login.user,
  };
  await store.set(brokerUrl, JSON.stringify(stored));
  return stored;
}
