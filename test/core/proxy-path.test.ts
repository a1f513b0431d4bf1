import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isReadMethod, matchesPathGlob, resolveProxyTarget } from '../../src/core/proxy-path.js';

const BASE = 'http://127.0.0.1:7702/api';

describe('proxy path normalisation', () => {
  it.each([
    ['/v1/users', 'http://127.0.0.1:7702/api/v1/users', '/v1/users'],
    ['/v1/users?limit=5&q=a%20b', 'http://127.0.0.1:7702/api/v1/users?limit=5&q=a%20b', '/v1/users'],
    ['/v1/users;v=2', 'http://127.0.0.1:7702/api/v1/users;v=2', '/v1/users'],
    ['/v1/n%C3%A4me%20x', 'http://127.0.0.1:7702/api/v1/n%C3%A4me%20x', '/v1/näme x'],
    ['/V1//Export;x=1/u.csv', 'http://127.0.0.1:7702/api/V1//Export;x=1/u.csv', '/v1/export/u.csv'],
  ])('%s → %s (canonical %s)', (path, url, canonical) => {
    expect(resolveProxyTarget(BASE, path)).toEqual({ ok: true, url, path, canonical });
  });

  // Encoded unreserved characters: the same path to a router that decodes, a different one to a glob.
  it.each([
    '/v1/%65xport/users.csv',
    '/v1/%45XPORT/users.csv',
    '/v1/export%2Fusers.csv',
    '/v1/users/u%2Dl',
    '/v1/users/%7Euser',
    '/v1/users/a%5Fb',
    '/v1/%31',
    '/v1/%2565xport/users.csv',
  ])('refuses the ambiguous encoding %j', (path) => {
    const result = resolveProxyTarget(BASE, path);
    expect(result.ok).toBe(false);
  });

  it('classifies on the canonical form whatever the spelling (property)', () => {
    const variants = fc.record({
      upper: fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
      doubled: fc.boolean(),
      param: fc.boolean(),
    });
    fc.assert(
      fc.property(variants, ({ upper, doubled, param }) => {
        const word = [...'export'].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join('');
        const path = `/v1${doubled ? '//' : '/'}${word}${param ? ';v=1' : ''}/users.csv`;
        const result = resolveProxyTarget(BASE, path);
        expect(result.ok && matchesPathGlob('/v1/export/**', result.canonical)).toBe(true);
      }),
    );
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
