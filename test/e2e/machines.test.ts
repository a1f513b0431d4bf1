/**
 * Machine identities against real processes: a workload-token issuer with its own key and JWKS
 * (test/fixtures/workload-issuer.mjs, its own process), trusted by the policy of `imp dev`, and the
 * real `imp exec` / `imp api` / `imp audit` / `imp review`. The broker discovers the issuer's keys
 * through its OIDC discovery document.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMP_BIN, ImpProcess, makeUserEnv, ROOT, runImp, startDev } from '../helpers/cli.js';
import { CHROMIUM, requireComponents } from '../helpers/components.js';
import { cliLogin } from '../helpers/login.js';

const imp = `${process.execPath} ${IMP_BIN}`;
// The audit and review check logs a person (the auditor) in through the real browser step.
const browser = requireComponents(CHROMIUM);
const SUBJECT = 'system:serviceaccount:ops:diag';

/** The issuer process: mints tokens on request, like a cluster's TokenRequest API. */
async function startIssuer() {
  const child = spawn(process.execPath, [join(ROOT, 'test/fixtures/workload-issuer.mjs')], { cwd: ROOT });
  let out = '';
  const issuer = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`issuer did not start: ${out}`)), 15_000);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line).issuer);
      }
    });
    child.on('exit', () => reject(new Error(`issuer exited: ${out}`)));
  });
  return {
    issuer,
    async mint(claims: { sub?: string; aud: string; ttl?: number; iat_offset?: number; jti?: string }) {
      const response = await fetch(`${issuer}/token`, {
        method: 'POST',
        body: JSON.stringify({ sub: SUBJECT, ...claims }),
      });
      return ((await response.json()) as { token: string }).token;
    },
    stop: () => child.kill('SIGTERM'),
  };
}

function policy(issuer: string): string {
  return `reauth: { max_age: 5m, per_session: true }
tickets: { pattern: '^[A-Z][A-Z0-9]+-[0-9]+$' }
reason: { min_length: 10 }
roles:
  - { name: support, groups: [support], tenants: ['*'], environments: ['*'], scopes: [read, write], max_ttl: 1h }
  - { name: security, groups: [security], audit: true, review: true, revoke: true }
tenants:
  - { id: acme, name: Acme Corp, tier: enterprise, approval_required: [write] }
  - { id: globex, name: Globex, tier: standard, approval_required: [] }
machines:
  - name: queue-diag
    issuer: ${issuer}
    subject: 'system:serviceaccount:ops:*'
    tenants: [globex]
    environments: [prod]
    allow: ['GET /v1/users', 'GET /v1/users/*']
    max_ttl: 15m
    ticket_required: true
  - name: never-used
    issuer: ${issuer}
    subject: 'repo:org/runbooks:ref:refs/heads/main'
    tenants: [acme]
    allow: ['GET /v1/users']
`;
}

