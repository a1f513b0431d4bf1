/**
 * Profiles: `imp --profile work …` (or IMP_PROFILE=work) keeps its own broker URL, login and
 * config; the default profile does not see them. Run with the real deps (file credential store,
 * real paths) and a stub broker; also the text login shows the complete verification URI.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Deps } from '../../../src/cli/deps.js';
import { systemDeps } from '../../../src/cli/deps.js';
import { testIO } from '../../../src/cli/io.js';
import { main } from '../../../src/cli/main.js';
import { type StubCall, stubBroker } from '../../helpers/cli-deps.js';
import { makeTempDir } from '../../helpers/temp.js';

const WORK = 'http://127.0.0.1:7711';
const config = {
  issuer: 'http://127.0.0.1:7701',
  client_id: 'imp-cli',
  reauth_max_age: 300,
  per_session_login: true,
  ticket_pattern: '^[A-Z]+-[0-9]+$',
  reason_min_length: 10,
  reason_max_length: 500,
  default_ttl: 1800,
};
const user = { iss: 'i', sub: 'alice', email: 'alice@work.test', name: null, groups: [], roles: ['support'] };

function machine() {
  const home = makeTempDir('imp-profile-test-');
  return {
    home,
    env: {
      HOME: home,
      XDG_CONFIG_HOME: join(home, 'config'),
      XDG_STATE_HOME: join(home, 'state'),
      IMP_CREDENTIAL_STORE: 'file',
    } as NodeJS.ProcessEnv,
  };
}

async function imp(argv: string[], env: NodeJS.ProcessEnv, calls: StubCall[]) {
  const deps: Deps = systemDeps({ ...env });
  const io = testIO({ tty: false });
  const fetch = stubBroker(calls);
  deps.io = io;
  deps.fetch = fetch;
  deps.deviceLogin = async (options) => {
    await options.onCode({
      verification_uri: 'http://127.0.0.1:7701/device',
      verification_uri_complete: 'http://127.0.0.1:7701/device?user_code=WXYZ-1234',
      user_code: 'WXYZ-1234',
      expires_in: 300,
    });
    return { idToken: 'id-token', claims: {} };
  };
  const code = await main(argv, deps, 'test');
  return { code, stdout: io.stdoutText(), stderr: io.stderrText(), remaining: fetch.remaining() };
}

const loginCalls: StubCall[] = [
  { method: 'GET', path: '/v1/config', status: 200, body: config },
  {
    method: 'POST',
    path: '/v1/login',
    status: 200,
    body: { token: 'work-token', expires_at: '2099-01-01T00:00:00Z', auth_time: 1, user },
  },
];
const whoamiCall: StubCall = {
  method: 'GET',
  path: '/v1/whoami',
  status: 200,
  body: { user, auth_time: 1, login_age_seconds: 60, expires_at: '2099-01-01T00:00:00Z' },
  check: ({ headers }) => expect(headers.get('authorization')).toBe('Bearer work-token'),
};

describe('profiles', () => {
  it('imp --profile work login keeps broker and login in the profile; the default profile has neither', async () => {
    const { home, env } = machine();
    const login = await imp(
      ['--profile', 'work', 'login', '--broker', WORK, '--no-browser'],
      env,
      loginCalls,
    );
    expect(login.code).toBe(0);
    expect(login.stderr).toContain(
      'To log in, open http://127.0.0.1:7701/device?user_code=WXYZ-1234 (or http://127.0.0.1:7701/device and enter the code WXYZ-1234)',
    );
    expect(JSON.parse(readFileSync(join(home, 'config/imp/profiles/work/config.json'), 'utf8'))).toEqual({
      broker_url: WORK,
    });
    expect(existsSync(join(home, 'state/imp/profiles/work/credentials.json'))).toBe(true);
    expect(existsSync(join(home, 'config/imp/config.json'))).toBe(false);

    // The same profile by flag after the command, and by IMP_PROFILE.
    const byFlag = await imp(['whoami', '--profile', 'work'], env, [whoamiCall]);
    expect(byFlag.code).toBe(0);
    expect(byFlag.stdout).toContain('alice@work.test');
    const byEnv = await imp(['whoami'], { ...env, IMP_PROFILE: 'work' }, [whoamiCall]);
    expect(byEnv.code).toBe(0);

    const plain = await imp(['whoami'], env, []);
    expect(plain.code).toBe(3);
    expect(plain.stderr).toContain('no broker configured');
  });

  it('a profile does not see the default profile’s login for the same broker', async () => {
    const { env } = machine();
    expect((await imp(['login', '--broker', WORK, '--no-browser'], env, loginCalls)).code).toBe(0);
    const other = await imp(['--profile=home', 'whoami', '--broker', WORK], env, []);
    expect(other.code).toBe(3);
    expect(other.stderr).toContain('error: Not logged in');
  });

  it.each([
    [['--profile', '../etc', 'whoami'], {}],
    [['whoami', '--profile', 'Work Laptop'], {}],
    [['whoami'], { IMP_PROFILE: 'a/b' }],
  ])('%j %j: a bad profile name is a usage error (exit 2)', async (argv, extra) => {
    const { env } = machine();
    const result = await imp(argv, { ...env, ...extra }, []);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/error: (--profile|IMP_PROFILE) must be a profile name/);
  });
});

describe('imp doctor and the credential store', () => {
  it('says the file is a fallback, why, and how to make it the choice', async () => {
    const { makeTestDeps } = await import('../../helpers/cli-deps.js');
    const { FileCredentialStore } = await import('../../../src/client/credentials.js');
    const t = makeTestDeps();
    const store = new FileCredentialStore(t.deps.paths.credentialsFile, () => {}, 'no D-Bus session bus');
    t.deps.credentials = async () => store;
    await main(['doctor'], t.deps, 'test');
    expect(t.io.stdoutText()).toContain(
      `ok    credential store: file (${t.deps.paths.credentialsFile}, mode 0600) because no OS keychain is available (no D-Bus session bus); imp warned once — IMP_CREDENTIAL_STORE=file makes the file the choice`,
    );
  });
});
