import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/core/duration.js';
import { escapeUntrusted, hasControlCharacters } from '../../src/core/escape.js';
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
});

describe('suggestions', () => {
  it('finds the nearest command', () => {
    expect(nearest('logn', ['login', 'logout', 'whoami'])).toBe('login');
    expect(nearest('stat', ['start', 'status'])).toBeDefined();
    expect(nearest('zzzzzz', ['login', 'start'])).toBeUndefined();
  });
});
