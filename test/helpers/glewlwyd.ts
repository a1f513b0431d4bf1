/**
 * A throw-away Glewlwyd 2.7.5 (Debian package `glewlwyd`): a second, independent OIDC provider with
 * the device grant, which ignores `max_age` there and stamps `auth_time` with the issue time. Started
 * and configured through its admin REST API by test/fixtures/glewlwyd/start.sh; stopped by pid file.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './cli.js';
import type { Component } from './components.js';

const run = promisify(execFile);
const DIR = join(ROOT, 'test', 'fixtures', 'glewlwyd');

/** Glewlwyd and what start.sh uses (sqlite3, openssl, curl). */
export const GLEWLWYD: Component = {
  name: 'Glewlwyd',
  debianPackage: 'glewlwyd sqlite3 openssl curl',
  check: () =>
    ['/usr/bin/glewlwyd', '/usr/bin/sqlite3', '/usr/bin/openssl', '/usr/bin/curl'].every(existsSync),
};

/** A running Glewlwyd: users alice/alice (support), bob/bob (support-leads), erin/erin (security). */
export interface Glewlwyd {
  issuer: string;
  clientId: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts and configures Glewlwyd on a free loopback port. */
export async function startGlewlwyd(): Promise<Glewlwyd> {
  const port = await freePort();
  const { stdout } = await run('bash', [join(DIR, 'start.sh'), String(port)], { timeout: 45_000, cwd: ROOT });
  const info = JSON.parse(stdout.trim().split('\n').at(-1)!) as { issuer: string; client_id: string };
  return {
    issuer: info.issuer,
    clientId: info.client_id,
    async stop() {
      await run('bash', [join(DIR, 'stop.sh'), String(port), '--purge'], { timeout: 15_000 });
    },
  };
}
