/**
 * The console's browser sessions: a random id in an HttpOnly, SameSite=Strict cookie (Secure unless
 * the broker listens on plain-http loopback), mapped in this broker's memory to the broker token the
 * console's own IdP login bought. Nothing else is in the cookie, so a stolen cookie dies with the idle
 * timeout (policy console.idle_timeout, measured on the injected clock) or the broker token's expiry.
 * Kept in memory: several replicas need sticky sessions for the console (the README says so).
 *
 * Every form carries the session's CSRF token; a POST without it is refused (SameSite is the first
 * wall, the token the second: sites on other ports of the same host are "same-site").
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { isLoopbackHost } from '../../core/policy/reader.js';
import type { BrokerDeps } from '../context.js';

/** A logged-in browser. */
export interface ConsoleSession {
  id: string;
  /** The broker token of the console's login (never sent to the browser). */
  token: string;
  /** ms since the epoch. */
  tokenExpiresAt: number;
  user: { email: string | null; name: string | null; sub: string; roles: string[] };
  csrf: string;
  lastSeen: number;
}

/** An action waiting for a fresh re-authentication (an IdP login or a passkey confirmation). */
export interface PendingAction {
  method: 'POST';
  /** The broker API path it calls (/v1/requests/<id>/approve …). */
  path: string;
  body: Record<string, unknown>;
  /** Where the browser goes afterwards. */
  returnTo: string;
  /** What it is, in words, for the page that asks. */
  label: string;
  /** What the page after it says ("Approved."): shown above the request or session it changed. */
  done: string;
  /** Which page shows the changed thing afterwards (default: the request page). */
  render?: 'request' | 'session';
  /** The passkey ceremony opened for it, when the broker asked for one. */
  ceremony?: { id: string; url: string; userCode: string };
}

/** An authorization-code login in progress (bound to the browser by a cookie holding its id). */
export interface PendingLogin {
  id: string;
  state: string;
  nonce: string;
  verifier: string;
  returnTo: string;
  createdAt: number;
  /** A fresh login asked for by an action: the session it refreshes and the action to finish. */
  action?: PendingAction;
  sessionId?: string;
}

const LOGIN_TTL_MS = 10 * 60 * 1000;
const MAX_WAITING = 8;

/** The console's in-memory state for one broker. */
export class ConsoleState {
  readonly sessions = new Map<string, ConsoleSession>();
  readonly logins = new Map<string, PendingLogin>();
  /**
   * Actions waiting for a passkey confirmation: by session id, then by the ceremony opened for each
   * (a person may have several tabs; each Continue names its own ceremony). A few per session at most.
   */
  readonly waiting = new Map<string, Map<string, PendingAction>>();

  constructor(private readonly deps: BrokerDeps) {}

  /** The session of this cookie value, if alive; touching it restarts the idle timer. */
  session(id: string | undefined): ConsoleSession | null {
    if (!id) return null;
    const found = this.sessions.get(id);
    if (!found) return null;
    const now = this.deps.clock.now();
    const idleMs = this.deps.policy.console.idleTimeout * 1000;
    if (now - found.lastSeen > idleMs || now >= found.tokenExpiresAt) {
      this.drop(id);
      return null;
    }
    found.lastSeen = now;
    return found;
  }

  create(fields: Omit<ConsoleSession, 'id' | 'csrf' | 'lastSeen'>): ConsoleSession {
    const session: ConsoleSession = {
      ...fields,
      id: randomToken(),
      csrf: randomToken(),
      lastSeen: this.deps.clock.now(),
    };
    this.sessions.set(session.id, session);
    return session;
  }

  drop(id: string): void {
    this.sessions.delete(id);
    this.waiting.delete(id);
  }

  /** Keeps an action until its passkey confirmation; the oldest goes when a session has too many. */
  wait(
    sessionId: string,
    action: PendingAction & { ceremony: NonNullable<PendingAction['ceremony']> },
  ): void {
    let mine = this.waiting.get(sessionId);
    if (!mine) {
      mine = new Map();
      this.waiting.set(sessionId, mine);
    }
    mine.set(action.ceremony.id, action);
    for (const key of mine.keys()) if (mine.size > MAX_WAITING) mine.delete(key);
  }

  /** Takes (once) the session's action waiting on that ceremony. */
  takeWaiting(sessionId: string, ceremonyId: unknown): PendingAction | null {
    if (typeof ceremonyId !== 'string') return null;
    const mine = this.waiting.get(sessionId);
    const action = mine?.get(ceremonyId) ?? null;
    mine?.delete(ceremonyId);
    return action;
  }

  startLogin(fields: Omit<PendingLogin, 'id' | 'createdAt'>): PendingLogin {
    const now = this.deps.clock.now();
    for (const [key, old] of this.logins) if (now - old.createdAt > LOGIN_TTL_MS) this.logins.delete(key);
    const login: PendingLogin = { ...fields, id: randomToken(), createdAt: now };
    this.logins.set(login.id, login);
    return login;
  }

  /** Takes (once) the login this browser started. */
  takeLogin(id: string | undefined): PendingLogin | null {
    if (!id) return null;
    const login = this.logins.get(id);
    this.logins.delete(id);
    if (!login || this.deps.clock.now() - login.createdAt > LOGIN_TTL_MS) return null;
    return login;
  }
}

const states = new WeakMap<BrokerDeps, ConsoleState>();

/** The console state of a broker (one per BrokerDeps). */
export function consoleState(deps: BrokerDeps): ConsoleState {
  let found = states.get(deps);
  if (!found) {
    found = new ConsoleState(deps);
    states.set(deps, found);
  }
  return found;
}

/** 256 random bits, base64url. */
export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Compares a submitted CSRF token with the session's in constant time. */
export function sameToken(expected: string, given: unknown): boolean {
  if (typeof given !== 'string') return false;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(expected), digest(given));
}

/** Cookie names and attributes: `__Host-` names (Secure, Path=/) except on plain-http loopback. */
export function cookieNames(deps: BrokerDeps): { session: string; login: string; secure: boolean } {
  const url = new URL(deps.issuer);
  const secure = !(url.protocol === 'http:' && isLoopbackHost(url.hostname));
  return secure
    ? { session: '__Host-imp-console', login: '__Host-imp-console-login', secure }
    : { session: 'imp-console', login: 'imp-console-login', secure };
}

/** A Set-Cookie value; SameSite=Strict for the session, Lax for the login attempt (the IdP redirects back cross-site). */
export function setCookie(
  deps: BrokerDeps,
  name: string,
  value: string,
  options: { sameSite: 'Strict' | 'Lax'; maxAge?: number },
): string {
  const { secure } = cookieNames(deps);
  return [
    `${name}=${value}`,
    'Path=/',
    'HttpOnly',
    `SameSite=${options.sameSite}`,
    ...(secure ? ['Secure'] : []),
    ...(options.maxAge !== undefined ? [`Max-Age=${options.maxAge}`] : []),
  ].join('; ');
}

/** Reads one cookie from a Cookie header. */
export function readCookie(header: string | string[] | undefined, name: string): string | undefined {
  const text = Array.isArray(header) ? header.join('; ') : (header ?? '');
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
