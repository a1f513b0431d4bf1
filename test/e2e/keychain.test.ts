/**
 * The keychain store against a REAL Secret Service: gnome-keyring under dbus-run-session, with an
 * isolated HOME (test/helpers/keyring.ts). Each step is a separate node process running the built
 * module (dist/), the way `imp login` and a later `imp whoami` would.
 */
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GNOME_KEYRING, requireComponents } from '../helpers/components.js';
import { type KeyringSession, runInKeyringSession, startKeyringSession } from '../helpers/keyring.js';

const ROOT = resolve(import.meta.dirname, '../..');
const FIXTURE = join(ROOT, 'test/fixtures/keychain-roundtrip.mjs');
const BUILT = join(ROOT, 'dist/client/credentials.js');
const SOURCES = ['src/client/credentials.ts', 'src/core/errors.ts'].map((p) => join(ROOT, p));

const ACCOUNT = 'https://broker.example.test';
const SECRET = JSON.stringify({ token: 'eyJ.e2e-keychain-secret-7f3a', expiresAt: '2030-01-01T00:00:00Z' });

/** `npm test` builds before vitest; when run alone, build if dist/ is missing or older than the source. */
async function ensureBuilt(): Promise<void> {
  const mtime = (path: string) => (existsSync(path) ? statSync(path).mtimeMs : 0);
  const built = mtime(BUILT);
  if (built > 0 && SOURCES.every((source) => mtime(source) <= built)) return;
  // Other in-progress files may not typecheck; tsc still emits (noEmitOnError is off), so ignore its exit code.
  await promisify(execFile)(
    process.execPath,
    [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: ROOT,
    },
  ).catch(() => undefined);
  if (mtime(BUILT) < Math.max(...SOURCES.map(mtime))) throw new Error(`building ${BUILT} failed`);
}

/** Every file under `dir` whose bytes contain `needle`. */
async function filesContaining(dir: string, needle: string): Promise<string[]> {
  const hits: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if ((await readFile(path)).includes(needle)) hits.push(path);
  }
  return hits;
}

describe.skipIf(!requireComponents(GNOME_KEYRING))('KeychainCredentialStore against gnome-keyring', () => {
  let session: KeyringSession;

  beforeAll(async () => {
    await Promise.all([ensureBuilt(), startKeyringSession().then((s) => (session = s))]);
  });
  afterAll(async () => {
    await session?.close();
  });

  /** Runs one fixture operation in its own node process inside the session. */
  async function store(args: string[], input?: string): Promise<Record<string, unknown>> {
    const result = await session.run(
      process.execPath,
      [FIXTURE, ...args],
      input === undefined ? {} : { input },
    );
    expect(result.stderr).toBe('');
    const lines = result.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    return JSON.parse(lines[0]!) as Record<string, unknown>;
  }

  /** `secret-tool` prints label and secret on stdout but the attributes on stderr. */
  async function secretToolSearch(): Promise<string> {
    const result = await session.run('secret-tool', ['search', '--all', 'service', 'imp']);
    return result.stdout + result.stderr;
  }

  it('set, get (from another process) and delete go through the Secret Service', async () => {
    expect(await store(['get', ACCOUNT])).toEqual({ value: null });
    expect(await store(['set', ACCOUNT], SECRET)).toEqual({ set: true });
    expect(await store(['get', ACCOUNT])).toEqual({ value: SECRET });

    const found = await secretToolSearch();
    expect(found).toContain('attribute.service = imp');
    expect(found).toContain(`attribute.username = ${ACCOUNT}`);
    expect(found).toContain(`secret = ${SECRET}`);

    expect(await store(['delete', ACCOUNT])).toEqual({ deleted: true });
    expect(await store(['get', ACCOUNT])).toEqual({ value: null });
    expect(await store(['delete', ACCOUNT])).toEqual({ deleted: false });
    expect(await secretToolSearch()).toBe('');
  });

  it("auto picks the keychain, warns nothing, and writes no secret into HOME's files", async () => {
    const filePath = join(session.home, '.local/state/imp/credentials.json');
    expect(await store(['open', 'auto', filePath, ACCOUNT], SECRET)).toEqual({
      kind: 'keychain',
      warnings: [],
    });
    expect(await store(['get', ACCOUNT])).toEqual({ value: SECRET });
    expect(await secretToolSearch()).toContain(`attribute.username = ${ACCOUNT}`);

    expect(existsSync(filePath)).toBe(false);
    // The whole temp HOME, gnome-keyring's own files included: login.keyring is encrypted.
    expect(await filesContaining(session.home, 'e2e-keychain-secret')).toEqual([]);
    expect(await store(['delete', ACCOUNT])).toEqual({ deleted: true });
  });

  it('runInKeyringSession gives a one-off command its own bus, keyring and HOME', async () => {
    const script =
      'printf "%s\\n" "$HOME" "$DBUS_SESSION_BUS_ADDRESS"; secret-tool search service imp; echo rc=$?';
    const result = await runInKeyringSession('sh', ['-c', script]);
    const [home, bus, ...rest] = result.stdout.trim().split('\n');
    expect(result.code).toBe(0);
    expect(home).toMatch(/imp-keyring-/);
    expect(home).not.toBe(session.home);
    expect(bus).toMatch(/^unix:/);
    expect(bus).not.toBe(session.env.DBUS_SESSION_BUS_ADDRESS);
    expect(rest).toEqual(['rc=0']); // an empty keyring: secret-tool finds nothing (and exits 0)
    expect(existsSync(home!)).toBe(false); // cleaned up
  });

  it('mode keychain opens the keychain when one answers', async () => {
    const filePath = join(session.home, 'unused.json');
    expect(await store(['open', 'keychain', filePath])).toEqual({ kind: 'keychain', warnings: [] });
  });
});
