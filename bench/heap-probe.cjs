// Preloaded into the benchmarked broker (node --expose-gc -r): on SIGUSR2 it forces a full GC and
// appends the live JS heap (MiB) to $IMP_BENCH_HEAP_FILE, so the RSS rows can tell a growing live
// heap (a leak) from V8 sizing its heap up or the allocator keeping freed pages.
const { appendFileSync } = require('node:fs');
const { isMainThread } = require('node:worker_threads');

const file = process.env.IMP_BENCH_HEAP_FILE;
if (isMainThread && file && typeof global.gc === 'function') {
  process.on('SIGUSR2', () => {
    global.gc();
    appendFileSync(file, `${process.memoryUsage().heapUsed / 1048576}\n`);
  });
}
