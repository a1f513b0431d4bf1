/**
 * `imp api` the way `gh api` works: -f/-F fields (query for GET, JSON body otherwise, @file),
 * --jq/--filter with the real jq, --include for the status line and headers, a newline at the end
 * when piped, and `/../` refused as a path escape instead of being resolved into a broker route.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../../src/cli/main.js';
import { makeTestDeps } from '../../helpers/cli-deps.js';
import { makeTempDir } from '../../helpers/temp.js';

const BROKER = 'http://127.0.0.1:7700';
const stored = JSON.stringify({
  token: 'tok',
  expires_at: '2099-11-25T00:00:00Z',
  auth_time: 1,
  user: { iss: 'i', sub: 'alice', email: 'alice@x', name: null, groups: [], roles: [] },
});
const USERS = [
  { id: 'u-1', email: 'ann@acme.test', admin: true },
  { id: 'u-2', email: 'ben@acme.test\u001b[2J', admin: false },
];

interface Seen {
  url: URL;
  method: string;
  body: string | null;
}

async function imp(
  argv: string[],
  answer: { status?: number; body?: string; type?: string } = {},
  options: { tty?: boolean } = {},
) {
  const seen: Seen[] = [];
  const t = makeTestDeps({
    ...(options.tty ? { tty: true } : {}),
    env: { IMP_BROKER_URL: BROKER, IMP_SESSION_ID: 'sess-1' },
    fetch: (async (input: string | URL | Request, init?: RequestInit) => {
      seen.push({
        url: new URL(String(input)),
        method: init?.method ?? 'GET',
        body: (init?.body as string) ?? null,
      });
      return new Response(answer.body ?? JSON.stringify(USERS), {
        status: answer.status ?? 200,
        headers: {
          'content-type': answer.type ?? 'application/json',
          'x-imp-action-id': 'a-1',
          'x-demo': 'yes',
        },
      });
    }) as typeof fetch,
  });
  await t.credentials.set(BROKER, stored);
  const code = await main(['api', ...argv], t.deps, 'test');
  return { code, seen, stdout: t.io.stdoutText(), stderr: t.io.stderrText() };
}

describe('imp api fields', () => {
  it('-f and -F go to the query string of a GET, typed values as JSON text', async () => {
    const result = await imp(['GET', '/v1/users', '-f', 'role=admin', '-F', 'limit=5', '-f', 'q=a b&c']);
    expect(result.code).toBe(0);
    const { url } = result.seen[0]!;
    expect(url.pathname).toBe('/v1/sessions/sess-1/proxy/v1/users');
    expect([...url.searchParams]).toEqual([
      ['role', 'admin'],
      ['q', 'a b&c'],
      ['limit', '5'],
    ]);
  });

  it('-f and -F make a JSON body for a POST: -f strings, -F true/false/null/numbers/@file, a[b] nests', async () => {
    const dir = makeTempDir('imp-api-test-');
    writeFileSync(join(dir, 'note.txt'), 'Line one\nLine two\n');
    const result = await imp([
      'POST',
      '/v1/notes',
      '-f',
      'title=123',
      '-F',
      'count=123',
      '-F',
      'pinned=true',
      '-F',
      'archived=null',
      '-F',
      `body=@${join(dir, 'note.txt')}`,
      '-f',
      'meta[owner]=ann',
      '-f',
      'tags[]=x',
      '-f',
      'tags[]=y',
    ]);
    expect(result.seen[0]!.method).toBe('POST');
    expect(JSON.parse(result.seen[0]!.body!)).toEqual({
      title: '123',
      count: 123,
      pinned: true,
      archived: null,
      body: 'Line one\nLine two\n',
      meta: { owner: 'ann' },
      tags: ['x', 'y'],
    });
  });

  it.each([
    [['POST', '/v1/notes', '-f', 'novalue'], 'must look like key=value'],
    [['POST', '/v1/notes', '-f', 'a=1', '--data', '{}'], 'either --data or -f/-F fields'],
    [['POST', '/v1/notes', '-f', '__proto__[x]=1'], 'is not allowed'],
    [['GET', '/v1/users', '--jq', '.', '--json'], 'leave out --json'],
  ])('%j is a usage error (exit 2) saying %j, and nothing is sent', async (argv, text) => {
    const result = await imp(argv);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(text);
    expect(result.seen).toEqual([]);
  });
});

describe('imp api --jq', () => {
  it('selects with jq; strings print raw, one per line, escaped on a terminal', async () => {
    const piped = await imp(['GET', '/v1/users', '--jq', '.[] | select(.admin) | .email']);
    expect(piped.stdout).toBe('ann@acme.test\n');
    const all = await imp(['GET', '/v1/users', '--filter', '.[].email'], {}, { tty: true });
    expect(all.stdout).toBe('ann@acme.test\nben@acme.test\\x1b[2J\n');
    const objects = await imp(['GET', '/v1/users', '-q', 'map({id}) | .[]']);
    expect(objects.stdout).toBe('{"id":"u-1"}\n{"id":"u-2"}\n');
  });

  it('a broken filter or a non-JSON answer is invalid input (exit 2) with jq’s message', async () => {
    const broken = await imp(['GET', '/v1/users', '--jq', '.[']);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/^error: --jq: jq: error: syntax error/m);
    const text = await imp(['GET', '/v1/export/users.csv', '--jq', '.'], {
      body: 'id,email\n',
      type: 'text/csv',
    });
    expect(text.code).toBe(2);
    expect(text.stderr).toContain('--jq needs a JSON answer');
  });
});

describe('imp api output', () => {
  it('--include prints the status line and headers, then a blank line, then the body', async () => {
    const result = await imp(['GET', '/v1/users', '--include']);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe('HTTP 200 OK');
    expect(lines).toContain('x-demo: yes');
    expect(lines).toContain('content-type: application/json');
    expect(result.stdout).toContain(`\n\n${JSON.stringify(USERS)}\n`);
  });

  it('piped JSON ends with a newline; a download passes byte for byte', async () => {
    const json = await imp(['GET', '/v1/users']);
    expect(json.stdout).toBe(`${JSON.stringify(USERS)}\n`);
    const csv = await imp(['GET', '/v1/export/users.csv'], { body: 'id,email\nu-1,ann', type: 'text/csv' });
    expect(csv.stdout).toBe('id,email\nu-1,ann');
  });

  it('GET /../admin is refused as a path escape (exit 2) and never sent', async () => {
    expect((await imp(['GET', '/../admin'])).stderr).toContain('dot segments (..) are not allowed');
    for (const path of ['/../admin', '/v1/%2e%2e/admin', '/v1/./x']) {
      const result = await imp(['GET', path]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/^error: Refused by rule path\.escape: /);
      expect(result.seen).toEqual([]);
    }
  });
});
