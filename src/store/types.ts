/**
 * The broker's persistence, one interface for both engines (SQLite file, PostgreSQL). Every state
 * change and the audit event describing it are written in one `transaction`: if the event cannot be
 * appended, the change does not happen (fail-closed).
 */

import type { Checkpoint } from '../core/audit/checkpoint.js';
import type { AuditDraft, AuditEvent } from '../core/audit/event.js';

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
}

/** Which audit events to read. */
export interface AuditQuery {
  fromSeq?: number;
  toSeq?: number;
  sinceTs?: string;
  untilTs?: string;
  tenant?: string;
  actorSub?: string;
  type?: string;
  session?: string;
  limit?: number;
}

/** What one transaction may do. */
export interface StoreTx {
  /** Appends an audit event to the chain; the store assigns seq, id, ts (from nowMs), prev and hash. */
  appendAudit(draft: AuditDraft, nowMs: number): Promise<AuditEvent>;
  insertLogin(login: LoginRecord): Promise<void>;
  getLogin(id: string): Promise<LoginRecord | null>;
  findLoginByTokenHash(idTokenHash: string): Promise<LoginRecord | null>;
}

/** A store engine. */
export interface Store {
  readonly engine: 'sqlite' | 'postgres';
  /** Runs `fn` atomically; appends are serialized so the chain never forks. */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;
  /** Events in seq order. */
  readAudit(query?: AuditQuery): Promise<AuditEvent[]>;
  /** Every event in seq order without materialising the whole log (for verify and export). */
  iterateAudit(query?: AuditQuery): AsyncIterable<AuditEvent>;
  /** The newest event, or null on an empty log. */
  auditHead(): Promise<{ seq: number; hash: string } | null>;
  insertCheckpoint(checkpoint: Checkpoint): Promise<void>;
  listCheckpoints(): Promise<Checkpoint[]>;
  /** Throws when the store cannot serve (health checks). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
