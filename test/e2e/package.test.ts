/**
 * The CLI installs without a clone: `npm pack` makes a tarball that `npm install -g` puts on an empty
 * prefix, and the installed `imp` starts (`--version`), checks its surroundings (`doctor`) and runs
 * the whole local stack (`dev`) from there — native better-sqlite3 and the bundled @imp/verify included.
 *
 * The install uses `--prefer-offline`: dependencies come from the npm cache `npm ci` filled, and the
 * registry only for metadata the cache lacks (a global install resolves versions afresh; CI reaches
 * the registry). better-sqlite3's install script runs as it would for a user (prebuild-install, else
 * node-gyp). Compiling SQLite again takes 3 to 12 minutes on a loaded 2-core machine, so the test
 * hands prebuild-install, through its documented local-prebuilds directory, the binary `npm ci`
 * already compiled from the same version for this Node ABI; if the install resolves another version
 * the name does not match and it compiles, within the long limit.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMP_BIN, ImpProcess, makeUserEnv, ROOT } from '../helpers/cli.js';

const INSTALL_LIMIT_MS = 20 * 60_000;

/** Runs a command to the end; rejects with its output when it fails or overruns. */
function sh(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      process.kill(-child.pid!, 'SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} overran\n${stderr.slice(-4000)}`));
    }, options.timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

/** A prebuild-install directory holding the better-sqlite3 binary `npm ci` built (see the header). */
async function localPrebuilds(dir: string): Promise<string> {
  const prebuilds = join(dir, 'prebuilds');
  await mkdir(prebuilds);
  const module = join(ROOT, 'node_modules', 'better-sqlite3');
  const { version } = JSON.parse(await readFile(join(module, 'package.json'), 'utf8')) as { version: string };
  if (!existsSync(join(module, 'build', 'Release', 'better_sqlite3.node'))) return prebuilds;
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  const packed = await sh(
    'tar',
    ['czf', join(prebuilds, name), '-C', module, 'build/Release/better_sqlite3.node'],
    {
      cwd: dir,
      timeoutMs: 60_000,
    },
  );
  expect(packed.code, packed.stderr).toBe(0);
  return prebuilds;
}

describe('the npm package', () => {
  let dir: string;
  let prefix: string;
  let imp: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'imp-package-'));
    prefix = join(dir, 'prefix');
    // `npm test` built dist/ (and the verify package's) already: pack without running `prepare`
    // again, so this test never rewrites files other test processes are reading.
    expect(existsSync(join(ROOT, 'dist', 'cli', 'main.js')), 'run npm run build first').toBe(true);
    expect(
      existsSync(join(ROOT, 'packages', 'verify', 'dist', 'packages', 'verify', 'src', 'index.js')),
    ).toBe(true);
    const pack = await sh('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], {
      cwd: ROOT,
      timeoutMs: 120_000,
    });
    expect(pack.code, pack.stderr).toBe(0);
    const tarball = (await readdir(dir)).find((name) => name.endsWith('.tgz'))!;
    const prebuilds = await localPrebuilds(dir);
    const install = await sh(
      'npm',
      [
        'install',
        '-g',
        '--prefix',
        prefix,
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        join(dir, tarball),
      ],
      {
        cwd: dir,
        env: {
          ...process.env,
          npm_config_loglevel: 'error',
          npm_config_better_sqlite3_local_prebuilds: prebuilds,
        },
        timeoutMs: INSTALL_LIMIT_MS,
      },
    );
    expect(install.code, install.stderr).toBe(0);
    imp = join(prefix, 'lib', 'node_modules', 'imp', 'bin', 'imp.js');
  }, INSTALL_LIMIT_MS + 150_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('installs the imp command, which prints its version', async () => {
    expect(existsSync(join(prefix, 'bin', 'imp'))).toBe(true);
    const version = await sh(join(prefix, 'bin', 'imp'), ['--version'], { cwd: dir, timeoutMs: 30_000 });
    expect(version).toMatchObject({ code: 0, stdout: 'imp 0.1.0\n' });
  });

  it('answers imp --help and imp prompt from the installed fast-path bundle, as the checkout does', async () => {
    const session = {
      PATH: process.env.PATH,
      HOME: dir,
      IMP_SESSION_ID: '3f1c2a9e-6b7d-4c1e-9a0f-2d5e8b7c6a41',
      IMP_TENANT: 'acme',
      IMP_ENV: 'prod',
      IMP_SCOPE: 'read',
      IMP_EXPIRES_AT: '2020-01-01T00:00:00.000Z', // over: the segment reads 0s whenever this runs
    };
    expect(existsSync(join(prefix, 'lib', 'node_modules', 'imp', 'dist', 'cli', 'fast-path.cjs'))).toBe(true);
    for (const args of [['--help'], ['prompt']]) {
      const installed = await sh(join(prefix, 'bin', 'imp'), args, {
        cwd: dir,
        env: session,
        timeoutMs: 30_000,
      });
      const checkout = await sh(process.execPath, [IMP_BIN, ...args], {
        cwd: dir,
        env: session,
        timeoutMs: 30_000,
      });
      expect(installed.code, installed.stderr).toBe(0);
      expect(installed).toEqual(checkout);
    }
  });

  it('bundles @imp/verify, the library tenant services use', () => {
    expect(
      existsSync(
        join(
          prefix,
          'lib',
          'node_modules',
          'imp',
          'node_modules',
          '@imp',
          'verify',
          'dist',
          'packages',
          'verify',
          'src',
          'index.js',
        ),
      ),
    ).toBe(true);
  });

  it('keeps `imp/verify` working for services that import it from the imp package', async () => {
    const script =
      "const v = await import('imp/verify'); console.log(typeof v.createVerifier, v.SESSION_TOKEN_TYPE, typeof v.verifyReceipt);";
    const loaded = await sh(process.execPath, ['--input-type=module', '-e', script], {
      cwd: join(prefix, 'lib'),
      timeoutMs: 30_000,
    });
    expect(loaded).toMatchObject({ code: 0, stdout: 'function at+jwt function\n' });
  });

  it('imp dev runs the stack from the installed package, and imp doctor checks it', async () => {
    const { env } = makeUserEnv();
    const dev = new ImpProcess(['dev', '--port', '0', '--json'], env, imp, dir);
    try {
      const info = await dev.jsonLine((line) => typeof line.broker === 'string', 60_000);
      const health = await fetch(`${info.broker}/healthz`);
      expect(await health.json()).toEqual({ ok: true });
      const doctor = await sh(process.execPath, [imp, 'doctor', '--broker', String(info.broker)], {
        cwd: dir,
        env,
        timeoutMs: 60_000,
      });
      expect(doctor.stdout + doctor.stderr).toContain(String(info.broker));
      expect(doctor.stderr).not.toMatch(/Cannot find (module|package)|ERR_MODULE_NOT_FOUND/);
    } finally {
      dev.signal('SIGTERM');
      await dev.exit(30_000).catch(() => dev.signal('SIGKILL'));
    }
  });
});
