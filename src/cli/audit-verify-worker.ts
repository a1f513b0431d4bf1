/**
 * A worker thread of `imp audit verify`: scans one slice of the export's shared bytes and posts
 * the result back (audit-verify-scan.ts). The digests travel as transferred buffers, not copies.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { scanExportSlice } from '../core/audit/export-scan.js';

const { bytes, start, end } = workerData as { bytes: Uint8Array; start: number; end: number };
const scan = scanExportSlice(bytes, start, end);
parentPort!.postMessage(scan, [scan.hashes.buffer as ArrayBuffer, scan.leaves.buffer as ArrayBuffer]);
