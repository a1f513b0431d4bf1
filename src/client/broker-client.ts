/**
 * The CLI's side of the broker API. Turns HTTP answers into typed results or coded ImpErrors, and
 * RFC 9470 challenges into StepUpRequiredError so callers can log in again and retry once.
 */
import type {
  BreakGlassRequestBody,
  BreakGlassRequestView,
  BreakGlassReviewBody,
  BrokerConfig,
  ErrorBody,
  LoginResponse,
  MachineTokenResponse,
  RecordingResponse,
  ReviewReport,
  SessionCheck,
  SessionRequestBody,
  SessionSummary,
  SessionView,
  WhoamiResponse,
} from '../core/api.js';
import {
  AuthRequiredError,
  ImpError,
  isErrorCode,
  type PasskeyChallengeInfo,
  StepUpRequiredError,
  UnreachableError,
} from '../core/errors.js';

/** What a machine identity asks for in a token exchange. */
export interface MachineSessionAsk {
  tenant: string;
  /** Absent: the broker implies the tenant's only environment. */
  environment: string | undefined;
  ticket: string | undefined;
  reason: string;
  /** Seconds. */
  ttl: number | undefined;
}

/** Options for one request. */
export interface RequestOptions {
  token?: string | null;
  body?: unknown;
  /** Sent form-encoded instead of a JSON body (OAuth endpoints: RFC 8693, RFC 7523). */
  form?: Record<string, string>;
  signal?: AbortSignal;
  /** Query parameters; undefined values are left out. */
  query?: Record<string, string | undefined>;
}

/** A typed answer with its status. */
export interface BrokerResponse<T> {
  status: number;
  body: T;
}

/** The tenant API's answer through the proxy. */
export interface ProxyResponse {
  status: number;
  statusText: string;
  headers: Headers;
  text: string;
}

/** Parses `WWW-Authenticate: Bearer error="insufficient_user_authentication", max_age=300`. */
export function parseStepUpChallenge(header: string | null): number | null {
  if (!header || !/error="?insufficient_user_authentication"?/.test(header)) return null;
  const match = /max_age="?(\d+)"?/.exec(header);
  return match ? Number(match[1]) : 0;
}

/** True when an RFC 9470 challenge asks for the broker's passkey confirmation (`acr_values`). */
export function isPasskeyChallenge(header: string | null): boolean {
  return header !== null && /acr_values="[^"]*urn:imp:reauth:passkey/.test(header);
}

/** A passkey on the broker, as listed. */
export interface PasskeyView {
  id: string;
  name: string;
  aaguid: string;
  created_at: string;
  last_used_at: string | null;
}

/** Talks JSON to one broker. */
export class BrokerClient {
  /**
   * A verified passkey ceremony to present (header `Imp-Step-Up`) while retrying the operation it
   * was made for; the broker uses it only for that exact operation, once.
   */
  stepUp: string | null = null;

  constructor(
    readonly baseUrl: string,
    private readonly fetchImpl: typeof fetch,
  ) {}

