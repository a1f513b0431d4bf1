/** The broker's HTTP API as types, shared by the broker and the CLI's client. */
import type { ErrorCode } from './errors.js';
import type { RecordingTerms } from './policy/recording.js';
import type { SupervisionTerms } from './policy/supervision.js';

/** Who someone is, as the broker established it from a verified ID token. */
export interface UserInfo {
  iss: string;
  sub: string;
  email: string | null;
  name: string | null;
  groups: string[];
  roles: string[];
}

/** GET /v1/config: what a CLI needs before it can log in or validate input locally. */
export interface BrokerConfig {
  issuer: string;
  client_id: string;
  reauth_max_age: number;
  per_session_login: boolean;
  /** How the broker proves re-authentication (absent from brokers that predate passkeys: idp). */
  reauth_method?: 'idp' | 'passkey' | 'idp+passkey';
  ticket_pattern: string;
  reason_min_length: number;
  reason_max_length: number;
  default_ttl: number;
  /** Seconds; absent from brokers that predate break-glass. */
  break_glass?: { confirm_window: number; max_ttl: number };
}

/** POST /v1/login body. */
export interface LoginRequest {
  id_token: string;
}

/** POST /v1/login answer: a short-lived broker token, never an IdP token. */
export interface LoginResponse {
  token: string;
  expires_at: string;
  auth_time: number;
  user: UserInfo;
}

/** GET /v1/whoami answer. */
export interface WhoamiResponse {
  user: UserInfo;
  auth_time: number;
  login_age_seconds: number;
  expires_at: string;
}

/** Every error the broker sends has this body. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown>; request_id?: string };
}

/** POST /v1/sessions body. */
export interface SessionRequestBody {
  tenant: string;
  environment: string;
  scope: 'read' | 'write';
  ticket: string;
  reason: string;
  /** Seconds; the policy's default when absent. */
  ttl?: number;
}

/** POST /v1/sessions/check answer: what opening would do (refusals come as errors, as from POST /v1/sessions). */
export interface SessionCheck {
  decision: 'allow' | 'approval';
  rule: string;
  message: string;
  /** Seconds the session would last, and the most the caller's roles allow. */
  ttl: number;
  max_ttl: number;
  /** The ticket could not be verified but the policy lets the session open (flagged in the audit log). */
  ticket_warning?: string;
}

/** POST /v1/token's answer (RFC 8693 §2.2.1, plus the session it opened). */
export interface MachineTokenResponse {
  /** A broker token for this one session only; it expires with it. */
  access_token: string;
  issued_token_type: 'urn:ietf:params:oauth:token-type:access_token';
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
  /** The policy `machines:` entry that allowed it. */
  machine: string;
  session: SessionView;
}

/** A session (or a request for one) as the API shows it. */
export interface SessionView {
  id: string;
  state: 'pending' | 'active' | 'denied' | 'cancelled' | 'request_expired' | 'ended' | 'expired' | 'revoked';
  mode: 'standard' | 'break_glass';
  tenant: string;
  environment: string;
  scope: 'read' | 'write';
  ticket: string;
  reason: string;
  ttl: number;
  requester: { sub: string; email: string | null };
  created_at: string;
  request_expires_at: string | null;
  decided_by: { sub: string; email: string | null } | null;
  decision_comment: string | null;
  started_at: string | null;
  expires_at: string | null;
  ended_at: string | null;
  /** Who ended it: the owner, or for a revoked session the person who revoked it (reason in decision_comment). */
  ended_by?: { sub: string; email: string | null } | null;
  review_required: boolean;
  /** A break-glass session's review, once recorded. */
  review?: SessionReviewView | null;
  /** How its terminal is recorded (in answers to open and GET /v1/sessions/:id). */
  recording?: RecordingTerms;
  /** Whether it must be watched, and who watches it now (in answers to open and GET /v1/sessions/:id). */
  supervision?: SupervisionTerms & { supervisors: string[] };
}

/**
 * One earlier session (or request) of a requester on the same tenant, shown to whoever decides their
 * pending request (GET /v1/requests?recent=N). Only facts, no reason: enough to see a pattern.
 */
export interface RecentAccessView {
  id: string;
  state: SessionView['state'];
  mode: SessionView['mode'];
  environment: string;
  scope: SessionView['scope'];
  ticket: string;
  created_at: string;
  started_at: string | null;
  /** When it ended (ended, expired or revoked); null while active or never started. */
  ended_at: string | null;
  expires_at: string | null;
  /** Who approved or denied it (for break-glass: who confirmed it); null when nobody had to. */
  decided_by: { sub: string; email: string | null } | null;
}

/** A pending request as GET /v1/requests lists it; `recent_access` (newest first) only when asked for with `recent=N`. */
export interface PendingRequestView extends SessionView {
  recent_access?: RecentAccessView[];
}

/** The recorded review of a break-glass session. */
export interface SessionReviewView {
  outcome: 'justified' | 'unjustified';
  by: { sub: string; email: string | null };
  at: string;
  notes: string;
}

/** POST /v1/break-glass body. The incident id is kept as the session's ticket (same pattern). */
export interface BreakGlassRequestBody {
  tenant: string;
  environment: string;
  incident: string;
  reason: string;
  /** Seconds; at most break_glass.max_ttl. */
  ttl?: number;
}

/** A pending break-glass request: the session view plus when the confirmation window closes. */
export interface BreakGlassRequestView extends SessionView {
  confirm_by: string;
}

