/**
 * The three invocations whose start-up time people feel, answered without loading the dispatcher:
 * `imp prompt` runs for every shell prompt, `imp --version` in scripts, `imp --help` by hand. Node 20
 * spends most of a millisecond on each ES module it loads, and main's graph is a dozen of them; these
 * need a few, loaded at once. Only the exact argv forms below take this path, and each answers
 * exactly as main would (test/cli/fast-path.test.ts compares them); anything else returns undefined
 * and goes through main.
 */
import type { Deps } from './deps.js';

/** The exit code of a fast-path answer, or undefined when `argv` needs the full dispatcher. */
export async function fastPath(
  argv: readonly string[],
  version: string,
  deps?: Pick<Deps, 'io' | 'env' | 'clock'>,
): Promise<number | undefined> {
  if (argv.length !== 1) return undefined;
  const [word] = argv;
  const out = (line: string) => (deps ? deps.io.out(line) : process.stdout.write(`${line}\n`));
  if (word === '--version' || word === '-v' || word === 'version') {
    out(`imp ${version}`);
    return 0;
  }
  if (word === '--help' || word === '-h' || word === 'help') {
    const [{ rootHelp }, { COMMANDS }] = await Promise.all([import('./help.js'), import('./registry.js')]);
    out(rootHelp(COMMANDS));
    return 0;
  }
  if (word === 'prompt') {
    const [prompt, { systemClock }, { systemIO }] = await Promise.all([
      import('./commands/prompt.js'),
      import('../runtime/clock.js'),
      import('./io.js'),
    ]);
    return (await prompt.run({}, deps ?? { io: systemIO(), env: process.env, clock: systemClock })) ?? 0;
  }
  return undefined;
}
