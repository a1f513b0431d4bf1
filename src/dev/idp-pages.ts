/**
 * HTML for the dev IdP's browser steps. Plain forms that submit without JavaScript; every value that
 * reaches a page (user codes, client names, logins, error text) goes through `html()` first.
 * Each page's <body> carries `data-page` so tests can tell a success page from an error page.
 */

import type { ServerResponse } from 'node:http';

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"'`]/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

const STYLE =
  'body{font-family:system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem;color:#222}' +
  'input{display:block;width:100%;box-sizing:border-box;margin:.25rem 0 1rem;padding:.5rem;font-size:1rem}' +
  'button{padding:.5rem 1rem;font-size:1rem;margin-right:.5rem}.error{color:#b00020}' +
  'code{font-size:1.6rem;letter-spacing:.1rem}.note{color:#666;font-size:.9rem}';

function layout(page: string, title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · imp dev IdP</title><style>${STYLE}</style></head>
<body data-page="${escapeHtml(page)}"><h1>${escapeHtml(title)}</h1>
${body}
</body>
</html>`;
}

function errorLine(error: string | undefined): string {
  return error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : '';
}

/** Asks for the code shown in the terminal; `form` is oidc-provider's form (it carries the xsrf token). */
export function userCodeInputPage(form: string, err?: Error): string {
  return layout(
    'user-code',
    'Sign in to imp',
    `${errorLine(codeError(err))}<p>Enter the code shown in your terminal.</p>
${form}
<button type="submit" form="op.deviceInputForm">Continue</button>`,
  );
}

/** Shown after Abort: the device code is now denied, nothing more to do here. */
export function abortedPage(): string {
  return layout(
    'aborted',
    'Sign-in cancelled',
    '<p>Nothing was shared with the device. You can close this page.</p>',
  );
}

/**
 * Lets the user check that the code matches the terminal before anything is granted.
 * Buttons sit outside oidc-provider's form and point at it with the HTML `form` attribute; Continue has
 * no name because the form already carries confirm=yes and oidc-provider rejects duplicate parameters.
 */
export function userCodeConfirmPage(form: string, clientName: string, userCode: string): string {
  return layout(
    'confirm',
    'Confirm sign-in',
    `<p><strong>${escapeHtml(clientName)}</strong> wants to sign you in. Check that your terminal shows:</p>
<p><code>${escapeHtml(userCode)}</code></p>
<p class="note">If you did not start this, or the code differs, choose Abort.</p>
${form}
<button type="submit" form="op.deviceConfirmForm">Continue</button>
<button type="submit" form="op.deviceConfirmForm" name="abort" value="yes">Abort</button>`,
  );
}

/** The device flow is approved; the terminal's next poll receives the tokens. */
export function successPage(clientName: string): string {
  return layout(
    'success',
    'Signed in',
    `<p>You are signed in to <strong>${escapeHtml(clientName)}</strong>. Return to your terminal; you can close this page.</p>`,
  );
}

/** What the login page needs to know. */
export interface LoginPageOptions {
  action: string;
  clientName: string;
  login?: string;
  error?: string;
  /** True when a session exists but is older than the request's max_age. */
  reauthenticate?: boolean;
  /** A line telling dev users which accounts exist; omitted for custom user lists. */
  hint?: string;
}

/** The interaction page: login + password, and a Cancel that denies the device code. */
export function loginPage(o: LoginPageOptions): string {
  const why = o.reauthenticate
    ? '<p>This action needs a recent sign-in. Enter your password again.</p>'
    : `<p>Sign in to continue to <strong>${escapeHtml(o.clientName)}</strong>.</p>`;
  return layout(
    'login',
    'Sign in',
    `${errorLine(o.error)}${why}
<form method="post" action="${escapeHtml(o.action)}" autocomplete="off">
<label>Login <input type="text" name="login" value="${escapeHtml(o.login ?? '')}" required autofocus></label>
<label>Password <input type="password" name="password" required></label>
<button type="submit" name="submit" value="login">Sign in</button>
<button type="submit" name="cancel" value="yes" formnovalidate>Cancel</button>
</form>
${o.hint ? `<p class="note">${escapeHtml(o.hint)}</p>` : ''}`,
  );
}

/** Any error oidc-provider or the interaction handler reports to the browser. */
export function errorPage(fields: Record<string, unknown>): string {
  const rows = Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `<p><strong>${escapeHtml(key)}</strong>: ${escapeHtml(value)}</p>`)
    .join('\n');
  return layout('error', 'Something went wrong', rows);
}

// oidc-provider re-renders the input page with one of these (lib/helpers/re_render_errors.js).
function codeError(err: Error | undefined): string | undefined {
  switch (err?.name) {
    case undefined:
      return undefined;
    case 'NoCodeError':
      return 'Enter the code shown in your terminal.';
    case 'NotFoundError':
      return 'That code is not valid. Check the code in your terminal and try again.';
    case 'ExpiredError':
      return 'That code has expired. Start again from your terminal.';
    case 'AlreadyUsedError':
      return 'That code has already been used. Start again from your terminal.';
    default:
      return 'The sign-in could not be completed. Start again from your terminal.';
  }
}

/** Writes one of these pages from the IdP's own (non-oidc-provider) routes. */
export function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    // No scripts anywhere: the pages are plain forms. A sign-in for the web console ends in a redirect
    // to the broker's /console/callback on another loopback port, and form-action covers redirects
    // (localhost too: a passkey-mode broker is reached as localhost).
    'content-security-policy':
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http://127.0.0.1:* http://[::1]:* http://localhost:*",
  });
  res.end(html);
}
