/** `imp policy check` as a command module. */
import { UsageError } from '../../core/errors.js';
import { boolFlag, type ParsedArgs } from '../command.js';
import type { Deps } from '../deps.js';
import { checkSpec, runCheck } from './policy.js';

/** Help, flags and examples. */
export const spec = checkSpec;

/** argv → options. */
export function parse(parsed: ParsedArgs): { file: string; json: boolean } {
  const file = parsed.args[0];
  if (!file) throw new UsageError(`Usage: ${spec.usage}`);
  return { file, json: boolFlag(parsed, 'json') };
}

/** Validates the file. */
export function run(options: { file: string; json: boolean }, deps: Pick<Deps, 'io'>): Promise<number> {
  return runCheck(options.file, options.json, deps);
}
