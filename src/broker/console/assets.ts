/**
 * The console's static files, served by the broker itself (the CSP allows 'self' only): its
 * stylesheet (with a print stylesheet for the access review) and one small progressive-enhancement
 * script. Pages work without the script; it only adds live parts.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { HandlerContext, HandlerResult } from '../context.js';
import { html, pageHeaders } from './http.js';
import { messagePage } from './pages.js';

import { CONSOLE_CSS, CONSOLE_JS } from './static.js';

/** asciinema-player's browser bundle and stylesheet, read once from node_modules (the package exports both paths). */
const fromPackage = (() => {
  const cache = new Map<string, Promise<string>>();
  return (specifier: string) => () => {
    let text = cache.get(specifier);
    if (!text) {
      text = readFile(createRequire(import.meta.url).resolve(specifier), 'utf8');
      cache.set(specifier, text);
    }
    return text;
  };
})();

// Kept as strings in a module (like the passkey page's): the TypeScript build ships them, no copy step.
const FILES: Record<string, { body: () => Promise<string>; type: string }> = {
  'console.css': { body: async () => CONSOLE_CSS, type: 'text/css; charset=utf-8' },
  'console.js': { body: async () => CONSOLE_JS, type: 'text/javascript; charset=utf-8' },
  'asciinema-player.js': {
    body: fromPackage('asciinema-player/dist/bundle/asciinema-player.min.js'),
    type: 'text/javascript; charset=utf-8',
  },
  'asciinema-player.css': {
    body: fromPackage('asciinema-player/dist/bundle/asciinema-player.css'),
    type: 'text/css; charset=utf-8',
  },
};

/** GET /console/assets/:name */
export async function getConsoleAsset(ctx: HandlerContext): Promise<HandlerResult> {
  const name = ctx.params.name ?? '';
  const known = Object.hasOwn(FILES, name) ? FILES[name] : undefined;
  if (!known) return html(ctx.deps, messagePage('Not found', 'No such file.'), 404);
  return {
    body: await known.body(),
    headers: { ...pageHeaders(ctx.deps), 'content-type': known.type, 'cache-control': 'no-cache' },
  };
}
