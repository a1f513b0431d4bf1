/**
 * Real receivers for notification tests: an SMTP server (smtp-server) that offers STARTTLS with a
 * throwaway certificate made by openssl and requires authentication over TLS, and an HTTP receiver
 * whose answers a test scripts per path (a status, or hang until the test ends).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { type ParsedMail, simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { makeTempDir } from './temp.js';

/** A self-signed certificate for 127.0.0.1 (files in a temp dir). */
export function throwawayCert(): { keyFile: string; certFile: string } {
  const dir = makeTempDir('imp-smtp-cert-');
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore', timeout: 10_000 },
  );
  return { keyFile, certFile };
}

/** One mail as the SMTP server received it. */
export interface ReceivedMail {
  /** RCPT TO addresses. */
  to: string[];
  /** True when the mail came over a connection upgraded by STARTTLS. */
  secure: boolean;
  user: string | undefined;
  raw: string;
  parsed: ParsedMail;
}

/**
 * A running SMTP server on 127.0.0.1 (port 0) that needs STARTTLS, then AUTH PLAIN/LOGIN with
 * user/pass; `noStartTls` makes it a relay that neither offers nor accepts STARTTLS (a downgrade).
 */
export async function startSmtpServer(
  credentials: { user: string; pass: string },
  options: { noStartTls?: boolean } = {},
) {
  const { keyFile, certFile } = throwawayCert();
  const mails: ReceivedMail[] = [];
  const auths: string[] = [];
  const server = new SMTPServer({
    secure: false,
    // A relay without STARTTLS: neither offered nor accepted.
    ...(options.noStartTls ? { hideSTARTTLS: true, disabledCommands: ['STARTTLS'] } : {}),
    key: readFileSync(keyFile),
    cert: readFileSync(certFile),
    authMethods: ['PLAIN', 'LOGIN'],
    // Credentials only after STARTTLS (smtp-server's default, said here on purpose).
    allowInsecureAuth: false,
    logger: false,
    onAuth(auth, _session, callback) {
      auths.push(auth.username ?? '');
      if (auth.username === credentials.user && auth.password === credentials.pass)
        return callback(null, { user: auth.username });
      return callback(new Error('Invalid username or password'));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        simpleParser(raw)
          .then((parsed) => {
            mails.push({
              to: session.envelope.rcptTo.map((r) => r.address),
              secure: session.secure,
              user: session.user as string | undefined,
              raw,
              parsed,
            });
            callback();
          })
          .catch(callback);
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    caFile: certFile,
    mails,
    /** Usernames of every AUTH attempt. */
    auths,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** One request as the HTTP receiver got it, with what it answered. */
export interface ReceivedPost {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  status: number | 'hung';
}

/** An HTTP receiver: `plan[path]` lists the answers in order (the last repeats); 'hang' never answers. */
export async function startHttpReceiver(plan: Record<string, (number | 'hang')[]>) {
  const posts: ReceivedPost[] = [];
  const hung: (() => void)[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0]!;
      const answers = plan[path] ?? [404];
      const seen = posts.filter((p) => p.path === path).length;
      const answer = answers[Math.min(seen, answers.length - 1)]!;
      posts.push({ path, headers: req.headers, body, status: answer === 'hang' ? 'hung' : answer });
      if (answer === 'hang') hung.push(() => res.destroy());
      else res.writeHead(answer, { 'content-type': 'text/plain' }).end(answer < 300 ? 'ok' : 'no');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    posts,
    plan,
    close: () => {
      for (const release of hung) release();
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Waits until `check` returns a value (not undefined/false), polling; fails after `ms`. */
export async function waitFor<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  ms = 8000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
