/** Assembles a broker from a policy and a state directory: the one path `imp broker serve` and `imp dev` share. */
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createIdTokenVerifier } from '../auth/id-token.js';
import type { Clock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import { parsePolicy } from '../core/policy/load.js';
import { type Policy, usesPasskey } from '../core/policy/types.js';
import { hasSharedKeys } from '../store/key-storage.js';
import { openSqliteStore } from '../store/sqlite.js';
import type { Store } from '../store/types.js';
import type { AlertSettings } from './alerts.js';
import type { BrokerLog } from './context.js';
import { type KeyKind, KeyRing } from './keys.js';
import { loadAuditNoteKey } from './note-key.js';
import type { NotifySettings } from './notify/dispatcher.js';
import { checkPasskeyOrigin } from './passkeys.js';
import { type Broker, createBroker } from './server.js';
import { sessionChanges } from './sessions.js';
import type { TicketSettings } from './tickets/service.js';

/** Tolerated clock skew between broker and IdP, in seconds (bounded on purpose). */
export const ID_TOKEN_LEEWAY_SECONDS = 120;

/** Where the policy comes from: a file, or text with a name (the built-in dev policy). */
export type PolicySource =
  | { file: string }
  | { text: string; name: string; transform?: (policy: Policy) => Policy };

/** Options for {@link startBroker}. */
export interface StartBrokerOptions {
  policy: PolicySource;
  stateDir: string;
  port: number;
  host?: string;
  /** The broker's public URL; defaults to the address it listens on. */
  publicUrl?: string;
  clock: Clock;
  log: BrokerLog;
  fetch?: typeof fetch;
  store?: Store;
  /** Break-glass alert delivery (retry delays, timeout, secret lookup); defaults otherwise. */
  alertSettings?: Partial<AlertSettings>;
  /** Notification delivery (backoff, timeout, poll interval, env lookup); defaults otherwise. */
  notifySettings?: Partial<NotifySettings>;
  /** How the ticket system's credential is read and summaries are retried; defaults otherwise. */
  ticketSettings?: Partial<TicketSettings>;
  /**
   * A PostgreSQL URL (replicas share it); overrides the policy's `store`. Without either, the
   * SQLite file <state-dir>/imp.db.
   */
  storeUrl?: string;
  /** The audit note key: a PRIVATE+KEY file outside stateDir, or a pkcs11: URI (default: derived from the audit key). */
  auditKey?: string;
  /** Environment for the PostgreSQL connection (PGSSLMODE, PGSSLROOTCERT, …); default process.env. */
  env?: NodeJS.ProcessEnv;
}

/** How often a broker on a shared store re-reads the signing keys (a rotation made by another replica). */
const KEY_REFRESH_MS = 60_000;

/** Reads the policy (refusing an invalid one with file, line and key), opens the store and keys, listens. */
export async function startBroker(options: StartBrokerOptions): Promise<Broker & { url: string }> {
  const { policy, text, name } = await readPolicy(options.policy);
  const store = options.store ?? (await openStore(options, policy));
  let keys: KeyRing;
  let stopKeyRefresh: (() => void) | undefined;
  try {
    if (hasSharedKeys(store)) {
      // Replicas sign and verify with one set of keys, kept in the shared store.
      keys = await KeyRing.open(store.keyStorage(), options.clock.now());
    } else {
      await mkdir(options.stateDir, { recursive: true, mode: 0o700 });
      keys = await KeyRing.load(join(options.stateDir, 'keys.json'), options.clock.now());
    }
    // Re-read the keys now and then: a rotation (`imp broker rotate-keys`, or another replica) takes effect.
    stopKeyRefresh = options.clock.every(
      KEY_REFRESH_MS,
      () => {
        keys
          .refresh()
          .catch((error: unknown) =>
            options.log('warn', 'could not re-read the signing keys', { message: (error as Error).message }),
          );
      },
      { unref: true },
    );
  } catch (error) {
    if (!options.store) await store.close();
    throw error;
  }
  // Another replica approved, ended or expired a session: wake this broker's long-polls at once.
  const stopRelay = store.onSessionChanged?.((id) => sessionChanges.emit(id));
  // The issuer must be known before listening when it is the listen address: bind first, then wire.
  const host = options.host ?? '127.0.0.1';
  let issuer = options.publicUrl;
  const deps = {
    policy,
    policyHash: createHash('sha256').update(text).digest('hex'),
    policySource: name,
    store,
    keys,
    clock: options.clock,
    verifyIdToken: createIdTokenVerifier({
      issuer: policy.identity.issuer,
      clientId: policy.identity.clientId,
      groupsClaim: policy.identity.groupsClaim,
      personClaim: policy.identity.personClaim,
      clock: options.clock,
      leewaySeconds: ID_TOKEN_LEEWAY_SECONDS,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    }),
    issuer: issuer ?? `http://${host}:${options.port}`,
    fetch: options.fetch ?? globalThis.fetch,
    log: options.log,
    checkpoint: async () => {},
    ...(options.auditKey
      ? {
          auditNote: await loadAuditNoteKey({
            auditKey: options.auditKey,
            stateDir: options.stateDir,
            origin: policy.audit.origin,
            keys,
            env: options.env ?? process.env,
          }).catch(async (error: unknown) => {
            stopKeyRefresh?.();
            if (!options.store) await store.close();
            throw error;
          }),
        }
      : {}),
    ...(options.alertSettings ? { alertSettings: options.alertSettings } : {}),
    ...(options.notifySettings ? { notifySettings: options.notifySettings } : {}),
    ...(options.ticketSettings ? { ticketSettings: options.ticketSettings } : {}),
  };
  const closeStore = async () => {
    stopKeyRefresh?.();
    deps.auditNote?.close?.();
    stopRelay?.();
    await store.close();
  };
  let broker: Broker;
  try {
    broker = await createBroker(deps);
  } catch (error) {
    await closeStore();
    throw error;
  }
  try {
    const url = await broker.listen(options.port, host);
    // Browsers refuse an IP address as a WebAuthn relying party: on loopback, passkeys use localhost.
    issuer ??= usesPasskey(policy.reauth.method) ? url.replace('//127.0.0.1:', '//localhost:') : url;
    if (usesPasskey(policy.reauth.method)) checkPasskeyOrigin(issuer);
    deps.issuer = issuer;
    return {
      ...broker,
      url: issuer,
      async close() {
        await broker.close();
        await closeStore();
      },
    };
  } catch (error) {
    await broker.close().catch(() => {});
    await closeStore();
    throw error;
  }
}

/** Opens the store the options or the policy name: PostgreSQL for a URL, else the state directory's SQLite file. */
async function openStore(options: StartBrokerOptions, policy: Policy): Promise<Store> {
  const url = options.storeUrl ?? policy.store;
  if (!url) {
    await mkdir(options.stateDir, { recursive: true, mode: 0o700 });
    return openSqliteStore(join(options.stateDir, 'imp.db'));
  }
  // Loaded only when used: SQLite brokers and `imp dev` never load pg.
  const { openPostgresStore } = await import('../store/postgres.js');
  return openPostgresStore(url, {
    ...(options.env ? { env: options.env } : {}),
    clock: options.clock,
    onError: (message, error) => options.log('warn', message, { message: error.message }),
    // Which replica sequences the audit log now (operators, and the replica kill test, read this).
    onSequencerLease: (held) =>
      options.log('info', held ? 'took the audit sequencer lease' : 'gave up the audit sequencer lease'),
  });
}

/** Runs the PostgreSQL store's pending migrations and closes it (`imp broker serve --migrate-only`). */
export async function migrateStore(options: {
  storeUrl?: string;
  policy?: PolicySource;
  env?: NodeJS.ProcessEnv;
}): Promise<{ from: number; to: number }> {
  const url = options.storeUrl ?? (options.policy ? (await readPolicy(options.policy)).policy.store : null);
  if (!url)
    throw new ConfigError(
      'Name the PostgreSQL store to migrate: --store <url>, IMP_STORE, or store: in the policy.',
    );
  const { migratePostgres, postgresConnectionConfig } = await import('../store/postgres.js');
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ ...postgresConnectionConfig(url, options.env), max: 1 });
  pool.on('error', () => {});
  try {
    return await migratePostgres(pool);
  } finally {
    await pool.end();
  }
}

