/**
 * `imp dev --reauth passkey` end to end: the real CLI, the real dev IdP, headless Chromium with a
 * virtual authenticator on the broker's page. Alice enrols with `imp passkey add`; each session then
 * asks for the passkey (a `passkey_authorization` event like the device flow's), and the second one
 * asks again although nobody logged in to the IdP in between. The audit names the passkey.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrowserHandle, openBrowser } from '../helpers/browser.js';
import { ImpProcess, makeUserEnv, runImp, startDev } from '../helpers/cli.js';
import { CHROMIUM, requireComponents } from '../helpers/components.js';
import { cliLogin } from '../helpers/login.js';
import { openPasskeyTab, type PasskeyTab } from '../helpers/passkey.js';

const run = requireComponents(CHROMIUM);

describe.skipIf(!run)('passkey mode end to end (imp dev --reauth passkey)', () => {
  let dev: Awaited<ReturnType<typeof startDev>>;
  let browser: BrowserHandle;
  let tab: PasskeyTab;
  beforeAll(async () => {
    dev = await startDev(['--reauth', 'passkey']);
    browser = await openBrowser();
    tab = await openPasskeyTab(browser);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await dev?.stop();
  });

  /**
   * Waits for the CLI's passkey_authorization event and confirms on the broker's page. imp exec's
   * events go to stderr (its stdout is the command's); other commands' --json lines to stdout.
   */
  async function confirm(
    imp: ImpProcess,
    stream: 'stdout' | 'stderr' = 'stdout',
  ): Promise<Record<string, unknown>> {
    const event = await imp.jsonLine((v) => v.event === 'passkey_authorization', 20_000, stream);
    expect(Object.keys(event).sort()).toEqual([
      'event',
      'expires_in',
      'user_code',
      'verification_uri_complete',
    ]);
    const outcome = await tab.complete(String(event.verification_uri_complete));
    expect(outcome.code).toBe(event.user_code);
    expect(outcome.state, outcome.status).toBe('done');
    return event;
  }

  const exec = (env: NodeJS.ProcessEnv, ticket: string) =>
    new ImpProcess(
      [
        'exec',
        '--tenant',
        'globex',
        '--ticket',
        ticket,
        '--reason',
        'Look at the failing export',
        '--json',
        '--',
        'true',
      ],
      env,
    );

  it('enrols, then asks for the passkey before every session, whatever the IdP did', {
    timeout: 120_000,
  }, async () => {
    expect(dev.info).toMatchObject({ reauth: 'passkey' });
    expect(dev.info.broker).toMatch(/^http:\/\/localhost:\d+$/);
    const alice = makeUserEnv({ IMP_BROKER_URL: dev.info.broker });
    await cliLogin(alice.env, dev.info.broker, 'alice');
    const doctor = JSON.parse((await runImp(['doctor', '--json'], alice.env)).stdout);
    expect(doctor.checks.find((c: { name: string }) => c.name === 're-authentication')).toMatchObject({
      ok: true,
      detail: expect.stringMatching(/^passkey: the broker verifies a passkey/),
    });

    const refused = await runImp(
      [
        'exec',
        '--tenant',
        'globex',
        '--ticket',
        'SUP-1',
        '--reason',
        'Look at the failing export',
        '--',
        'true',
      ],
      alice.env,
    );
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain('imp passkey add');

    const add = new ImpProcess(
      ['passkey', 'add', '--name', 'virtual key', '--no-browser', '--json'],
      alice.env,
    );
    await confirm(add);
    expect(await add.exit(), add.stderr).toBe(0);
    const listed = await runImp(['passkey', 'list', '--json'], alice.env);
    expect(JSON.parse(listed.stdout).passkeys).toMatchObject([{ name: 'virtual key' }]);

    const first = exec(alice.env, 'SUP-2');
    await confirm(first, 'stderr');
    expect(await first.exit(), first.stderr).toBe(0);
    // A second session: the passkey again, and no IdP login in between.
    const second = exec(alice.env, 'SUP-3');
    await confirm(second, 'stderr');
    expect(await second.exit(), second.stderr).toBe(0);
    expect(second.stderr).not.toContain('device_authorization');
    // exec's stdout is the command's own: imp's events never land there.
    expect(first.stdout + second.stdout).toBe('');

    const erin = makeUserEnv({ IMP_BROKER_URL: dev.info.broker });
    await cliLogin(erin.env, dev.info.broker, 'erin');
    const audit = await runImp(['audit', 'list', '--type', 'session.started', '--json'], erin.env);
    expect(audit.code, audit.stderr).toBe(0);
    const started = events(audit.stdout);
    expect(started).toHaveLength(2);
    for (const event of started) expect(event.data.reauth).toMatchObject({ method: 'passkey' });
    // Logins keep what the IdP claimed as its claims; nothing says a password was typed.
    const logins = events(
      (await runImp(['audit', 'list', '--type', 'auth.login', '--json'], erin.env)).stdout,
    );
    expect(logins.length).toBeGreaterThan(0);
    for (const login of logins) {
      expect(login.data).toHaveProperty('idp_claims');
      expect(login.data).not.toHaveProperty('amr');
    }

    // imp passkey remove: confirmed with the passkey itself; afterwards sessions say how to enrol.
    const id = String(JSON.parse(listed.stdout).passkeys[0].id);
    const remove = new ImpProcess(['passkey', 'remove', id, '--no-browser', '--json'], alice.env);
    await confirm(remove);
    expect(await remove.exit(), remove.stderr).toBe(0);
    expect(remove.stdout).toContain(JSON.stringify({ event: 'passkey_removed', id }));
    expect(JSON.parse((await runImp(['passkey', 'list', '--json'], alice.env)).stdout).passkeys).toEqual([]);
    const removed = events(
      (await runImp(['audit', 'list', '--type', 'passkey.removed', '--json'], erin.env)).stdout,
    );
    expect(removed).toMatchObject([
      { data: { credential: id, reauth: { method: 'passkey', credential: id } } },
    ]);
    const after = await runImp(
      [
        'exec',
        '--tenant',
        'globex',
        '--ticket',
        'SUP-4',
        '--reason',
        'Look at the failing export',
        '--',
        'true',
      ],
      alice.env,
    );
    expect(after.code).toBe(4);
    expect(after.stderr).toContain('imp passkey add');
  });
});

type Event = { type: string; data: Record<string, unknown> };
function events(stdout: string): Event[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{') || line.startsWith('['))
    .flatMap((line) => {
      const value = JSON.parse(line) as Event | Event[] | { events: Event[] };
      return Array.isArray(value) ? value : 'events' in value ? value.events : [value];
    });
}
