/**
 * Reads byte ranges of an export file through one reused buffer and feeds their whole lines to a
 * slice scanner (core/audit/export-scan.ts): each thread of `imp audit verify` reads only its own
 * range, and a file of a million events is never held in memory whole (nor as one string, which
 * JavaScript cannot: the longest is 2^29 characters).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { type SliceScan, SliceScanner, scanExportSlice } from '../core/audit/export-scan.js';

// 1 MiB: small enough that what was just read is still in the CPU cache when it is scanned.
const CHUNK = 1024 * 1024;
const HEAD = 1;

/** Scans the lines of the file's bytes [start, end); start is 0 or just after a newline. */
export function scanFileRange(path: string, start: number, end: number, canonical = false): SliceScan {
  const scanner = new SliceScanner(end - start, canonical);
  const fd = openSync(path, 'r');
  try {
    // Byte 0 stays free: the scanner may use the byte before a line as scratch (SliceScanner.lines).
    let buffer = Buffer.alloc(HEAD + Math.min(CHUNK, Math.max(1, end - start)));
    let kept = 0; // bytes of a partial line carried over from the previous read
    for (let at = start; at < end; ) {
      if (HEAD + kept === buffer.length) {
        // One line longer than the buffer: make room for it.
        const bigger = Buffer.alloc(HEAD + (buffer.length - HEAD) * 2);
        buffer.copy(bigger);
        buffer = bigger;
      }
      const room = buffer.length - HEAD - kept;
      const read = readSync(fd, buffer, HEAD + kept, Math.min(room, end - at), at);
      if (read === 0) {
        scanner.lines(buffer, HEAD, HEAD + kept, true); // the file shrank under us: what was read is all there is
        break;
      }
      at += read;
      const filled = HEAD + kept + read;
      const whole = at >= end ? filled : Math.max(HEAD, buffer.lastIndexOf(10, filled - 1) + 1);
      if (!scanner.lines(buffer, HEAD, whole, true)) break;
      kept = filled - whole;
      buffer.copy(buffer, HEAD, whole, filled);
    }
  } finally {
    closeSync(fd);
  }
  return scanner.finish();
}

/** The file's size and its slice boundaries: near equal byte counts, each just after a newline. */
export function fileSliceBounds(path: string, slices: number): number[] {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const bounds = [0];
    const window = Buffer.alloc(64 * 1024);
    for (let i = 1; i < slices; i++) {
      let at = Math.max(bounds[i - 1]!, Math.floor((size * i) / slices));
      let cut = size;
      while (at < size) {
        const read = readSync(fd, window, 0, window.length, at);
        const newline = window.subarray(0, read).indexOf(10);
        if (newline >= 0) {
          cut = at + newline + 1;
          break;
        }
        if (read === 0) break;
        at += read;
      }
      bounds.push(cut);
    }
    bounds.push(size);
    return bounds;
  } finally {
    closeSync(fd);
  }
}

/** A verify job shared by its threads: the export, its range bounds, the next range to take. */
export interface RangeJob {
  source: { file: string } | { bytes: Uint8Array };
  /** Range k is [bounds[k], bounds[k + 1]). */
  bounds: number[];
  /** Int32 over shared memory: the next range nobody has taken. */
  next: Int32Array;
  canonical: boolean;
}

/**
 * Takes ranges of the job in turn and scans them until none is left; `take` gets each scan. The
 * first anomaly ends the job for every thread: the caller then verifies sequentially anyway.
 */
export function scanRanges(job: RangeJob, take: (k: number, scan: SliceScan) => void): void {
  const { source, bounds, next, canonical } = job;
  const ranges = bounds.length - 1;
  for (let k = Atomics.add(next, 0, 1); k < ranges; k = Atomics.add(next, 0, 1)) {
    const [start, end] = [bounds[k]!, bounds[k + 1]!];
    const scan =
      'file' in source
        ? scanFileRange(source.file, start, end, canonical)
        : scanExportSlice(source.bytes, start, end, canonical);
    take(k, scan);
    if (scan.anomaly !== null) Atomics.store(next, 0, ranges);
  }
}
