/**
 * The CLI's half of a passkey confirmation, shaped like the device flow: show the broker page's URL
 * and code (or a `passkey_authorization` JSON event), open the browser unless told not to, and wait
 * for the broker to say the ceremony was answered. The broker verifies; this only waits.
 */
import {
  AuthFailedError,
  InterruptedError,
  type PasskeyChallengeInfo,
  TimeoutError,
} from '../core/errors.js';
import { escapeUntrusted } from '../core/escape.js';
import type { Deps } from './deps.js';
import type { BrokerTarget, LoginUx } from './login-flow.js';
import { startSpinner } from './spinner.js';

/** Shows the ceremony, opens the browser, waits until the broker has verified it. */
export async function confirmWithPasskey(
  deps: Pick<Deps, 'io' | 'env' | 'openUrl' | 'interrupt'>,
  target: BrokerTarget,
  ux: LoginUx & { purpose?: string },
  token: string,
  challenge: PasskeyChallengeInfo,
): Promise<void> {
  const { io } = deps;
  const event = {
    event: 'passkey_authorization',
    verification_uri_complete: challenge.verification_uri_complete,
    user_code: challenge.user_code,
    expires_in: challenge.expires_in,
  };
  // As the device flow's event: to the events destination where stdout is not the command's own
  // (exec: the child writes there), else with --json to stdout.
  if (ux.events) ux.events(event);
  else if (ux.json) io.out(JSON.stringify(event));
  // Said on stderr at once, --json or not: a run that waits for a person must never wait silently.
  io.err(ux.purpose ?? 'This needs your passkey: the broker checks it is you, for this operation only.');
  io.err(
    `Open ${escapeUntrusted(challenge.verification_uri_complete)} and check it shows the code ${escapeUntrusted(challenge.user_code)}`,
  );
  io.err(
    `Only confirm if the page shows this same code (it expires in ${Math.round(challenge.expires_in / 60) || 1} min).`,
  );
  if (!ux.noBrowser && canOpenBrowser(deps.env))
    await deps
      .openUrl(challenge.verification_uri_complete)
      .catch(() => io.err('Could not open a browser; open the link above yourself.'));
  const spinner =
    !ux.json && io.stderrIsTTY
      ? await startSpinner(io, 'Waiting for you to confirm with your passkey…')
      : undefined;
  try {
    for (;;) {
      if (deps.interrupt.aborted) throw new InterruptedError();
      const { state } = await target.client
        .ceremony(token, challenge.id, 25, deps.interrupt)
        .catch((error) => {
          if (deps.interrupt.aborted) throw new InterruptedError();
          throw error;
        });
      if (state === 'verified' || state === 'used') return;
      if (state === 'failed')
        throw new AuthFailedError(
          'The broker refused the passkey confirmation (the page says why). Run the command again.',
        );
      if (state === 'expired')
        throw new TimeoutError('The passkey confirmation expired. Run the command again.');
    }
  } finally {
    spinner?.stop();
  }
}

/** A browser can only open where there is a display (or on macOS/Windows). */
export function canOpenBrowser(env: NodeJS.ProcessEnv): boolean {
  if (process.platform === 'darwin' || process.platform === 'win32') return true;
  return Boolean(env.DISPLAY || env.WAYLAND_DISPLAY);
}
