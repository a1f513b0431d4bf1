/**
 * The broker's persistence, one interface for both engines (SQLite file, PostgreSQL). Every state
 * change and the audit event describing it are written in one `transaction`: if the event cannot be
 * appended, the change does not happen (fail-closed).
 */

import type { Checkpoint } from '../core/audit/checkpoint.js';
import type { AuditDraft, AuditEvent } from '../core/audit/event.js';
import type { StoredNote } from '../core/audit/log-tree.js';
import type { Hash, TreeNode } from '../core/audit/merkle.js';
import type { RecordingChunk } from '../core/recording/asciicast.js';

/** A login the broker accepted (one per successful `imp login`). */
export interface LoginRecord {
  id: string;
  iss: string;
  sub: string;
  email: string | null;
  authTime: number;
  createdAt: number;
  expiresAt: number;
  /** sha256 of the ID token it was made from: one ID token buys one login. */
  idTokenHash: string;
  groups: string[];
}

/** Where a session is in its life. Pending ones await approval; the last five are final. */
export type SessionState =
  | 'pending'
  | 'active'
  | 'denied'
  | 'cancelled'
  | 'request_expired'
  | 'ended'
  | 'expired'
  | 'revoked';

/** A session or a request for one (the same row moves from pending to active). */
export interface SessionRecord {
  id: string;
  state: SessionState;
  mode: 'standard' | 'break_glass';
  /** `person`: policy identity.person_claim at request time (absent when not configured). */
  requester: { iss: string; sub: string; email: string | null; roles: string[]; person?: string | null };
  tenant: string;
  environment: string;
  scope: 'read' | 'write';
  ticket: string;
  reason: string;
  /** Seconds the session lasts once active. */
  ttl: number;
  loginId: string;
  authTime: number;
  createdAt: number;
  /** Pending requests expire at this time (ms). */
  requestExpiresAt: number | null;
  decidedBy: { iss: string; sub: string; email: string | null } | null;
  decidedAt: number | null;
  decisionComment: string | null;
  startedAt: number | null;
  expiresAt: number | null;
  endedAt: number | null;
  endedBy: { iss: string; sub: string; email: string | null } | null;
  reviewRequired: boolean;
  /** The after-the-fact review of a break-glass session (absent or null until someone records it). */
  review?: SessionReview | null;
}

/** A reviewer's verdict on a break-glass session, recorded once. */
export interface SessionReview {
  by: { iss: string; sub: string; email: string | null };
  /** ms */
  at: number;
  outcome: 'justified' | 'unjustified';
  notes: string;
}

/** A passkey (WebAuthn credential) the broker holds for a person, bound to their (iss, sub). */
export interface PasskeyRecord {
  /** The credential id, base64url. */
  id: string;
  iss: string;
  sub: string;
  email: string | null;
  /** The COSE public key, base64url. */
  publicKey: string;
  /** The authenticator's signature counter as last seen (0: it keeps none). */
  counter: number;
  transports: string[];
  aaguid: string;
  name: string;
  createdAt: number;
  lastUsedAt: number | null;
}

/** A WebAuthn ceremony: enrolment of a passkey, or an assertion bound to one operation. */
export interface CeremonyRecord {
  id: string;
  kind: 'register' | 'assert';
  iss: string;
  sub: string;
  email: string | null;
  /** The broker login that asked for it. */
  loginId: string;
  /** The operation it authorises (kind plus its fields), as shown and as hashed into the challenge. */
  operation: Record<string, unknown>;
  /** sha256 of the canonical operation: an assertion is only ever used for this exact operation. */
  binding: string;
  /** What the person sees on the ceremony page. */
  description: string;
  userCode: string;
  /** The WebAuthn challenge, base64url. */
  challenge: string;
  createdAt: number;
  expiresAt: number;
  /** pending → verified (assertion or enrolment checked) → used (consumed by its operation); or failed. */
  state: 'pending' | 'verified' | 'used' | 'failed';
  credentialId: string | null;
  userVerified: boolean;
  verifiedAt: number | null;
}

