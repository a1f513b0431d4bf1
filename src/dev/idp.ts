/**
 * The dev stack's identity provider: a real oidc-provider with the Device Authorization Grant, a fixed
 * set of users and our own HTML pages. It only ever listens on loopback over plain http and keeps
 * everything in memory; tests use it to exercise the CLI's login exactly as a real IdP would.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { AsymmetricSigningAlgorithm, Configuration, default as Provider } from 'oidc-provider';
import * as pages from './idp-pages.js';

/** A dev account; `login` doubles as the stable part of its subject id. */
export interface DevUser {
  login: string;
  password: string;
  email: string;
  name: string;
  groups: string[];
}

/** alice(support) bob(support-leads) carol(sre-oncall) dave(sre-oncall) erin(security) mallory(no groups); password = login; email login@example.test */
export const DEV_USERS: readonly DevUser[] = Object.freeze(
  (
    [
      ['alice', 'Alice Example', ['support']],
      ['bob', 'Bob Example', ['support-leads']],
      ['carol', 'Carol Example', ['sre-oncall']],
      ['dave', 'Dave Example', ['sre-oncall']],
      ['erin', 'Erin Example', ['security']],
      ['mallory', 'Mallory Example', []],
    ] as const
  ).map(([login, name, groups]) =>
    Object.freeze({ login, password: login, email: `${login}@example.test`, name, groups: [...groups] }),
  ),
);

/** How to start the dev IdP; every field has a loopback-friendly default. */
export interface DevIdpOptions {
  /** 0 or absent = a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  users?: readonly DevUser[];
  /** Default 'imp-cli'. */
  clientId?: string;
  /** The web console's client (authorization code + PKCE); default 'imp-console'. */
  consoleClientId?: string;
  /** Private JWKs with kid and alg; an ES256 key is generated when absent. */
  signingKeys?: JWK[];
  /** Default 300. */
  deviceCodeTtlSeconds?: number;
  /** Advertised as `interval` in device authorization responses; default 1 (loopback polling is cheap). */
  pollIntervalSeconds?: number;
}

/** A running dev IdP. */
export interface DevIdp {
  /** e.g. http://127.0.0.1:41234, no trailing slash. */
  issuer: string;
  clientId: string;
  /** The private JWKs in use, so tests can forge tokens signed with the IdP's real key. */
  signingKeys: JWK[];
  close(): Promise<void>;
}

const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const SCOPES = ['openid', 'email', 'profile', 'groups'];
const ACCOUNT_PREFIX = 'user-';

