/**
 * A worker thread of `imp audit verify`: takes ranges of the export in turn from the counter it
 * shares with the other threads — its own reads of the file, or bytes shared with the main thread
 * — and posts each scan back (audit-verify-scan.ts), then `done`. The digests travel as
 * transferred buffers, not copies.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type RangeJob, scanRanges } from './audit-export-reader.js';

scanRanges(workerData as RangeJob, (k, scan) =>
  parentPort!.postMessage({ k, scan }, [
    scan.hashes.buffer as ArrayBuffer,
    scan.leaves.buffer as ArrayBuffer,
  ]),
);
parentPort!.postMessage({ done: true });
