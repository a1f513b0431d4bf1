/**
 * The one object every command reads and writes the terminal through. Only `systemIO` touches
 * `process`; tests use `testIO` (string buffers) so a command runs without a terminal.
 */
import { createRequire } from 'node:module';
import { isatty } from 'node:tty';
import { escapeUntrusted } from '../core/escape.js';

/** Anything that can take text: process.stdout, a buffer, a pty. */
export interface TextSink {
  write(text: string): unknown;
}

/** The terminal as a command sees it. */
export interface IO {
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: TextSink;
  readonly stderr: TextSink;
  readonly stdinIsTTY: boolean;
  readonly stdoutIsTTY: boolean;
  readonly stderrIsTTY: boolean;
  /** Colour and decoration (spinners, titles) on stderr. */
  color: boolean;
  /** Set by --no-input: never prompt even on a TTY. */
  noInput: boolean;
  /** True when an interactive prompt is possible and allowed. */
  canPrompt(): boolean;
  /** Writes a result line to stdout. */
  out(line: string): void;
  /** Writes a human line (progress, warnings) to stderr. */
  err(line: string): void;
  /** Width of the stderr terminal, for tables and spinners. */
  columns(): number;
}

/** Decides whether colour is on: NO_COLOR wins, then FORCE_COLOR, then TTY. */
export function colorEnabled(env: NodeJS.ProcessEnv, isTTY: boolean, noColorFlag: boolean): boolean {
  if (noColorFlag) return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false';
  return isTTY && env.TERM !== 'dumb';
}

abstract class BaseIO implements IO {
  abstract readonly stdin: NodeJS.ReadableStream;
  abstract readonly stdout: TextSink;
  abstract readonly stderr: TextSink;
  abstract readonly stdinIsTTY: boolean;
  abstract readonly stdoutIsTTY: boolean;
  abstract readonly stderrIsTTY: boolean;
  abstract color: boolean;
  noInput = false;

  canPrompt(): boolean {
    return !this.noInput && this.stdinIsTTY && this.stderrIsTTY;
  }
  out(line: string): void {
    this.stdout.write(`${line}\n`);
  }
  err(line: string): void {
    this.stderr.write(`${line}\n`);
  }
  columns(): number {
    return 80;
  }
}

/** The real terminal. */
export function systemIO(env: NodeJS.ProcessEnv = process.env): IO {
  const stderrIsTTY = Boolean(process.stderr.isTTY);
  class SystemIO extends BaseIO {
    // process.stdin is created on first access (~3 ms): only commands that read it pay for it.
    get stdin(): NodeJS.ReadableStream {
      return process.stdin;
    }
    readonly stdout = process.stdout;
    readonly stderr = process.stderr;
    readonly stdinIsTTY = isatty(0);
    readonly stdoutIsTTY = Boolean(process.stdout.isTTY);
    readonly stderrIsTTY = stderrIsTTY;
    color = colorEnabled(env, stderrIsTTY, false);
    override columns(): number {
      return process.stderr.columns || 80;
    }
  }
  return new SystemIO();
}

/** A buffer-backed IO for tests; `stdout()`/`stderr()` return what was written. */
export interface TestIO extends IO {
  stdoutText(): string;
  stderrText(): string;
}

/** Creates a TestIO; TTY flags default to false (a script or pipe). */
export function testIO(
  options: { tty?: boolean; stdinTTY?: boolean; color?: boolean; stdin?: NodeJS.ReadableStream } = {},
): TestIO {
  const out: string[] = [];
  const errOut: string[] = [];
  const tty = options.tty ?? false;
  class BufferIO extends BaseIO implements TestIO {
    // node:stream only here (tests): the real IO must not pay for loading it at every start.
    readonly stdin =
      options.stdin ??
      (createRequire(import.meta.url)('node:stream') as typeof import('node:stream')).Readable.from([]);
    readonly stdout = { write: (text: string) => out.push(text) };
    readonly stderr = { write: (text: string) => errOut.push(text) };
    readonly stdinIsTTY = options.stdinTTY ?? tty;
    readonly stdoutIsTTY = tty;
    readonly stderrIsTTY = tty;
    color = options.color ?? false;
    stdoutText(): string {
      return out.join('');
    }
    stderrText(): string {
      return errOut.join('');
    }
  }
  return new BufferIO();
}

/** Shorthand used everywhere untrusted text is printed. */
export const safe = escapeUntrusted;
