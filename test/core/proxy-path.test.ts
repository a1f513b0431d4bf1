import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isReadMethod, matchesPathGlob, resolveProxyTarget } from '../../src/core/proxy-path.js';

const BASE = 'http://127.0.0.1:7702/api';

describe('proxy path normalisation', () => {
  it.each([
    ['/v1/users', 'http://127.0.0.1:7702/api/v1/users'],
    ['/v1/users?limit=5&q=a%20b', 'http://127.0.0.1:7702/api/v1/users?limit=5&q=a%20b'],
    ['/v1/users/u%2Dl', 'http://127.0.0.1:7702/api/v1/users/u%2Dl'],
    ['/v1/users;v=2', 'http://127.0.0.1:7702/api/v1/users;v=2'],
  ])('%s → %s', (path, url) => {
    expect(resolveProxyTarget(BASE, path)).toEqual({ ok: true, url, path });
  });

  it.each([
    '/../secret',
    '/v1/../../secret',
    '/%2e%2e/secret',
    '/%2E%2E/%2e%2e/etc/passwd',
    '/.%2e/x',
    '/v1%2f..%2fsecret',
    '/v1%5c..%5csecret',
    '//evil.example/',
    '/http://evil.example/',
    '/https:%2f%2fevil.example',
    '/v1\\..\\secret',
    '/v1/%00',
    '/v1/\u0000',
    'v1/users',
    '/v1/%zz',
    '/./v1',
    // servlet containers resolve `..;x` as `..` after dropping the path parameter
    '/..;/admin',
    '/v1/..;jsessionid=1/secret',
    '/%2e%2e;/secret',
    '/.;/v1',
  ])('refuses %j', (path) => {
    expect(resolveProxyTarget(BASE, path).ok).toBe(false);
  });

  it('never leaves the upstream base, whatever the path (property)', () => {
    const segment = fc.oneof(
      fc.constantFrom(
        '..',
        '.',
        '%2e%2e',
        '%2E.',
        '%2f',
        '%5c',
        'evil.example',
        'http:',
        '',
        '@',
        '%40',
        ':',
        'a',
        '%',
      ),
      fc.string({ maxLength: 6 }),
    );
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 8 }), fc.boolean(), (segments, leadingDouble) => {
        const path = `${leadingDouble ? '//' : '/'}${segments.join('/')}`;
        const result = resolveProxyTarget(BASE, path);
        if (result.ok) {
          const url = new URL(result.url);
          expect(url.origin).toBe('http://127.0.0.1:7702');
          expect(url.pathname.startsWith('/api/')).toBe(true);
          expect(url.pathname.split('/')).not.toContain('..');
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('read methods', () => {
    expect(['GET', 'head', 'OPTIONS'].every(isReadMethod)).toBe(true);
    expect(['POST', 'PUT', 'PATCH', 'DELETE', 'TRACE', 'CONNECT'].some(isReadMethod)).toBe(false);
  });

  it('export globs', () => {
    expect(matchesPathGlob('/v1/export/**', '/v1/export/users.csv')).toBe(true);
    expect(matchesPathGlob('/v1/export/**', '/v1/export/a/b.csv?x=1')).toBe(true);
    expect(matchesPathGlob('/v1/export/*', '/v1/export/a/b.csv')).toBe(false);
    expect(matchesPathGlob('/v1/export/**', '/v1/exports')).toBe(false);
  });
});
