import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, CanonicalJsonError, compareCodePoints, parseJson } from '../src/index.ts';

describe('canonical JSON', () => {
  it('orders keys by code point, not UTF-16 unit', () => {
    // U+1F408 (surrogates D83D DC08) sorts after U+FB01 by code point; a plain JS sort puts it first.
    const obj = { '\u{1F408}': 1, '\uFB01': 2, a: 3 };
    expect(Object.keys(obj).sort()).toEqual(['a', '\u{1F408}', '\uFB01']);
    expect(canonicalJson(obj)).toBe('{"a":3,"\uFB01":2,"\u{1F408}":1}');
  });
  it('escapes exactly what canonical JSON escapes', () => {
    expect(canonicalJson('\u0000\u001f"\\/\u007f\u2028é')).toBe('"\\u0000\\u001f\\"\\\\/\u007f\u2028é"');
    expect(canonicalJson('\b\t\n\f\r\u000b')).toBe('"\\b\\t\\n\\f\\r\\u000b"');
  });
  it('writes -0 as 0 and refuses floats, big integers and non-JSON values', () => {
    expect(canonicalJson({ a: -0 })).toBe('{"a":0}');
    expect(() => canonicalJson(1.5)).toThrow(CanonicalJsonError);
    expect(() => canonicalJson(2 ** 53)).toThrow(CanonicalJsonError);
    expect(() => canonicalJson(-(2 ** 53))).toThrow(CanonicalJsonError);
    expect(canonicalJson(2 ** 53 - 1)).toBe('9007199254740991');
    expect(() => canonicalJson(NaN)).toThrow(CanonicalJsonError);
    expect(() => canonicalJson(10n as unknown)).toThrow(CanonicalJsonError);
    expect(() => canonicalJson({ a: () => 1 } as unknown)).toThrow(CanonicalJsonError);
  });
  it('refuses lone surrogates in strings and keys', () => {
    expect(() => canonicalJson('\ud800')).toThrow(CanonicalJsonError);
    expect(() => canonicalJson({ '\udc00': 1 })).toThrow(CanonicalJsonError);
    expect(canonicalJson('\ud83d\udc08')).toBe('"\u{1F408}"');
  });
  it('omits undefined object members like JSON does', () => {
    expect(canonicalJson({ b: undefined, a: 1 })).toBe('{"a":1}');
  });
});

describe('parseJson (big-integer aware)', () => {
  it('refuses integers JSON.parse would round', () => {
    expect(() => parseJson('9007199254740992')).toThrow(CanonicalJsonError);
    expect(() => parseJson('-9007199254740993')).toThrow(CanonicalJsonError);
    expect(() => parseJson('{"a":[123456789012345678901234567890]}')).toThrow(CanonicalJsonError);
    expect(() => parseJson('9007199254740993e0')).toThrow(CanonicalJsonError);
    expect(() => parseJson('1e400')).toThrow(CanonicalJsonError);
    expect(parseJson('[9007199254740991,-9007199254740991]')).toEqual([2 ** 53 - 1, -(2 ** 53 - 1)]);
  });
  it('accepts integral exponent and fraction forms, refuses real fractions', () => {
    expect(parseJson('[1e5,1.0,-0,2.50e1,100e-2]')).toEqual([100000, 1, -0, 25, 1]);
    expect(() => parseJson('1.5')).toThrow(CanonicalJsonError);
    expect(() => parseJson('1.00000000000000001')).toThrow(CanonicalJsonError);
    expect(() => parseJson('1e-1')).toThrow(CanonicalJsonError);
    expect(parseJson('1.5', { rejectFloats: false })).toBe(1.5);
  });
  it('ignores digits inside strings', () => {
    expect(parseJson('{"9007199254740993":"123456789012345678901 \\" 1.5"}')).toEqual({
      '9007199254740993': '123456789012345678901 " 1.5',
    });
  });
  it('throws SyntaxError for malformed JSON', () => {
    expect(() => parseJson('{')).toThrow(SyntaxError);
    expect(() => parseJson('')).toThrow(SyntaxError);
  });
});

// Arbitrary canonical-JSON-able values: safe integers, well-formed strings (incl. astral), nesting.
const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
    fc.string({ unit: 'grapheme' }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string({ unit: 'grapheme', maxLength: 6 }), tie('value'), { maxKeys: 6 }),
  ),
})).value;

describe('canonical JSON properties', () => {
  it('is idempotent: canonical(parse(canonical(x))) == canonical(x)', () => {
    fc.assert(
      fc.property(jsonValue, (v) => {
        const c = canonicalJson(v);
        expect(canonicalJson(parseJson(c))).toBe(c);
        expect(JSON.parse(c)).toEqual(JSON.parse(JSON.stringify(v)));
      }),
      { numRuns: 300 },
    );
  });
  it('does not depend on key insertion order', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ unit: 'grapheme' }), fc.integer(), { maxKeys: 10 }), (d) => {
        const reversed = Object.fromEntries(Object.entries(d).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(d));
      }),
    );
  });
  it('compareCodePoints agrees with comparing code point arrays', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
        const ca = [...a].map((c) => c.codePointAt(0)!);
        const cb = [...b].map((c) => c.codePointAt(0)!);
        let want = 0;
        for (let i = 0; i < Math.min(ca.length, cb.length) && want === 0; i++) want = ca[i] - cb[i];
        if (want === 0) want = ca.length - cb.length;
        expect(Math.sign(compareCodePoints(a, b))).toBe(Math.sign(want));
      }),
      { numRuns: 500 },
    );
  });
});
