import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/core/duration.js';
import { boundedEscape, escapeUntrusted, hasControlCharacters } from '../../src/core/escape.js';
import { nearest } from '../../src/core/suggest.js';

describe('durations', () => {
  it.each([
    ['90s', 90],
    ['10m', 600],
    ['1h', 3600],
    ['1h30m', 5400],
    ['2d', 172800],
  ])('parses %s', (text, seconds) => expect(parseDuration(text)).toBe(seconds));
  it.each(['', '10', 'm', '-5m', '0s', '1.5h', '10 m', '1x'])('refuses %j', (text) =>
    expect(() => parseDuration(text)).toThrow(/Invalid duration/),
  );
  it.each([
    [45, '45s'],
    [90, '1m30s'],
    [600, '10m'],
    [3900, '1h05m'],
  ])('formats %i as %s', (seconds, text) => expect(formatDuration(seconds)).toBe(text));
});

describe('escaping untrusted text', () => {
  it('neutralises terminal escapes, controls and bidi overrides', () => {
    expect(escapeUntrusted('\u001b]0;pwned\u0007')).toBe('\\x1b]0;pwned\\x07');
    expect(escapeUntrusted('a\nb\tc\r')).toBe('a\\nb\\tc\\r');
    expect(escapeUntrusted('evil\u202eexe.txt')).toBe('evil\\u202eexe.txt');
    expect(escapeUntrusted('\u009b31m')).toBe('\\x9b31m');
    expect(escapeUntrusted('Grüße, 日本')).toBe('Grüße, 日本');
    expect(hasControlCharacters('fine')).toBe(false);
    expect(hasControlCharacters('no\u0000')).toBe(true);
  });

  const invisible = [
    ...[0x200b, 0x200c, 0x200d, 0x200e, 0x200f, 0x061c, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xfeff],
    ...[0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069],
  ].map((code) => String.fromCodePoint(code));
  it.each(invisible.map((ch) => [`U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`, ch]))(
    'input holding %s is refused like a control character',
    (_name, ch) => {
      expect(hasControlCharacters(`SUP-1${ch}`)).toBe(true);
    },
  );

  it('keeps refused text as evidence: escaped (invisible characters too) and bounded', () => {
    expect(boundedEscape('a\u200bb\u202ec\u001bd', 100)).toBe('a\\u200bb\\u202ec\\x1bd');
    const long = boundedEscape('x'.repeat(10_000), 600);
    expect([...long]).toHaveLength(600);
    expect(long.endsWith('…')).toBe(true);
    expect([...boundedEscape('\u0000'.repeat(1000), 600)].length).toBeLessThanOrEqual(600);
    expect(boundedEscape('Grüße, 日本 🙂', 600)).toBe('Grüße, 日本 🙂');
  });
});

describe('suggestions', () => {
  it('finds the nearest command', () => {
    expect(nearest('logn', ['login', 'logout', 'whoami'])).toBe('login');
    expect(nearest('stat', ['start', 'status'])).toBeDefined();
    expect(nearest('zzzzzz', ['login', 'start'])).toBeUndefined();
  });
});
