/**
 * A throwaway Redmine 5.0 from Debian (`redmine` + `redmine-sqlite`) for the ticket-system tests,
 * set up by scripts/redmine-test.sh on a free loopback port with a fresh SQLite database. One per
 * test file: booting it (migrate, seed, start WEBrick) takes about 20 s. Needs root, as Debian's
 * multi-instance layout lives under /var/lib/redmine (CI runs as root).
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './cli.js';
import type { Component } from './components.js';
import { makeTempDir } from './temp.js';

const run = promisify(execFile);

/** Debian's Redmine with SQLite, and root to register an instance. */
export const REDMINE: Component = {
  name: 'Redmine (as root, or with write access to /var/lib/redmine)',
  debianPackage: 'redmine redmine-sqlite curl',
  check: () =>
    existsSync('/usr/share/redmine/bin/rails') &&
    existsSync('/usr/share/doc/redmine-sqlite') &&
    existsSync('/usr/bin/curl') &&
    canRegisterInstance(),
};

// Debian looks Redmine instances up under /var/lib/redmine: root (as in CI) or write access there.
function canRegisterInstance(): boolean {
  if (process.getuid?.() === 0) return true;
  try {
    accessSync('/var/lib/redmine', constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The beforeAll timeout a file starting Redmine uses: above startRedmine's own bound. */
export const REDMINE_HOOK_TIMEOUT_MS = 240_000;

/** What scripts/redmine-test.sh seeded. */
export interface Redmine {
  url: string;
  adminKey: string;
  /** The broker's own account (Reporter on acme, view-only on quiet). */
  brokerKey: string;
  tenantFieldId: number;
  closedStatus: string;
  issues: { open: number; closed: number; bobs: number; globex: number; quiet: number };
  /** Calls the REST API as the admin (or with `key`). */
  api(method: string, path: string, body?: unknown, key?: string): Promise<{ status: number; body: unknown }>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Boots a seeded Redmine; the bound (200 s: minutes under load) stays below {@link REDMINE_HOOK_TIMEOUT_MS}.
 * A boot that fails quickly (not by the time bound) is tried once more in a fresh directory: Redmine's
 * own boot is not what the tests examine, and one failed seed should not fail the file.
 */
export async function startRedmine(): Promise<Redmine> {
  const deadline = Date.now() + 200_000;
  try {
    return await bootRedmine(200_000);
  } catch (error) {
    const left = deadline - Date.now();
    if ((error as Error).message.includes('timed out') || left < 30_000) throw error;
    process.stderr.write(
      `Redmine boot failed once, trying again: ${(error as Error).message.slice(0, 600)}\n`,
    );
    return await bootRedmine(left);
  }
}

async function bootRedmine(timeoutMs: number): Promise<Redmine> {
  const dir = makeTempDir('imp-redmine-');
  const script = join(ROOT, 'scripts', 'redmine-test.sh');
  const port = await freePort();
  const stop = async () => {
    await run('bash', [script, 'stop', dir], { timeout: 20_000 });
  };
  let stdout: string;
  try {
    ({ stdout } = await run('bash', [script, 'start', dir, String(port)], { timeout: timeoutMs, cwd: ROOT }));
  } catch (error) {
    await stop().catch(() => {});
    const { stderr, killed } = error as { stderr?: string; killed?: boolean };
    throw new Error(
      `scripts/redmine-test.sh start failed${killed ? ` (timed out after ${Math.round(timeoutMs / 1000)} s)` : ''}: ${excerpt(String(stderr ?? ''))}`,
    );
  }
  const info = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
    url: string;
    admin_key: string;
    broker_key: string;
    tenant_field_id: number;
    closed_status: string;
    issues: Redmine['issues'];
  };
  return {
    url: info.url,
    adminKey: info.admin_key,
    brokerKey: info.broker_key,
    tenantFieldId: info.tenant_field_id,
    closedStatus: info.closed_status,
    issues: info.issues,
    async api(method, path, body, key = info.admin_key) {
      const response = await fetch(info.url + path, {
        method,
        headers: {
          'x-redmine-api-key': key,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      return { status: response.status, body: text ? (JSON.parse(text) as unknown) : null };
    },
    stop,
  };
}

/** The start of a Ruby error (its message) and the end of its output, without the long backtrace between. */
function excerpt(stderr: string): string {
  return stderr.length <= 3000 ? stderr : `${stderr.slice(0, 1500)}\n…\n${stderr.slice(-1500)}`;
}
