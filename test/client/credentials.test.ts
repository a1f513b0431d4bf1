import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type CredentialStore,
  credentialStoreModeFromEnv,
  FileCredentialStore,
  MemoryCredentialStore,
  openCredentialStore,
} from '../../src/client/credentials.js';
import { ImpError } from '../../src/core/errors.js';

// The keychain probe's only way to spawn a process: counted, and otherwise the real thing.
vi.mock('node:child_process', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:child_process')>();
  return { ...real, execFile: vi.fn(real.execFile) };
});

const BROKER_A = 'https://broker-a.example';
const BROKER_B = 'https://broker-b.example';
const SECRET = JSON.stringify({ token: 'eyJhbGciOi.secret-token', expiresAt: '2030-01-01T00:00:00Z' });

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'imp-credentials-'));
});
afterEach(async () => {
  vi.unstubAllEnvs();
  await rm(dir, { recursive: true, force: true });
});

const mode = async (path: string) => (await stat(path)).mode & 0o777;

/** The behaviour every store shares. */
function describeStoreContract(name: string, make: () => CredentialStore) {
  describe(`${name} (shared contract)`, () => {
    it('returns null for an unknown account', async () => {
      expect(await make().get(BROKER_A)).toBeNull();
    });

    it('round-trips, replaces and deletes a secret', async () => {
      const store = make();
      await store.set(BROKER_A, SECRET);
      expect(await store.get(BROKER_A)).toBe(SECRET);
      await store.set(BROKER_A, 'replaced');
      expect(await store.get(BROKER_A)).toBe('replaced');
      expect(await store.delete(BROKER_A)).toBe(true);
      expect(await store.get(BROKER_A)).toBeNull();
      expect(await store.delete(BROKER_A)).toBe(false);
    });

    it('keeps accounts apart, including awkward names', async () => {
      const store = make();
      await Promise.all([store.set(BROKER_A, 'a'), store.set(BROKER_B, 'b'), store.set('__proto__', 'p')]);
      expect(await store.get(BROKER_A)).toBe('a');
      expect(await store.get(BROKER_B)).toBe('b');
      expect(await store.get('__proto__')).toBe('p');
      expect(await store.get('constructor')).toBeNull();
    });
  });
}

describeStoreContract('MemoryCredentialStore', () => new MemoryCredentialStore());
describeStoreContract(
  'FileCredentialStore',
  () => new FileCredentialStore(join(dir, 'state', 'credentials.json')),
);

describe('MemoryCredentialStore', () => {
  it('is kind memory and instances do not share state', async () => {
    const one = new MemoryCredentialStore();
    await one.set(BROKER_A, SECRET);
    expect(one.kind).toBe('memory');
    expect(await new MemoryCredentialStore().get(BROKER_A)).toBeNull();
  });
});

