/**
 * Where a command that runs someone else's program (`imp exec`) sends its own JSON events, so the
 * child's stdout and stderr stay the child's: a file descriptor the caller opened (`--events-fd 3`
 * with `3>events.jsonl` or a pipe), a file (`--events FILE`, appended, mode 0600), or — with
 * `--json` and neither — stderr. One JSON object per line.
 */
import { createRequire } from 'node:module';
import { UsageError } from '../core/errors.js';
import type { TextSink } from './io.js';

/** Where events go, as the user asked. */
export type EventTarget = { kind: 'fd'; fd: number } | { kind: 'file'; path: string };

/** An open destination for event lines. */
export interface EventStream extends TextSink {
  /** Flushes and lets go of the destination (never closes a descriptor the caller owns). */
  close(): Promise<void>;
}

/** Parses `--events-fd`: 2 (stderr) or a descriptor of 3 and up; 0 and 1 belong to the child. */
export function parseEventsFd(text: string): number {
  if (!/^\d{1,4}$/.test(text) || Number(text) < 2)
    throw new UsageError(
      `--events-fd must be a file descriptor number of 2 or more (stdin and stdout belong to the command), not "${text.slice(0, 20)}".`,
    );
  return Number(text);
}

/** Opens the destination; a descriptor that is not open is a usage error, said before anything runs. */
export function openEventStream(target: EventTarget): EventStream {
  const require = createRequire(import.meta.url);
  const fs = require('node:fs') as typeof import('node:fs');
  if (target.kind === 'file') {
    let fd: number;
    try {
      fd = fs.openSync(target.path, 'a', 0o600);
    } catch (error) {
      throw new UsageError(
        `--events ${target.path}: cannot open it (${(error as NodeJS.ErrnoException).code}).`,
      );
    }
    return {
      write: (text: string) => fs.writeSync(fd, text),
      close: async () => fs.closeSync(fd),
    };
  }
  let stat: import('node:fs').Stats;
  try {
    stat = fs.fstatSync(target.fd);
  } catch {
    throw new UsageError(
      `--events-fd ${target.fd}: that file descriptor is not open. Open it for imp, e.g. ${target.fd}>events.jsonl`,
    );
  }
  if (stat.isFIFO() || stat.isSocket()) {
    // Pipes may be non-blocking (a parent's socketpair): a stream queues instead of failing with EAGAIN.
    const net = require('node:net') as typeof import('node:net');
    const socket = new net.Socket({ fd: target.fd, readable: false, writable: true });
    socket.on('error', () => {});
    return {
      write: (text: string) => socket.write(text),
      close: () =>
        new Promise<void>((resolve) => {
          if (socket.destroyed || socket.writableFinished) return resolve();
          socket.end(() => resolve());
        }),
    };
  }
  return { write: (text: string) => fs.writeSync(target.fd, text), close: async () => {} };
}
