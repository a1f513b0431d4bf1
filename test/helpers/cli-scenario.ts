/**
 * Scenarios for test/cli/commands/<name>.test.ts: a command run in-process through `main` with the
 * test IO, a scripted prompter, the fake clock and a stub broker that fails on an unexpected call
 * and on a scripted call left unused; plus the parse step alone for argv tables.
 */

import { parseArgv } from '../../src/cli/command.js';
import { main } from '../../src/cli/main.js';
import type { ScriptedAnswer } from '../../src/cli/prompter.js';
import { findCommand } from '../../src/cli/registry.js';
import type { BrokerConfig, SessionView } from '../../src/core/api.js';
import { makeTestDeps, type StubCall, stubBroker } from './cli-deps.js';

/** The broker URL every scenario talks to. */
export const BROKER = 'http://127.0.0.1:7700';
/** A session id. */
export const ID = '0b6f5a3e-1d2c-4e5f-8a9b-0c1d2e3f4a5b';

/** What GET /v1/config answers. */
export const CONFIG: BrokerConfig = {
  issuer: 'http://127.0.0.1:7701',
  client_id: 'imp-cli',
  reauth_max_age: 300,
  per_session_login: true,
  ticket_pattern: '^[A-Z]+-[0-9]+$',
  reason_min_length: 10,
  reason_max_length: 500,
  default_ttl: 1800,
  break_glass: { confirm_window: 600, max_ttl: 1800 },
};

/** A stored login for alice. */
export const STORED = JSON.stringify({
  token: 'tok-alice',
  expires_at: '2026-11-25T00:00:00Z',
  auth_time: 1,
  user: { iss: 'i', sub: 'alice', email: 'alice@example.com', name: null, groups: [], roles: [] },
});

/** A session as the broker shows it; the fake clock starts at 2026-11-24T12:00:00Z. */
export function sessionView(state: SessionView['state'], extra: Partial<SessionView> = {}): SessionView {
  return {
    id: ID,
    state,
    mode: 'standard',
    tenant: 'acme',
    environment: 'prod',
    scope: 'read',
    ticket: 'SUP-1',
    reason: 'Customer reports a broken invoice',
    ttl: 1800,
    requester: { sub: 'alice', email: 'alice@example.com' },
    created_at: '2026-11-24T12:00:00.000Z',
    request_expires_at: null,
    decided_by: null,
    decision_comment: null,
    started_at: state === 'pending' ? null : '2026-11-24T12:00:00.000Z',
    expires_at: state === 'pending' ? null : '2026-11-24T12:30:00.000Z',
    ended_at: null,
    review_required: false,
    ...extra,
  };
}

/** A broker error answer. */
export function refusal(status: number, code: string, message: string, rule?: string) {
  return { status, body: { error: { code, message, ...(rule ? { details: { rule } } : {}) } } };
}

/** Shorthand for one scripted broker call. */
export function call(
  method: string,
  path: string,
  status: number,
  body?: unknown,
  extra: Partial<StubCall> = {},
): StubCall {
  return { method, path, status, ...(body === undefined ? {} : { body }), ...extra };
}

/** Options of one scenario. */
export interface ScenarioOptions {
  loggedIn?: boolean;
  tty?: boolean;
  answers?: ScriptedAnswer[];
  env?: NodeJS.ProcessEnv;
}

/** Starts `imp argv` against the scripted calls; `done` resolves with what the user saw. */
export function startImp(argv: string[], calls: StubCall[], options: ScenarioOptions = {}) {
  const fetch = stubBroker(calls);
  const t = makeTestDeps({
    fetch,
    tty: options.tty ?? false,
    env: { IMP_BROKER_URL: BROKER, ...options.env },
    ...(options.answers ? { answers: options.answers } : {}),
  });
  const done = (async () => {
    if (options.loggedIn ?? true) await t.credentials.set(BROKER, STORED);
    const code = await main(argv, t.deps, '0.0.0-test');
    return { code, stdout: t.io.stdoutText(), stderr: t.io.stderrText(), logins: t.logins };
  })();
  return { ...t, fetch, done };
}

/** Runs `imp argv` to the end. */
export function imp(argv: string[], calls: StubCall[], options: ScenarioOptions = {}) {
  return startImp(argv, calls, options).done;
}

/** The options a command's `parse` makes of argv (throws its usage error). */
export function parseCommand(argv: string[]): unknown {
  const found = findCommand(argv);
  if (!found) throw new Error(`no command in ${argv.join(' ')}`);
  return found.entry.load().then((module) => module.parse(parseArgv(module.spec, found.rest) as never));
}
