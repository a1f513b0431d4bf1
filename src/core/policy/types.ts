/** The broker's policy, after validation. Durations are in seconds. */
import type { NotificationPolicy } from './notifications.js';
import type { RecordingPolicy } from './recording.js';
import type { SupervisionPolicy } from './supervision.js';
import type { TicketSystem } from './tickets.js';

/** What a session may do to the tenant. */
export type Scope = 'read' | 'write';
/** All scopes, weakest first. */
export const SCOPES: readonly Scope[] = ['read', 'write'];

/** Policy `reauth.method`. */
export type ReauthMethod = 'idp' | 'passkey' | 'idp+passkey';
/** Every re-authentication method, as written in the policy. */
export const REAUTH_METHODS: readonly ReauthMethod[] = ['idp', 'passkey', 'idp+passkey'];

/** True when the method includes a passkey the broker verifies. */
export function usesPasskey(method: ReauthMethod): boolean {
  return method !== 'idp';
}

/** True when the method includes the IdP's auth_time. */
export function usesIdp(method: ReauthMethod): boolean {
  return method !== 'passkey';
}

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
  /** May reset someone else's passkeys (never their own). */
  passkeyReset: boolean;
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

/** One method + path glob a machine identity may call through the proxy (`GET /v1/queue/**`). */
export interface MachineAllow {
  method: 'GET' | 'HEAD' | 'OPTIONS';
  path: string;
}

/**
 * A workload identity (CI job, Kubernetes service account) that may open read-only, path-limited
 * sessions by exchanging a short-lived token from a trusted issuer. Never write, never break-glass.
 */
export interface Machine {
  name: string;
  /** The `iss` its tokens carry; keys come from its OIDC discovery document unless jwksUri is set. */
  issuer: string;
  jwksUri: string | null;
  /** The `sub` its tokens must carry; `*` matches any run of characters. */
  subject: string;
  /** The `aud` its tokens must carry; null: the broker's own URL. */
  audience: string | null;
  tenants: string[];
  environments: string[];
  allow: MachineAllow[];
  maxTtl: number;
  ticketRequired: boolean;
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
    /** A claim naming the person (not the account): self-approval checks compare it too; null: off. */
    personClaim: string | null;
    /** Extra assurance where the IdP reports it: each listed value must be in the ID token's amr. */
    requireAmr: string[];
    requireAcr: string[];
  };
  reauth: {
    /** How re-authentication is proven: the IdP's auth_time, a passkey the broker verifies, or both. */
    method: ReauthMethod;
    maxAge: number;
    perSession: boolean;
    /** Authenticator models (AAGUIDs) accepted at enrolment; empty: any (attestation `none`). */
    passkeyAaguids: string[];
  };
  login: { tokenTtl: number };
  tickets: {
    pattern: string;
    /** The ticket system each session's ticket is checked against (src/core/policy/tickets.ts); null: the pattern only. */
    system: TicketSystem | null;
    /** Post the post-session summary on the ticket when every session ends (`imp end --post` asks for one). */
    postSummary: boolean;
  };
  reason: { minLength: number; maxLength: number };
  sessions: { defaultTtl: number; audience: string };
  approvals: { requestTtl: number };
  /** The web console (/console/): its own OIDC client (authorization code + PKCE) and its idle timeout (seconds). */
  console: { clientId: string; clientSecretEnv: string | null; idleTimeout: number };
  breakGlass: { confirmWindow: number; maxTtl: number; alerts: AlertWebhook[] };
  audit: {
    sink: string | null;
    checkpointEvery: number;
    checkpointInterval: number;
    /** Checkpoint origin line (C2SP tlog-checkpoint); null: derived from the audit note key. */
    origin: string | null;
    /** Witnesses every checkpoint is pushed to (C2SP tlog-witness); key is the cosigner vkey. */
    witnesses: { url: string; key: string }[];
    /** How many witnesses must cosign. */
    witnessQuorum: number;
    /** Longest a quorum may lag behind the log before the broker fails closed: seconds and events. */
    witnessLagMax: { seconds: number; events: number };
  };
  proxy: {
    timeout: number;
    maxBodyBytes: number;
    exportPaths: string[];
    exportScope: Scope | 'forbidden';
    /** Request headers forwarded besides the built-in allow-list (lower case). */
    forwardHeaders: string[];
  };
  /**
   * Per source address on the routes that need no login (seconds / requests per window): POST
   * /v1/login, and the other public routes except /healthz. Refusals beyond `foldAfter` of one kind
   * from one address in a window are audited as one access.refusals event with a count.
   */
  rateLimit: {
    window: number;
    login: number;
    public: number;
    foldAfter: number;
    /** Reverse proxies (IPs or CIDRs) whose X-Forwarded-For names the client; none by default. */
    trustedProxies: string[];
  };
  roles: Role[];
  tenants: Tenant[];
  /** Workload identities for unattended runbooks. */
  machines: Machine[];
  /** A PostgreSQL URL shared by broker replicas; null: the SQLite file in the state directory. */
  store: string | null;
  /** Which sessions' terminals are recorded (src/core/policy/recording.ts). */
  recording: RecordingPolicy;
  /** Which sessions wait for a supervisor, and what the last one leaving does (src/core/policy/supervision.ts). */
  supervision: SupervisionPolicy;
  /** Who is told what, where (src/core/policy/notifications.ts). */
  notifications: NotificationPolicy;
}