  /** Sends a request; non-2xx answers become ImpErrors carrying the broker's code and message. */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<BrokerResponse<T>> {
    const { status, text } = await this.send(method, path, options);
    let body: unknown = null;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = null;
      }
    }
    return { status, body: body as T };
  }

  /** Like request, for answers that are not JSON (the audit export). */
  async requestText(method: string, path: string, options: RequestOptions = {}): Promise<string> {
    return (await this.send(method, path, options)).text;
  }

  private async send(
    method: string,
    path: string,
    options: RequestOptions,
  ): Promise<{ status: number; text: string }> {
    const url = new URL(this.baseUrl + path);
    for (const [key, value] of Object.entries(options.query ?? {}))
      if (value !== undefined) url.searchParams.set(key, value);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (this.stepUp) headers['imp-step-up'] = this.stepUp;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.form !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    const payload =
      options.form !== undefined
        ? new URLSearchParams(options.form).toString()
        : options.body !== undefined
          ? JSON.stringify(options.body)
          : undefined;
    const response = await this.fetchOrUnreachable(url, {
      method,
      headers,
      ...(payload !== undefined ? { body: payload } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const text = await response.text();
    if (response.ok) return { status: response.status, text };
    throw this.toError(response, text);
  }

  /**
   * ANY /v1/sessions/:id/proxy/<path>: the tenant API's answer, whatever its status. The broker's own
   * refusals (no `x-imp-action-id`: denied, session over, not yours) become ImpErrors like any call's,
   * so `imp api` maps them to exit codes through the one table.
   */
  async proxy(
    token: string,
    sessionId: string,
    method: string,
    path: string,
    options: { headers?: Record<string, string>; body?: string; signal?: AbortSignal } = {},
  ): Promise<ProxyResponse> {
    const url = `${this.baseUrl}/v1/sessions/${encodeURIComponent(sessionId)}/proxy${path}`;
    const headers: Record<string, string> = { ...options.headers, authorization: `Bearer ${token}` };
    const response = await this.fetchOrUnreachable(url, {
      method,
      headers,
      redirect: 'manual',
      ...(options.body !== undefined ? { body: options.body } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const text = await response.text();
    if (!response.headers.has('x-imp-action-id') && !response.ok) {
      const error = this.toError(response, text);
      // A tenant API that did not answer in time is a failed upstream call (exit 1), not a wait of
      // imp's own that ran out (exit 5: approvals, confirmations).
      if (error.code === 'IMP_TIMEOUT' && response.status === 504)
        throw new ImpError('IMP_UPSTREAM', error.message, { details: error.details, cause: error });
      throw error;
    }
    return { status: response.status, statusText: response.statusText, headers: response.headers, text };
  }

  private async fetchOrUnreachable(url: URL | string, init: RequestInit): Promise<Response> {
    try {
      return await this.fetchImpl(url, init);
    } catch (error) {
      if (init.signal?.aborted) throw error;
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new UnreachableError(
        `Cannot reach the broker at ${this.baseUrl} (${cause?.code ?? cause?.message ?? (error as Error).message}). Check the URL (--broker, IMP_BROKER_URL), that the broker is running, and your network.`,
        error,
      );
    }
  }

  private toError(response: Response, text: string): ImpError {
    let body: unknown = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    const maxAge = parseStepUpChallenge(response.headers.get('www-authenticate'));
    const error = (body as Partial<ErrorBody> | null)?.error;
    const message =
      typeof error?.message === 'string' ? error.message : `The broker answered HTTP ${response.status}.`;
    if (maxAge !== null) {
      const passkey = (error?.details as { passkey?: PasskeyChallengeInfo } | undefined)?.passkey;
      if (isPasskeyChallenge(response.headers.get('www-authenticate')) && passkey)
        return new StepUpRequiredError(maxAge, message, { method: 'passkey', passkey });
      return new StepUpRequiredError(maxAge, message);
    }
    if (error && isErrorCode(error.code)) {
      return new ImpError(error.code, message, {
        details: { ...(error.details ?? {}), status: response.status },
      });
    }
    if (response.status === 401) return new AuthRequiredError();
    return new ImpError(response.status >= 500 ? 'IMP_INTERNAL' : 'IMP_UPSTREAM', message, {
      details: { status: response.status },
    });
  }

  /** GET /v1/config. */
  async config(): Promise<BrokerConfig> {
    return (await this.request<BrokerConfig>('GET', '/v1/config')).body;
  }

  /** POST /v1/login: exchange a verified ID token for a broker token. */
  async login(idToken: string): Promise<LoginResponse> {
    return (await this.request<LoginResponse>('POST', '/v1/login', { body: { id_token: idToken } })).body;
  }

  /** POST /v1/token: a workload identity token → one read-only session and a broker token for it alone. */
  async exchangeMachineToken(identityToken: string, ask: MachineSessionAsk): Promise<MachineTokenResponse> {
    const form: Record<string, string> = {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: identityToken,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      scope: 'tenant:read',
      tenant: ask.tenant,
      reason: ask.reason,
    };
    if (ask.environment) form.environment = ask.environment;
    if (ask.ticket) form.ticket = ask.ticket;
    if (ask.ttl !== undefined) form.ttl = String(ask.ttl);
    return (await this.request<MachineTokenResponse>('POST', '/v1/token', { form })).body;
  }

  /** GET /v1/whoami. */
  async whoami(token: string): Promise<WhoamiResponse> {
    return (await this.request<WhoamiResponse>('GET', '/v1/whoami', { token })).body;
  }

  /** POST /v1/sessions: 201 active or 202 pending. */
  async openSession(
    token: string,
    body: SessionRequestBody,
  ): Promise<{ status: number; session: SessionView; message: string }> {
    const answer = await this.request<{ session: SessionView; message: string }>('POST', '/v1/sessions', {
      token,
      body,
    });
    return { status: answer.status, session: answer.body.session, message: answer.body.message };
  }

  /** POST /v1/sessions/check: the broker's checks for a session request, without opening it. */
  async checkSession(token: string, body: SessionRequestBody): Promise<SessionCheck> {
    return (await this.request<SessionCheck>('POST', '/v1/sessions/check', { token, body })).body;
  }

  /** GET /v1/sessions/:id, long-polling while pending when `waitSeconds` is given. */
  async getSession(
    token: string,
    id: string,
    waitSeconds?: number,
    signal?: AbortSignal,
  ): Promise<SessionView> {
    const query = waitSeconds ? { wait: `${waitSeconds}s` } : {};
    return (
      await this.request<{ session: SessionView }>('GET', `/v1/sessions/${encodeURIComponent(id)}`, {
        token,
        query,
        ...(signal ? { signal } : {}),
      })
    ).body.session;
  }

  /** GET /v1/sessions?state=… (mine). */
  async listSessions(token: string, states?: string[]): Promise<SessionView[]> {
    return (
      await this.request<{ sessions: SessionView[] }>('GET', '/v1/sessions', {
        token,
        query: { state: states?.join(',') },
      })
    ).body.sessions;
  }

  /** POST /v1/sessions/:id/recording: one chunk, by its number (a repeat of a stored chunk is fine). */
  async uploadRecordingChunk(
    token: string,
    id: string,
    seq: number,
    data: string,
    signal?: AbortSignal,
  ): Promise<void> {
    await this.request('POST', `/v1/sessions/${encodeURIComponent(id)}/recording`, {
      token,
      body: { seq, data },
      ...(signal ? { signal } : {}),
    });
  }

  /** GET /v1/sessions/:id/recording (audited on the broker with its purpose). */
  async getRecording(
    token: string,
    id: string,
    purpose: 'replay' | 'export' | 'verify',
  ): Promise<RecordingResponse> {
    return (
      await this.request<RecordingResponse>('GET', `/v1/sessions/${encodeURIComponent(id)}/recording`, {
        token,
        query: { purpose },
      })
    ).body;
  }

  /** POST /v1/sessions/:id/end (also withdraws a pending request). */
  async endSession(token: string, id: string): Promise<SessionView> {
    return (await this.endSessionPosting(token, id, false)).session;
  }

  /** POST /v1/sessions/:id/end {post_summary}: also says whether the summary is being posted on the ticket. */
  async endSessionPosting(
    token: string,
    id: string,
    postSummary: boolean,
  ): Promise<{ session: SessionView; ticket_note: 'posting' | null }> {
    const answer = await this.request<{ session: SessionView; ticket_note?: 'posting' | null }>(
      'POST',
      `/v1/sessions/${encodeURIComponent(id)}/end`,
      { token, ...(postSummary ? { body: { post_summary: true } } : {}) },
    );
    return { session: answer.body.session, ticket_note: answer.body.ticket_note ?? null };
  }

  /** POST /v1/sessions/:id/exec-credential: a credential for this session's proxy only (for `imp exec`'s child). */
  async execCredential(token: string, id: string): Promise<{ credential: string; expires_at: string }> {
    return (
      await this.request<{ credential: string; expires_at: string }>(
        'POST',
        `/v1/sessions/${encodeURIComponent(id)}/exec-credential`,
        { token },
      )
    ).body;
  }

  /** POST /v1/sessions/:id/revoke. */
  async revokeSession(token: string, id: string, reason?: string): Promise<SessionView> {
    return (
      await this.request<{ session: SessionView }>('POST', `/v1/sessions/${encodeURIComponent(id)}/revoke`, {
        token,
        body: { reason },
      })
    ).body.session;
  }

  /** POST /v1/sessions/:id/terminate: the watching supervisor ends the session. */
  async terminateSession(token: string, id: string): Promise<SessionView> {
    return (
      await this.request<{ session: SessionView }>(
        'POST',
        `/v1/sessions/${encodeURIComponent(id)}/terminate`,
        {
          token,
        },
      )
    ).body.session;
  }

  /** A streaming GET (Server-Sent Events): the open response, or the broker's refusal as an ImpError. */
  async openStream(path: string, token: string, signal?: AbortSignal): Promise<Response> {
    const response = await this.fetchOrUnreachable(new URL(this.baseUrl + path), {
      headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` },
      ...(signal ? { signal } : {}),
    });
    if (response.ok) return response;
    throw this.toError(response, await response.text());
  }

  /** GET /v1/sessions/:id/summary. */
  async summary(token: string, id: string): Promise<SessionSummary> {
    return (
      await this.request<SessionSummary>('GET', `/v1/sessions/${encodeURIComponent(id)}/summary`, { token })
    ).body;
  }

  /** GET /v1/requests?state=pending: what I may approve. */
  async listRequests(token: string): Promise<SessionView[]> {
    return (
      await this.request<{ requests: SessionView[] }>('GET', '/v1/requests', {
        token,
        query: { state: 'pending' },
      })
    ).body.requests;
  }

  /** GET /v1/requests?kind=break_glass: pending break-glass requests the caller may confirm. */
  async listBreakGlassRequests(token: string): Promise<SessionView[]> {
    return (
      await this.request<{ requests: SessionView[] }>('GET', '/v1/requests', {
        token,
        query: { state: 'pending', kind: 'break_glass' },
      })
    ).body.requests;
  }

  /** POST /v1/requests/:id/approve. */
  async approve(token: string, id: string, comment?: string): Promise<SessionView> {
    return (
      await this.request<{ session: SessionView }>('POST', `/v1/requests/${encodeURIComponent(id)}/approve`, {
        token,
        body: { comment },
      })
    ).body.session;
  }

  /** POST /v1/requests/:id/deny. */
  async deny(token: string, id: string, reason: string): Promise<SessionView> {
    return (
      await this.request<{ session: SessionView }>('POST', `/v1/requests/${encodeURIComponent(id)}/deny`, {
        token,
        body: { reason },
      })
    ).body.session;
  }

  /** GET /v1/tenants: ids, names and environments (for prompts and completion). */
  async tenants(token: string): Promise<{ id: string; name: string; environments: string[] }[]> {
    return (
      await this.request<{ tenants: { id: string; name: string; environments: string[] }[] }>(
        'GET',
        '/v1/tenants',
        { token },
      )
    ).body.tenants;
  }

  /** POST /v1/break-glass: 202 with the pending request (confirm_by) for a second person to confirm, and any ticket-system warning. */
  async requestBreakGlass(
    token: string,
    body: BreakGlassRequestBody,
  ): Promise<BreakGlassRequestView & { ticket_warning?: string }> {
    const answer = await this.request<{ request: BreakGlassRequestView; ticket_warning?: string }>(
      'POST',
      '/v1/break-glass',
      { token, body },
    );
    const warning = answer.body.ticket_warning;
    return { ...answer.body.request, ...(typeof warning === 'string' ? { ticket_warning: warning } : {}) };
  }

  /** GET /v1/break-glass/:id: the request as its confirmer sees it (refused as confirming would be). */
  async getBreakGlass(token: string, id: string): Promise<BreakGlassRequestView> {
    const path = `/v1/break-glass/${encodeURIComponent(id)}`;
    return (await this.request<{ request: BreakGlassRequestView }>('GET', path, { token })).body.request;
  }

  /** POST /v1/break-glass/:id/confirm: opens the break-glass session. */
  async confirmBreakGlass(token: string, id: string): Promise<SessionView> {
    const path = `/v1/break-glass/${encodeURIComponent(id)}/confirm`;
    return (await this.request<{ session: SessionView }>('POST', path, { token })).body.session;
  }

  /** POST /v1/break-glass/:id/review: a third person's verdict. */
  async reviewBreakGlass(token: string, id: string, body: BreakGlassReviewBody): Promise<SessionView> {
    const path = `/v1/break-glass/${encodeURIComponent(id)}/review`;
    return (await this.request<{ session: SessionView }>('POST', path, { token, body })).body.session;
  }

  /** GET /v1/sessions/live: everyone's active and pending sessions (security roles; audited). */
  async liveSessions(token: string, filters: Record<string, string>): Promise<SessionView[]> {
    const answer = await this.request<{ sessions: SessionView[] }>('GET', '/v1/sessions/live', {
      token,
      query: filters,
    });
    return answer.body.sessions;
  }

  /** GET /v1/review?since=: the access review. */
  async review(token: string, since: string, unusedDays?: number): Promise<ReviewReport> {
    const query = { since, unused_days: unusedDays === undefined ? undefined : String(unusedDays) };
    return (await this.request<ReviewReport>('GET', '/v1/review', { token, query })).body;
  }

  /** GET /v1/ceremonies/:id?wait=: waits up to `waitSeconds` for a passkey ceremony to be answered. */
  async ceremony(
    token: string,
    id: string,
    waitSeconds: number,
    signal?: AbortSignal,
  ): Promise<{ state: string }> {
    const path = `/v1/ceremonies/${encodeURIComponent(id)}`;
    return (
      await this.request<{ state: string }>('GET', path, {
        token,
        query: { wait: String(waitSeconds) },
        ...(signal ? { signal } : {}),
      })
    ).body;
  }

  /** GET /v1/passkeys: mine. */
  async listPasskeys(token: string): Promise<PasskeyView[]> {
    return (await this.request<{ passkeys: PasskeyView[] }>('GET', '/v1/passkeys', { token })).body.passkeys;
  }

  /** POST /v1/passkeys: starts enrolment; answers the ceremony to complete in a browser. */
  async addPasskey(token: string, name?: string): Promise<PasskeyChallengeInfo> {
    return (
      await this.request<{ passkey_authorization: PasskeyChallengeInfo }>('POST', '/v1/passkeys', {
        token,
        body: name ? { name } : {},
      })
    ).body.passkey_authorization;
  }

  /** DELETE /v1/passkeys/:id. */
  async removePasskey(token: string, id: string): Promise<void> {
    await this.request('DELETE', `/v1/passkeys/${encodeURIComponent(id)}`, { token });
  }

  /** POST /v1/passkeys/reset: someone else's passkeys (role with passkey_reset). */
  async resetPasskeys(
    token: string,
    user: string,
  ): Promise<{ user: { sub: string; email: string | null }; removed: number }> {
    return (
      await this.request<{ user: { sub: string; email: string | null }; removed: number }>(
        'POST',
        '/v1/passkeys/reset',
        { token, body: { user } },
      )
    ).body;
  }
}
