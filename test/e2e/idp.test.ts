/**
 * The dev IdP is a real OIDC provider: openid-client runs the device flow against it while headless
 * Chromium plays the user. Proves claims, session reuse, max_age re-authentication, wrong passwords,
 * denial and the absence of refresh tokens.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import {
  type BrowserHandle,
  completeDeviceLogin,
  type DeviceLoginOptions,
  openBrowser,
} from '../helpers/browser.js';
import { CHROMIUM, requireComponents } from '../helpers/components.js';

const run = requireComponents(CHROMIUM);
const SCOPE = 'openid email profile groups';

describe.skipIf(!run)('dev IdP (oidc-provider, device flow, headless Chromium)', () => {
  let idp: DevIdp;
  let config: client.Configuration;
  let shared: BrowserHandle;

  beforeAll(async () => {
    idp = await startDevIdp();
    config = await client.discovery(new URL(idp.issuer), idp.clientId, undefined, client.None(), {
      execute: [client.allowInsecureRequests],
    });
    shared = await openBrowser();
  });

  afterAll(async () => {
    await shared?.close();
    await idp?.close();
  });

  // Polls while the browser works, as the CLI does; the poll's rejection is kept for the caller.
  // typeCode: open the bare verification_uri and type the user code, as a user on another device would.
  type BrowserSide = Omit<DeviceLoginOptions, 'url' | 'userCode'> & { typeCode?: boolean };
  async function deviceLogin(params: Record<string, string>, { typeCode, ...browser }: BrowserSide) {
    const authorization = await client.initiateDeviceAuthorization(config, { scope: SCOPE, ...params });
    const polling = client.pollDeviceAuthorizationGrant(config, authorization);
    polling.catch(() => undefined);
    const inBrowser = await completeDeviceLogin(
      typeCode
        ? { ...browser, url: authorization.verification_uri, userCode: authorization.user_code }
        : { ...browser, url: authorization.verification_uri_complete ?? '' },
    );
    return { inBrowser, polling };
  }

  let firstAuthTime = 0;

  it('serves discovery with the device authorization endpoint', () => {
    const metadata = config.serverMetadata();
    expect(metadata.issuer).toBe(idp.issuer);
    expect(metadata.device_authorization_endpoint).toBe(`${idp.issuer}/device/auth`);
    expect(metadata.grant_types_supported).toContain('urn:ietf:params:oauth:grant-type:device_code');
    expect(metadata.scopes_supported).not.toContain('offline_access');
  });

  it('completes the device flow for alice with groups and auth_time in the ID token', async () => {
    const { inBrowser, polling } = await deviceLogin(
      {},
      { login: 'alice', password: 'alice', browser: shared },
    );
    const tokens = await polling;
    expect(inBrowser.askedForPassword).toBe(true);
    expect(tokens.refresh_token).toBeUndefined();
    const claims = tokens.claims();
    expect(claims).toMatchObject({
      iss: idp.issuer,
      aud: 'imp-cli',
      email: 'alice@example.test',
      name: 'Alice Example',
      groups: ['support'],
    });
    expect(claims?.sub).toBe('user-alice');
    expect(claims?.auth_time).toBeTypeOf('number');
    firstAuthTime = claims?.auth_time ?? 0;

    const jwks = createRemoteJWKSet(new URL(`${idp.issuer}/jwks`));
    const { protectedHeader } = await jwtVerify(tokens.id_token ?? '', jwks, {
      issuer: idp.issuer,
      audience: 'imp-cli',
    });
    expect(protectedHeader.kid).toBe(idp.signingKeys[0]?.kid);
  });

  it('reuses the browser session without max_age and keeps the original auth_time', async () => {
    const { inBrowser, polling } = await deviceLogin(
      {},
      { login: 'alice', password: 'alice', browser: shared },
    );
    const claims = (await polling).claims();
    expect(inBrowser.askedForPassword).toBe(false);
    expect(claims?.auth_time).toBe(firstAuthTime);
  });

  it('never grants offline_access or a refresh token', async () => {
    const { polling } = await deviceLogin(
      { scope: `${SCOPE} offline_access` },
      { login: 'alice', password: 'alice', browser: shared },
    );
    const tokens = await polling;
    expect(tokens.refresh_token).toBeUndefined();
    expect(tokens.scope?.split(' ')).not.toContain('offline_access');
  });

  it('asks for the password again when the session is older than max_age', async () => {
    await sleep(Math.max(0, (firstAuthTime + 2) * 1000 - Date.now() + 50));
    const { inBrowser, polling } = await deviceLogin(
      { max_age: '1' },
      { login: 'alice', password: 'alice', browser: shared },
    );
    const claims = (await polling).claims();
    expect(inBrowser.askedForPassword).toBe(true);
    expect(claims?.auth_time).toBeGreaterThan(firstAuthTime);
  });

  // oidc-provider alone would drop max_age=0 in the device flow and reuse the session.
  it('asks for the password again with max_age=0, even right after a login', async () => {
    const { inBrowser, polling } = await deviceLogin(
      { max_age: '0' },
      { login: 'alice', password: 'alice', browser: shared },
    );
    expect(inBrowser.askedForPassword).toBe(true);
    expect((await polling).claims()?.auth_time).toBeTypeOf('number');
  });

  it('shows an error for a wrong password and accepts the right one next (typed user code)', async () => {
    const { inBrowser, polling } = await deviceLogin(
      {},
      { login: 'bob', wrongPassword: 'not-bob', password: 'bob', typeCode: true },
    );
    expect(inBrowser.pages).toEqual(['user-code', 'confirm', 'login', 'login', 'success']);
    expect(inBrowser.loginErrors).toEqual(['Wrong login or password. Try again.']);
    expect((await polling).claims()).toMatchObject({ sub: 'user-bob', groups: ['support-leads'] });
  });

  it('works in a browser without JavaScript', async () => {
    const browser = await openBrowser({ javaScript: false });
    try {
      const { inBrowser, polling } = await deviceLogin({}, { login: 'dave', password: 'dave', browser });
      expect(inBrowser.pages).toEqual(['noscript', 'confirm', 'login', 'success']);
      expect((await polling).claims()).toMatchObject({ sub: 'user-dave', groups: ['sre-oncall'] });
    } finally {
      await browser.close();
    }
  });

  it('ends polling with access_denied when the user aborts in the browser', async () => {
    const { inBrowser, polling } = await deviceLogin(
      {},
      { login: 'carol', password: 'carol', action: 'deny' },
    );
    expect(inBrowser.pages).toEqual(['confirm', 'aborted']);
    await expect(polling).rejects.toMatchObject({ error: 'access_denied' });
  });
});
