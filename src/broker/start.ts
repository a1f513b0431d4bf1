/** Assembles a broker from a policy and a state directory: the one path `imp broker serve` and `imp dev` share. */
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createIdTokenVerifier } from '../auth/id-token.js';
import type { Clock } from '../core/clock.js';
import { parsePolicy } from '../core/policy/load.js';
import type { Policy } from '../core/policy/types.js';
import { openSqliteStore } from '../store/sqlite.js';
import type { Store } from '../store/types.js';
import type { AlertSettings } from './alerts.js';
import type { BrokerLog } from './context.js';
import { KeyRing } from './keys.js';
import { type Broker, createBroker } from './server.js';

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
}

/** Reads the policy (refusing an invalid one with file, line and key), opens the store and keys, listens. */
export async function startBroker(options: StartBrokerOptions): Promise<Broker & { url: string }> {
  const { policy, text, name } = await readPolicy(options.policy);
  await mkdir(options.stateDir, { recursive: true, mode: 0o700 });
  const store = options.store ?? openSqliteStore(join(options.stateDir, 'imp.db'));
  const keys = await KeyRing.load(join(options.stateDir, 'keys.json'), options.clock.now());
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
      clock: options.clock,
      leewaySeconds: ID_TOKEN_LEEWAY_SECONDS,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    }),
    issuer: issuer ?? `http://${host}:${options.port}`,
    fetch: options.fetch ?? globalThis.fetch,
    log: options.log,
    checkpoint: async () => {},
    ...(options.alertSettings ? { alertSettings: options.alertSettings } : {}),
  };
  const broker = await createBroker(deps);
  try {
    const url = await broker.listen(options.port, host);
    issuer ??= url;
    deps.issuer = issuer;
    return {
      ...broker,
      url: issuer,
      async close() {
        await broker.close();
        await store.close();
      },
    };
  } catch (error) {
    await store.close();
    throw error;
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
