/**
 * The first thing a new user does: `imp dev`, then `imp login` completed in a real (headless)
 * browser against the real dev IdP, then `imp whoami`. Also: denial in the browser, logout, the
 * file fallback's permissions, and that no token is ever printed.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserHandle, completeDeviceLogin, openBrowser } from '../helpers/browser.js';
import { ImpProcess, makeUserEnv, runImp, startDev } from '../helpers/cli.js';
import { CHROMIUM, requireComponents } from '../helpers/components.js';

const run = requireComponents(CHROMIUM);

describe.skipIf(!run)('imp login against imp dev, browser step in headless Chromium', () => {
  let dev: Awaited<ReturnType<typeof startDev>>;
  let browser: BrowserHandle;

  beforeAll(async () => {
    dev = await startDev();
    browser = await openBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    expect(await dev?.stop()).toBe(0);
  });

  async function login(
    env: NodeJS.ProcessEnv,
    user: string,
    extra: string[] = [],
    action: 'approve' | 'deny' = 'approve',
  ) {
    const imp = new ImpProcess(
      ['login', '--broker', dev.info.broker, '--no-browser', '--json', ...extra],
      env,
    );
    const code = await imp.jsonLine((v) => v.event === 'device_authorization');
    expect(code.user_code).toMatch(/\S+/);
    const browserResult = await completeDeviceLogin({
      url: String(code.verification_uri_complete),
      login: user,
      password: user,
      browser,
      action,
    });
    const exitCode = await imp.exit();
    return { imp, exitCode, browserResult };
  }

  it('logs alice in, whoami shows her, and no token is printed', async () => {
    const { env, home } = makeUserEnv();
    const { imp, exitCode } = await login(env, 'alice');
    expect(exitCode, imp.stderr).toBe(0);
    const loggedIn = await imp.jsonLine((v) => v.event === 'logged_in');
    expect(loggedIn.user).toMatchObject({
      email: 'alice@example.test',
      groups: ['support'],
      roles: ['support'],
    });
    expect(typeof loggedIn.auth_time).toBe('number');

    const whoami = await runImp(['whoami', '--json'], env);
    expect(whoami.code, whoami.stderr).toBe(0);
    const me = JSON.parse(whoami.stdout);
    expect(me.user).toMatchObject({ email: 'alice@example.test', roles: ['support'] });
    expect(me.user.sub).not.toContain('@');
    expect(me.login_age_seconds).toBeGreaterThanOrEqual(0);

    // The broker URL was remembered; the credentials file is private and holds only the broker token.
    const credentialsFile = join(home, '.local', 'state', 'imp', 'credentials.json');
    expect(statSync(credentialsFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(home, '.local', 'state', 'imp')).mode & 0o777).toBe(0o700);
    const stored = JSON.parse(JSON.parse(readFileSync(credentialsFile, 'utf8'))[dev.info.broker]);
    expect(stored.token.split('.')).toHaveLength(3);
    expect(stored).not.toHaveProperty('id_token');
    expect(stored).not.toHaveProperty('refresh_token');
    for (const output of [imp.stdout, imp.stderr, whoami.stdout, whoami.stderr])
      expect(output).not.toContain(stored.token);

    const doctor = await runImp(['doctor', '--json'], env);
    expect(doctor.code, doctor.stdout).toBe(0);
    expect(JSON.parse(doctor.stdout).checks.map((c: { name: string }) => c.name)).toEqual([
      'broker configured',
      'broker reachable',
      're-authentication',
      'clock',
      'identity provider',
      'credential store',
      'login',
    ]);
    // imp dev runs in idp mode: the check passes with a warning that it rests on the IdP.
    expect(JSON.parse(doctor.stdout).checks[2]).toMatchObject({ ok: true, warn: true });
    expect(JSON.parse(doctor.stdout).checks[2].detail).toMatch(/^idp: .*rests on the IdP/);

    const human = await runImp(['whoami'], env);
    expect(human.stdout).toContain('alice@example.test');
    expect(human.stdout).toContain('roles:     support');

    const logout = await runImp(['logout'], env);
    expect(logout.code).toBe(0);
    const after = await runImp(['whoami'], env);
    expect(after.code).toBe(3);
    expect(after.stderr).toContain('imp login');
  });

  it('a login denied in the browser exits 3 with a clear message', async () => {
    const { env } = makeUserEnv();
    const { imp, exitCode } = await login(env, 'bob', [], 'deny');
    expect(exitCode).toBe(3);
    expect(imp.stderr).toContain('denied in the browser');
    expect(await runImp(['whoami'], env)).toMatchObject({ code: 3 });
  });

  it('--fresh makes the IdP ask for the password again and yields a newer auth_time', async () => {
    const { env } = makeUserEnv();
    const first = await login(env, 'carol');
    expect(first.exitCode, first.imp.stderr).toBe(0);
    const firstAuth = Number((await first.imp.jsonLine((v) => v.event === 'logged_in')).auth_time);

    // Same browser, no --fresh: the IdP reuses its session, no password, same auth_time.
    const reuse = await login(env, 'carol');
    expect(reuse.browserResult.askedForPassword).toBe(false);
    expect(Number((await reuse.imp.jsonLine((v) => v.event === 'logged_in')).auth_time)).toBe(firstAuth);

    await new Promise((r) => setTimeout(r, 1100));
    const fresh = await login(env, 'carol', ['--fresh']);
    expect(fresh.exitCode, fresh.imp.stderr).toBe(0);
    expect(fresh.browserResult.askedForPassword).toBe(true);
    expect(Number((await fresh.imp.jsonLine((v) => v.event === 'logged_in')).auth_time)).toBeGreaterThan(
      firstAuth,
    );
  });

  it('refuses a plain-http broker that is not on loopback, before any network call', async () => {
    const { env } = makeUserEnv();
    const result = await runImp(['login', '--broker', 'http://broker.example.com', '--no-browser'], env);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('must use https');
  });

  it('an unreachable broker names the URL and exits 1', async () => {
    const { env } = makeUserEnv();
    const result = await runImp(['login', '--broker', 'http://127.0.0.1:9', '--no-browser'], env);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Cannot reach the broker at http://127.0.0.1:9');
  });
});
