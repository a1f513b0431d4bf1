/** Progress on stderr: an ora spinner on a colour TTY, plain lines otherwise (stable in logs and pipes). */
import type { IO } from './io.js';

/** A progress indicator. */
export interface Spinner {
  update(text: string): void;
  succeed(text: string): void;
  fail(text: string): void;
  stop(): void;
}

/** Starts a spinner; loads ora only when it will animate. */
export async function startSpinner(io: IO, text: string): Promise<Spinner> {
  if (io.stderrIsTTY && io.color) {
    const { default: ora } = await import('ora');
    const spinner = ora({ text, stream: io.stderr as NodeJS.WritableStream, discardStdin: false }).start();
    return {
      update: (t) => {
        spinner.text = t;
      },
      succeed: (t) => spinner.succeed(t),
      fail: (t) => spinner.fail(t),
      stop: () => spinner.stop(),
    };
  }
  io.err(text);
  return {
    update: () => {},
    succeed: (t) => io.err(t),
    fail: (t) => io.err(t),
    stop: () => {},
  };
}
