/**
 * Both digests verification needs of one event from one canonical text: the chain hash
 * (sha256(prev ‖ canonical JSON without `hash`), event.ts) and the RFC 9162 leaf hash
 * (sha256(0x00 ‖ canonical JSON of the whole event), log-tree.ts).
 *
 * The whole event is serialised once; the chain input is the same bytes with the `"hash"` member
 * cut out. Canonical order puts that member right after `environment`, and everything after it is
 * a top-level string, number or null, whose JSON text cannot hold `,"` followed by `hash":` (inside
 * a JSON string every `"` is escaped, and a string's closing quote is followed by `,` or `}`), so the
 * last occurrence of `,"hash":"<hash>"` is the member itself.
 *
 * Why re-serialise instead of hashing the export line as stored: the line is not in canonical key
 * order (exports list seq, id, ts… first), and hashing stored text would still need proof that the
 * parsed object is what the bytes mean (no duplicate keys, no other spelling of the same value),
 * which costs the same serialisation. The re-serialisation is that proof: what gets hashed is the
 * canonical text of what was parsed, so two verifiers cannot read one hashed line two ways.
 */
import { hash as digest } from 'node:crypto';
import { isStringifyCanonical } from './canonical-json.js';
import { type AuditEvent, hashWellFormedEvent } from './event.js';
import { eventLeafBytes } from './log-tree.js';
import { type Hash, leafHash } from './merkle.js';

const HEX64 = /^[0-9a-f]{64}$/;

/** Computes chain and leaf digests with two reusable scratch buffers (one per worker or loop). */
export class EventDigester {
  private leafInput = Buffer.alloc(16 * 1024);
  private chainInput = Buffer.alloc(16 * 1024);

  /**
   * The chain hash (hex) and leaf hash of an event auditEventProblem accepted: byte for byte
   * hashWellFormedEvent(event) and eventLeafHash(event).
   */
  digest(event: AuditEvent): { chain: string; leaf: Hash } {
    const a = event.actor;
    // Hex prev and hash keep the cut below in ASCII bytes; anything else (a malformed or foreign
    // row, never accepted anyway) takes the two-serialisation path so its digest is still exact.
    if (!isStringifyCanonical(event.data) || !HEX64.test(event.hash) || !HEX64.test(event.prev))
      return { chain: hashWellFormedEvent(event), leaf: leafHash(eventLeafBytes(event)) };
    const text = JSON.stringify({
      actor: a === null ? null : { email: a.email, iss: a.iss, roles: a.roles, sub: a.sub },
      data: event.data,
      environment: event.environment,
      hash: event.hash,
      id: event.id,
      prev: event.prev,
      reason: event.reason,
      seq: event.seq,
      session: event.session,
      tenant: event.tenant,
      ticket: event.ticket,
      ts: event.ts,
      type: event.type,
    });
    // UTF-8 takes at most 3 bytes per UTF-16 code unit: room for the text, the prefix and prev.
    const room = text.length * 3 + 65;
    if (this.leafInput.length < room) {
      this.leafInput = Buffer.alloc(room * 2);
      this.chainInput = Buffer.alloc(room * 2);
    }
    const leafInput = this.leafInput;
    leafInput[0] = 0;
    const end = 1 + leafInput.write(text, 1, 'utf8');
    const member = `,"hash":"${event.hash}"`; // ASCII: one byte a character
    const cut = leafInput.lastIndexOf(member, end - member.length);
    if (cut < 0) throw new Error('the canonical text has no hash member'); // cannot happen: it was just written
    const chainInput = this.chainInput;
    chainInput.write(event.prev, 0, 'latin1');
    leafInput.copy(chainInput, 64, 1, cut);
    leafInput.copy(chainInput, 63 + cut, cut + member.length, end);
    const chainEnd = end - 1 - member.length + 64;
    return {
      chain: digest('sha256', chainInput.subarray(0, chainEnd), 'hex'),
      leaf: digest('sha256', leafInput.subarray(0, end), 'buffer'),
    };
  }
}
