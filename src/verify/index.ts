/**
 * `imp/verify`, kept for services that imported it from the imp package: the library itself is the
 * package `@imp/verify` (packages/verify), which depends on jose only.
 */
export * from '@imp/verify';
/** Audit receipts: check, offline, that an event was logged and cosigned by witnesses you trust. */
export { type AuditReceipt, type ReceiptVerification, verifyReceipt } from '../core/audit/receipt.js';
export { cosignatureVerifier as witnessKey } from '../core/audit/tlog-cosignature.js';
