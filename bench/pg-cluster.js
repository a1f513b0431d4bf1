// A throwaway PostgreSQL cluster for benchmarks (the same steps as test/helpers/postgres.ts): initdb
// into a temp dir, pg_ctl start on a free loopback port, stop and remove on exit. Under root the
// server runs as the `postgres` OS user (runuser), as PostgreSQL refuses root. Durable by default
// (fsync and synchronous_commit on), so the numbers mean what they would on a real server's disk.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function binDir() {
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const versions = readdirSync(base)
      .filter((v) => existsSync(join(base, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(base, versions[0], 'bin');
  }
  return execFileSync('sh', ['-c', 'dirname "$(command -v initdb)"'], { encoding: 'utf8' }).trim();
}

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function run(bin, command, args) {
  const file = join(bin, command);
  return asRoot
    ? execFileSync('runuser', ['-u', 'postgres', '--', file, ...args], { encoding: 'utf8', stdio: 'pipe' })
    : execFileSync(file, args, { encoding: 'utf8', stdio: 'pipe' });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts a cluster; returns { port, url(database, role), version, dataDir, serverPids(), stop() }.
 * `settings`: more `-c name=value` server settings (the profile adds pg_stat_statements).
 */
export async function startCluster({ durable = true, settings: extra = [] } = {}) {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), 'imp-bench-pg-'));
  const data = join(dir, 'data');
  if (asRoot) execFileSync('chown', ['-R', 'postgres', dir]);
  run(bin, 'initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8']);
  const port = await freePort();
  const settings = [
    '-c listen_addresses=127.0.0.1',
    `-c unix_socket_directories=${dir}`,
    '-c max_connections=200',
    `-p ${port}`,
    ...(durable ? [] : ['-c fsync=off', '-c synchronous_commit=off']),
    ...extra.map((setting) => `-c ${setting}`),
  ];
  try {
    run(bin, 'pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-o', settings.join(' '), 'start']);
  } catch (error) {
    const log = existsSync(join(dir, 'server.log')) ? readFileSync(join(dir, 'server.log'), 'utf8') : '';
    throw new Error(`${error.stderr ?? error.message}\n${log}`);
  }
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    try {
      run(bin, 'pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stop);
  const postmaster = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  return {
    port,
    version: run(bin, 'postgres', ['--version']).trim(),
    dataDir: data,
    /** The postmaster and every process it started (backends, WAL writer, checkpointer …). */
    serverPids: () => [
      postmaster,
      ...readdirSync('/proc')
        .filter((name) => /^\d+$/.test(name))
        .filter((pid) => {
          try {
            // Field 4 of /proc/PID/stat is the parent (after the command in parentheses).
            const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
            return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster;
          } catch {
            return false;
          }
        })
        .map(Number),
    ],
    url: (database, role = 'postgres') => `postgres://${role}@127.0.0.1:${port}/${database}`,
    stop,
  };
}