/** The changes a ceremony may go through. */
export type CeremonyChanges = Partial<
  Pick<CeremonyRecord, 'state' | 'credentialId' | 'userVerified' | 'verifiedAt'>
>;

/** A notification waiting in (or done with) the outbox: one audit event, one channel. */
export interface NotificationRecord {
  id: string;
  /** The audit event it announces (read back at delivery). */
  eventId: string;
  /** The notification kind (request.pending, session.revoked, …). */
  kind: string;
  /** The policy channel name. */
  channel: string;
  /** pending until delivered (sent) or given up on (failed). */
  state: 'pending' | 'sent' | 'failed';
  /** Tries started so far (also the claim token: a try is claimed by moving it on by one). */
  attempts: number;
  /** ms: not before this (the backoff, or the lease of a try in flight). */
  nextAt: number;
  createdAt: number;
  lastError: string | null;
}

/** What a delivery try may change. */
export type NotificationChanges = Partial<
  Pick<NotificationRecord, 'state' | 'attempts' | 'nextAt' | 'lastError'>
>;

/** Which sessions to list. */
export interface SessionQuery {
  states?: SessionState[];
  requesterSub?: string;
  requesterIss?: string;
  tenant?: string;
  /** Ids starting with this (short ids people type; at least 4 characters, checked by the caller). */
  idPrefix?: string;
  /**
   * Only sessions due to expire at or before this instant (ms): active ones by `expiresAt`, pending
   * requests by `requestExpiresAt` (the expiry sweep reads these, not every open session).
   */
  dueBy?: number;
  /** Newest first (with `limit`: the newest `limit`); default oldest first. */
  newest?: boolean;
  limit?: number;
}

/** Which audit events to read. */
export interface AuditQuery {
  fromSeq?: number;
  toSeq?: number;
  sinceTs?: string;
  untilTs?: string;
  tenant?: string;
  /** One event by its id. */
  id?: string;
  /** Matches the actor's sub, email, or the email's local part. */
  actor?: string;
  type?: string;
  session?: string;
  limit?: number;
  /** With a limit: `newest` keeps the last `limit` matches (still returned oldest first). */
  newest?: boolean;
}

/**
 * An event as its transaction knows it: durable when the transaction commits, with its id and ts.
 * Its place in the log (seq, prev, hash, tree leaf) is the sequencer's to give: at once on SQLite (one
 * writer), shortly after commit on PostgreSQL. Whoever needs the seq waits with `Store.sequenced`.
 */
export type QueuedAuditEvent = Omit<AuditEvent, 'seq' | 'prev' | 'hash'>;

