// Broker benchmarks against real processes: `imp broker serve` (SQLite store, auditing on, the
// default policy rules: fresh login per session, 5 min re-auth window) and the demo tenant API in
// a process of its own; the dev IdP and the load generator run here.
//
// Session open: every open needs a login of its own (reauth.per_session: true, kept on purpose), so
// logins are made beforehand — one per open, with strictly increasing auth_time per person — and
// only POST /v1/sessions is timed. Clients are distinct people opening read sessions on tenants
// that need no approval.
// Proxy: the same GET stream straight to the tenant API (with a session token the broker minted)
// and through /v1/sessions/:id/proxy, in this run: latency with one connection, throughput with 16.
//
// BENCH_PROFILE=<dir> runs the broker under `node --cpu-prof` and leaves the profile there.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { importJWK, SignJWT } from 'jose';
import { Agent, Pool, request } from 'undici';
import { startDevIdp } from '../dist/dev/idp.js';
import { closedLoop, IMP_BIN, latency, round, startChild } from './lib.js';
import { haveNginx, startNginx } from './nginx.js';

const quick = process.argv.includes('--quick');
const sessionsOnly = process.argv.includes('--sessions-only');
const proxyOnly = process.argv.includes('--proxy-only'); // for profiling one part at a time
// --rss: also hold the 64-client session-open load and the 16-connection proxy load for
// BENCH_RSS_SECONDS (default 60) each, sampling the broker's RSS every second.
const rssRun = process.argv.includes('--rss');
const RSS_SECONDS = Number(process.env.BENCH_RSS_SECONDS ?? (quick ? 6 : 60));
// BENCH_LEVELS="16:100" (clients:opens each, comma-separated) replaces the levels, for profiling one.
const LEVELS = process.env.BENCH_LEVELS
  ? process.env.BENCH_LEVELS.split(',').map((level) => level.split(':').map(Number))
  : quick
    ? [
        [1, 20],
        [16, 5],
        [64, 2],
      ]
    : [
        [1, 150],
        [16, 25],
        [64, 10],
      ];
const PROXY_SECONDS = quick ? 1 : 4;
const PATHS = ['/v1/users', '/v1/invoices', '/v1/settings'];

const idp = await startDevIdp();
const jwk = idp.signingKeys[0];
const idpKey = await importJWK(jwk, jwk.alg);
const tenant = await startChild([new URL('./tenant-api-child.js', import.meta.url).pathname], {
  name: 'tenant API',
  ready: (v) => typeof v.tenant_api === 'string',
});
const tenantApi = tenant.info.tenant_api;
let captured = '';
const capture = createServer((req, res) => {
  captured = req.headers.authorization ?? '';
  res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
});
await new Promise((resolve) => capture.listen(0, '127.0.0.1', resolve));
const captureUrl = `http://127.0.0.1:${capture.address().port}`;

const stateDir = mkdtempSync(join(tmpdir(), 'imp-bench-broker-'));
const rounds = Math.max(...LEVELS.map(([, r]) => r));
const policyFile = join(stateDir, 'broker.yaml');
writeFileSync(
  policyFile,
  `identity: { issuer: ${idp.issuer}, client_id: imp-cli }
reauth: { max_age: 5m, per_session: true }
# One load generator on one address makes every login: the per-address limit would refuse them.
rate_limit: { login: 1000000, public: 1000000 }
roles:
  - { name: bench, groups: [bench], tenants: ['*'], environments: ['*'], scopes: [read], max_ttl: 1h }
tenants:
  - { id: globex, upstream: { prod: ${tenantApi}, capture: ${captureUrl} } }
${Array.from({ length: rounds + 5 }, (_, r) => `  - { id: t${r}, upstream: { prod: ${tenantApi} } }`).join('\n')}
`,
);
const profileDir = process.env.BENCH_PROFILE;
const heapFile = join(stateDir, 'heap.txt'); // written by heap-probe.cjs in the broker (--rss)
const broker = await startChild(
  [
    ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []),
    ...(rssRun ? ['--expose-gc', '-r', new URL('./heap-probe.cjs', import.meta.url).pathname] : []),
    IMP_BIN,
    'broker',
    'serve',
    '--config',
    policyFile,
    '--state-dir',
    stateDir,
    '--port',
    '0',
    '--json',
  ],
  {
    name: 'broker',
    env: { PATH: process.env.PATH, HOME: stateDir, IMP_BENCH_HEAP_FILE: heapFile },
    ready: (v) => typeof v.broker === 'string',
  },
);
const brokerUrl = broker.info.broker;
tenant.child.stdin.write(`${JSON.stringify({ issuer: brokerUrl, audience: 'imp-tenant-api' })}\n`);
for (;;) {
  const health = await fetch(`${tenantApi}/healthz`).then((r) => r.json());
  if (health.configured) break;
  await new Promise((resolve) => setTimeout(resolve, 20));
}

