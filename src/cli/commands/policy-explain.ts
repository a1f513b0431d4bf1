/** `imp policy explain` as a command module. */
import type { Deps } from '../deps.js';
import { explainSpec, parseExplain, runExplain } from './policy.js';

/** Help, flags and examples. */
export const spec = explainSpec;
/** argv → options. */
export const parse = parseExplain;

/** Asks the broker. */
export function run(options: ReturnType<typeof parseExplain>, deps: Deps): Promise<number> {
  return runExplain(options, deps);
}