/** POST /v1/break-glass/:id/review body. */
export interface BreakGlassReviewBody {
  outcome: 'justified' | 'unjustified';
  notes: string;
}

/** GET /v1/sessions/:id/summary. */
export interface SessionSummary {
  session: SessionView;
  duration_seconds: number;
  actions: { read: number; write: number; export: number };
  writes: number;
  denials: number;
  /** Whether any of its terminal was recorded (chunks stored), and who supervised it live (brokers before recording leave them out). */
  recorded?: boolean;
  supervised_by?: string[];
  calls: {
    ts: string;
    method: string;
    path: string;
    status: number | null;
    kind: string;
    outcome: 'completed' | 'denied' | 'failed';
  }[];
}

/** A person in a report: the stable subject and the email to show. */
export interface ReportPerson {
  sub: string;
  email: string | null;
}

/** One session line of the access review. */
export interface ReviewSessionLine {
  id: string;
  mode: 'standard' | 'break_glass';
  state: SessionView['state'];
  requester: ReportPerson;
  /** The approver, or for break-glass the confirmer. */
  decided_by: ReportPerson | null;
  tenant: string;
  environment: string;
  scope: 'read' | 'write';
  /** Ticket, or for break-glass the incident id. */
  ticket: string;
  reason: string;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
  review: SessionReviewView | null;
}

/** GET /v1/review?since=30d: the access review for auditors (`imp review`). */
export interface ReviewReport {
  generated_at: string;
  since: string;
  broker: string;
  totals: {
    sessions: number;
    write: number;
    break_glass: number;
    denials: number;
    step_ups: number;
    alert_failures: number;
  };
  by_person: { person: ReportPerson; sessions: number; write: number; break_glass: number }[];
  /**
   * Each machine identity of the policy: sessions and denials in the period, its last session ever,
   * and `unused` when it opened none in the last `unused_days` days (a candidate to remove).
   */
  machines: {
    name: string;
    issuer: string;
    subject: string;
    sessions: number;
    denials: number;
    last_used: string | null;
    unused: boolean;
  }[];
  /** The N of "unused for N days" (?unused_days=, default 30). */
  unused_days: number;
  /** Sessions started in the period per UTC week (the Monday it starts on), tenant and scope. */
  weekly: { week: string; tenant: string; scope: string; sessions: number }[];
  /** Approvals in the period by approver: how many, and the median wait from request to decision. */
  approvals: { approver: ReportPerson; approvals: number; median_wait_seconds: number }[];
  /** Time spent in write sessions (standard and break-glass) started in the period, most first. */
  write_time: { person: ReportPerson; seconds: number }[];
  by_tenant: { tenant: string; sessions: number; write: number; break_glass: number }[];
  write_sessions: ReviewSessionLine[];
  break_glass_sessions: ReviewSessionLine[];
  /** Break-glass sessions (of any age) that nobody has reviewed yet. */
  awaiting_review: ReviewSessionLine[];
  /** Refusals: session and break-glass refusals, denied actions and approvals, access denials. */
  denials: {
    ts: string;
    type: string;
    person: ReportPerson | null;
    tenant: string | null;
    session: string | null;
    rule: string | null;
  }[];
  /** Requests refused until the person logged in again (RFC 9470 step-up), and refused logins. */
  step_ups: { ts: string; type: string; person: ReportPerson | null; why: string | null }[];
  alert_failures: { ts: string; session: string | null; url: string; attempts: number; error: string }[];
  /** People whose groups grant a role they did not use in the period: candidates to remove. */
  unused_roles: { person: ReportPerson; role: string; groups: string[]; last_login: string }[];
}

/** POST /v1/sessions/:id/recording body: one chunk of asciicast v2 lines. */
export interface RecordingChunkBody {
  seq: number;
  data: string;
}

/** GET /v1/sessions/:id/recording. */
export interface RecordingResponse {
  session: SessionView;
  chunks: { seq: number; ts: string; sha256: string; data: string }[];
}

/**
 * GET /v1/sessions/:id/watch is a Server-Sent Events stream (`text/event-stream`); each event's
 * `event:` field names its shape here and its `data:` is that JSON. Sent in this order: `hello`,
 * then the recording so far and every later chunk as `output`, proxied calls as `action`, watchers
 * coming and going as `supervision`, and `end` once the session is over (the stream then closes).
 */
export interface WatchEvents {
  /** First: the session (who, tenant, scope, expires_at) and who is watching it now. */
  hello: { session: SessionView; watcher: string; supervisors: string[] };
  /** One recording chunk, parsed: asciicast v2 events `[seconds, "o"|"i"|"r"|"m", text]`; chunk 0 also has the header. */
  output: {
    seq: number;
    header?: { width: number; height: number };
    events: [number, 'o' | 'i' | 'r' | 'm', string][];
  };
  /** A proxied call as the audit log records it: requested, then completed / failed / cut, or denied with its rule. */
  action: {
    type: 'action.requested' | 'action.completed' | 'action.failed' | 'action.cut' | 'action.denied';
    ts: string;
    method: string | null;
    path: string | null;
    kind: string | null;
    status: number | null;
    rule: string | null;
  };
  /** Someone started or stopped watching; `supervisors` is who watches now. */
  supervision: { type: 'joined' | 'left'; who: string; supervisors: string[] };
  /** The session is over (ended, expired or revoked; `by` is who revoked or terminated it). */
  end: { state: string; by: string | null; comment: string | null };
}

/** The name of a watch stream event. */
export type WatchEventName = keyof WatchEvents;