describe('FileCredentialStore', () => {
  const fileIn = (...parts: string[]) => join(dir, ...parts);

  it('writes one JSON object, mode 0600, in a directory it creates with mode 0700', async () => {
    const file = fileIn('state', 'imp', 'credentials.json');
    const store = new FileCredentialStore(file);
    expect(store.kind).toBe('file');
    await store.set(BROKER_A, SECRET);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ [BROKER_A]: SECRET });
    expect(await mode(file)).toBe(0o600);
    expect(await mode(fileIn('state', 'imp'))).toBe(0o700);
  });

  it('persists across instances (another CLI process reads what login wrote)', async () => {
    const file = fileIn('credentials.json');
    await new FileCredentialStore(file).set(BROKER_A, SECRET);
    expect(await new FileCredentialStore(file).get(BROKER_A)).toBe(SECRET);
  });

  it('writes atomically: no temp or lock files are left behind', async () => {
    const file = fileIn('state', 'credentials.json');
    const store = new FileCredentialStore(file);
    for (let i = 0; i < 5; i++) await store.set(`${BROKER_A}/${i}`, SECRET);
    await store.delete(`${BROKER_A}/0`);
    expect(await readdir(fileIn('state'))).toEqual(['credentials.json']);
  });

  it('keeps every account when writers race, in one instance and across instances', async () => {
    const file = fileIn('credentials.json');
    const stores = [new FileCredentialStore(file), new FileCredentialStore(file)];
    const accounts = Array.from({ length: 20 }, (_, i) => `https://broker-${i}.example`);
    await Promise.all(accounts.map((account, i) => stores[i % 2]!.set(account, `secret-${i}`)));
    const onDisk = JSON.parse(await readFile(file, 'utf8')) as Record<string, string>;
    expect(Object.keys(onDisk).sort()).toEqual([...accounts].sort());
    expect(await readdir(dir)).toEqual(['credentials.json']);
  });

  it('waits for another process holding the lock file, and breaks a stale one', async () => {
    const file = fileIn('credentials.json');
    const store = new FileCredentialStore(file);
    await writeFile(`${file}.lock`, '99999');
    let done = false;
    const writing = store.set(BROKER_A, SECRET).then(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 150));
    expect(done).toBe(false);
    await rm(`${file}.lock`);
    await writing;
    expect(await store.get(BROKER_A)).toBe(SECRET);

    await writeFile(`${file}.lock`, '99999');
    const longAgo = new Date(Date.now() - 60_000);
    await utimes(`${file}.lock`, longAgo, longAgo);
    await store.set(BROKER_B, SECRET);
    expect(await store.get(BROKER_B)).toBe(SECRET);
  });

  it('removes the file when the last account is deleted', async () => {
    const file = fileIn('credentials.json');
    const store = new FileCredentialStore(file);
    await store.set(BROKER_A, SECRET);
    await store.set(BROKER_B, SECRET);
    expect(await store.delete(BROKER_A)).toBe(true);
    expect(await store.get(BROKER_B)).toBe(SECRET);
    expect(await store.delete(BROKER_B)).toBe(true);
    expect(await readdir(dir)).toEqual([]);
    expect(await store.delete(BROKER_B)).toBe(false);
  });

  it.runIf(process.platform !== 'win32')(
    'resets a group/world-readable file to 0600 and warns once',
    async () => {
      const file = fileIn('credentials.json');
      const warnings: string[] = [];
      const store = new FileCredentialStore(file, (m) => warnings.push(m));
      await store.set(BROKER_A, SECRET);
      await chmod(file, 0o644);
      expect(await store.get(BROKER_A)).toBe(SECRET);
      expect(await mode(file)).toBe(0o600);
      expect(warnings).toEqual([
        `warning: credential file ${file} had mode 0644 (other users could read it); reset it to 0600`,
      ]);
      await store.get(BROKER_A);
      expect(warnings).toHaveLength(1);
    },
  );

  it.each([
    ['not JSON', '{"https://broker-a.example": "eyJ-secret-token', 'not valid JSON'],
    ['an array', '["eyJ-secret-token"]', 'expected a JSON object'],
    ['a non-string value', '{"https://broker-a.example": {"token": "eyJ-secret-token"}}', 'must be a string'],
  ])(
    'a corrupt file (%s) is a clear IMP_CONFIG error that does not echo its content',
    async (_, content, why) => {
      const file = fileIn('credentials.json');
      await writeFile(file, content, { mode: 0o600 });
      const store = new FileCredentialStore(file);
      for (const attempt of [store.get(BROKER_A), store.set(BROKER_B, SECRET)]) {
        const error = await attempt.then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(ImpError);
        const { code, message } = error as ImpError;
        expect(code).toBe('IMP_CONFIG');
        expect(message).toContain(file);
        expect(message).toContain(why);
        expect(message).toContain('imp login');
        expect(message).not.toContain('secret-token');
      }
      expect(await readFile(file, 'utf8')).toBe(content); // a failed set must not clobber it
    },
  );

  it('treats an empty file as an empty store', async () => {
    const file = fileIn('credentials.json');
    await writeFile(file, '', { mode: 0o600 });
    const store = new FileCredentialStore(file);
    expect(await store.get(BROKER_A)).toBeNull();
    await store.set(BROKER_A, SECRET);
    expect(await store.get(BROKER_A)).toBe(SECRET);
  });

  it('a directory where the file should be is an IMP_CONFIG error', async () => {
    const file = fileIn('credentials.json');
    await mkdir(file);
    const warnings: string[] = [];
    await expect(new FileCredentialStore(file, (m) => warnings.push(m)).get(BROKER_A)).rejects.toMatchObject({
      code: 'IMP_CONFIG',
      message: `The credential file ${file} is not a regular file.`,
    });
    expect(await mode(file)).not.toBe(0o600);
    expect(warnings).toEqual([]);
  });
});