async function readPolicy(source: PolicySource): Promise<{ policy: Policy; text: string; name: string }> {
  if ('file' in source) {
    const text = await readFile(source.file, 'utf8').catch((error: Error) => {
      throw new Error(`Cannot read the policy file ${source.file}: ${error.message}`);
    });
    return { policy: parsePolicy(text, source.file), text, name: source.file };
  }
  const parsed = parsePolicy(source.text, source.name);
  return {
    policy: source.transform ? source.transform(parsed) : parsed,
    text: source.text,
    name: source.name,
  };
}

/** What `imp broker rotate-keys` changed. */
export interface KeyRotation {
  kind: KeyKind;
  kid: string;
  /** The previous active key(s) and until when they keep verifying (null: never retired). */
  retiring: { kid: string; retireAfter: string | null }[];
}

/**
 * Starts a new signing key of one kind in the broker's key storage (keys.json in the state dir, or
 * the PostgreSQL store). The old key keeps verifying for `overlapSeconds` (tokens it signed stay
 * valid until they expire); an audit key is never retired, so old checkpoints verify forever.
 * Running brokers pick the new key up within a minute.
 */
export async function rotateKeys(options: {
  kind: KeyKind;
  overlapSeconds: number;
  stateDir: string;
  storeUrl?: string;
  env?: NodeJS.ProcessEnv;
  clock: Clock;
  /** Who ran it, as the OS knows them (audited; there is no broker login on this path). */
  operator?: string;
}): Promise<KeyRotation> {
  const now = options.clock.now();
  let store: Store | null = null;
  try {
    let keys: KeyRing;
    if (options.storeUrl) {
      const { openPostgresStore } = await import('../store/postgres.js');
      store = await openPostgresStore(options.storeUrl, options.env ? { env: options.env } : {});
      if (!hasSharedKeys(store)) throw new ConfigError('This store cannot hold signing keys.');
      keys = await KeyRing.open(store.keyStorage(), now);
    } else {
      await mkdir(options.stateDir, { recursive: true, mode: 0o700 });
      store = openSqliteStore(join(options.stateDir, 'imp.db'));
      keys = await KeyRing.load(join(options.stateDir, 'keys.json'), now);
    }
    // The audit log must be writable before anything changes (a new audit key is published forever).
    const openStore = store;
    await openStore.ping();
    const before = keys.verifying(options.kind, now).map((key) => key.kid);
    const overlapMs =
      options.kind === 'audit' ? Number.MAX_SAFE_INTEGER - now : options.overlapSeconds * 1000;
    const retiring = before.map((kid) => ({
      kid,
      retireAfter: options.kind === 'audit' ? null : new Date(now + overlapMs).toISOString(),
    }));
    // Audited before the new key is stored: if the log cannot take it, nothing changes.
    const fresh = await keys.rotate(options.kind, now, overlapMs, async (kid) => {
      await openStore.transaction((tx) =>
        tx.appendAudit(
          {
            type: 'keys.rotated',
            actor: null,
            data: {
              kind: options.kind,
              kid,
              retiring: retiring.map((r) => ({ kid: r.kid, retire_after: r.retireAfter })),
              by: options.operator ?? null,
            },
          },
          options.clock.now(),
        ),
      );
    });
    const rotation: KeyRotation = { kind: options.kind, kid: fresh.kid, retiring };
    return rotation;
  } finally {
    await store?.close();
  }
}