/** What one transaction may do. */
export interface StoreTx {
  /**
   * Appends an audit event: durable with the transaction's commit (fail-closed: no event, no change),
   * sequenced into the chain and tree by the store (at once, or by the sequencer after commit).
   */
  appendAudit(draft: AuditDraft, nowMs: number): Promise<QueuedAuditEvent>;
  /**
   * Holds a lock on `key` until the transaction ends, so check-then-write rules on one key (one
   * pending request per person and tenant, one login per session, one use of an ID token) run one at
   * a time across replicas. SQLite's one writer already runs transactions one at a time.
   */
  lockKey(key: string): Promise<void>;
  insertLogin(login: LoginRecord): Promise<void>;
  getLogin(id: string): Promise<LoginRecord | null>;
  findLoginByTokenHash(idTokenHash: string): Promise<LoginRecord | null>;
  /** The newest login of someone, found by sub, email, or the email's local part (policy explain). */
  findLatestLogin(who: string): Promise<LoginRecord | null>;
  insertSession(session: SessionRecord): Promise<void>;
  /** Reads a session inside the transaction (the row is stable until commit). */
  getSession(id: string): Promise<SessionRecord | null>;
  /** Writes the changed fields of a session; only if its state is still `expectedState` (returns false otherwise). */
  updateSession(id: string, expectedState: SessionState, changes: Partial<SessionRecord>): Promise<boolean>;
  listSessions(query: SessionQuery): Promise<SessionRecord[]>;
  /** The newest auth_time this person has already used to open a session or request (per-session login). */
  lastUsedAuthTime(iss: string, sub: string): Promise<number | null>;
  /**
   * Records the review of a session that requires one, exactly once: writes `review` only where
   * `review_required` is set and no review exists yet; false otherwise (a racing second review loses).
   */
  recordReview(id: string, review: SessionReview): Promise<boolean>;
  insertPasskey(passkey: PasskeyRecord): Promise<void>;
  getPasskey(id: string): Promise<PasskeyRecord | null>;
  /** A person's passkeys, oldest first. */
  listPasskeys(iss: string, sub: string): Promise<PasskeyRecord[]>;
  /** Records a use: the new counter and when. */
  updatePasskeyUse(id: string, counter: number, lastUsedAt: number): Promise<void>;
  /** Removes one passkey of (iss, sub); false when there is none with that id. */
  deletePasskey(iss: string, sub: string, id: string): Promise<boolean>;
  /** Removes every passkey of (iss, sub); returns how many. */
  deletePasskeys(iss: string, sub: string): Promise<number>;
  insertCeremony(ceremony: CeremonyRecord): Promise<void>;
  getCeremony(id: string): Promise<CeremonyRecord | null>;
  /** Changes a ceremony only if its state is still `expectedState` (single use under races). */
  updateCeremony(
    id: string,
    expectedState: CeremonyRecord['state'],
    changes: CeremonyChanges,
  ): Promise<boolean>;
  /** Adds a notification to the outbox (in the transaction of the event it announces). */
  insertNotification(notification: NotificationRecord): Promise<void>;
  getNotification(id: string): Promise<NotificationRecord | null>;
  /** Pending notifications whose time has come, oldest first. */
  listDueNotifications(nowMs: number, limit: number): Promise<NotificationRecord[]>;
  /** Changes a pending notification only if its attempt count is still `expectedAttempts` (one claimant per try). */
  updateNotification(id: string, expectedAttempts: number, changes: NotificationChanges): Promise<boolean>;
  /** Stores one recording chunk; a second chunk with the same (session, seq) throws. */
  insertRecordingChunk(chunk: RecordingChunk): Promise<void>;
  /** One stored chunk, or null. */
  getRecordingChunk(session: string, seq: number): Promise<RecordingChunk | null>;
  /** How many chunks of a session are stored (the next chunk's seq, since they arrive in order). */
  countRecordingChunks(session: string): Promise<number>;
}

/**
 * The reads a request makes before (or instead of) writing: on the Store they run outside any write
 * transaction, so authenticating a call or checking a step-up does not wait for the writer (the
 * SQLite group) or a pooled connection's transaction. They see committed state only; a
 * check-then-write that must hold until commit still reads through the transaction's StoreTx,
 * after `lockKey` where replicas could race.
 */
export type StoreReads = Pick<
  StoreTx,
  | 'getLogin'
  | 'findLoginByTokenHash'
  | 'findLatestLogin'
  | 'lastUsedAuthTime'
  | 'getPasskey'
  | 'listPasskeys'
  | 'getCeremony'
>;

/** The names of {@link StoreReads}, for engines that build them from their transaction methods. */
export const STORE_READS = [
  'getLogin',
  'findLoginByTokenHash',
  'findLatestLogin',
  'lastUsedAuthTime',
  'getPasskey',
  'listPasskeys',
  'getCeremony',
] as const satisfies readonly (keyof StoreReads)[];

