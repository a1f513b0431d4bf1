/** The broker's policy, after validation. Durations are in seconds. */

/** What a session may do to the tenant. */
export type Scope = 'read' | 'write';
/** All scopes, weakest first. */
export const SCOPES: readonly Scope[] = ['read', 'write'];

/** A group of people and what they may do. */
export interface Role {
  name: string;
  groups: string[];
  tenants: string[];
  environments: string[];
  scopes: Scope[];
  maxTtl: number;
  approve: boolean;
  breakGlass: boolean;
  breakGlassConfirm: boolean;
  audit: boolean;
  review: boolean;
  revoke: boolean;
  /** May watch live sessions across people (`imp sessions`) without audit, review or revoke rights. */
  supervise: boolean;
}

/** A customer tenant and where its API lives per environment. */
export interface Tenant {
  id: string;
  name: string;
  tier: string;
  approvalRequired: Scope[];
  upstream: Record<string, string>;
}

/** A webhook told about every break-glass session. */
export interface AlertWebhook {
  url: string;
  /** Name of the environment variable holding the HMAC secret (never the secret itself). */
  secretEnv: string | null;
}

/** The whole validated policy. */
export interface Policy {
  identity: {
    issuer: string;
    clientId: string;
    groupsClaim: string;
    /** Extra assurance where the IdP reports it: each listed value must be in the ID token's amr. */
    requireAmr: string[];
    requireAcr: string[];
  };
  reauth: { maxAge: number; perSession: boolean };
  login: { tokenTtl: number };
  tickets: { pattern: string };
  reason: { minLength: number; maxLength: number };
  sessions: { defaultTtl: number; audience: string };
  approvals: { requestTtl: number };
  breakGlass: { confirmWindow: number; maxTtl: number; alerts: AlertWebhook[] };
  audit: { sink: string | null; checkpointEvery: number; checkpointInterval: number };
  proxy: { timeout: number; maxBodyBytes: number; exportPaths: string[]; exportScope: Scope | 'forbidden' };
  roles: Role[];
  tenants: Tenant[];
  /** A PostgreSQL URL shared by broker replicas; null: the SQLite file in the state directory. */
  store: string | null;
}
