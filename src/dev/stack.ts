/**
 * `imp dev`'s stack in one process on loopback: the real dev IdP (oidc-provider, device flow), the
 * broker on a SQLite file, and the demo tenant API. Also the harness for end-to-end tests.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMap, isSeq, parseDocument } from 'yaml';
import type { BrokerLog } from '../broker/context.js';
import { startBroker } from '../broker/start.js';
import type { Clock } from '../core/clock.js';
import { DEV_ALERT_SECRET_ENV, startAlertReceiver } from './alert-receiver.js';
import { devPolicyYaml } from './dev-policy.js';
import { DEV_USERS, type DevUser, startDevIdp } from './idp.js';
import { startTenantApi } from './tenant-api.js';

/** Options for {@link startDevStack}. */
export interface DevStackOptions {
  /** Base port: broker = base, IdP = base+1, tenant API = base+2, alert webhook = base+3; 0 picks free ports. */
  port: number;
  stateDir?: string;
  policyFile?: string;
  clock: Clock;
  log: BrokerLog;
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
  stateDir: string;
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
    const policyText = options.policyFile
      ? fillDevDefaults(await readFile(options.policyFile, 'utf8'), idp.issuer, tenantApi.url)
      : devPolicyYaml(idp.issuer, tenantApi.url, {
          alerts: [{ url: receiver.url, secretEnv: DEV_ALERT_SECRET_ENV }],
        });
    const broker = await startBroker({
      policy: { text: policyText, name: options.policyFile ?? 'built-in dev policy' },
      stateDir,
      port: port(0),
      clock: options.clock,
      log: options.log,
      alertSettings: {
        secret: (name) => (name === DEV_ALERT_SECRET_ENV ? receiver.secret : process.env[name]),
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
      stateDir,
      users: DEV_USERS,
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
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
