/**
 * The README's "outside `imp dev`" recipe, done: the example tenant service (examples/tenant-service,
 * on @imp/verify alone), `imp broker serve` with the example's policy pointed at it and at an IdP (the
 * dev IdP, standing in for the company's), and an engineer's session through the real CLI.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { ImpProcess, makeUserEnv, ROOT, runImp } from '../helpers/cli.js';
import { exchange, idTokenSigner, storeCliLogin } from '../helpers/id-tokens.js';

const EXAMPLE = join(ROOT, 'examples', 'tenant-service');

/** A port nobody listens on right now. The broker and the service each need the other's URL before they start. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Starts the example service and resolves with its URL once it prints it. */
function startService(brokerUrl: string): Promise<{ url: string; child: ChildProcessWithoutNullStreams }> {
  const child = spawn(process.execPath, [join(EXAMPLE, 'server.js')], {
    env: { ...process.env, IMP_BROKER_URL: brokerUrl, PORT: '0' },
    cwd: EXAMPLE,
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.startsWith('{"listening"'));
      if (line) resolve({ url: (JSON.parse(line) as { listening: string }).listening, child });
    });
    child.once('exit', (code) => reject(new Error(`the example service exited (${code}): ${err}`)));
  });
}

describe('the example tenant service behind `imp broker serve`', () => {
  let idp: DevIdp;
  let service: { url: string; child: ChildProcessWithoutNullStreams };
  let broker: ImpProcess;
  let brokerUrl: string;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'imp-example-'));
    idp = await startDevIdp();
    brokerUrl = `http://127.0.0.1:${await freePort()}`;
    service = await startService(brokerUrl);
    // The example's own policy, with its two placeholders pointed at this IdP and this service.
    const policy = (await readFile(join(EXAMPLE, 'broker.yaml'), 'utf8'))
      .replace('https://idp.example.com', idp.issuer)
      .replaceAll('http://127.0.0.1:8080', service.url);
    await writeFile(join(dir, 'broker.yaml'), policy);
    broker = new ImpProcess(
      [
        'broker',
        'serve',
        '--config',
        join(dir, 'broker.yaml'),
        '--state-dir',
        join(dir, 'state'),
        '--port',
        brokerUrl.split(':')[2]!,
        '--json',
      ],
      makeUserEnv().env,
    );
    // The ready line also names the audit log's origin and checkpoint key (for witnesses).
    expect(await broker.jsonLine((line) => typeof line.broker === 'string')).toMatchObject({
      broker: brokerUrl,
    });
  });

  afterAll(async () => {
    broker?.signal('SIGTERM');
    await broker?.exit().catch(() => {});
    service?.child.kill('SIGTERM');
    await idp?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('an engineer reads the tenant through the proxy; the service sees who; writes, other tenants and bare calls are refused', async () => {
    const sign = await idTokenSigner(idp);
    const token = await exchange(brokerUrl, await sign({ user: 'alice' }));
    const opened = await fetch(`${brokerUrl}/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        tenant: 'globex',
        environment: 'prod',
        ticket: 'SUP-7',
        reason: 'Customer cannot see their notes',
      }),
    });
    expect(opened.status).toBe(201);
    const { session } = (await opened.json()) as { session: { id: string } };

    const user = makeUserEnv({ IMP_BROKER_URL: brokerUrl, IMP_SESSION_ID: session.id });
    await storeCliLogin(user.env, brokerUrl, token);
    const read = await runImp(['api', 'GET', '/v1/notes', '--json'], user.env);
    expect(read.code, read.stderr).toBe(0);
    expect(JSON.parse(read.stdout)).toMatchObject({
      status: 200,
      body: { tenant: 'globex', notes: [{ text: 'Migrating to the new plan on Monday' }] },
    });

    const whoami = await runImp(['api', 'GET', '/v1/whoami', '--json'], user.env);
    expect(JSON.parse(whoami.stdout).body).toMatchObject({
      tenant: 'globex',
      actor: { email: 'alice@example.test' },
      scopes: ['read'],
      ticket: 'SUP-7',
    });

    // A write in a read session: the broker refuses it (exit 4) before the service sees anything.
    const write = await runImp(['api', 'POST', '/v1/notes', '--data', '{"text":"hi"}'], user.env);
    expect(write.code).toBe(4);
    expect(write.stderr).toContain('scope.read_only');
    const log = await runImp(['api', 'GET', '/v1/access-log', '--json'], user.env);
    expect(
      JSON.parse(log.stdout).body.entries.map(
        (e: { method: string; path: string }) => `${e.method} ${e.path}`,
      ),
    ).toEqual(['GET /v1/notes', 'GET /v1/whoami', 'GET /v1/access-log']);

    // Straight to the service, around the broker: no token, no service.
    const bare = await fetch(`${service.url}/v1/notes`);
    expect(bare.status).toBe(401);
    // The broker token is not a session token either.
    expect(
      (await fetch(`${service.url}/v1/notes`, { headers: { authorization: `Bearer ${token}` } })).status,
    ).toBe(401);

    // Ended is final: the proxy refuses, exit 6.
    expect((await runImp(['end', session.id], user.env)).code).toBe(0);
    expect((await runImp(['api', 'GET', '/v1/notes'], user.env)).code).toBe(6);
  });
});
