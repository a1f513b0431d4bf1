/**
 * kill -9 of the broker while 16 clients log in, open sessions, call through the proxy and end
 * sessions. The broker is the real `imp broker serve` (a child process on the SQLite store); the
 * IdP runs in-process and clients sign their ID tokens with its key. After a restart on the same
 * state directory:
 *  - `imp audit verify` (the real CLI, logged in as the auditor erin) finds the chain and its
 *    signed checkpoints whole;
 *  - everything a client saw acknowledged (2xx) is in the log: logins, session starts, ends and
 *    the `action.requested` of every proxied call. `action.completed` is written as the answer
 *    finishes streaming, so only a client's last call can lack it — and no more than that.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DevIdp, startDevIdp } from '../../src/dev/idp.js';
import { IMP_BIN, makeUserEnv, ROOT, runImp } from '../helpers/cli.js';
import { exchange, idTokenSigner, storeCliLogin } from '../helpers/id-tokens.js';
import { makeTempDir } from '../helpers/temp.js';

const CLIENTS = 16;

let idp: DevIdp;
let upstream: Server;
let stateDir: string;
let policyFile: string;
let sign: Awaited<ReturnType<typeof idTokenSigner>>;
const children: ChildProcess[] = [];

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js')))
    throw new Error('dist/ is missing: build first (npx tsc -p tsconfig.build.json)');
  idp = await startDevIdp();
  sign = await idTokenSigner(idp);
  upstream = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ users: ['a', 'b', 'c'] }));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  stateDir = makeTempDir('imp-kill-');
  policyFile = join(stateDir, 'broker.yaml');
  await writeFile(
    policyFile,
    `identity: { issuer: ${idp.issuer}, client_id: imp-cli }
audit: { checkpoint_every: 50, checkpoint_interval: 1s }
# 16 simulated people log in from one loopback address as fast as they can: not a flood.
rate_limit: { login: 1000000, public: 1000000 }
roles:
  - { name: support, groups: [support], tenants: ['*'], environments: ['*'], scopes: [read], max_ttl: 1h }
  - { name: security, groups: [security], audit: true }
tenants:
  - { id: globex, upstream: { prod: http://127.0.0.1:${(upstream.address() as AddressInfo).port} } }
`,
  );
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await idp?.close();
  await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
});

/** Starts `imp broker serve` on the state directory; resolves with its URL once it listens. */
function startBroker(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [IMP_BIN, 'broker', 'serve', '--config', policyFile, '--state-dir', stateDir, '--port', '0', '--json'],
    { env: { PATH: process.env.PATH, HOME: stateDir }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the broker did not start\n${stderr}`)), 15_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split('\n').find((l) => l.startsWith('{"broker"'));
      if (line) {
        clearTimeout(timer);
        resolve({ child, url: (JSON.parse(line) as { broker: string }).broker });
      }
    });
    child.on('exit', (code) => reject(new Error(`the broker exited with ${code}\n${stderr}`)));
  });
}

/** What one client saw acknowledged. */
interface Acks {
  logins: string[];
  sessions: string[];
  ends: string[];
  actions: string[];
}

async function client(url: string, index: number, stop: { now: boolean }, acks: Acks): Promise<Acks> {
  const user = `kill-${index}`;
  try {
    for (let k = 0; !stop.now; k++) {
      // Each session needs a login of its own, with a newer auth_time than the last one used.
      const token = await exchange(url, await sign({ user, groups: ['support'], authAgeSeconds: 200 - k }));
      acks.logins.push(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti);
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      const opened = await fetch(`${url}/v1/sessions`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ tenant: 'globex', ticket: 'INC-9', reason: 'Load while the broker dies' }),
      });
      const session = ((await opened.json()) as { session: { id: string } }).session;
      if (opened.status !== 201) throw new Error(`open answered ${opened.status}`);
      acks.sessions.push(session.id);
      for (let call = 0; call < 2; call++) {
        const response = await fetch(`${url}/v1/sessions/${session.id}/proxy/v1/users`, { headers });
        await response.arrayBuffer();
        if (response.status !== 200) throw new Error(`proxy answered ${response.status}`);
        acks.actions.push(response.headers.get('x-imp-action-id')!);
      }
      const ended = await fetch(`${url}/v1/sessions/${session.id}/end`, {
        method: 'POST',
        headers: { authorization: headers.authorization },
      });
      await ended.arrayBuffer();
      if (ended.status !== 200) throw new Error(`end answered ${ended.status}`);
      acks.ends.push(session.id);
    }
  } catch (error) {
    // The broker died mid-request: whatever was not acknowledged does not count. Anything else is a bug.
    if (!stop.now) throw error;
  }
  return acks;
}

describe('kill -9 under load', () => {
  it('after a restart the chain verifies and every acknowledged call has its audit events', async () => {
    const first = await startBroker();
    const stop = { now: false };
    const seen: Acks[] = Array.from({ length: CLIENTS }, () => ({
      logins: [],
      sessions: [],
      ends: [],
      actions: [],
    }));
    const running = seen.map((acks, i) => client(first.url, i, stop, acks));
    // Kill once the broker is mid-load (well past the first round of every client), however long
    // that takes on this machine; bounded, and the assertions below say what was missing.
    const acknowledged = () => seen.reduce((n, acks) => n + acks.actions.length, 0);
    const giveUp = Date.now() + 30_000;
    while (acknowledged() <= 2 * CLIENTS && Date.now() < giveUp) await new Promise((r) => setTimeout(r, 20));
    stop.now = true; // requests in flight now are cut by the kill; no client starts another round
    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    const all = await Promise.all(running);
    const total = (key: keyof Acks) => all.reduce((n, acks) => n + acks[key].length, 0);
    console.log(
      `kill -9 after ${total('logins')} logins, ${total('sessions')} sessions, ${total('actions')} proxied calls, ${total('ends')} ends acknowledged`,
    );
    expect(total('actions')).toBeGreaterThan(CLIENTS);

    const second = await startBroker();
    const env = makeUserEnv({ IMP_BROKER_URL: second.url }).env;
    await storeCliLogin(env, second.url, await exchange(second.url, await sign({ user: 'erin' })));
    const verified = await runImp(['audit', 'verify', '--json'], env);
    expect(verified.code, verified.stderr).toBe(0);
    const report = JSON.parse(verified.stdout.trim().split('\n').at(-1)!);
    expect(report).toMatchObject({ ok: true, problem: null });
    expect(report.checkpoints).toBeGreaterThan(0);

    const db = new Database(join(stateDir, 'imp.db'), { readonly: true });
    try {
      const has = (type: string, field: 'session' | 'login_id' | 'action_id', value: string) =>
        field === 'session'
          ? db.prepare('SELECT 1 FROM audit_events WHERE type = ? AND session = ?').get(type, value) !==
            undefined
          : db
              .prepare(`SELECT 1 FROM audit_events WHERE type = ? AND json_extract(data, '$.${field}') = ?`)
              .get(type, value) !== undefined;
      for (const acks of all) {
        for (const id of acks.logins) expect(has('auth.login', 'login_id', id), `login ${id}`).toBe(true);
        for (const id of acks.sessions) {
          expect(has('session.requested', 'session', id), `session ${id}`).toBe(true);
          expect(has('session.started', 'session', id), `session ${id}`).toBe(true);
        }
        for (const id of acks.ends) expect(has('session.ended', 'session', id), `end ${id}`).toBe(true);
        for (const id of acks.actions)
          expect(has('action.requested', 'action_id', id), `call ${id}`).toBe(true);
        // Only the last acknowledged call of a client may have died before its outcome was written.
        for (const id of acks.actions.slice(0, -1))
          expect(has('action.completed', 'action_id', id), `outcome of ${id}`).toBe(true);
      }
      const loads = db.prepare("SELECT count(*) AS n FROM audit_events WHERE type = 'policy.loaded'").get();
      expect(loads).toEqual({ n: 2 });
    } finally {
      db.close();
    }
    second.child.kill('SIGTERM');
    await new Promise((resolve) => second.child.once('exit', resolve));
  });
});
