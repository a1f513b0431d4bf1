/**
 * `imp doctor --reauth`: does the IdP prove re-authentication on the device grant? Two fresh logins
 * (max_age=0) a few seconds apart, then the ID tokens' claims — and, where it can ask, the person —
 * tell. An IdP whose auth_time is the token's iat every time, that keeps auth_time although it was
 * asked to authenticate again, or that moves auth_time although nobody was asked, does not prove
 * re-authentication: with `reauth.method: idp` the broker would trust a claim that means nothing.
 */
import { escapeUntrusted } from '../core/escape.js';
import type { Deps } from './deps.js';
import { canOpenBrowser } from './passkey-flow.js';

/** One login's claims that matter here (seconds). */
interface Stamp {
  authTime: number | null;
  iat: number | null;
}

/** The verdict, as a doctor check. */
export interface ReauthVerdict {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

/** Runs the probe against the broker's IdP. */
export async function probeReauth(
  deps: Pick<Deps, 'io' | 'env' | 'clock' | 'deviceLogin' | 'openUrl' | 'prompter' | 'interrupt' | 'fetch'>,
  idp: { issuer: string; clientId: string },
  ux: { json: boolean; noBrowser: boolean },
): Promise<ReauthVerdict> {
  const stamps: Stamp[] = [];
  for (const round of [1, 2]) {
    if (round === 2) await deps.clock.sleep(3000, deps.interrupt);
    if (!ux.json)
      deps.io.err(
        `Re-authentication check, login ${round} of 2 (the IdP is asked to authenticate you again):`,
      );
    const result = await deps.deviceLogin({
      issuer: idp.issuer,
      clientId: idp.clientId,
      maxAge: 0,
      fetch: deps.fetch,
      signal: deps.interrupt,
      onCode: async (code) => {
        const url = code.verification_uri_complete ?? code.verification_uri;
        if (ux.json) deps.io.out(JSON.stringify({ event: 'device_authorization', ...code }));
        else
          deps.io.err(
            `  open ${escapeUntrusted(code.verification_uri)} and enter the code ${escapeUntrusted(code.user_code)}`,
          );
        if (!ux.noBrowser && canOpenBrowser(deps.env)) await deps.openUrl(url).catch(() => undefined);
      },
    });
    const claims = result.claims;
    stamps.push({
      authTime: typeof claims.auth_time === 'number' ? claims.auth_time : null,
      iat: typeof claims.iat === 'number' ? claims.iat : null,
    });
  }
  let asked: boolean | null = null;
  if (!ux.json && deps.io.canPrompt())
    asked = await (await deps.prompter()).confirm({
      message: 'Were you asked for your password just now (both times)?',
    });
  const [first, second] = stamps as [Stamp, Stamp];
  const problems: string[] = [];
  if (stamps.every((s) => s.authTime !== null && s.authTime === s.iat))
    problems.push('its auth_time is the token’s issue time (iat) every time, not when you authenticated');
  if (first.authTime !== null && first.authTime === second.authTime)
    problems.push('auth_time did not change although max_age=0 asked it to authenticate you again');
  if (asked === false && first.authTime !== second.authTime)
    problems.push('auth_time changed although you were not asked for your password');
  if (asked === false && problems.length === 0)
    problems.push('it did not ask for your password although max_age=0 demanded it');
  if (problems.length === 0)
    return {
      name: 're-authentication at the IdP',
      ok: true,
      detail: `two logins with max_age=0 reported auth_time ${first.authTime} then ${second.authTime}${asked ? ', and you were asked each time' : ''}`,
    };
  return {
    name: 're-authentication at the IdP',
    ok: false,
    detail: `this identity provider does not prove re-authentication on the device grant: ${problems.join('; ')}`,
    fix: 'Have the broker prove it instead: reauth.method: passkey in the policy, then everyone runs imp passkey add.',
  };
}
