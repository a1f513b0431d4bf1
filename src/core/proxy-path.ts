/**
 * Where a proxied call may go: the path after `/proxy` must stay inside the tenant's upstream base.
 * Refuses, rather than repairs, anything that could escape it: dot segments (raw, encoded, or with
 * `;` path parameters), encoded slashes or backslashes, protocol-relative or absolute URLs, control
 * characters.
 */

/** The upstream URL for a proxied path, or the reason it is refused. */
export type ProxyTarget = { ok: true; url: string; path: string } | { ok: false; reason: string };

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
  return { ok: true, url: target.toString(), path: `${path}${query}` };
}

/** Matches a path against a glob where `**` spans segments and `*` stays within one. */
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
  return new RegExp(`^${pattern}$`).test(path.split('?')[0] ?? path);
}
