/**
 * `imp dev`'s stack in one process on loopback: the real dev IdP (oidc-provider, device flow), the
 * broker on a SQLite file, and the demo tenant API. Also the harness for end-to-end tests.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMap, isSeq, parseDocument } from 'yaml';
import type { BrokerLog } from '../broker/context.js';
import { defaultOrigin, noteKeyFromSeed } from '../broker/note-key.js';
import { startBroker } from '../broker/start.js';
import {
  ED25519_TYPE,
  type Ed25519NoteKey,
  formatPrivateNoteKey,
  formatVerifierKey,
  parsePrivateNoteKey,
} from '../core/audit/signed-note.js';
import type { Clock } from '../core/clock.js';
import type { Policy, ReauthMethod } from '../core/policy/types.js';
import { loadOrCreateKey, startWitness } from '../witness/server.js';
import { DEV_ALERT_SECRET_ENV, startAlertReceiver } from './alert-receiver.js';
import { devPolicyYaml } from './dev-policy.js';
import { DEV_USERS, type DevUser, startDevIdp } from './idp.js';
import { startTenantApi } from './tenant-api.js';

/** Options for {@link startDevStack}. */
export interface DevStackOptions {
  /** Base port: broker = base, IdP = base+1, tenant API = base+2, alert webhook = base+3, witness = base+4; 0 picks free ports. */
  port: number;
  stateDir?: string;
  policyFile?: string;
  clock: Clock;
  log: BrokerLog;
  /** Overrides the policy's reauth.method (`imp dev --reauth passkey`). */
  reauth?: ReauthMethod;
  /** Where break-glass alerts received by the local webhook are reported. */
  reportAlert?: (line: string) => void;
}

/** A running dev stack. */
export interface DevStack {
  issuer: string;
  broker: string;
  tenantApi: string;
  /** The local webhook the built-in policy sends break-glass alerts to. */
  alertReceiver: string;
  /** The witness cosigning the broker's checkpoints (URL and cosigner key). */
  witnesses: { url: string; key: string }[];
  stateDir: string;
  /** The re-authentication the broker demands. */
  reauth: ReauthMethod;
  users: readonly DevUser[];
  close(): Promise<void>;
}

/** Starts IdP, tenant API and broker; closes whatever started if a later part fails. */
export async function startDevStack(options: DevStackOptions): Promise<DevStack> {
  const stateDir = options.stateDir ?? (await mkdtemp(join(tmpdir(), 'imp-dev-')));
  const port = (offset: number) => (options.port === 0 ? 0 : options.port + offset);
  const closers: (() => Promise<void>)[] = [];
  // A state dir we made holds signing keys: it goes when the stack does (one given with --state-dir stays).
  if (!options.stateDir) closers.push(() => rm(stateDir, { recursive: true, force: true }));
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch(() => {});
  };
  try {
    const idp = await startDevIdp({ port: port(1) });
    closers.push(() => idp.close());
    const tenantApi = await startTenantApi({ port: port(2), now: () => options.clock.now() });
    closers.push(() => tenantApi.close());
    const receiver = await startAlertReceiver({
      port: port(3),
      now: () => options.clock.now(),
      report: options.reportAlert ?? (() => {}),
    });
    closers.push(() => receiver.close());
    // The audit key and the witness live beside, not inside, the broker's state (another team's, in real life).
    const auditDir = `${stateDir.replace(/\/+$/, '')}.audit`;
    await mkdir(auditDir, { recursive: true, mode: 0o700 });
    const auditKey = await devAuditKey(join(auditDir, 'audit.key'));
    const witness = await startWitness({
      key: await loadOrCreateKey(join(auditDir, 'witness.key'), 'witness.imp.dev/w1'),
      logs: [auditKey.vkey],
      stateFile: join(auditDir, 'witness-state.json'),
      now: () => options.clock.now(),
      port: port(4),
    });
    closers.push(() => witness.close());
    const policyText = withWitness(
      options.policyFile
        ? fillDevDefaults(await readFile(options.policyFile, 'utf8'), idp.issuer, tenantApi.url)
        : devPolicyYaml(idp.issuer, tenantApi.url, {
            alerts: [{ url: receiver.url, secretEnv: DEV_ALERT_SECRET_ENV }],
            // Every notification too, so trying imp locally shows who would be told what.
            notify: { url: receiver.url, secretEnv: DEV_ALERT_SECRET_ENV },
          }),
      { url: witness.url, key: witness.vkey },
    );
    const broker = await startBroker({
      auditKey: auditKey.file,
      policy: {
        text: policyText,
        name: options.policyFile ?? 'built-in dev policy',
        ...(options.reauth ? { transform: withReauth(options.reauth) } : {}),
      },
      stateDir,
      port: port(0),
      clock: options.clock,
      log: options.log,
      alertSettings: {
        secret: (name) => (name === DEV_ALERT_SECRET_ENV ? receiver.secret : process.env[name]),
      },
      notifySettings: {
        env: (name) => (name === DEV_ALERT_SECRET_ENV ? receiver.secret : process.env[name]),
      },
    });
    closers.push(() => broker.close());
    // The tenant API learns the broker's URL (its token issuer) only now that the broker listens.
    tenantApi.configure({ issuer: broker.url, audience: broker.deps.policy.sessions.audience });
    return {
      issuer: idp.issuer,
      broker: broker.url,
      tenantApi: tenantApi.url,
      alertReceiver: receiver.url,
      witnesses: [{ url: witness.url, key: witness.vkey }],
      stateDir,
      reauth: broker.deps.policy.reauth.method,
      users: DEV_USERS,
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

const withReauth =
  (method: ReauthMethod) =>
  (policy: Policy): Policy => ({ ...policy, reauth: { ...policy.reauth, method } });

/** The dev audit note key: created once (0600), named after its own public key. */
async function devAuditKey(file: string): Promise<{ file: string; vkey: string }> {
  let key: Ed25519NoteKey;
  try {
    key = parsePrivateNoteKey(await readFile(file, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const seed = randomBytes(32);
    key = noteKeyFromSeed(defaultOrigin(noteKeyFromSeed('x', seed).publicKey), seed);
    await writeFile(file, `${formatPrivateNoteKey(key)}\n`, { mode: 0o600 });
  }
  return { file, vkey: formatVerifierKey(key.name, ED25519_TYPE, key.publicKey) };
}

/** Adds the dev witness to the policy's audit.witnesses unless the policy lists its own. */
function withWitness(text: string, witness: { url: string; key: string }): string {
  const doc = parseDocument(text);
  if (doc.errors.length > 0 || doc.hasIn(['audit', 'witnesses'])) return text;
  if (!doc.has('audit')) doc.set('audit', doc.createNode({}));
  doc.setIn(['audit', 'witnesses'], doc.createNode([witness]));
  return doc.toString();
}

/** Where a dev policy file leaves out `identity` or a tenant's `upstream`, point them at the dev stack. */
export function fillDevDefaults(text: string, issuer: string, tenantApi: string): string {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) return text; // let the policy loader report the YAML error with its line
  if (!doc.has('identity')) doc.set('identity', { issuer, client_id: 'imp-cli', groups_claim: 'groups' });
  const tenants = doc.get('tenants');
  if (isSeq(tenants)) {
    for (const tenant of tenants.items) {
      if (isMap(tenant) && !tenant.has('upstream'))
        tenant.set('upstream', doc.createNode({ prod: tenantApi, staging: tenantApi }));
    }
  }
  return doc.toString();
}
