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
  /** Calls this broker's own API in-process, through the route table and its guards (set by createBroker; the console uses it). */
  api?: InnerApi;
  /** Runs one route of the API in-process with its guards, its answer unbuffered (set by createBroker; the console's watch uses it). */
  route?: RouteRunner;
}

/** One in-process run of a route of the route table, as the holder of `token` would call it over HTTP. */
export interface RouteCall {
  method: 'GET' | 'POST' | 'DELETE';
  /** The route's path as the route table spells it, e.g. `/v1/sessions/:id/watch`. */
  route: string;
  params: Record<string, string>;
  token: string;
  /** The browser's address and the console request's id, so audit events name them. */
  ip: string;
  requestId: string;
  /** Aborted when the browser goes away. */
  signal: AbortSignal;
}

/**
 * Runs the route's guards around its own handler, or around `handler` (a part of it, e.g. only the
 * checks, which must still evaluate every guard the route declares). Refusals are audited and thrown
 * exactly as over HTTP; the answer's body is returned as the handler made it (a stream stays one).
 */
export type RouteRunner = (
  call: RouteCall,
  handler?: (ctx: HandlerContext) => Promise<HandlerResult>,
) => Promise<HandlerResult>;

/** One in-process call of the broker's API, as a client with a broker token would make it. */
export interface InnerCall {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  token: string;
  body?: unknown;
  /** A verified passkey ceremony id (the `Imp-Step-Up` header). */
  stepUp?: string;
  /** The browser's address, so audit events name it, not loopback. */
  ip: string;
}

/** The answer of an {@link InnerCall}: status, parsed JSON body, headers. */
export interface InnerAnswer {
  status: number;
  body: unknown;
  headers: Record<string, string | string[] | number | undefined>;
}

/** Calls the broker's API in-process. */
export type InnerApi = (call: InnerCall) => Promise<InnerAnswer>;

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
  headers?: Record<string, string | string[]>;
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