/** Starts the IdP on loopback and resolves once it accepts connections. */
export async function startDevIdp(options: DevIdpOptions = {}): Promise<DevIdp> {
  const host = options.host ?? '127.0.0.1';
  const users = options.users ?? DEV_USERS;
  const clientId = options.clientId ?? 'imp-cli';
  const signingKeys = options.signingKeys ?? [await generateSigningKey()];
  const idTokenAlg = checkSigningKeys(signingKeys);
  const oidcProvider = await quietly(() => import('oidc-provider'));

  let handle: RequestListener = (_req, res) => res.writeHead(503).end();
  const server = createServer((req, res) => handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  const config: Configuration = {
    clients: [
      {
        client_id: clientId,
        client_name: 'imp CLI',
        token_endpoint_auth_method: 'none',
        grant_types: [DEVICE_CODE_GRANT],
        response_types: [],
        redirect_uris: [],
        require_auth_time: true,
        id_token_signed_response_alg: idTokenAlg,
        scope: SCOPES.join(' '),
      },
      {
        // The broker's web console: authorization code + PKCE, public (the dev stack holds no secrets).
        // `native` lets a loopback redirect URI match on any port (RFC 8252 §7.3): the broker's port
        // is only known after the IdP started.
        client_id: options.consoleClientId ?? 'imp-console',
        client_name: 'imp console',
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        // localhost too: in passkey mode the broker is reached as localhost (browsers refuse an IP address as a WebAuthn relying party).
        redirect_uris: [
          'http://127.0.0.1/console/callback',
          'http://[::1]/console/callback',
          'http://localhost/console/callback',
        ],
        require_auth_time: true,
        id_token_signed_response_alg: idTokenAlg,
        scope: SCOPES.join(' '),
      },
    ],
    // jose's JWK and the oidc-provider typings' JWK describe the same JSON; only the declarations differ.
    jwks: { keys: signingKeys as NonNullable<Configuration['jwks']>['keys'] },
    // Signed with a fresh secret per start: restarting `imp dev` logs every browser out.
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes: SCOPES,
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    // The broker reads groups and email from the ID token itself; it never calls userinfo.
    conformIdTokenClaims: false,
    interactions: { policy: interactionPolicy(oidcProvider.interactionPolicy) },
    features: {
      devInteractions: { enabled: false },
      deviceFlow: {
        enabled: true,
        userCodeInputSource: (ctx, form, _out, err) => {
          ctx.type = 'html';
          ctx.body = err?.name === 'AbortedError' ? pages.abortedPage() : pages.userCodeInputPage(form, err);
        },
        userCodeConfirmSource: (ctx, form, client, _deviceInfo, userCode) => {
          ctx.type = 'html';
          ctx.body = pages.userCodeConfirmPage(form, client.clientName ?? client.clientId, userCode);
        },
        successSource: (ctx) => {
          ctx.type = 'html';
          ctx.body = pages.successPage(ctx.oidc.client?.clientName ?? clientId);
        },
      },
    },
    // Nothing long-lived may reach a laptop: no refresh tokens, whatever the scope asked for.
    issueRefreshToken: () => false,
    // The device confirm page is the consent step, so the first-party CLI gets the scopes it asked for.
    loadExistingGrant: async (ctx) => {
      const { client, session, params } = ctx.oidc;
      if (!client || !session?.accountId) return undefined;
      const grantId = ctx.oidc.result?.consent?.grantId ?? session.grantIdFor(client.clientId);
      const grant =
        (grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined) ??
        new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      grant.addOIDCScope(String(params?.scope ?? 'openid'));
      await grant.save();
      return grant;
    },
    findAccount: (_ctx, sub) => {
      const user = users.find((u) => accountIdOf(u) === sub);
      if (!user) return undefined;
      return {
        accountId: sub,
        claims: () => ({
          sub,
          email: user.email,
          email_verified: true,
          name: user.name,
          groups: [...user.groups],
        }),
      };
    },
    renderError: (ctx, out) => {
      ctx.type = 'html';
      ctx.body = pages.errorPage({ ...out });
    },
    // Seconds, all explicit: the browser session lasts a working day, codes and tokens minutes.
    ttl: {
      DeviceCode: options.deviceCodeTtlSeconds ?? 300,
      Interaction: 600,
      AccessToken: 600,
      IdToken: 600,
      Session: 8 * 3600,
      Grant: 8 * 3600,
    },
  };
  const provider = await quietly(() => new oidcProvider.Provider(issuer, config));
  const interval = options.pollIntervalSeconds ?? 1;
  provider.use(async (ctx, next) => {
    await next();
    // oidc-provider omits `interval`, which makes clients wait RFC 8628's default 5 s between polls.
    if (ctx.oidc?.route === 'device_authorization' && ctx.status === 200 && ctx.body) {
      Object.assign(ctx.body, { interval });
    }
  });

  const oidcCallback = provider.callback();
  const interactions = interactionHandler(provider, users, clientId);
  handle = (req, res) => {
    const match = /^\/interaction\/([\w-]+)$/.exec(new URL(req.url ?? '/', issuer).pathname);
    if (!match?.[1]) return oidcCallback(req, res);
    interactions(req, res, match[1]).catch(() => {
      if (!res.headersSent) pages.sendHtml(res, 500, pages.errorPage({ error: 'server_error' }));
      else res.end();
    });
  };

  return {
    issuer,
    clientId,
    signingKeys,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Browsers and fetch keep idle connections open; without this close() waits for them.
        server.closeAllConnections();
      }),
  };
}

