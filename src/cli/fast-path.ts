/**
 * The three invocations whose start-up time people feel, answered without loading the dispatcher:
 * `imp prompt` runs for every shell prompt, `imp --version` in scripts, `imp --help` by hand. Only the
 * exact argv forms below take this path, and each answers exactly as main would
 * (test/cli/fast-path.test.ts compares them); anything else returns undefined and goes through main.
 *
 * `npm run build` bundles this module and what it imports statically into one CommonJS file,
 * dist/cli/fast-path.cjs (scripts/bundle-fast-path.js), which bin/imp.js requires before anything
 * else: Node 20 spends most of a millisecond on each ES module it loads and about 4 ms on starting
 * its ES-module loader at all, and neither is paid on these paths. The registry's `import()` loaders
 * stay lazy, separate files; nothing from node_modules may enter the bundle (the build refuses).
 */
import { writeSync } from 'node:fs';
import { type PromptDeps, run as prompt } from './commands/prompt.js';
import { rootHelp } from './help.js';
import { COMMANDS } from './registry.js';

/** The exit code of a fast-path answer, or undefined when `argv` needs the full dispatcher. */
export async function fastPath(
  argv: readonly string[],
  version: string,
  deps: PromptDeps = systemPromptDeps(),
): Promise<number | undefined> {
  if (argv.length !== 1) return undefined;
  const [word] = argv;
  if (word === '--version' || word === '-v' || word === 'version') {
    deps.io.out(`imp ${version}`);
    return 0;
  }
  if (word === '--help' || word === '-h' || word === 'help') {
    deps.io.out(rootHelp(COMMANDS));
    return 0;
  }
  if (word === 'prompt') return (await prompt({}, deps)) ?? 0;
  return undefined;
}

/** The real process, reduced to what the fast paths use (no stdin, stderr or TTY probing). */
function systemPromptDeps(): PromptDeps {
  return {
    io: { out: (line) => writeStdout(`${line}\n`) },
    env: process.env,
    clock: { now: () => Date.now() },
  };
}

/**
 * Writes straight to file descriptor 1: the same bytes process.stdout would write, without creating
 * that stream (a few milliseconds: a socket and `net` when stdout is a pipe, as in `$(imp prompt)`).
 * A non-blocking stdout that is full (EAGAIN) gets the rest through process.stdout, which waits for it
 * to drain; Windows consoles get process.stdout, which converts the text for them.
 */
function writeStdout(text: string): void {
  if (process.platform === 'win32') {
    process.stdout.write(text);
    return;
  }
  const bytes = Buffer.from(text, 'utf8');
  let written = 0;
  try {
    while (written < bytes.length) written += writeSync(1, bytes, written);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
    process.stdout.write(bytes.subarray(written));
  }
}
