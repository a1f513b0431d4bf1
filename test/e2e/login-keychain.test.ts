/**
 * The same login as login.test.ts, but the broker token goes to a real Secret Service
 * (gnome-keyring under dbus-run-session), not to a file.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeDeviceLogin } from '../helpers/browser.js';
import { IMP_BIN, ImpProcess, startDev } from '../helpers/cli.js';
import { CHROMIUM, GNOME_KEYRING, requireComponents } from '../helpers/components.js';
import { type KeyringSession, startKeyringSession } from '../helpers/keyring.js';

const run = requireComponents(CHROMIUM, GNOME_KEYRING);

describe.skipIf(!run)('imp login with the OS keychain (gnome-keyring Secret Service)', () => {
  let dev: Awaited<ReturnType<typeof startDev>>;
  let keyring: KeyringSession;

  beforeAll(async () => {
    dev = await startDev();
    keyring = await startKeyringSession();
  });
  afterAll(async () => {
    await keyring?.close();
    await dev?.stop();
  });

  it('stores the broker token in the keychain, whoami reads it back, logout removes it', async () => {
    const env = { ...keyring.env, IMP_CREDENTIAL_STORE: 'auto', NO_COLOR: '1' };
    const imp = new ImpProcess(['login', '--broker', dev.info.broker, '--no-browser', '--json'], env);
    const code = await imp.jsonLine((v) => v.event === 'device_authorization');
    await completeDeviceLogin({
      url: String(code.verification_uri_complete),
      login: 'dave',
      password: 'dave',
    });
    expect(await imp.exit(), imp.stderr).toBe(0);
    // auto mode found the keychain: no fallback warning, no credentials file.
    expect(imp.stderr).not.toContain('no OS keychain');
    expect(existsSync(join(keyring.home, '.local', 'state', 'imp', 'credentials.json'))).toBe(false);

    const whoami = await keyring.run(process.execPath, [IMP_BIN, 'whoami', '--json'], { env });
    expect(whoami.code, whoami.stderr).toBe(0);
    expect(JSON.parse(whoami.stdout).user).toMatchObject({ email: 'dave@example.test', roles: ['oncall'] });

    const search = await keyring.run('secret-tool', ['search', 'service', 'imp'], { env });
    expect(`${search.stdout}${search.stderr}`).toContain(dev.info.broker);

    const logout = await keyring.run(process.execPath, [IMP_BIN, 'logout'], { env });
    expect(logout.code).toBe(0);
    const after = await keyring.run(process.execPath, [IMP_BIN, 'whoami'], { env });
    expect(after.code).toBe(3);
  });

  it('IMP_CREDENTIAL_STORE=keychain without a Secret Service fails clearly instead of writing a file', async () => {
    const env = {
      PATH: process.env.PATH,
      HOME: keyring.home,
      DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent',
      IMP_CREDENTIAL_STORE: 'keychain',
      IMP_BROKER_URL: dev.info.broker,
    };
    const result = await keyring.run(process.execPath, [IMP_BIN, 'whoami'], { env });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/keychain/i);
  });
});
