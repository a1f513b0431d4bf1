// Session recording: what it costs a person typing and what a busy terminal costs the broker.
// Echo latency: one key at a time into a terminal (node-pty, as a person's terminal emulator would
// be) running `imp start` with the recording off (the shell inherits the terminal) and required (the
// shell on imp's own pty, every byte recorded and uploaded), beside a bare `sh` on the same kind of
// terminal. Broker CPU: `yes | head -n 1000000` in a recorded session; the broker process's CPU time
// (from /proc) from the command's start until the CLI has delivered the last chunk, as a share of
// one core over that time. `node bench/recording.js [--quick]`; prints one JSON line.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importJWK, SignJWT } from 'jose';
import { startDevIdp } from '../dist/dev/idp.js';
import { IMP_BIN, latency, round, startChild } from './lib.js';

const pty = createRequire(import.meta.url)('node-pty');
const quick = process.argv.includes('--quick');
const KEYS = quick ? 40 : 200;

const idp = await startDevIdp();
const jwk = idp.signingKeys[0];
const idpKey = await importJWK(jwk, jwk.alg);
const stateDir = mkdtempSync(join(tmpdir(), 'imp-bench-recording-'));
const policyFile = join(stateDir, 'broker.yaml');
writeFileSync(
  policyFile,
  `identity: { issuer: ${idp.issuer}, client_id: imp-cli }
reauth: { max_age: 1h, per_session: false }
recording: { default: off, rules: [{ tiers: [recorded], mode: required }], max_outage: 30s }
roles:
  - { name: bench, groups: [bench], tenants: ['*'], environments: ['*'], scopes: [read], max_ttl: 1h }
tenants:
  - { id: plain, tier: standard, upstream: { prod: http://127.0.0.1:9 } }
  - { id: taped, tier: recorded, upstream: { prod: http://127.0.0.1:9 } }
  - { id: busy, tier: recorded, upstream: { prod: http://127.0.0.1:9 } }
`,
);
const broker = await startChild(
  [IMP_BIN, 'broker', 'serve', '--config', policyFile, '--state-dir', stateDir, '--port', '0', '--json'],
  {
    name: 'broker',
    env: { PATH: process.env.PATH, HOME: stateDir },
    ready: (v) => typeof v.broker === 'string',
  },
);
const brokerUrl = broker.info.broker;

// A person with a stored login, the way `imp login` leaves it (file credential store).
async function person(user) {
  const home = mkdtempSync(join(tmpdir(), 'imp-bench-home-'));
  const now = Math.floor(Date.now() / 1000);
  const idToken = await new SignJWT({ email: `${user}@bench.test`, groups: ['bench'], auth_time: now })
    .setProtectedHeader({ alg: jwk.alg, kid: jwk.kid, typ: 'JWT' })
    .setIssuer(idp.issuer)
    .setAudience('imp-cli')
    .setSubject(user)
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(idpKey);
  const answer = await fetch(`${brokerUrl}/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id_token: idToken }),
  }).then((r) => r.json());
  const token = answer.token;
  const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
  const env = {
    PATH: process.env.PATH,
    HOME: home,
    XDG_STATE_HOME: join(home, '.local/state'),
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_CACHE_HOME: join(home, '.cache'),
    IMP_BROKER_URL: brokerUrl,
    IMP_CREDENTIAL_STORE: 'file',
    SHELL: '/bin/sh',
    TERM: 'xterm-256color',
    NO_COLOR: '1',
  };
  const { FileCredentialStore } = await import('../dist/client/credentials.js');
  const { resolvePaths } = await import('../dist/client/paths.js');
  mkdirSync(env.XDG_STATE_HOME, { recursive: true });
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
  return env;
}

/** A terminal running `command`; `until(text)` waits for output containing it. */
function terminal(command, args, env) {
  const term = pty.spawn(command, args, { name: 'xterm-256color', cols: 120, rows: 40, env });
  let output = '';
  const waiters = new Set();
  term.onData((data) => {
    output += data;
    for (const w of waiters) w();
  });
  const exited = new Promise((resolve) => term.onExit(resolve));
  return {
    term,
    exited,
    get output() {
      return output;
    },
    until(text, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const from = 0;
        const check = () => {
          if (output.indexOf(text, from) >= 0) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no ${JSON.stringify(text)} in ${JSON.stringify(output.slice(-500))}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

/** Types one key at a time and times until the terminal shows it; returns the latencies. */
async function echoLatency(t) {
  const samples = [];
  for (let i = 0; i < KEYS; i++) {
    const key = String.fromCharCode(97 + (i % 26));
    const before = t.output.length;
    const start = performance.now();
    await new Promise((resolve) => {
      const poll = () => (t.output.length > before ? resolve() : setImmediate(poll));
      t.term.write(key);
      poll();
    });
    samples.push(performance.now() - start);
  }
  t.term.write('\u0015'); // Ctrl-U: drop the typed line
  return latency(samples);
}

function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in clock ticks of 10 ms
}

const startArgs = (tenant) => [
  IMP_BIN,
  'start',
  '--tenant',
  tenant,
  '--env',
  'prod',
  '--ticket',
  'SUP-1',
  '--reason',
  'Recording benchmark run',
];

// Baseline: a bare shell on the same kind of terminal.
const bare = terminal('/bin/sh', [], { PATH: process.env.PATH, PS1: 'ready$ ', TERM: 'xterm-256color' });
await bare.until('ready$ ');
const echoBare = await echoLatency(bare);
bare.term.kill();

const results = { echo: { bare_sh: echoBare } };
for (const [label, tenant] of [
  ['imp_start_recording_off', 'plain'],
  ['imp_start_recording_required', 'taped'],
]) {
  const env = await person(label.replace(/_/g, '-'));
  const t = terminal(process.execPath, startArgs(tenant), env);
  await t.until(`[imp ${tenant}/prod`);
  results.echo[label] = await echoLatency(t);
  t.term.write('exit\r');
  await t.exited;
}

// A busy terminal: one million lines through a recorded session.
const env = await person('busy');
const busy = terminal(process.execPath, startArgs('busy'), env);
await busy.until('[imp busy/prod');
const pid = broker.child.pid;
const lines = quick ? 200_000 : 1_000_000;
const cpuBefore = cpuMs(pid);
const t0 = performance.now();
busy.term.write(`yes | head -n ${lines}; exit\r`);
await busy.exited; // the CLI exits after its last chunk was delivered
const wallMs = performance.now() - t0;
const cpuUsed = cpuMs(pid) - cpuBefore;
const chunks = (await import('better-sqlite3')).default;
const db = new chunks(join(stateDir, 'imp.db'), { readonly: true });
const stored = db.prepare('SELECT COUNT(*) AS n, SUM(LENGTH(data)) AS bytes FROM recording_chunks').get();
db.close();
results.busy = {
  lines,
  wall_ms: round(wallMs, 0),
  broker_cpu_ms: round(cpuUsed, 0),
  broker_cpu_share: round(cpuUsed / wallMs, 3),
  chunks: stored.n,
  recorded_bytes: stored.bytes,
};

await broker.stop();
await idp.close();
process.stdout.write(`${JSON.stringify({ recording: results })}\n`);
