/**
 * A worker thread of `imp audit verify`: scans one slice of the export — its own byte range of the
 * file, or of bytes shared with the main thread — and posts the result back (audit-verify-scan.ts).
 * The digests travel as transferred buffers, not copies.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { scanExportSlice } from '../core/audit/export-scan.js';
import { scanFileRange } from './audit-export-reader.js';

const { source, start, end, canonical } = workerData as {
  source: { file: string } | { bytes: Uint8Array };
  start: number;
  end: number;
  canonical: boolean;
};
const scan =
  'file' in source
    ? scanFileRange(source.file, start, end, canonical)
    : scanExportSlice(source.bytes, start, end, canonical);
parentPort!.postMessage(scan, [scan.hashes.buffer as ArrayBuffer, scan.leaves.buffer as ArrayBuffer]);
