/**
 * `imp prompt`: a short segment for PS1 or starship — `[imp acme/prod RO 29m]` inside a session,
 * nothing outside. Reads only the environment: no network, no heavy imports, fast.
 */

import type { Clock } from '../../core/clock.js';
import { formatTimeLeft } from '../../core/time-left.js';
import type { CommandSpec, ParsedArgs } from '../command.js';
import type { Deps } from '../deps.js';
import type { IO } from '../io.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'prompt',
  group: 'session',
  summary: 'Print a short session segment for your shell prompt (nothing outside a session)',
  usage: 'imp prompt',
  flags: [],
  examples: [
    "PS1='$(imp prompt)'$PS1",
    '# starship: [custom.imp] command = "imp prompt", when = "test -n \\"$IMP_SESSION_ID\\""',
  ],
};

/** No options. */
export type PromptOptions = Record<string, never>;

/** argv → options. */
export function parse(_parsed: ParsedArgs): PromptOptions {
  return {};
}

/** What the segment needs: narrow, so the fast path (src/cli/fast-path.ts) can give it without the full IO. */
export interface PromptDeps {
  io: Pick<IO, 'out'>;
  env: Deps['env'];
  clock: Pick<Clock, 'now'>;
}

/** Prints the segment. */
export async function run(_options: PromptOptions, deps: PromptDeps): Promise<number> {
  const { IMP_SESSION_ID, IMP_TENANT, IMP_ENV, IMP_SCOPE, IMP_MODE, IMP_EXPIRES_AT } = deps.env;
  if (!IMP_SESSION_ID || !IMP_TENANT || !IMP_EXPIRES_AT) return 0;
  const safe = (text: string | undefined) => (text ?? '').replace(/[^a-z0-9-]/gi, '');
  const time = formatTimeLeft(Date.parse(IMP_EXPIRES_AT), deps.clock.now());
  // The same label as the subshell's PS1 (sessionLabel), BREAK-GLASS marker included.
  const mode = IMP_MODE === 'break_glass' ? ' BREAK-GLASS' : '';
  deps.io.out(
    `[imp ${safe(IMP_TENANT)}/${safe(IMP_ENV)} ${IMP_SCOPE === 'write' ? 'RW' : 'RO'}${mode} ${time}]`,
  );
  return 0;
}
