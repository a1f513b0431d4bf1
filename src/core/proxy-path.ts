/**
 * Where a proxied call may go: the path after `/proxy` must stay inside the tenant's upstream base.
 * Refuses, rather than repairs, anything that could escape it: dot segments (raw, encoded, or with
 * `;` path parameters), encoded slashes or backslashes, protocol-relative or absolute URLs, control
 * characters.
 */

/**
 * The upstream URL for a proxied path, or the reason it is refused. `canonical` is the form an
 * upstream router sees (percent-decoded once, `;` parameters and empty segments dropped, lower
 * case): what classification and scope checks must look at, never the raw text.
 */
export type ProxyTarget =
  | { ok: true; url: string; path: string; canonical: string }
  | { ok: false; reason: string };

// Percent-encoded unreserved characters (RFC 3986 §2.3) mean the same as the plain character to
// most routers but not to a glob over the raw text: `/v1/%65xport` is `/v1/export` to Fastify. No
// client needs to encode them (§6.2.2.2), so they are refused rather than guessed at. `%25` followed
// by hex is a double encoding, which an upstream that decodes twice would read differently again.
const AMBIGUOUS_ENCODING = /%(?:[46][1-9a-f]|[57][0-9a]|3[0-9]|2d|2e|5f|7e|25[0-9a-f]{2})/i;

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** True for methods a read-only session may use. */
export function isReadMethod(method: string): boolean {
  return READ_METHODS.has(method.toUpperCase());
}

/** Resolves `rawPath` (as received, still percent-encoded, with its query) against `base`. */
export function resolveProxyTarget(base: string, rawPath: string): ProxyTarget {
  if (rawPath.length > 4096) return { ok: false, reason: 'the path is too long' };
  const queryAt = rawPath.indexOf('?');
  const path = queryAt >= 0 ? rawPath.slice(0, queryAt) : rawPath;
  const query = queryAt >= 0 ? rawPath.slice(queryAt) : '';
  if (!path.startsWith('/')) return { ok: false, reason: 'the path must start with /' };
  if (path.startsWith('//')) return { ok: false, reason: 'protocol-relative paths are not allowed' };
  if (/[\u0000-\u001f\u007f\s\\]/.test(rawPath))
    return { ok: false, reason: 'control characters, spaces or backslashes are not allowed' };
  if (/%(2f|5c|00)/i.test(path)) return { ok: false, reason: 'encoded slashes or NUL are not allowed' };
  if (AMBIGUOUS_ENCODING.test(path))
    return { ok: false, reason: 'percent-encoded letters, digits, -._~ or % are ambiguous; send them plain' };
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return { ok: false, reason: 'the path has invalid percent-encoding' };
  }
  // `..;x` is a dot segment to servlet containers (Tomcat strips `;` path parameters before resolving).
  if (decoded.split('/').some((segment) => /^\.\.?(;.*)?$/.test(segment)))
    return { ok: false, reason: 'dot segments (..) are not allowed' };
  if (/^\/[a-z][a-z0-9+.-]*:/i.test(decoded)) return { ok: false, reason: 'absolute URLs are not allowed' };
  let baseUrl: URL;
  let target: URL;
  try {
    baseUrl = new URL(base.endsWith('/') ? base : `${base}/`);
    target = new URL(`.${path}${query}`, baseUrl);
  } catch {
    return { ok: false, reason: 'the path is not a valid URL path' };
  }
  if (target.origin !== baseUrl.origin || !target.pathname.startsWith(baseUrl.pathname)) {
    return { ok: false, reason: 'the path leaves the tenant API' };
  }
  return { ok: true, url: target.toString(), path: `${path}${query}`, canonical: canonicalPath(decoded) };
}

/**
 * The path as routers match it: `;` path parameters (servlet containers strip them) and empty
 * segments (`//`, which many routers merge) dropped, lower-cased (Express routes case-insensitively
 * by default). Over-matching only makes classification stricter, never looser.
 */
function canonicalPath(decoded: string): string {
  const segments = decoded
    .split('/')
    .map((segment) => segment.split(';')[0] ?? '')
    .filter((segment) => segment !== '');
  const trailing = decoded.endsWith('/') && segments.length > 0 ? '/' : '';
  return `/${segments.join('/')}${trailing}`.toLowerCase();
}

/**
 * Matches a path against a glob where `**` spans segments and `*` stays within one. Case-insensitive,
 * to agree with {@link ProxyTarget.canonical}.
 */
export function matchesPathGlob(glob: string, path: string): boolean {
  const pattern = glob
    .split('**')
    .map((part) =>
      part
        .split('*')
        .map((piece) => piece.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('[^/]*'),
    )
    .join('.*');
  return new RegExp(`^${pattern}$`, 'i').test(path.split('?')[0] ?? path);
}