const agent = new Agent({ connections: 128, keepAliveTimeout: 30_000 });

async function call(method, path, token, body) {
  const response = await request(`${brokerUrl}${path}`, {
    method,
    dispatcher: agent,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.body.text();
  return { status: response.statusCode, body: text ? JSON.parse(text) : null };
}

async function login(user, authTime) {
  const now = Math.floor(Date.now() / 1000);
  const idToken = await new SignJWT({ email: `${user}@bench.test`, groups: ['bench'], auth_time: authTime })
    .setProtectedHeader({ alg: jwk.alg, kid: jwk.kid, typ: 'JWT' })
    .setIssuer(idp.issuer)
    .setAudience('imp-cli')
    .setSubject(user)
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .setJti(`${user}-${authTime}-${Math.random()}`)
    .sign(idpKey);
  const answer = await call('POST', '/v1/login', null, { id_token: idToken });
  if (answer.status !== 200) throw new Error(`login: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body.token;
}

async function inBatches(items, size, fn) {
  const out = [];
  for (let i = 0; i < items.length; i += size)
    out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

const ask = (tenantId, environment = 'prod') => ({
  tenant: tenantId,
  environment,
  ticket: 'BENCH-1',
  reason: 'Benchmarking session open',
  ttl: 3600,
});

/** `clients` people each open `perClient` sessions back to back, all at once; only the open is timed. */
async function sessionLevel(label, clients, perClient) {
  const start = Math.floor(Date.now() / 1000) - 250;
  const jobs = [];
  for (let i = 0; i < clients; i++) for (let r = 0; r < perClient; r++) jobs.push({ i, r });
  const tokens = await inBatches(jobs, 16, ({ i, r }) => login(`${label}-${clients}-${i}`, start + r));
  // Under the profiler, an idle second on each side of the timed opens marks them in the profile.
  const gap = () => (profileDir ? new Promise((resolve) => setTimeout(resolve, 1000)) : undefined);
  await gap();
  const samples = [];
  const cpu0 = cpuMs(broker.child.pid);
  await Promise.all(
    Array.from({ length: clients }, async (_, i) => {
      for (let r = 0; r < perClient; r++) {
        const t = performance.now();
        const answer = await call('POST', '/v1/sessions', tokens[i * perClient + r], ask(`t${r}`));
        samples.push(performance.now() - t);
        if (answer.status !== 201) throw new Error(`open: ${answer.status} ${JSON.stringify(answer.body)}`);
      }
    }),
  );
  const cpuPerOpen = round((cpuMs(broker.child.pid) - cpu0) / samples.length, 3);
  await gap();
  // Baseline in the same run: the same clients, the same number of calls, to GET /healthz (the
  // broker's HTTP round trip and a store read, nothing else).
  const floor = [];
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let r = 0; r < perClient; r++) {
        const t = performance.now();
        const answer = await call('GET', '/healthz');
        floor.push(performance.now() - t);
        if (answer.status !== 200) throw new Error(`healthz: ${answer.status}`);
      }
    }),
  );
  return { ...latency(samples), broker_cpu_ms_per_open: cpuPerOpen, healthz: latency(floor) };
}

const sessions = {};
if (!proxyOnly) {
  await sessionLevel('warmup', 8, 5);
  for (const [clients, perClient] of LEVELS)
    sessions[clients] = await sessionLevel('bench', clients, perClient);
}

if (sessionsOnly) {
  await broker.stop();
  await tenant.stop();
  await agent.close();
  capture.close();
  await idp.close();
  process.stdout.write(`${JSON.stringify({ sessions })}\n`);
  process.exit(0);
}

// Proxy: one session for the proxied stream; another (on the capture environment) hands us a session
// token the broker minted, so the direct stream presents exactly what the proxy forwards.
const proxyToken = await login('proxy-user', Math.floor(Date.now() / 1000));
const proxySession = (await call('POST', '/v1/sessions', proxyToken, ask('globex'))).body.session.id;
const captureToken = await login('capture-user', Math.floor(Date.now() / 1000));
const captureSession = (await call('POST', '/v1/sessions', captureToken, ask('globex', 'capture'))).body
  .session.id;
await call('GET', `/v1/sessions/${captureSession}/proxy/v1/ping`, captureToken);
if (!captured.startsWith('Bearer ')) throw new Error('no session token captured');

// The peer: nginx in front of the same tenant API, the same request stream and token as direct.
const nginx = haveNginx ? await startNginx(tenantApi) : null;

function target(kind, connections) {
  const origin = { direct: tenantApi, nginx: nginx?.url, proxy: brokerUrl }[kind];
  const pool = new Pool(origin, { connections, pipelining: 1 });
  const prefix = kind === 'proxy' ? `/v1/sessions/${proxySession}/proxy` : '';
  const authorization = kind === 'proxy' ? `Bearer ${proxyToken}` : captured;
  return {
    pool,
    once: async (_worker, n) => {
      const response = await pool.request({
        method: 'GET',
        path: prefix + PATHS[n % PATHS.length],
        headers: { authorization },
      });
      await response.body.text();
      if (response.statusCode !== 200) throw new Error(`${kind}: HTTP ${response.statusCode}`);
    },
  };
}

/** CPU time (user + system, ms) a child process has used so far (Linux /proc, 10 ms ticks). */
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

async function proxyRun(kind, concurrency, options) {
  const t = target(kind, concurrency);
  await closedLoop({ concurrency, total: 300, once: t.once }); // warm-up: JIT, connections, caches
  // CPU per call of the broker and of the tenant API: on a shared machine the throughput moves with
  // the neighbours' load (and a loaded disk's sync latency), the CPU a call costs much less.
  const cpu0 = { broker: cpuMs(broker.child.pid), tenant: cpuMs(tenant.child.pid) };
  const result = await closedLoop({ concurrency, ...options, once: t.once });
  result.cpu_ms_per_call = {
    broker: round((cpuMs(broker.child.pid) - cpu0.broker) / result.count, 3),
    tenant: round((cpuMs(tenant.child.pid) - cpu0.tenant) / result.count, 3),
  };
  await t.pool.close();
  return result;
}

const proxy = {
  latency_1: {
    direct: await proxyRun('direct', 1, { total: quick ? 300 : 2000 }),
    ...(nginx ? { nginx: await proxyRun('nginx', 1, { total: quick ? 300 : 2000 }) } : {}),
    proxied: await proxyRun('proxy', 1, { total: quick ? 300 : 2000 }),
  },
  throughput_16: {
    direct: await proxyRun('direct', 16, { durationMs: PROXY_SECONDS * 1000 }),
    ...(nginx ? { nginx: await proxyRun('nginx', 16, { durationMs: PROXY_SECONDS * 1000 }) } : {}),
    proxied: await proxyRun('proxy', 16, { durationMs: PROXY_SECONDS * 1000 }),
  },
};
if (nginx) {
  proxy.nginx_ratio = round(proxy.throughput_16.proxied.perSecond / proxy.throughput_16.nginx.perSecond);
  await nginx.stop();
  proxy.nginx_logged = nginx.logged();
}
/** The broker's resident set size in MiB (Linux /proc). */
function brokerRss() {
  const status = readFileSync(`/proc/${broker.child.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

/** The broker's live JS heap in MiB after a forced full GC (bench/heap-probe.cjs, on SIGUSR2). */
async function brokerHeapAfterGc() {
  const lines = () =>
    existsSync(heapFile) ? readFileSync(heapFile, 'utf8').trim().split('\n').filter(Boolean) : [];
  const before = lines().length;
  broker.child.kill('SIGUSR2');
  const deadline = performance.now() + 10_000;
  while (lines().length === before) {
    if (performance.now() > deadline) throw new Error('the broker did not report its heap');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return Number(lines().at(-1));
}

/**
 * Runs `load` for RSS_SECONDS while sampling RSS each second: is there a growth trend? RSS alone
 * cannot tell a leak from V8 growing its heap or the allocator keeping freed pages, so the live
 * heap after a forced GC is also taken once the warm-up fifth is over and at the end (two GCs in
 * the whole run, so the RSS samples stay those of an undisturbed broker).
 */
async function rssUnder(load) {
  const samples = [];
  const heap = [];
  const fifthMs = (RSS_SECONDS * 1000) / 5;
  const heapTimer = setTimeout(() => brokerHeapAfterGc().then((mib) => heap.push(mib)), fifthMs);
  const timer = setInterval(() => samples.push(brokerRss()), 1000);
  const operations = await load(performance.now() + RSS_SECONDS * 1000);
  clearInterval(timer);
  clearTimeout(heapTimer);
  heap.push(await brokerHeapAfterGc());
  const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? 0;
  // The first and the last fifth of the run (the first includes warm-up: JIT, caches, pools).
  const fifth = Math.max(1, Math.floor(samples.length / 5));
  const first = median(samples.slice(0, fifth));
  const last = median(samples.slice(-fifth));
  return {
    seconds: RSS_SECONDS,
    operations,
    first_mib: round(first),
    last_mib: round(last),
    max_mib: round(Math.max(...samples)),
    growth: round((last - first) / first, 3),
    // Live JS heap after a full GC, after the warm-up fifth and at the end of the load.
    heap_after_gc_mib: heap.map((v) => round(v, 1)),
    heap_growth: heap.length === 2 ? round((heap[1] - heap[0]) / heap[0], 3) : null,
    samples: samples.map((v) => round(v, 1)),
  };
}

const rss = {};
if (rssRun) {
  // 64 people opening sessions back to back (login, open, end), a new person every 200 opens so
  // auth_time stays inside the 5 min window and strictly increases per person.
  rss.session_open_64 = await rssUnder(async (deadline) => {
    let opened = 0;
    await Promise.all(
      Array.from({ length: 64 }, async (_, client) => {
        for (let k = 0; performance.now() < deadline; k++) {
          const person = `rss-${client}-${Math.floor(k / 200)}`;
          const token = await login(person, Math.floor(Date.now() / 1000) - 250 + (k % 200));
          const answer = await call('POST', '/v1/sessions', token, ask(`t${k % 20}`));
          if (answer.status !== 201) throw new Error(`open: ${answer.status} ${JSON.stringify(answer.body)}`);
          await call('POST', `/v1/sessions/${answer.body.session.id}/end`, token);
          opened++;
        }
      }),
    );
    return opened;
  });
  rss.proxy_16 = await rssUnder(async (deadline) => {
    const t = target('proxy', 16);
    const result = await closedLoop({
      concurrency: 16,
      durationMs: deadline - performance.now(),
      once: t.once,
    });
    await t.pool.close();
    return result.count;
  });
}

proxy.added_p50_ms = round(proxy.latency_1.proxied.p50 - proxy.latency_1.direct.p50);
proxy.throughput_ratio = round(proxy.throughput_16.proxied.perSecond / proxy.throughput_16.direct.perSecond);

await broker.stop();
await tenant.stop();
await agent.close();
capture.close();
await idp.close();

// Auditing was on: every proxied call left its requested/completed pair.
const db = new Database(join(stateDir, 'imp.db'), { readonly: true });
const audited = db
  .prepare("SELECT count(*) AS n FROM audit_events WHERE type = 'action.completed' AND session = ?")
  .get(proxySession).n;
db.close();
const proxiedCalls =
  proxy.latency_1.proxied.count +
  proxy.throughput_16.proxied.count +
  600 /* two warm-ups of 300 */ +
  (rss.proxy_16?.operations ?? 0);
proxy.audited_calls = audited;
proxy.proxied_calls = proxiedCalls;

process.stdout.write(`${JSON.stringify({ sessions, proxy, rss })}\n`);
