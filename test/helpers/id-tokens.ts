/**
 * ID tokens signed with the dev IdP's real key, on a clock of the caller's choosing (so a test can
 * give the broker a skewed clock while the IdP keeps real time), plus a raw HTTP client for requests
 * `fetch` refuses to send (CR/LF in headers, unknown methods, unnormalised paths), and a way to
 * hand the real CLI a broker token without a browser.
 */
import { connect } from 'node:net';
import { type CryptoKey, importJWK, type JWTPayload, SignJWT } from 'jose';
import { DEV_USERS, type DevIdp } from '../../src/dev/idp.js';

/** What an ID token may be made to say. */
export interface IdTokenOptions {
  /** A dev user's login, or any subject with `groups`. */
  user: string;
  groups?: string[];
  /** Seconds since the epoch, as the IdP's clock reads; default Date.now(). */
  now?: number;
  authAgeSeconds?: number;
  audience?: string;
  lifetimeSeconds?: number;
  extra?: JWTPayload;
}

/** Signs ID tokens as the dev IdP would. */
export async function idTokenSigner(idp: DevIdp): Promise<(options: IdTokenOptions) => Promise<string>> {
  const jwk = idp.signingKeys[0]!;
  const key = (await importJWK(jwk, jwk.alg)) as CryptoKey;
  let counter = 0;
  return async (options) => {
    const dev = DEV_USERS.find((u) => u.login === options.user);
    const now = options.now ?? Math.floor(Date.now() / 1000);
    counter++;
    return new SignJWT({
      email: dev?.email ?? `${options.user}@example.test`,
      name: dev?.name ?? options.user,
      groups: options.groups ?? dev?.groups ?? [],
      auth_time: now - (options.authAgeSeconds ?? 0),
      ...options.extra,
    })
      .setProtectedHeader({ alg: jwk.alg!, kid: jwk.kid!, typ: 'JWT' })
      .setIssuer(idp.issuer)
      .setAudience(options.audience ?? 'imp-cli')
      .setSubject(`user-${options.user}`)
      .setIssuedAt(now)
      .setExpirationTime(now + (options.lifetimeSeconds ?? 600))
      .setJti(`id-${counter}-${Math.random().toString(36).slice(2)}`)
      .sign(key);
  };
}

/** Exchanges an ID token at the broker for a broker token (throws unless 200). */
export async function exchange(brokerUrl: string, idToken: string): Promise<string> {
  const response = await fetch(`${brokerUrl}/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id_token: idToken }),
  });
  const body = (await response.json()) as { token?: string };
  if (response.status !== 200 || !body.token)
    throw new Error(`login failed: ${response.status} ${JSON.stringify(body)}`);
  return body.token;
}

/** A parsed HTTP answer from {@link rawRequest}. */
export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  text: string;
  body: unknown;
}

/** Sends `head` (request line and headers, CRLF-separated, no final blank line) and `body` byte for byte. */
export function rawRequest(url: string, head: string, body: Buffer | string = ''): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to ${JSON.stringify(head.split('\r\n')[0])}`));
    }, 10_000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {}); // a reset after the answer is fine; no answer is caught below
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('utf8');
      const at = text.indexOf('\r\n\r\n');
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (!match || at < 0) return reject(new Error(`not an HTTP answer: ${JSON.stringify(text)}`));
      const headers: Record<string, string> = {};
      for (const line of text.slice(0, at).split('\r\n').slice(1)) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      let payload = text.slice(at + 4);
      if (headers['transfer-encoding'] === 'chunked') payload = dechunk(payload);
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(payload);
      } catch {
        parsed = null;
      }
      resolve({ status: Number(match[1]), headers, text: payload, body: parsed });
    });
    // No half-close: the server answers and closes (Connection: close), even mid-body.
    socket.write(`${head}\r\nConnection: close\r\n\r\n`);
    if (body.length > 0) socket.write(body);
  });
}

function dechunk(text: string): string {
  let out = '';
  let rest = text;
  for (;;) {
    const line = rest.indexOf('\r\n');
    const size = Number.parseInt(rest.slice(0, line), 16);
    if (!size) return out;
    out += rest.slice(line + 2, line + 2 + size);
    rest = rest.slice(line + 2 + size + 2);
  }
}

/** Puts a broker token where the real CLI looks for it (the file credential store of `env`). */
export async function storeCliLogin(env: NodeJS.ProcessEnv, brokerUrl: string, token: string): Promise<void> {
  const { FileCredentialStore } = await import('../../src/client/credentials.js');
  const { resolvePaths } = await import('../../src/client/paths.js');
  const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as {
    sub: string;
    idp_iss: string;
    email: string | null;
    name: string | null;
    groups: string[];
    auth_time: number;
    exp: number;
  };
  const store = new FileCredentialStore(resolvePaths(env).credentialsFile, () => {});
  await store.set(
    brokerUrl,
    JSON.stringify({
      token,
      expires_at: new Date(claims.exp * 1000).toISOString(),
      auth_time: claims.auth_time,
      user: {
        iss: claims.idp_iss,
        sub: claims.sub,
        email: claims.email,
        name: claims.name,
        groups: claims.groups,
        roles: [],
      },
    }),
  );
}
