/**
 * `--jq` on `imp api`: the real jq (1.7, compiled to WebAssembly by the jq-wasm package — no binary
 * download, no network at install), loaded only when a filter is given. Strings print raw, like
 * `gh api --jq` and `jq -r`; every other result prints as compact JSON, one per line.
 */
import { InvalidInputError } from '../core/errors.js';

/** Runs `filter` over a JSON document; a bad filter or non-JSON input is invalid input (exit 2). */
export async function runJq(json: string, filter: string): Promise<string> {
  try {
    JSON.parse(json);
  } catch {
    throw new InvalidInputError('--jq needs a JSON answer, and this one is not JSON.');
  }
  const jq = await import('jq-wasm');
  try {
    const output = await jq.raw(json, filter, ['-r', '-c']);
    return output === '' || output.endsWith('\n') ? output : `${output}\n`;
  } catch (error) {
    const message = (error as Error).message.replace(/\s*\(Unix shell quoting issues\?\)/, '');
    throw new InvalidInputError(`--jq: ${message.trim()}`);
  }
}
