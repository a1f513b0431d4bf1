/**
 * What of a proxied request may reach the tenant API, and what a read-only session must refuse.
 * Frameworks honour many ways to turn a GET into something else — `?_method=DELETE` (Laravel, Rails,
 * method-override), `X-HTTP-Method` (OData), a body on a GET, `X-Original-URL` / `X-Rewrite-URL`
 * (IIS, Symfony) rewriting the routed path, `X-Forwarded-Prefix` / `X-Real-IP` changing what the app
 * believes about the request. Headers are therefore forwarded from an allow-list, never a deny-list:
 * a header nobody here has heard of does not reach the upstream.
 */

/** Request headers forwarded to the tenant API: content negotiation, caching, ranges, the body's type. */
export const FORWARDED_REQUEST_HEADERS: readonly string[] = [
  'accept',
  'accept-encoding',
  'accept-language',
  'cache-control',
  'content-encoding',
  'content-language',
  'content-type',
  'idempotency-key',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'pragma',
  'prefer',
  'range',
  'user-agent',
];

/**
 * Headers `proxy.forward_headers` may never add: credentials, hop-by-hop, and everything that
 * rewrites the method, the routed path or the client's address.
 */
export function isUnforwardableHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return (
    /^(authorization|cookie|host|connection|keep-alive|te|trailer|transfer-encoding|upgrade|content-length|forwarded|via|true-client-ip|proxy-.*|x-imp-.*|x-forwarded-.*|x-real-ip|x-client-ip|x-cluster-client-ip|cf-connecting-ip|fastly-client-ip|x-original-.*|x-rewrite-.*|.*method.*|x-http-.*|x-envoy-.*)$/.test(
      lower,
    ) || !/^[a-z0-9][a-z0-9-]*$/.test(lower)
  );
}

/** True when the header named goes to the upstream (`extra`: policy `proxy.forward_headers`). */
export function isForwardedHeader(name: string, extra: readonly string[] = []): boolean {
  const lower = name.toLowerCase();
  if (FORWARDED_REQUEST_HEADERS.includes(lower)) return true;
  return extra.includes(lower) && !isUnforwardableHeader(lower);
}

/** Query parameters that frameworks read as the real method (method-override, Rails, Laravel, …). */
const METHOD_OVERRIDE_PARAMS = new Set([
  '_method',
  'method',
  '_httpmethod',
  'x-http-method',
  'x-http-method-override',
  'x-method-override',
]);

/** Headers that carry a method override. */
const METHOD_OVERRIDE_HEADERS = ['x-http-method-override', 'x-method-override', 'x-http-method'];

/** What a read-only session is about to send, reduced to what the rules look at. */
export interface ReadOnlyCheck {
  /** The query string, with or without its leading `?`. */
  query: string;
  headers: Record<string, string | string[] | undefined>;
}

/**
 * The rule a read-only request breaks, or null: `scope.method_override` for a method-override query
 * parameter or header, `scope.read_body` for a request body (a GET/HEAD/OPTIONS with a body is a
 * write to some frameworks, and nothing a reader needs to send).
 */
export function readOnlyViolation(check: ReadOnlyCheck): 'scope.method_override' | 'scope.read_body' | null {
  if (METHOD_OVERRIDE_HEADERS.some((name) => check.headers[name] !== undefined))
    return 'scope.method_override';
  // Some parsers also split on `;` (`?a=1;_method=DELETE`).
  const query = (check.query.startsWith('?') ? check.query.slice(1) : check.query).replaceAll(';', '&');
  const params = new URLSearchParams(query);
  for (const name of params.keys()) {
    if (METHOD_OVERRIDE_PARAMS.has(name.toLowerCase().replace(/\[\]$/, ''))) return 'scope.method_override';
  }
  const length = check.headers['content-length'];
  const declared = Array.isArray(length) ? length.join(',') : length;
  if (check.headers['transfer-encoding'] !== undefined) return 'scope.read_body';
  if (declared !== undefined && declared.trim() !== '0') return 'scope.read_body';
  return null;
}
