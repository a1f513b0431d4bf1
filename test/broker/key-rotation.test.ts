/**
 * Rotating the broker's signing keys with `imp broker rotate-keys` while a broker runs: the broker
 * picks the new key up, the old public key stays in the JWKS while its tokens live, and an audit key
 * is never retired, so checkpoints it signed keep verifying.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointVerifier } from '../../src/auth/checkpoints.js';
import { verifyChain } from '../../src/core/audit/verify-chain.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { makeUserEnv, runImp } from '../helpers/cli.js';

let t: TestBroker;
beforeAll(async () => {
  t = await startTestBroker();
});
afterAll(async () => {
  await t?.close();
});

const kids = async () =>
  (await t.call<{ keys: { kid: string }[] }>('GET', '/.well-known/jwks.json')).body.keys.map((k) => k.kid);

describe('imp broker rotate-keys', () => {
  it('a new session key signs; the old one stays published until the overlap ends', async () => {
    const before = await kids();
    const oldSession = before.find((k) => k.startsWith('session-'))!;
    const { env } = makeUserEnv();
    const result = await runImp(
      ['broker', 'rotate-keys', '--kind', 'session', '--overlap', '2h', '--state-dir', t.stateDir, '--json'],
      env,
    );
    expect(result.code, result.stderr).toBe(0);
    const rotation = JSON.parse(result.stdout);
    expect(rotation.retiring.map((r: { kid: string }) => r.kid)).toEqual([oldSession]);
    // Audited in the broker's own log, naming the new key and the one retiring.
    const [rotated] = await t.store.readAudit({ type: 'keys.rotated' });
    expect(rotated!.data).toMatchObject({
      kind: 'session',
      kid: rotation.kid,
      retiring: [{ kid: oldSession, retire_after: rotation.retiring[0].retireAfter }],
    });
    expect(String(rotated!.data.by)).toMatch(/^local:/);

    await t.broker.deps.keys.refresh(); // what the broker does every minute
    expect(t.broker.deps.keys.active('session').kid).toBe(rotation.kid);
    expect(await kids()).toEqual(expect.arrayContaining([oldSession, rotation.kid]));

    t.clock.advance(2 * 3600 * 1000 + 1000);
    const after = await kids();
    expect(after).toContain(rotation.kid);
    expect(after).not.toContain(oldSession);
  });

  it('an audit key is never retired: checkpoints signed before the rotation still verify', async () => {
    const erin = await t.loginAs('erin');
    expect((await t.call('POST', '/v1/audit/checkpoint', erin)).status).toBe(200);
    const { env } = makeUserEnv();
    const result = await runImp(['broker', 'rotate-keys', '--kind', 'audit', '--state-dir', t.stateDir], env);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('keeps verifying forever');
    const audited = await t.store.readAudit({ type: 'keys.rotated' });
    expect(audited.at(-1)!.data).toMatchObject({ kind: 'audit', retiring: [{ retire_after: null }] });
    await t.broker.deps.keys.refresh();
    expect((await t.call('POST', '/v1/audit/checkpoint', await t.loginAs('erin'))).status).toBe(200);
    t.clock.advance(365 * 24 * 3600 * 1000);
    const jwks = (await t.call<{ keys: never[] }>('GET', '/.well-known/jwks.json')).body;
    const checkpoints = await t.store.listCheckpoints();
    expect(new Set(checkpoints.map((c) => c.jws.split('.')[0])).size).toBeGreaterThanOrEqual(2); // signed by both keys
    const report = await verifyChain(await t.store.readAudit(), checkpoints, checkpointVerifier(jwks));
    expect(report.problem).toBeNull();
    expect(report.ok).toBe(true);
  });

  it('rotates nothing when the audit log cannot take the rotation (fail closed)', async () => {
    const keyFile = join(t.stateDir, 'keys.json');
    const keysBefore = readFileSync(keyFile, 'utf8');
    // Another connection holds SQLite's write lock, as an operator's open sqlite3 transaction does.
    const locker = new Database(join(t.stateDir, 'imp.db'));
    locker.exec('BEGIN IMMEDIATE');
    try {
      const { env } = makeUserEnv();
      const result = await runImp(
        ['broker', 'rotate-keys', '--kind', 'session', '--state-dir', t.stateDir],
        env,
      );
      expect(result.code, result.stdout).not.toBe(0);
      expect(result.stderr).toMatch(/audit/i);
    } finally {
      locker.exec('ROLLBACK');
      locker.close();
    }
    expect(readFileSync(keyFile, 'utf8')).toBe(keysBefore);
  });

  it('refuses an unknown kind', async () => {
    const { env } = makeUserEnv();
    const result = await runImp(
      ['broker', 'rotate-keys', '--kind', 'everything', '--state-dir', t.stateDir],
      env,
    );
    expect(result.code).toBe(2);
  });
});
