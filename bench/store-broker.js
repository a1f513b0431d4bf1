// One "broker" of bench/store.js in a process of its own, as replicas run: a PostgreSQL store with its
// own pool, driven by BENCH_CONCURRENCY callers in this process. Forked by store.js with
//   [url, append|open, seconds, concurrency, broker index]
// It says {ready} once open, runs when told, reports {rate, cpu, wall}, then {drainMs} once the
// queue is sequenced, and closes.
import { openPostgresStore } from '../dist/store/postgres.js';
import { append, insertLogins, openSession, rate } from './store-ops.js';

const [url, what, seconds, concurrency, broker] = process.argv.slice(2);
const callers = Number(concurrency);
const index = Number(broker);
const store = await openPostgresStore(url);
if (what === 'open')
  await insertLogins(
    store,
    Array.from({ length: callers }, (_, caller) => index * 1000 + caller),
  );
process.send({ ready: true });
process.once('message', async () => {
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  const op = what === 'open' ? (caller, n) => openSession(store, index * 1000 + caller, n) : append(store);
  const result = await rate(Number(seconds), callers, op);
  const wall = (performance.now() - wall0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  // Reported before the drain and close, so the parent reads the server's CPU while this broker's
  // backends still exist (a backend's CPU leaves /proc with it).
  process.send({ rate: result, cpu: (cpu.user + cpu.system) / 1e6, wall });
  // Acknowledged is durable, not yet sequenced: how long the sequencer still needs once the load stops.
  const drain0 = performance.now();
  await store.settle(120_000);
  const drainMs = performance.now() - drain0;
  await store.close();
  process.send({ drainMs }, () => process.disconnect());
});
