/** The broker's HTTP API as types, shared by the broker and the CLI's client. */
import type { ErrorCode } from './errors.js';

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
  ticket_pattern: string;
  reason_min_length: number;
  reason_max_length: number;
  default_ttl: number;
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
  review_required: boolean;
}

/** GET /v1/sessions/:id/summary. */
export interface SessionSummary {
  session: SessionView;
  duration_seconds: number;
  actions: { read: number; write: number; export: number };
  writes: number;
  denials: number;
  calls: {
    ts: string;
    method: string;
    path: string;
    status: number | null;
    kind: string;
    outcome: 'completed' | 'denied' | 'failed';
  }[];
}
