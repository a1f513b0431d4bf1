/**
 * Audit receipts, checked offline: the event a receipt carries, its RFC 9162 inclusion proof, and a
 * checkpoint cosigned by witnesses the caller trusts (`imp audit receipt` writes them). The checking
 * itself is imp's core code (src/core/audit, compiled into this package), so the package, the broker
 * and `imp audit verify --receipt` agree byte for byte.
 */
import {
  type AuditReceipt,
  verifyReceipt as checkReceipt,
  type ReceiptVerification,
} from '../../../src/core/audit/receipt.js';
import type { NoteVerifier } from '../../../src/core/audit/signed-note.js';
import { cosignatureVerifier } from '../../../src/core/audit/tlog-cosignature.js';

export type { AuditEvent } from '../../../src/core/audit/event.js';
export type { AuditReceipt, ReceiptVerification };

/** Options of {@link verifyReceipt}. */
export interface ReceiptOptions {
  /**
   * The witnesses you trust: their cosigner keys (`imp witness serve` prints them, `name+id+base64`)
   * or verifiers from {@link witnessKey}. Yours — never keys taken from the receipt or the broker.
   */
  witnessKeys: readonly (string | NoteVerifier)[];
  /** How many of them must have cosigned; default all of them. */
  quorum?: number;
}

/** A cosigner key (C2SP tlog-cosignature vkey) as a verifier; throws on a key that is not one. */
export function witnessKey(vkey: string): NoteVerifier {
  return cosignatureVerifier(vkey);
}

/**
 * Checks a receipt (the JSON of `imp audit receipt`, or its `receipt` member) offline. Never throws:
 * `{ok: true, event, cosigners, treeSize}` or `{ok: false, problem}`.
 */
export function verifyReceipt(receipt: unknown, options: ReceiptOptions): ReceiptVerification {
  let keys: NoteVerifier[];
  try {
    keys = options.witnessKeys.map((key) => (typeof key === 'string' ? witnessKey(key) : key));
  } catch (error) {
    return { ok: false, problem: `a witness key is not a cosigner key: ${(error as Error).message}` };
  }
  const wrapped = receipt as { receipt?: unknown } | null;
  const value =
    typeof wrapped === 'object' && wrapped !== null && 'receipt' in wrapped ? wrapped.receipt : receipt;
  return checkReceipt(value, { witnessKeys: keys, quorum: options.quorum ?? keys.length });
}
