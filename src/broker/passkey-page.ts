/**
 * The passkey ceremony page the broker serves at /passkey/<id>. It shows what the person confirms and
 * the code their terminal shows, and starts WebAuthn only when they press the button. No inline
 * script or style and nothing from another origin: the CSP allows 'self' only. The script is a fixed
 * file; the WebAuthn encoding is @simplewebauthn/browser's UMD bundle, served from node_modules.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { CeremonyRecord } from '../store/types.js';

/** Headers of every page and asset: only this origin, never framed, no referrer. */
export const PAGE_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
};

const escapeHtml = (text: string): string =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

/** The page for one ceremony (or a plain notice when it cannot be used any more). */
export function renderPage(ceremony: CeremonyRecord | null, nowMs: number): string {
  const usable = ceremony !== null && ceremony.state === 'pending' && ceremony.expiresAt > nowMs;
  const title = ceremony?.kind === 'register' ? 'Add a passkey' : 'Confirm with your passkey';
  const body = !usable
    ? `<h1>This link cannot be used</h1><p id="status" role="status">${
        ceremony === null
          ? 'There is no such confirmation.'
          : ceremony.state === 'pending'
            ? 'It expired. Run the command again in your terminal.'
            : 'It was already used. Run the command again in your terminal.'
      }</p>`
    : `<h1>${title}</h1>
<p>You are confirming:</p>
<p id="what" class="what">${escapeHtml(ceremony.description)}</p>
<p>Code: <strong id="code" class="code">${escapeHtml(ceremony.userCode)}</strong></p>
<p>Only continue if your terminal shows this same code and you started this yourself.</p>
<button id="go" type="button">${ceremony.kind === 'register' ? 'Create passkey' : 'Use passkey'}</button>
<p id="status" role="status"></p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>imp — ${title}</title>
<link rel="stylesheet" href="/passkey/assets/page.css">
<script src="/passkey/assets/webauthn.js" defer></script>
<script src="/passkey/assets/page.js" defer></script>
</head><body data-ceremony="${usable ? escapeHtml(ceremony.id) : ''}" data-kind="${ceremony?.kind ?? ''}" data-state="${usable ? 'ready' : 'unusable'}"><main>
${body}
</main></body></html>`;
}

// Plain browser JavaScript: fetches the options, runs WebAuthn, posts the answer, shows the outcome.
const PAGE_JS = `'use strict';
(function () {
  const body = document.body;
  const id = body.dataset.ceremony;
  const button = document.getElementById('go');
  const status = document.getElementById('status');
  if (!id || !button) return;
  function show(state, text) { body.dataset.state = state; status.textContent = text; }
  async function json(response) {
    const value = await response.json().catch(() => null);
    if (!response.ok) throw new Error((value && value.error && value.error.message) || ('HTTP ' + response.status));
    return value;
  }
  button.addEventListener('click', async function () {
    button.disabled = true;
    show('working', 'Waiting for your passkey…');
    try {
      const lib = window.SimpleWebAuthnBrowser;
      if (!lib || !lib.browserSupportsWebAuthn()) throw new Error('This browser does not support passkeys.');
      const ceremony = await json(await fetch('/v1/ceremonies/' + id + '/options'));
      const response = ceremony.kind === 'register'
        ? await lib.startRegistration({ optionsJSON: ceremony.options })
        : await lib.startAuthentication({ optionsJSON: ceremony.options });
      await json(await fetch('/v1/ceremonies/' + id, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ response: response }),
      }));
      show('done', 'Done. Go back to your terminal.');
    } catch (error) {
      show('failed', String((error && error.message) || error));
      button.disabled = false;
    }
  });
})();
`;

const PAGE_CSS = `body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f6f4;color:#1d1d1b}
main{max-width:32rem;margin:4rem auto;padding:2rem;background:#fff;border-radius:8px;box-shadow:0 1px 4px #0002}
.what{font-weight:600}.code{font:1.4rem monospace;letter-spacing:.1em}
button{font:inherit;padding:.6rem 1.2rem;border-radius:6px;border:1px solid #333;background:#1d1d1b;color:#fff;cursor:pointer}
button:disabled{opacity:.5}
body[data-state=failed] #status{color:#a40000}body[data-state=done] #status{color:#0a6a20}
`;

let webauthnBundle: Promise<string> | undefined;
function webauthnJs(): Promise<string> {
  // The package exports only its entry point; the UMD bundle sits beside it.
  webauthnBundle ??= readFile(
    join(
      dirname(createRequire(import.meta.url).resolve('@simplewebauthn/browser')),
      '..',
      'dist',
      'bundle',
      'index.umd.min.js',
    ),
    'utf8',
  );
  return webauthnBundle;
}

/** A page asset by name, with its content type; null when there is no such asset. */
export async function pageAsset(name: string): Promise<{ body: string; type: string } | null> {
  if (name === 'page.js') return { body: PAGE_JS, type: 'text/javascript; charset=utf-8' };
  if (name === 'page.css') return { body: PAGE_CSS, type: 'text/css; charset=utf-8' };
  if (name === 'webauthn.js') return { body: await webauthnJs(), type: 'text/javascript; charset=utf-8' };
  return null;
}