/** How a transaction may be run. */
export interface TransactionOptions {
  /**
   * Nobody is waiting on this write to answer a request (a proxied call's outcome, recorded after
   * its answer went out): the engine may hold it briefly so that it shares the next commit and sync
   * instead of paying for its own. It is still durable when the promise resolves, and reads of the
   * audit log never miss it (they write what is held first). Engines without group commit ignore it.
   */
  lazy?: boolean;
}

/** A store engine. */
export interface Store extends StoreReads {
  readonly engine: 'sqlite' | 'postgres';
  /** Runs `fn` atomically; its audit events are durable when it resolves (sequenced by the store). */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /**
   * Waits until every event committed before the call is sequenced (in the chain and the tree):
   * readers that must see "their" events (a summary at session end, a receipt right after an
   * action, an export) call it first. Throws AuditUnavailableError when no sequencer integrates
   * them within `timeoutMs` (default 10 s).
   */
  settle(timeoutMs?: number): Promise<void>;
  /** Waits until the events with these ids are sequenced and returns them, in seq order (as settle). */
  sequenced(ids: readonly string[], timeoutMs?: number): Promise<AuditEvent[]>;
  /** Sequenced events in seq order (events still queued are not there yet: see settle). */
  readAudit(query?: AuditQuery): Promise<AuditEvent[]>;
  /** Every event in seq order without materialising the whole log (for verify and export). */
  iterateAudit(query?: AuditQuery): AsyncIterable<AuditEvent>;
  /** The newest event, or null on an empty log. */
  auditHead(): Promise<{ seq: number; hash: string } | null>;
  getSession(id: string): Promise<SessionRecord | null>;
  listSessions(query: SessionQuery): Promise<SessionRecord[]>;
  /** Legacy JWS checkpoints (before the tree); still read so old logs and exports verify. */
  insertCheckpoint(checkpoint: Checkpoint): Promise<void>;
  listCheckpoints(): Promise<Checkpoint[]>;
  /** The RFC 9162 tree over the committed events: its size and root hash. */
  treeHead(): Promise<{ size: number; root: Hash }>;
  /** Stored complete-subtree hashes, in the order asked (proofs and roots are folded from these). */
  treeNodes(nodes: readonly TreeNode[]): Promise<Hash[]>;
  /** Stores a log-signed checkpoint note (C2SP tlog-checkpoint) for a tree size; the first one stands. */
  insertNote(size: number, note: string): Promise<void>;
  /** Adds witness cosignature lines to the checkpoint of `size` (one per witness name). */
  addCosignatures(size: number, lines: readonly { witness: string; line: string }[]): Promise<void>;
  /** Every checkpoint note, oldest first, with its cosignature lines appended. */
  listNotes(): Promise<StoredNote[]>;
  /** The newest login of each person (iss, sub), with the groups it carried (access reviews). */
  listLatestLogins(): Promise<LoginRecord[]>;
  /** A session's recording chunks in seq order (empty when it was not recorded). */
  listRecordingChunks(session: string): Promise<RecordingChunk[]>;
  /**
   * Calls `listener` with each batch of events this store instance sequenced, in seq order: after
   * the commit that appended them on SQLite; on PostgreSQL on the replica holding the sequencer
   * lease (so every event is announced once across replicas).
   */
  onAppended(listener: (events: AuditEvent[]) => void): () => void;
  /**
   * Calls `listener` with the id of a session whose state changed in another process sharing the
   * store (PostgreSQL LISTEN/NOTIFY), so long-polls wake at once. Absent where one process is the
   * only writer (SQLite); best effort, as long-polls also poll.
   */
  onSessionChanged?(listener: (id: string) => void): () => void;
  /**
   * Calls `listener` with the log's size each time a sequencer on any process sharing the store
   * integrated a batch (PostgreSQL LISTEN/NOTIFY; best effort), so a replica that does not hold the
   * sequencer lease still sees the log grow. Absent where one process is the only writer (SQLite).
   */
  onAuditHead?(listener: (size: number) => void): () => void;
  /** Throws when the store cannot serve (health checks). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
