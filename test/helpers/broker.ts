/**
 * An in-process broker wired to a real dev IdP, for broker-level tests. `loginAs` signs an ID token
 * with the IdP's real key (the IdP's own login UI is covered by the e2e tests) and exchanges it at
 * POST /v1/login, so every test gets real broker tokens with a chosen auth_time.
 */
import { type CryptoKey, importJWK, SignJWT } from 'jose';
import type { AlertSettings } from '../../src/broker/alerts.js';
import type { NotifySettings } from '../../src/broker/notify/dispatcher.js';
import type { Broker } from '../../src/broker/server.js';
import { startBroker } from '../../src/broker/start.js';
import type { TicketSettings } from '../../src/broker/tickets/service.js';
import type { CancelTimer, Clock, TimerOptions } from '../../src/core/clock.js';
import { devPolicyYaml } from '../../src/dev/dev-policy.js';
import { DEV_USERS, type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { systemClock } from '../../src/runtime/clock.js';
import type { Store } from '../../src/store/types.js';
import { makeTempDir } from './temp.js';

/** Real time plus an offset tests can move forward (jose and the broker both read it). */
export class ShiftedClock implements Clock {
  offsetMs = 0;
  now(): number {
    return Date.now() + this.offsetMs;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(resolve, ms);
      signal?.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(signal.reason);
      });
    });
  }
  after(ms: number, fn: () => void, options?: TimerOptions): CancelTimer {
    return systemClock.after(ms, fn, options);
  }
  every(ms: number, fn: () => void, options?: TimerOptions): CancelTimer {
    return systemClock.every(ms, fn, options);
  }
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

/** An HTTP answer. */
export interface Answer<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
}

/** A broker + IdP pair for a test file. */
export interface TestBroker {
  broker: Broker & { url: string };
  idp: DevIdp;
  clock: ShiftedClock;
  store: Store;
  stateDir: string;
  /** A broker token for a dev user; `authAgeSeconds` backdates auth_time. */
  loginAs(user: string, options?: { authAgeSeconds?: number }): Promise<string>;
  call<T = Record<string, unknown>>(
    method: string,
    path: string,
    token?: string | null,
    body?: unknown,
    extraHeaders?: Record<string, string>,
  ): Promise<Answer<T>>;
  close(): Promise<void>;
}

/** Starts the IdP and a broker with the dev policy (or `policyYaml(issuer, tenantApi)`). */
export async function startTestBroker(
  options: {
    policyYaml?: (issuer: string) => string;
    tenantApi?: string;
    store?: Store;
    alertSettings?: Partial<AlertSettings>;
    notifySettings?: Partial<NotifySettings>;
    ticketSettings?: Partial<TicketSettings>;
    auditKey?: string;
    stateDir?: string;
  } = {},
): Promise<TestBroker> {
  const idp = await startDevIdp();
  const clock = new ShiftedClock();
  const stateDir = options.stateDir ?? makeTempDir('imp-broker-test-');
  const tenantApi = options.tenantApi ?? 'http://127.0.0.1:9';
  const broker = await startBroker({
    policy: {
      text: options.policyYaml ? options.policyYaml(idp.issuer) : devPolicyYaml(idp.issuer, tenantApi),
      name: 'test policy',
    },
    stateDir,
    port: 0,
    clock,
    // IMP_TEST_LOG=1 shows the broker's own error log (5xx causes) while debugging a test.
    log: process.env.IMP_TEST_LOG
      ? (level, message, fields) =>
          process.stderr.write(`[broker ${level}] ${message} ${JSON.stringify(fields ?? {})}\n`)
      : () => {},
    ...(options.store ? { store: options.store } : {}),
    ...(options.alertSettings ? { alertSettings: options.alertSettings } : {}),
    ...(options.notifySettings ? { notifySettings: options.notifySettings } : {}),
    ...(options.ticketSettings ? { ticketSettings: options.ticketSettings } : {}),
    ...(options.auditKey ? { auditKey: options.auditKey } : {}),
  });
  const signing = idp.signingKeys[0]!;
  const key = (await importJWK(signing, signing.alg)) as CryptoKey;
  let counter = 0;

  async function call<T>(
    method: string,
    path: string,
    token?: string | null,
    body?: unknown,
    extraHeaders: Record<string, string> = {},
  ): Promise<Answer<T>> {
    const headers: Record<string, string> = { ...extraHeaders };
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(broker.url + path, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      body: (text ? JSON.parse(text) : null) as T,
    };
  }

  return {
    broker,
    idp,
    clock,
    store: broker.deps.store,
    stateDir,
    async loginAs(login, loginOptions = {}) {
      const user = DEV_USERS.find((u) => u.login === login);
      if (!user) throw new Error(`no dev user ${login}`);
      const now = Math.floor(clock.now() / 1000);
      counter++;
      const idToken = await new SignJWT({
        email: user.email,
        name: user.name,
        groups: user.groups,
        auth_time: now - (loginOptions.authAgeSeconds ?? 0),
      })
        .setProtectedHeader({ alg: signing.alg!, kid: signing.kid!, typ: 'JWT' })
        .setIssuer(idp.issuer)
        .setAudience('imp-cli')
        .setSubject(`user-${user.login}`)
        .setIssuedAt(now)
        .setExpirationTime(now + 600)
        .setJti(`test-${counter}-${Math.random()}`)
        .sign(key);
      const answer = await call<{ token: string }>('POST', '/v1/login', null, { id_token: idToken });
      if (answer.status !== 200) throw new Error(`login failed: ${JSON.stringify(answer.body)}`);
      return answer.body.token;
    },
    call,
    async close() {
      await boundedClose(broker.close());
      await idp.close();
    },
  };
}

/**
 * A broker's close() that hangs fails here, naming itself and what still holds the process, instead
 * of surfacing as the test's own timeout with no clue (how the keep-alive shutdown hang showed).
 */
async function boundedClose(closing: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), 20_000);
  });
  const outcome = await Promise.race([closing.then(() => 'closed' as const), limit]);
  clearTimeout(timer);
  if (outcome === 'late') {
    const handles = (process as unknown as { _getActiveHandles(): object[] })
      ._getActiveHandles()
      .map((h) => h.constructor?.name ?? typeof h);
    throw new Error(`broker.close() did not finish within 20 s; active handles: ${handles.join(', ')}`);
  }
}