/** Runs imp with an extra pipe on fd 3 and returns what each stream received. */
function runWithFd3(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 20_000) {
  return new Promise<{ code: number; stdout: string; stderr: string; fd3: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [IMP_BIN, ...args], {
      env,
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    });
    const out = { stdout: '', stderr: '', fd3: '' };
    child.stdout!.on('data', (c: Buffer) => (out.stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out.stderr += c.toString()));
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (c: Buffer) => (out.fd3 += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`imp ${args.join(' ')} timed out\n${JSON.stringify(out)}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, ...out });
    });
    child.stdin!.end();
  });
}

const jsonLines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('machine identities', () => {
  let dev: Awaited<ReturnType<typeof startDev>>;
  let issuer: Awaited<ReturnType<typeof startIssuer>>;
  let dir: string;
  beforeAll(async () => {
    issuer = await startIssuer();
    dir = mkdtempSync(join(tmpdir(), 'imp-machines-'));
    writeFileSync(join(dir, 'policy.yaml'), policy(issuer.issuer));
    dev = await startDev(['--policy', join(dir, 'policy.yaml')]);
  }, 40_000);
  afterAll(async () => {
    await dev?.stop();
    issuer?.stop();
  });

  const tokenFile = async (claims: Parameters<typeof issuer.mint>[0]) => {
    const file = join(dir, `token-${Math.random().toString(36).slice(2)}`);
    writeFileSync(file, await issuer.mint(claims), { mode: 0o600 });
    return file;
  };
  const exchange = async (token: string, extra: Record<string, string> = {}) => {
    const response = await fetch(`${dev.info.broker}/v1/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: token,
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        tenant: 'globex',
        ticket: 'INC-7',
        reason: 'Nightly queue diagnostics',
        ...extra,
      }),
    });
    return {
      status: response.status,
      body: (await response.json()) as {
        access_token?: string;
        session?: { id: string };
        error?: { code: string; message: string; details?: { rule?: string } };
      },
    };
  };

  it('exec under a machine identity reads through the proxy, is refused off its allow-list and on writes, and its events go to fd 3 only', async () => {
    const user = makeUserEnv({ IMP_BROKER_URL: dev.info.broker });
    const file = await tokenFile({ aud: dev.info.broker });
    const script = `${imp} api GET /v1/users > "$IMP_OUT" && test -s "$IMP_OUT" && echo read-ok; ${imp} api GET /v1/users/usr_gx01 >/dev/null; echo "user=$?"; ${imp} api GET /v1/invoices; echo "outside=$?"; ${imp} api POST /v1/users/u-1/reset-mfa; echo "write=$?"; test -z "$IMP_IDENTITY_TOKEN_FILE" && echo no-identity-file`;
    const result = await runWithFd3(
      [
        'exec',
        '--tenant',
        'globex',
        '--ticket',
        'INC-7',
        '--reason',
        'Nightly queue diagnostics',
        '--json',
        '--events-fd',
        '3',
        '--',
        'sh',
        '-c',
        script,
      ],
      { ...user.env, IMP_IDENTITY_TOKEN_FILE: file, IMP_OUT: join(dir, 'users.json') },
      30_000,
    );
    expect(result.code, result.stderr).toBe(0);
    // The child's stdout is the child's alone.
    expect(result.stdout.split('\n').filter(Boolean)).toEqual([
      'read-ok',
      'user=0',
      'outside=4',
      'write=4',
      'no-identity-file',
    ]);
    expect(jsonLines(result.stderr)).toEqual([]);
    expect(result.stderr).toContain('machine.path_allowlist');
    expect(result.stderr).toContain('scope.read_only');
    const events = jsonLines(result.fd3);
    expect(events.map((e) => e.event)).toEqual(['session_started', 'session_ended']);
    expect(events[0]!.machine).toBe('queue-diag');
    const summary = events[1]!.summary as { calls: { method: string; path: string; outcome: string }[] };
    expect(summary.calls.map((c) => `${c.method} ${c.path} ${c.outcome}`)).toEqual([
      'GET /v1/users completed',
      'GET /v1/users/usr_gx01 completed',
      'GET /v1/invoices denied',
      'POST /v1/users/u-1/reset-mfa denied',
    ]);

    // The same token never opens a second session.
    const again = await runImp(
      [
        'exec',
        '--tenant',
        'globex',
        '--ticket',
        'INC-7',
        '--reason',
        'Nightly queue diagnostics',
        '--',
        'true',
      ],
      { ...user.env, IMP_IDENTITY_TOKEN_FILE: file },
    );
    expect(again.code, again.stderr).toBe(3);
    expect(again.stderr).toContain('machine.jti_replayed');
  });

  it('a machine cannot act on a tenant, or for longer, or without a ticket, beyond its policy entry', async () => {
    const user = makeUserEnv({ IMP_BROKER_URL: dev.info.broker });
    const run = async (args: string[]) =>
      runImp(['exec', ...args, '--reason', 'Nightly queue diagnostics', '--', 'echo', 'ran'], {
        ...user.env,
        IMP_IDENTITY_TOKEN_FILE: await tokenFile({ aud: dev.info.broker }),
      });
    const acme = await run(['--tenant', 'acme', '--ticket', 'INC-7']);
    expect(acme.code, acme.stderr).toBe(4);
    expect(acme.stderr).toContain('Denied by rule machine.tenant');
    expect(acme.stdout).toBe('');
    const long = await run(['--tenant', 'globex', '--ticket', 'INC-7', '--ttl', '1h']);
    expect(long.code, long.stderr).toBe(4);
    expect(long.stderr).toContain('machine.max_ttl');
    const noTicket = await run(['--tenant', 'globex']);
    expect(noTicket.code, noTicket.stderr).toBe(4);
    expect(noTicket.stderr).toContain('machine.ticket_required');
  });

  it('refuses forged, wrongly addressed, expired, long-lived, replayed, unknown-subject and untrusted tokens', async () => {
    const aud = dev.info.broker;
    const forger = await generateKeyPair('ES256');
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'workload-1', typ: 'JWT' })
      .setIssuer(issuer.issuer)
      .setSubject(SUBJECT)
      .setAudience(aud)
      .setIssuedAt()
      .setExpirationTime('5m')
      .setJti('forged-1')
      .sign(forger.privateKey);
    const untrusted = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'x', typ: 'JWT', jwk: await exportJWK(forger.publicKey) })
      .setIssuer('https://issuer.invalid')
      .setSubject(SUBJECT)
      .setAudience(aud)
      .setIssuedAt()
      .setExpirationTime('5m')
      .setJti('untrusted-1')
      .sign(forger.privateKey);
    const cases: [string, string, string][] = [
      ['forged', forged, 'bad_signature'],
      ['wrong aud', await issuer.mint({ aud: 'https://another-broker.example' }), 'claim_aud'],
      ['expired', await issuer.mint({ aud, iat_offset: -900, ttl: 600 }), 'expired'],
      ['long-lived', await issuer.mint({ aud, ttl: 86400 }), 'lifetime'],
      [
        'subject',
        await issuer.mint({ aud, sub: 'system:serviceaccount:kube-system:admin' }),
        'machine.subject',
      ],
      ['issuer', untrusted, 'machine.issuer'],
    ];
    for (const [name, token, reason] of cases) {
      const answer = await exchange(token);
      expect(answer.status, name).toBe(401);
      expect(answer.body.access_token, name).toBeUndefined();
      expect(JSON.stringify(answer.body.error), name).toContain(reason);
    }
    // Single use is by jti: a second, differently signed token carrying the same jti opens nothing.
    const jti = `jti-${Math.random()}`;
    expect((await exchange(await issuer.mint({ aud, jti }))).status).toBe(200);
    const replay = await exchange(await issuer.mint({ aud, jti, ttl: 301 }));
    expect(replay.status).toBe(401);
    expect(replay.body.error?.details?.rule).toBe('machine.jti_replayed');
  });

  it('a machine never writes and never breaks glass: not by asking, not with its session token', async () => {
    const aud = dev.info.broker;
    const write = await exchange(await issuer.mint({ aud }), { scope: 'tenant:read tenant:write' });
    expect(write.status).toBe(403);
    expect(write.body.error?.details?.rule).toBe('machine.read_only');
    const glass = await exchange(await issuer.mint({ aud }), { mode: 'break_glass' });
    expect(glass.status).toBe(403);
    expect(glass.body.error?.details?.rule).toBe('machine.break_glass');

    const opened = await exchange(await issuer.mint({ aud }));
    expect(opened.status).toBe(200);
    const bearer = {
      authorization: `Bearer ${opened.body.access_token}`,
      'content-type': 'application/json',
    };
    for (const [path, body] of [
      [
        '/v1/break-glass',
        { tenant: 'globex', ticket: 'INC-1', reason: 'Outage, need to fix now', typed: 'globex' },
      ],
      [
        '/v1/sessions',
        { tenant: 'globex', scope: 'write', ticket: 'INC-1', reason: 'Nightly queue diagnostics' },
      ],
    ] as const) {
      const response = await fetch(`${aud}${path}`, {
        method: 'POST',
        headers: bearer,
        body: JSON.stringify(body),
      });
      expect(response.status, path).toBe(403);
      expect(JSON.stringify(await response.json()), path).toContain('machine.route');
    }
    const write2 = await fetch(`${aud}/v1/sessions/${opened.body.session!.id}/proxy/v1/users/u-1/reset-mfa`, {
      method: 'POST',
      headers: bearer,
    });
    expect(write2.status).toBe(403);
  });

  it.skipIf(!browser)(
    "the machine's calls appear in imp audit and imp review with the machine as actor; an unused identity is flagged",
    async () => {
      const user = makeUserEnv({ IMP_BROKER_URL: dev.info.broker });
      await cliLogin(user.env, dev.info.broker, 'erin');
      const audit = await runImp(['audit', 'list', '--actor', SUBJECT, '--json'], user.env);
      expect(audit.code, audit.stderr).toBe(0);
      const events = jsonLines(audit.stdout).flatMap((e) => (Array.isArray(e.events) ? e.events : [e])) as {
        type: string;
        actor: { sub: string; roles: string[] } | null;
        data: { rule?: string; path?: string };
      }[];
      const types = new Set(events.map((e) => e.type));
      for (const type of [
        'auth.machine',
        'session.started',
        'action.completed',
        'action.denied',
        'session.ended',
      ])
        expect(types, type).toContain(type);
      const denied = events.filter((e) => e.type === 'action.denied').map((e) => e.data.rule);
      expect(denied).toContain('machine.path_allowlist');
      expect(events.every((e) => e.actor?.sub === SUBJECT)).toBe(true);
      expect(events.find((e) => e.type === 'action.completed')?.actor?.roles).toEqual(['machine:queue-diag']);

      const review = await runImp(['review', '--json', '--unused-days', '7'], user.env);
      expect(review.code, review.stderr).toBe(0);
      const report = JSON.parse(review.stdout) as {
        machines: {
          name: string;
          sessions: number;
          denials: number;
          unused: boolean;
          last_used: string | null;
        }[];
        by_person: { person: { sub: string } }[];
      };
      const diag = report.machines.find((m) => m.name === 'queue-diag')!;
      expect(diag.sessions).toBeGreaterThanOrEqual(1);
      expect(diag.denials).toBeGreaterThanOrEqual(1);
      expect(diag.unused).toBe(false);
      expect(report.machines.find((m) => m.name === 'never-used')).toMatchObject({
        unused: true,
        last_used: null,
      });
      expect(report.by_person.map((p) => p.person.sub)).toContain(SUBJECT);
      const text = await runImp(['review'], user.env);
      expect(text.stdout).toMatch(
        /never-used \(repo:org\/runbooks:ref:refs\/heads\/main\): 0 session\(s\).*UNUSED for 30 days/,
      );
    },
    60_000,
  );
});

