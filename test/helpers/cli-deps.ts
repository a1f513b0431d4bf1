/** Deps for running commands in-process: test IO, scripted prompter, memory credentials, a stub broker. */
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import type { DeviceLoginOptions, DeviceLoginResult } from '../../src/auth/device-flow.js';
import type { Deps } from '../../src/cli/deps.js';
import { type TestIO, testIO } from '../../src/cli/io.js';
import { type ScriptedAnswer, scriptedPrompter } from '../../src/cli/prompter.js';
import { MemoryCredentialStore } from '../../src/client/credentials.js';
import { resolvePaths } from '../../src/client/paths.js';
import { FakeClock } from '../../src/core/clock.js';
import { makeTempDir } from './temp.js';

/** One expected broker call and its answer. */
export interface StubCall {
  method: string;
  path: string;
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Never answers: waits until the request is aborted (Ctrl-C while long-polling). */
  hang?: boolean;
  /** Checks the request (e.g. the bearer token). */
  check?: (request: { headers: Headers; body: unknown; url: URL }) => void;
}

/**
 * A fetch that answers the scripted calls in order and fails on anything else; inside a test, the
 * test also fails when it ends with a scripted call never made (a stub must not say more than happened).
 */
export function stubBroker(calls: StubCall[]): typeof fetch & { remaining(): StubCall[] } {
  const queue = [...calls];
  try {
    onTestFinished(() => {
      if (queue.length > 0)
        throw new Error(
          `stubbed broker call(s) never made: ${queue.map((c) => `${c.method} ${c.path}`).join(', ')}`,
        );
    });
  } catch {
    // Created outside a running test (a shared fixture): the caller checks remaining() itself.
  }
  const stub = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = init?.method ?? 'GET';
    const next = queue.shift();
    if (!next || next.method !== method || next.path !== url.pathname) {
      throw new Error(
        `unexpected broker call ${method} ${url.pathname}; expected ${next ? `${next.method} ${next.path}` : 'none'}`,
      );
    }
    next.check?.({
      headers: new Headers(init?.headers),
      body: init?.body ? JSON.parse(String(init.body)) : null,
      url,
    });
    if (next.hang) {
      // Like fetch: a signal aborted before the call rejects at once (a slow start under load used to
      // reach the long-poll after the test's Ctrl-C, and then waited for an abort that had passed).
      if (init?.signal?.aborted) return Promise.reject(init.signal.reason);
      return new Promise<Response>((_, reject) =>
        init?.signal?.addEventListener('abort', () => reject(init.signal?.reason)),
      );
    }
    return new Response(next.body === undefined ? '' : JSON.stringify(next.body), {
      status: next.status,
      headers: next.headers ?? {},
    });
  }) as typeof fetch & { remaining(): StubCall[] };
  stub.remaining = () => queue;
  return stub;
}

/** Deps wired for tests; `logins` records every device flow the command ran. */
export function makeTestDeps(
  options: {
    fetch?: typeof fetch;
    answers?: ScriptedAnswer[];
    tty?: boolean;
    env?: NodeJS.ProcessEnv;
    deviceLogin?: (o: DeviceLoginOptions) => Promise<DeviceLoginResult>;
  } = {},
) {
  const io: TestIO = testIO({ tty: options.tty ?? false });
  const home = makeTempDir('imp-cli-test-');
  const env = {
    HOME: home,
    XDG_CONFIG_HOME: join(home, 'config'),
    XDG_STATE_HOME: join(home, 'state'),
    ...options.env,
  };
  const prompter = scriptedPrompter(options.answers ?? []);
  const credentials = new MemoryCredentialStore();
  const logins: DeviceLoginOptions[] = [];
  const controller = new AbortController();
  const clock = new FakeClock();
  const deps: Deps = {
    io,
    env,
    clock,
    fetch: options.fetch ?? stubBroker([]),
    paths: resolvePaths(env, home),
    credentials: async () => credentials,
    prompter: async () => prompter,
    openUrl: async () => {
      throw new Error('tests never open a browser');
    },
    deviceLogin: async (o) => {
      logins.push(o);
      await o.onCode({
        verification_uri: 'http://127.0.0.1:1/device',
        verification_uri_complete: null,
        user_code: 'ABCD-EFGH',
        expires_in: 300,
      });
      if (options.deviceLogin) return options.deviceLogin(o);
      return { idToken: `id-token-${logins.length}`, claims: {} };
    },
    interrupt: controller.signal,
    onSignal: () => () => {},
    runChild: () => {
      throw new Error('tests never spawn');
    },
    openEvents: () => {
      throw new Error('tests pass no --events target');
    },
    readTextFile: async (path: string) => {
      const { readFile } = await import('node:fs/promises');
      return readFile(path, 'utf8');
    },
    runPty: async () => {
      throw new Error('tests never spawn');
    },
  };
  return { deps, io, prompter, credentials, logins, interrupt: controller, clock };
}

/** alice's stored broker login (far from expiry) as the credential store holds it. */
export const STORED_ALICE_LOGIN = JSON.stringify({
  token: 'tok',
  expires_at: '2099-11-25T00:00:00Z',
  auth_time: 1,
  user: { iss: 'i', sub: 'alice', email: 'alice@x', name: null, groups: [], roles: [] },
});

/** What GET /v1/config answers with the dev policy's session rules. */
export const BROKER_CONFIG = {
  issuer: 'http://127.0.0.1:7701',
  client_id: 'imp-cli',
  reauth_max_age: 300,
  per_session_login: true,
  ticket_pattern: '^[A-Z]+-[0-9]+$',
  reason_min_length: 10,
  reason_max_length: 500,
  default_ttl: 1800,
};