describe('credentialStoreModeFromEnv', () => {
  it.each([
    [undefined, 'auto'],
    ['', 'auto'],
    ['  ', 'auto'],
    ['auto', 'auto'],
    ['keychain', 'keychain'],
    ['file', 'file'],
    [' file ', 'file'],
  ] as const)('%j → %s', (value, expected) => {
    expect(credentialStoreModeFromEnv(value)).toBe(expected);
  });

  it.each(['memory', 'Keychain', 'FILE', 'none', 'keychain,file'])('%j is an IMP_CONFIG error', (value) => {
    expect(() => credentialStoreModeFromEnv(value)).toThrow(
      expect.objectContaining({
        code: 'IMP_CONFIG',
        message: `IMP_CREDENTIAL_STORE must be one of keychain, file, auto (got ${JSON.stringify(value)}).`,
      }),
    );
  });
});

// The keychain probe runs in a child process that inherits this env, so stubbing the bus address
// here is how "no D-Bus" reaches it. Linux only: elsewhere a real keychain would answer.
describe.runIf(process.platform === 'linux')('openCredentialStore without a keychain', () => {
  const spawned = vi.mocked(execFile);
  const open = async (mode: 'auto' | 'keychain' | 'file') => {
    spawned.mockClear();
    const warnings: string[] = [];
    const filePath = join(dir, 'state', 'credentials.json');
    const started = performance.now();
    const store = await openCredentialStore({
      mode,
      filePath,
      warn: (m) => warnings.push(m),
      service: 'imp-test',
    });
    return { store, warnings, filePath, elapsedMs: performance.now() - started };
  };
  const NO_KEYCHAIN_REASON =
    /.*Failed to connect to socket \/nonexistent.*|the keychain did not answer within 1\.5 s/;
  const fallbackLine = (filePath: string, reason: RegExp) =>
    new RegExp(
      `^warning: no OS keychain available \\((?:${reason.source})\\); storing credentials in ${filePath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(mode 0600\\)\\. Shown once; IMP_CREDENTIAL_STORE=file chooses the file for good \\(imp doctor shows the store\\)\\.$`,
    );

  it('auto falls back to the file store with exactly one warning when the bus socket is missing', async () => {
    vi.stubEnv('DBUS_SESSION_BUS_ADDRESS', 'unix:path=/nonexistent');
    const { store, warnings, filePath, elapsedMs } = await open('auto');
    expect(store.kind).toBe('file');
    expect(warnings).toHaveLength(1);
    // The reason is the socket error, or, when the probe is slow to even start on a loaded machine,
    // its 1.5 s budget: either way one line, and no hang.
    expect(warnings[0]).toMatch(fallbackLine(filePath, NO_KEYCHAIN_REASON));
    expect(warnings[0]).not.toContain('\n');
    expect(elapsedMs).toBeLessThan(5_000);
    await store.set(BROKER_A, SECRET);
    expect(await mode(filePath)).toBe(0o600);
  });

  it('auto falls back without spawning anything when no session bus is configured', async () => {
    vi.stubEnv('DBUS_SESSION_BUS_ADDRESS', '');
    vi.stubEnv('XDG_RUNTIME_DIR', dir);
    const { store, warnings, filePath } = await open('auto');
    expect(store.kind).toBe('file');
    expect(warnings).toEqual([
      `warning: no OS keychain available (no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is not set); storing credentials in ${filePath} (mode 0600). Shown once; IMP_CREDENTIAL_STORE=file chooses the file for good (imp doctor shows the store).`,
    ]);
    expect(spawned).not.toHaveBeenCalled();
  });

  it('warns once per machine: again only when the store changes; imp doctor keeps saying why', async () => {
    vi.stubEnv('DBUS_SESSION_BUS_ADDRESS', '');
    vi.stubEnv('XDG_RUNTIME_DIR', dir);
    const noticeFile = join(dir, 'state', 'credential-store.notice');
    const warnings: string[] = [];
    const openWith = (filePath: string) =>
      openCredentialStore({
        mode: 'auto',
        filePath,
        noticeFile,
        warn: (m) => warnings.push(m),
        service: 'imp-test',
      });
    const first = await openWith(join(dir, 'state', 'credentials.json'));
    await openWith(join(dir, 'state', 'credentials.json'));
    await openWith(join(dir, 'state', 'credentials.json'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('IMP_CREDENTIAL_STORE=file chooses the file for good');
    expect(first.fallbackReason).toContain('no D-Bus session bus');
    await openWith(join(dir, 'state', 'profiles', 'work', 'credentials.json'));
    expect(warnings).toHaveLength(2);
    // Chosen on purpose: no warning at all, and nothing to explain.
    const chosen = await openCredentialStore({
      mode: 'file',
      filePath: join(dir, 'x.json'),
      noticeFile,
      warn: (m) => warnings.push(m),
    });
    expect(warnings).toHaveLength(2);
    expect(chosen.fallbackReason ?? null).toBeNull();
  });

  describe('a bus that accepts connections and never answers', () => {
    let server: Server;
    let socket: string;
    beforeEach(async () => {
      socket = join(dir, 'hung-bus');
      server = createServer(() => undefined); // accept, read nothing, say nothing
      await new Promise<void>((r) => server.listen(socket, r));
    });
    afterEach(async () => {
      // Destroy the probe's half-open connection too (the probe child is SIGKILLed, but be sure).
      server.close();
    });

    it('cannot hang the CLI: auto gives up after ~1.5 s and falls back', async () => {
      vi.stubEnv('DBUS_SESSION_BUS_ADDRESS', `unix:path=${socket}`);
      const { store, warnings, filePath, elapsedMs } = await open('auto');
      expect(store.kind).toBe('file');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(fallbackLine(filePath, /the keychain did not answer within 1\.5 s/));
      expect(elapsedMs).toBeGreaterThanOrEqual(1_400);
      expect(elapsedMs).toBeLessThan(3_000);
    });
  });

  it('mode keychain fails with IMP_CONFIG and warns nothing', async () => {
    vi.stubEnv('DBUS_SESSION_BUS_ADDRESS', 'unix:path=/nonexistent');
    const warnings: string[] = [];
    const error = await openCredentialStore({
      mode: 'keychain',
      filePath: join(dir, 'credentials.json'),
      warn: (m) => warnings.push(m),
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ImpError);
    expect(error).toMatchObject({ code: 'IMP_CONFIG' });
    expect((error as ImpError).message).toMatch(
      new RegExp(`^No OS keychain is available \\((${NO_KEYCHAIN_REASON.source})\\)\\. `),
    );
    expect((error as ImpError).message).toContain('IMP_CREDENTIAL_STORE=file');
    expect(warnings).toEqual([]);
  });

  it('mode file never probes and never warns', async () => {
    vi.stubEnv('DBUS_SESSION_BUS_ADDRESS', 'unix:path=/nonexistent');
    const { store, warnings } = await open('file');
    expect(store.kind).toBe('file');
    expect(warnings).toEqual([]);
    expect(spawned).not.toHaveBeenCalled();
  });
});
