/**
 * A throwaway PostgreSQL cluster for one test file: initdb into a temp dir, pg_ctl start on a free
 * loopback port (unix socket in the same dir), a fresh database per test, pg_ctl stop in afterAll.
 * PostgreSQL refuses to run as root, so under root (CI) initdb and pg_ctl run as the `postgres` OS
 * user via runuser, with the temp dir chowned to it. Nothing is mocked; no running service is needed.
 *
 * Roles follow the README's setup: the superuser plays the schema owner (runs migrations), and
 * `imp_broker` gets exactly the grants the README lists (read from the README itself, so the
 * documentation is what the tests run).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { migratePostgres } from '../../src/store/postgres.js';
import { ROOT } from './cli.js';

/** The role brokers connect as in tests (README: imp_broker). */
export const BROKER_ROLE = 'imp_broker';

/** A running cluster. */
export interface PgCluster {
  port: number;
  /** Connection URL for a database, as a role (default the superuser `postgres`). */
  url(database: string, role?: string): string;
  /** Runs SQL as the superuser in a database (default `postgres`). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    values?: unknown[],
    database?: string,
  ): Promise<pg.QueryResult<R>>;
  /**
   * A new empty database; with `migrated`, the schema is migrated by the owner and the README's
   * grants given to imp_broker. Returns its name and URLs.
   */
  createDatabase(options?: { migrated?: boolean }): Promise<TestDatabase>;
  /** Stops the server and removes its files. */
  stop(): Promise<void>;
}

/** One test database. */
export interface TestDatabase {
  name: string;
  /** As the superuser (the schema owner). */
  ownerUrl: string;
  /** As imp_broker (only the README's grants). */
  brokerUrl: string;
}

/** The PostgreSQL server binaries: Debian's /usr/lib/postgresql/<newest>/bin, else PATH. */
export function postgresBinDir(): string {
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const versions = readdirSync(base)
      .filter((v) => existsSync(join(base, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(base, versions[0], 'bin');
  }
  return join(execFileSync('sh', ['-c', 'dirname "$(command -v initdb)"'], { encoding: 'utf8' }).trim());
}

/** The GRANT statements from the README's "PostgreSQL" section (between the grants markers). */
export function readmeGrants(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const match = /-- grants: begin\n([\s\S]*?)-- grants: end/.exec(readme);
  if (!match?.[1]) throw new Error('README.md has no "-- grants: begin … -- grants: end" block');
  return match[1];
}

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function run(binDir: string, command: string, args: string[]): string {
  const file = join(binDir, command);
  try {
    return asRoot
      ? execFileSync('runuser', ['-u', 'postgres', '--', file, ...args], { encoding: 'utf8', stdio: 'pipe' })
      : execFileSync(file, args, { encoding: 'utf8', stdio: 'pipe' });
  } catch (error) {
    const { stderr, stdout } = error as { stderr?: string; stdout?: string };
    throw new Error(`${command} ${args.join(' ')} failed:\n${stdout ?? ''}${stderr ?? ''}`);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Starts a cluster; `durable` keeps fsync on (benchmarks), tests run without it for speed. */
export async function startPostgres(options: { durable?: boolean } = {}): Promise<PgCluster> {
  const binDir = postgresBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'imp-pg-'));
  const data = join(dir, 'data');
  if (asRoot) execFileSync('chown', ['-R', 'postgres', dir]);
  run(binDir, 'initdb', [
    '-D',
    data,
    '-U',
    'postgres',
    '--auth=trust',
    '-E',
    'UTF8',
    '--locale=C.UTF-8',
    '-N',
  ]);
  const settings = [
    '-c listen_addresses=127.0.0.1',
    `-c unix_socket_directories=${dir}`,
    '-c max_connections=300',
    '-c shared_buffers=64MB',
    ...(options.durable ? [] : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off']),
  ];
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      run(binDir, 'pg_ctl', [
        '-D',
        data,
        '-l',
        join(dir, 'server.log'),
        '-w',
        '-t',
        '60',
        '-o',
        `${settings.join(' ')} -p ${port}`,
        'start',
      ]);
      break;
    } catch (error) {
      // Another process took the port between the probe and the start: try another one.
      if (attempt >= 3) {
        const log = existsSync(join(dir, 'server.log')) ? readFileSync(join(dir, 'server.log'), 'utf8') : '';
        throw new Error(`${(error as Error).message}\n${log}`);
      }
    }
  }
  let stopped = false;
  const stopNow = () => {
    if (stopped) return;
    stopped = true;
    try {
      run(binDir, 'pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // A crashed test run must not leave a server behind.
  process.once('exit', stopNow);

  const url = (database: string, role = 'postgres') => `postgres://${role}@127.0.0.1:${port}/${database}`;
  const query = async <R extends pg.QueryResultRow>(
    sql: string,
    values?: unknown[],
    database = 'postgres',
  ) => {
    const client = new pg.Client({ connectionString: url(database) });
    await client.connect();
    try {
      return await client.query<R>(sql, values);
    } finally {
      await client.end();
    }
  };
  await query(`CREATE ROLE ${BROKER_ROLE} LOGIN`);
  let counter = 0;

  return {
    port,
    url,
    query,
    async createDatabase(dbOptions = {}) {
      const name = `imp_test_${process.pid}_${++counter}`;
      await query(`CREATE DATABASE ${name}`);
      await query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`, [], name);
      if (dbOptions.migrated) {
        const pool = new pg.Pool({ connectionString: url(name), max: 1 });
        try {
          await migratePostgres(pool);
        } finally {
          await pool.end();
        }
        await query(readmeGrants(), [], name);
      }
      return { name, ownerUrl: url(name), brokerUrl: url(name, BROKER_ROLE) };
    },
    async stop() {
      process.off('exit', stopNow);
      stopNow();
    },
  };
}