function interactionHandler(provider: Provider, users: readonly DevUser[], clientId: string) {
  const hint =
    users === DEV_USERS
      ? `Dev users: ${DEV_USERS.map((u) => u.login).join(', ')} (password = login).`
      : undefined;
  return async (req: IncomingMessage, res: ServerResponse, uid: string): Promise<void> => {
    const details = await provider.interactionDetails(req, res).catch(() => undefined);
    if (!details || details.uid !== uid || details.prompt.name !== 'login') {
      const error_description =
        'This sign-in page has expired or belongs to another browser. Start again from your terminal.';
      return pages.sendHtml(res, 400, pages.errorPage({ error: 'invalid_request', error_description }));
    }
    const sessionUser = users.find((u) => accountIdOf(u) === details.session?.accountId);
    const page = (login: string | undefined, error?: string) => ({
      action: `/interaction/${details.uid}`,
      clientName: details.params.client_id === clientId ? 'imp CLI' : 'imp console',
      login,
      error,
      hint,
      // A login page shown while a session exists means a request demanded a fresh login (max_age).
      reauthenticate: details.session?.accountId !== undefined,
    });
    if (req.method === 'GET') return pages.sendHtml(res, 200, pages.loginPage(page(sessionUser?.login)));
    if (req.method !== 'POST')
      return pages.sendHtml(res, 405, pages.errorPage({ error: 'method not allowed' }));

    const form = await readForm(req);
    if (form.get('cancel')) {
      const result = { error: 'access_denied', error_description: 'End-User cancelled the sign-in' };
      return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
    }
    const login = form.get('login') ?? '';
    const user = users.find((u) => u.login === login);
    if (!user || !sameSecret(user.password, form.get('password') ?? '')) {
      return pages.sendHtml(res, 200, pages.loginPage(page(login, 'Wrong login or password. Try again.')));
    }
    const result = { login: { accountId: accountIdOf(user), amr: ['pwd'] } };
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  };
}

// oidc-provider turns max_age=0 into prompt=login, which the device flow then drops (prompt is a
// front-channel parameter), so max_age=0 would silently reuse any session. The converted prompt
// survives in the stored device code's params, so ask for the password whenever it is there.
function interactionPolicy(policies: typeof import('oidc-provider').interactionPolicy) {
  const policy = policies.base();
  const check = new policies.Check(
    'max_age_zero',
    'End-User re-authentication is required',
    'login_required',
    (ctx) => {
      const prompt = ctx.oidc.deviceCode?.params?.prompt;
      const reauthRequested = typeof prompt === 'string' && prompt.split(' ').includes('login');
      return reauthRequested && !ctx.oidc.result?.login;
    },
  );
  policy.get('login')?.checks.add(check);
  // The console is registered as `native` only so its loopback redirect may use any port; it is
  // first-party, so like the CLI it gets no consent page (the login page is the interaction).
  policy.get('consent')?.checks.remove('native_client_prompt');
  return policy;
}

function accountIdOf(user: DevUser): string {
  return `${ACCOUNT_PREFIX}${user.login}`;
}

function sameSecret(expected: string, given: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(expected), digest(given));
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let body = '';
  for await (const chunk of req) {
    body += String(chunk);
    if (body.length > 16_384) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

async function generateSigningKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: await calculateJwkThumbprint(jwk), alg: 'ES256', use: 'sig' };
}

/** Returns the alg the ID tokens are signed with (the first key's); oidc-provider checks it is supported. */
function checkSigningKeys(keys: JWK[]): AsymmetricSigningAlgorithm {
  if (keys.length === 0) throw new Error('startDevIdp: signingKeys must hold at least one key');
  for (const key of keys) {
    if (!key.kid || !key.alg || !key.d)
      throw new Error('startDevIdp: every signing key needs kid, alg and d');
  }
  return (keys[0]?.alg ?? 'ES256') as AsymmetricSigningAlgorithm;
}

// Known, deliberate dev-only choices oidc-provider announces on every start (Node 20 runtime,
// in-memory adapter); anything else it prints still gets through.
const EXPECTED_NOTICES = [/Unsupported runtime/, /in-memory adapter/];

async function quietly<T>(fn: () => T | Promise<T>): Promise<T> {
  const { warn, info } = console;
  const filter =
    (print: (...args: unknown[]) => void) =>
    (...args: unknown[]) => {
      if (!EXPECTED_NOTICES.some((re) => re.test(String(args[0])))) print(...args);
    };
  console.warn = filter(warn);
  console.info = filter(info);
  try {
    return await fn();
  } finally {
    console.warn = warn;
    console.info = info;
  }
}
