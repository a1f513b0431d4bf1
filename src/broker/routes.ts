/**
 * The broker's whole API on one screen: method, path, guard, handler. `auth: true` means a valid
 * broker token; capability and fresh-login checks live in the handlers, after input validation,
 * so a request that would be refused anyway is refused without asking anyone to log in again.
 */
import type { HandlerContext, HandlerResult } from './context.js';
import { getConfig, getHealth, getJwks, getWhoami, postLogin } from './handlers/identity.js';

/** One route. */
export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  auth: boolean;
  handler: (ctx: HandlerContext) => Promise<HandlerResult>;
}

/** Every route of the broker API. */
export const ROUTES: readonly Route[] = [
  { method: 'GET', path: '/healthz', auth: false, handler: getHealth },
  { method: 'GET', path: '/.well-known/jwks.json', auth: false, handler: getJwks },
  { method: 'GET', path: '/v1/config', auth: false, handler: getConfig },
  { method: 'POST', path: '/v1/login', auth: false, handler: postLogin },
  { method: 'GET', path: '/v1/whoami', auth: true, handler: getWhoami },
];
