import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../src/core/audit/canonical-json.js';

// The canonicalize package, loaded as Node does (CommonJS), as an independent RFC 8785 implementation.
// Its typings declare an ES default export, which TypeScript's NodeNext resolution cannot call.
const canonicalize = createRequire(import.meta.url)('canonicalize') as (value: unknown) => string | undefined;

/** The IEEE 754 double with the given bit pattern (RFC 8785 Appendix B lists vectors this way). */
function fromBits(hex: string): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${hex}`));
  return view.getFloat64(0);
}

/** The same JSON value with every object's keys inserted in reverse order. */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).reverse()) {
    Object.defineProperty(out, key, {
      value: reverseKeys((value as Record<string, unknown>)[key]),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

function withoutNegativeZero(value: unknown): unknown {
  if (Object.is(value, -0)) return 0;
  if (Array.isArray(value)) return value.map(withoutNegativeZero);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    Object.defineProperty(out, key, {
      value: withoutNegativeZero(item),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

describe('canonicalJson: RFC 8785 examples', () => {
  it('serialises the section 3.2.2 example exactly', () => {
    const input = JSON.parse(String.raw`{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }`);
    expect(canonicalJson(input)).toBe(
      String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
    );
  });

  it('sorts keys by UTF-16 code units, not code points (section 3.2.3)', () => {
    const input = JSON.parse(String.raw`{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }`);
    const text = canonicalJson(input);
    // U+1F600 is the surrogate pair D83D DE00, so by UTF-16 code units it sorts before U+FB33.
    expect(text.indexOf('\ud83d\ude00')).toBeLessThan(text.indexOf('\ufb33'));
    expect(text).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
        '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  it.each([
    ['0000000000000000', '0'],
    ['8000000000000000', '0'],
    ['0000000000000001', '5e-324'],
    ['8000000000000001', '-5e-324'],
    ['7fefffffffffffff', '1.7976931348623157e+308'],
    ['ffefffffffffffff', '-1.7976931348623157e+308'],
    ['4340000000000000', '9007199254740992'],
    ['c340000000000000', '-9007199254740992'],
    ['4430000000000000', '295147905179352830000'],
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['444b1ae4d6e2ef4e', '999999999999999700000'],
    ['444b1ae4d6e2ef4f', '999999999999999900000'],
    ['444b1ae4d6e2ef50', '1e+21'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555554', '333333333.33333325'],
    ['41b3de4355555555', '333333333.3333333'],
    ['41b3de4355555556', '333333333.3333334'],
    ['41b3de4355555557', '333333333.33333343'],
    ['becbf647612f3696', '-0.0000033333333333333333'],
    ['43143ff3c1cb0959', '1424953923781206.2'],
  ])('formats the double 0x%s as %s (Appendix B)', (bits, expected) => {
    expect(canonicalJson(fromBits(bits))).toBe(expected);
  });

  it.each(['7fffffffffffffff', '7ff0000000000000', 'fff0000000000000'])(
    'refuses the non-finite double 0x%s (Appendix B)',
    (bits) => {
      expect(() => canonicalJson(fromBits(bits))).toThrow(TypeError);
    },
  );
});

describe('canonicalJson: numbers', () => {
  it.each([
    [1e21, '1e+21'],
    [1e20, '100000000000000000000'],
    [1e-7, '1e-7'],
    [0.000001, '0.000001'],
    [-0, '0'],
    [4.5, '4.5'],
    [-1, '-1'],
    [Number.MAX_SAFE_INTEGER, '9007199254740991'],
    [Number.MIN_VALUE, '5e-324'],
  ])('writes %s as %s', (value, expected) => {
    expect(canonicalJson(value)).toBe(expected);
    expect(canonicalJson([value])).toBe(`[${expected}]`);
  });

  it.each([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])(
    'refuses %s, even nested',
    (value) => {
      expect(() => canonicalJson(value)).toThrow(/cannot represent the number/);
      expect(() => canonicalJson({ a: [1, { b: value }] })).toThrow(TypeError);
    },
  );
});

describe('canonicalJson: strings', () => {
  it('escapes the short forms and other control characters as lowercase \\u00xx', () => {
    expect(canonicalJson('\b\t\n\f\r"\\')).toBe('"\\b\\t\\n\\f\\r\\"\\\\"');
    expect(canonicalJson('\u0000\u0001\u001f\u007f')).toBe('"\\u0000\\u0001\\u001f\u007f"');
  });

  it('leaves U+2028, U+2029, / and non-ASCII literal', () => {
    expect(canonicalJson('a\u2028b\u2029c/é€😀')).toBe('"a\u2028b\u2029c/é€😀"');
  });

  it('escapes a lone surrogate (the documented deviation) so the output stays well-formed', () => {
    expect(canonicalJson('x\ud800y')).toBe('"x\\ud800y"');
    expect(JSON.parse(canonicalJson('x\udfff'))).toBe('x\udfff');
  });

  it('escapes keys the same way as values', () => {
    expect(canonicalJson({ 'a"\n': 1 })).toBe('{"a\\"\\n":1}');
  });
});

describe('canonicalJson: structure', () => {
  it('writes literals, empty containers and nested arrays without whitespace', () => {
    expect(canonicalJson(null)).toBe('null');
    expect(canonicalJson(true)).toBe('true');
    expect(canonicalJson(false)).toBe('false');
    expect(canonicalJson({})).toBe('{}');
    expect(canonicalJson([])).toBe('[]');
    expect(canonicalJson([[1, [2, [3, []]]], [], [{}]])).toBe('[[1,[2,[3,[]]]],[],[{}]]');
    expect(canonicalJson({ b: [{ d: 1, c: 2 }], a: { z: null, y: [true] } })).toBe(
      '{"a":{"y":[true],"z":null},"b":[{"c":2,"d":1}]}',
    );
  });

  it('sorts numeric-looking keys as strings ("10" before "9"), unlike JS property order', () => {
    expect(canonicalJson({ 9: 'a', 10: 'b', x: 'c' })).toBe('{"10":"b","9":"a","x":"c"}');
  });

  it('accepts objects without a prototype', () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { b: 1, a: 2 });
    expect(canonicalJson(bare)).toBe('{"a":2,"b":1}');
  });

  it('drops undefined properties, as JSON.stringify (and so the store) would', () => {
    expect(canonicalJson({ a: undefined, b: 1 })).toBe('{"b":1}');
  });

  it('serialises Dates through toJSON', () => {
    expect(canonicalJson({ at: new Date(Date.UTC(2026, 10, 24, 20, 11, 40, 123)) })).toBe(
      '{"at":"2026-11-24T20:11:40.123Z"}',
    );
  });

  it.each([
    ['undefined in an array', [1, undefined]],
    ['a hole in an array', new Array<number>(3).fill(1, 0, 1)],
    ['top-level undefined', undefined],
    ['a function value', { f: () => 1 }],
    ['a symbol value', { s: Symbol('x') }],
    ['a bigint', { n: 1n }],
    ['a Map', { m: new Map([['a', 1]]) }],
    ['a class instance', { e: new Error('boom') }],
  ])('refuses %s with a TypeError', (_name, value) => {
    expect(() => canonicalJson(value)).toThrow(TypeError);
  });

  it('refuses a circular structure instead of overflowing the stack', () => {
    const loop: Record<string, unknown> = { a: 1 };
    loop.self = { again: [loop] };
    expect(() => canonicalJson(loop)).toThrow(/circular/);
  });

  it('accepts the same object twice when it is not its own ancestor', () => {
    const shared = { x: 1 };
    expect(canonicalJson({ a: shared, b: [shared] })).toBe('{"a":{"x":1},"b":[{"x":1}]}');
  });
});

describe('canonicalJson: properties', () => {
  it('is stable under key reordering', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(canonicalJson(reverseKeys(value))).toBe(canonicalJson(value));
      }),
      { numRuns: 500 },
    );
  });

  it('round-trips: JSON.parse(canonicalJson(x)) deep-equals x (-0 comes back as 0, as RFC 8785 says)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(JSON.parse(canonicalJson(value))).toStrictEqual(withoutNegativeZero(value));
      }),
      { numRuns: 500 },
    );
  });

  it('is a fixed point: canonicalising the parsed output gives the same text', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = canonicalJson(value);
        expect(canonicalJson(JSON.parse(text))).toBe(text);
      }),
      { numRuns: 300 },
    );
  });

  it('agrees with the canonicalize package on JSON values (an independent implementation)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(canonicalJson(value)).toBe(canonicalize(value));
      }),
      { numRuns: 500 },
    );
  });
});

// Values whose keys are already in order (everything parsed back from canonical text) are written by
// JSON.stringify; these pin down that the shortcut is taken only where its output is identical.
describe('canonicalJson: the JSON.stringify shortcut for already-sorted values', () => {
  it('agrees with the canonicalize package on parsed canonical text, however deep', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        const sorted: unknown = JSON.parse(canonicalize(value) ?? 'null');
        expect(canonicalJson(sorted)).toBe(canonicalize(sorted));
      }),
      { numRuns: 1000 },
    );
  });

  it.each([
    ['-0 deep inside', { a: { b: [-0] } }, '{"a":{"b":[0]}}'],
    ['an integer-like key before a letter', { 1: 'x', a: 'y' }, '{"1":"x","a":"y"}'],
    ['integer-like keys JS enumerates numerically', { 2: 'x', 10: 'y' }, '{"10":"y","2":"x"}'],
    ['a Date deep inside sorted keys', { a: { at: new Date(0) } }, '{"a":{"at":"1970-01-01T00:00:00.000Z"}}'],
    ['an undefined property between sorted keys', { a: 1, b: undefined, c: 2 }, '{"a":1,"c":2}'],
    ['a lone surrogate and U+2028', { a: '\ud800', b: '\u2028' }, '{"a":"\\ud800","b":"\u2028"}'],
    ['a __proto__ key from JSON.parse', JSON.parse('{"__proto__":1,"a":2}'), '{"__proto__":1,"a":2}'],
  ])('writes %s canonically', (_name, value, expected) => {
    expect(canonicalJson(value)).toBe(expected);
  });

  it.each([
    ['NaN deep inside sorted keys', { a: { b: [1, { c: Number.NaN }] } }],
    ['undefined in a nested array', { a: [[1, undefined]] }],
    ['a function deep inside', { a: { b: () => 1 } }],
    ['a Map deep inside', { a: { m: new Map() } }],
  ])('still refuses %s', (_name, value) => {
    expect(() => canonicalJson(value)).toThrow(TypeError);
  });
});
