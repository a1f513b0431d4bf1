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
