/** What a route handler receives and returns. */

import type { IdTokenVerifier } from '../auth/id-token.js';
import type { AuditActor } from '../core/audit/event.js';
import type { Clock } from '../core/clock.js';
import { machineRole } from '../core/policy/machines.js';
import type { Policy, Role } from '../core/policy/types.js';
import type { Store } from '../store/types.js';
import type { AlertDispatcher, AlertSettings } from './alerts.js';
import type { Guard } from './guards.js';
import type { KeyRing } from './keys.js';
import type { AuditNoteKey } from './note-key.js';
import type { Notifier, NotifySettings } from './notify/dispatcher.js';
import type { RefusalFolder } from './refusal-fold.js';
import type { TicketService, TicketSettings } from './tickets/service.js';
import type { WitnessPusher } from './witnesses.js';

/** A caller the broker authenticated from a broker token. */
export interface Principal {
  loginId: string;
  iss: string;
  sub: string;
  email: string | null;
  name: string | null;
  groups: string[];
  /** policy identity.person_claim of the login, when configured. */
  person?: string | null;
  roles: Role[];
  authTime: number;
  expiresAt: number;
  /** A machine identity's name when a workload token was exchanged for this login; null for people. */
  machine: string | null;
}

/** Logs broker internals (never tokens). */
export type BrokerLog = (
  level: 'info' | 'warn' | 'error',
  message: string,
  fields?: Record<string, unknown>,
) => void;

/** Everything the broker runs on; injected so tests control time, keys and storage. */
export interface BrokerDeps {
  policy: Policy;
  /** sha256 of the policy file as loaded, for the policy.loaded event. */
  policyHash: string;
  policySource: string;
  store: Store;
  keys: KeyRing;
  clock: Clock;
  verifyIdToken: IdTokenVerifier;
  /** The broker's public URL: `iss` of everything it signs. */
  issuer: string;
  fetch: typeof fetch;
  log: BrokerLog;
  /** Signs a checkpoint of the current head now (set by createBroker). */
  checkpoint: () => Promise<void>;
  /** How break-glass alerts are sent (tests shorten the retries); defaults otherwise. */
  alertSettings?: Partial<AlertSettings>;
  /** How notifications are delivered (tests shorten the backoff); defaults otherwise. */
  notifySettings?: Partial<NotifySettings>;
  /** Delivers the notification outbox (set by createBroker). */
  notifier?: Notifier;
  /** Sends break-glass alerts after commit (set by createBroker). */
  alerts?: AlertDispatcher;
  /** Audits refusals of anonymous requests, folding repeats (set by createBroker). */
  refusals?: RefusalFolder;
  /** The key that signs checkpoints (C2SP signed-note); derived from the audit key when absent. */
  auditNote?: AuditNoteKey;
  /** How the ticket system's credential is read and summaries are retried (tests shorten the retries). */
  ticketSettings?: Partial<TicketSettings>;
  /** Ticket checks and summary posting (set by createBroker). */
  tickets?: TicketService;
  /** Pushes checkpoints to the policy's witnesses (set by createBroker). */
  witnesses?: WitnessPusher;
}

/** A request, typed for handlers. */
export interface HandlerContext {
  deps: BrokerDeps;
  requestId: string;
  principal: Principal | null;
  params: Record<string, string>;
  query: Record<string, string | undefined>;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
  ip: string;
  /** Aborted when the client goes away (long-polls stop waiting). */
  signal: AbortSignal;
  /** The route's guards, for the ones a handler evaluates at its own point (target, fresh login) and its commit. */
  guard: Guard;
}

/** What a handler returns. */
export interface HandlerResult {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** The audit actor for a principal; a machine is named by its `machine:<name>` role. */
export function actorOf(principal: Principal): AuditActor {
  return {
    iss: principal.iss,
    sub: principal.sub,
    email: principal.email,
    roles: principal.machine ? [machineRole(principal.machine)] : principal.roles.map((role) => role.name),
  };
}
