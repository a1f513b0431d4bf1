/**
 * Both digests verification needs of one event from one canonical text: the chain hash
 * (sha256(prev ‖ canonical JSON without `hash`), event.ts) and the RFC 9162 leaf hash
 * (sha256(0x00 ‖ canonical JSON of the whole event), log-tree.ts).
 *
 * The event is serialised once, as the members before `hash` (actor, data, environment) and the
 * members after it (id … type), which is where RFC 8785 order puts it; the leaf input is those with
 * the hash member between them, the chain input the same bytes without it.
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

/** Computes chain and leaf digests with two reusable scratch buffers (one per worker or loop). */
export class EventDigester {
  private leafInput = Buffer.alloc(16 * 1024);
  private chainInput = Buffer.alloc(16 * 1024);

  /**
   * The chain hash (hex) and leaf hash of an event auditEventProblem accepted: byte for byte
   * hashWellFormedEvent(event) and eventLeafHash(event) when its prev and hash are 64 lowercase hex
   * digits — the only events verification can accept, as a hash must equal a hex digest and a prev
   * the hash before it. Other lengths take the exact two-serialisation path.
   */
  digest(event: AuditEvent): { chain: string; leaf: Hash } {
    const a = event.actor;
    if (event.hash.length !== 64 || event.prev.length !== 64 || !isStringifyCanonical(event.data))
      return { chain: hashWellFormedEvent(event), leaf: leafHash(eventLeafBytes(event)) };
    // The canonical text in two native serialisations, split where the hash member goes: the
    // members before it and the members after it, each with the keys inserted in RFC 8785 order.
    const head = JSON.stringify({
      actor: a === null ? null : { email: a.email, iss: a.iss, roles: a.roles, sub: a.sub },
      data: event.data,
      environment: event.environment,
    });
    const tail = JSON.stringify({
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
    // UTF-8 takes at most 3 bytes per UTF-16 code unit; the member and prev are 74 and 64 bytes.
    const room = (head.length + tail.length) * 3 + 140;
    if (this.leafInput.length < room) {
      this.leafInput = Buffer.alloc(room * 2);
      this.chainInput = Buffer.alloc(room * 2);
    }
    // leafInput: 0x00 ‖ head without its "}" ‖ ,"hash":"<hash>" ‖ tail with its "{" made ",".
    const leafInput = this.leafInput;
    leafInput[0] = 0;
    const cut = leafInput.write(head, 1, 'utf8'); // the index of head's closing brace
    leafInput.write(',"hash":"', cut, 'latin1');
    leafInput.write(event.hash, cut + 9, 'latin1');
    leafInput[cut + 73] = QUOTE;
    const after = cut + 74;
    const end = after + leafInput.write(tail, after, 'utf8');
    leafInput[after] = COMMA;
    // chainInput: prev ‖ the same text without the hash member.
    const chainInput = this.chainInput;
    chainInput.write(event.prev, 0, 'latin1');
    leafInput.copy(chainInput, 64, 1, cut);
    leafInput.copy(chainInput, 63 + cut, after, end);
    return {
      chain: digest('sha256', chainInput.subarray(0, 63 + cut + end - after), 'hex'),
      leaf: digest('sha256', leafInput.subarray(0, end), 'buffer'),
    };
  }
}

const QUOTE = 0x22;
const COMMA = 0x2c;