describe('exec without a login', () => {
  let dev: Awaited<ReturnType<typeof startDev>>;
  beforeAll(async () => {
    dev = await startDev();
  }, 40_000);
  afterAll(async () => {
    await dev?.stop();
  });

  it('--json --no-login exits 3 at once with one line naming the missing identity, and the command never runs', async () => {
    const user = makeUserEnv({ IMP_BROKER_URL: dev.info.broker });
    const started = Date.now();
    const result = await runImp(
      [
        'exec',
        '--tenant',
        'globex',
        '--ticket',
        'INC-9',
        '--reason',
        'Nightly queue diagnostics',
        '--json',
        '--no-login',
        '--',
        'echo',
        'child-ran',
      ],
      user.env,
      { timeoutMs: 10_000 },
    );
    expect(result.code).toBe(3);
    expect(Date.now() - started).toBeLessThan(8_000);
    expect(result.stdout).toBe('');
    // With --json and no --events-fd, imp's events (here the error) are JSON lines on stderr.
    expect(jsonLines(result.stderr).map((e) => (e.error as { code: string }).code)).toEqual([
      'IMP_AUTH_REQUIRED',
    ]);
    const human = result.stderr.split('\n').filter((l) => l && !l.startsWith('{'));
    expect(human).toEqual([
      `error: Not logged in to ${dev.info.broker} and --no-login was given: no identity to act as. Run imp login first, or use a machine identity (--identity-token-file).`,
    ]);
  });

  it('without --no-login the wait for a person is announced on stderr at once; with --events-fd 3 the event goes to fd 3 only', async () => {
    const user = makeUserEnv({ IMP_BROKER_URL: dev.info.broker });
    const child = spawn(
      process.execPath,
      [
        IMP_BIN,
        'exec',
        '--tenant',
        'globex',
        '--ticket',
        'INC-9',
        '--reason',
        'Nightly queue diagnostics',
        '--json',
        '--events-fd',
        '3',
        '--',
        'echo',
        'child-ran',
      ],
      { env: user.env, cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] },
    );
    const out = { stdout: '', stderr: '', fd3: '' };
    child.stdout!.on('data', (c: Buffer) => (out.stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out.stderr += c.toString()));
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (c: Buffer) => (out.fd3 += c.toString()));
    const deadline = Date.now() + 15_000;
    while (
      !(out.stderr.includes('enter the code') && out.fd3.includes('device_authorization')) &&
      Date.now() < deadline
    )
      await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGTERM');
    await new Promise((r) => child.once('close', r));
    expect(out.stderr).toContain('You are not logged in.');
    // The dev IdP gives verification_uri_complete: the link with the code, then the page and the code.
    expect(out.stderr).toMatch(
      /To log in, open http:\/\/127\.0\.0\.1:\d+\/\S+user_code=[A-Z-]+ \(or http:\/\/127\.0\.0\.1:\d+\/\S+ and enter the code [A-Z-]+\)/,
    );
    expect(jsonLines(out.stderr)).toEqual([]);
    expect(out.stdout).toBe('');
    const [event] = jsonLines(out.fd3);
    expect(event).toMatchObject({ event: 'device_authorization' });
    expect(String(event!.user_code)).toMatch(/[A-Z]/);
  });

  it('--json alone keeps the login event off stdout and says on stderr what to open', async () => {
    const user = makeUserEnv({ IMP_BROKER_URL: dev.info.broker });
    const exec = new ImpProcess(
      [
        'exec',
        '--tenant',
        'globex',
        '--ticket',
        'INC-9',
        '--reason',
        'Nightly queue diagnostics',
        '--json',
        '--',
        'echo',
        'child-ran',
      ],
      user.env,
    );
    const deadline = Date.now() + 15_000;
    while (!exec.stderr.includes('enter the code') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    exec.signal('SIGTERM');
    await exec.exit();
    expect(exec.stderr).toContain('enter the code');
    expect(jsonLines(exec.stderr).map((e) => e.event)).toEqual(['device_authorization', 'error']);
    expect(exec.stdout).toBe('');
  });
});
