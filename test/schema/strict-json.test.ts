import { expect } from 'chai';
import { CasebridgeError } from '../../src/errors.js';
import {
  MAX_JSON_DEPTH,
  parseStrictJson,
  parseStrictJsonBytes,
} from '../../src/schema/strict-json.js';
import { MESSAGE_TYPES } from '../../src/envelope/types.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';

function refused(text: string): CasebridgeError {
  let caught: unknown;
  try {
    parseStrictJson(text);
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected MALFORMED').to.be.instanceOf(CasebridgeError);
  expect((caught as CasebridgeError).code).to.equal('MALFORMED');
  return caught as CasebridgeError;
}

function sameAsJsonParse(text: string): void {
  expect(parseStrictJson(text)).to.deep.equal(JSON.parse(text));
}

describe('schema/parseStrictJson', () => {
  describe('duplicate member names', () => {
    const dupes: [string, string][] = [
      ['top level', '{"a":1,"b":2,"a":3}'],
      ['top level, same value', '{"a":1,"a":1}'],
      ['nested', '{"a":{"x":1,"y":{"z":1,"z":2}},"b":2}'],
      ['in an array of objects', '[{"a":1},{"a":1,"b":2,"a":2}]'],
      ['deep in arrays', '{"l":[[[{"k":[1,{"q":1,"q":null}]}]]]}'],
      ['escaped-equal names', '{"a":1,"\\u0061":2}'],
      ['escaped-equal names, upper-case hex', '{"\\u004A":1,"J":2}'],
      ['escaped solidus', '{"a/b":1,"a\\/b":2}'],
      ['surrogate pair vs raw', '{"\\ud83d\\ude00":1,"\u{1F600}":2}'],
      ['__proto__ twice', '{"__proto__":1,"__proto__":2}'],
      ['empty names', '{"":1,"":2}'],
      ['duplicate whose first value is an object', '{"a":{"x":1,"y":2},"a":{"x":1,"y":2}}'],
      ['duplicate inside a discarded value', '{"a":{"x":1,"x":2},"a":3}'],
      ['with whitespace', ' { "a" : 1 ,\n\t"a"\r: 2 } '],
    ];
    for (const [name, text] of dupes) {
      it(`refuses a duplicate: ${name}`, () => {
        refused(text);
      });
    }

    it('accepts the same name in different objects, and colons inside strings', () => {
      sameAsJsonParse('{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}');
      sameAsJsonParse('{"a:b":"c:d","e":"\\":\\"","f\\\\":"\\\\","g":["::",":"]}');
      sameAsJsonParse('{"a":1,"A":2,"\\u00e9":3,"e\\u0301":4}');
    });

    it('keeps __proto__ as an own data member, like JSON.parse', () => {
      const v = parseStrictJson('{"__proto__":{"polluted":1},"b":2}') as Record<string, unknown>;
      expect(Object.keys(v)).to.deep.equal(['__proto__', 'b']);
      expect(Object.getPrototypeOf(v)).to.equal(Object.prototype);
      expect(({} as Record<string, unknown>)['polluted']).to.equal(undefined);
    });
  });

  describe('depth', () => {
    it(`accepts nesting of exactly ${MAX_JSON_DEPTH}`, () => {
      sameAsJsonParse('['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH));
      sameAsJsonParse('{"a":'.repeat(MAX_JSON_DEPTH - 1) + '[]' + '}'.repeat(MAX_JSON_DEPTH - 1));
    });
    it(`refuses nesting of ${MAX_JSON_DEPTH + 1}`, () => {
      refused('['.repeat(MAX_JSON_DEPTH + 1) + ']'.repeat(MAX_JSON_DEPTH + 1));
    });
    it('refuses a depth bomb of 100k "[" with MALFORMED, not a crash', () => {
      refused('['.repeat(100_000));
      refused('['.repeat(100_000) + ']'.repeat(100_000));
      refused('{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000));
    });
    it('brackets inside strings do not count', () => {
      sameAsJsonParse(JSON.stringify({ s: '['.repeat(1000) + '{'.repeat(1000) }));
    });
  });

  describe('grammar (RFC 8259)', () => {
    const bad: [string, string][] = [
      ['empty text', ''],
      ['only whitespace', ' \n'],
      ['trailing garbage', '{"a":1}x'],
      ['two values', '{} {}'],
      ['trailing comma in object', '{"a":1,}'],
      ['trailing comma in array', '[1,2,]'],
      ['byte order mark', '\uFEFF{"a":1}'],
      ['NaN', '{"a":NaN}'],
      ['Infinity', '[Infinity]'],
      ['-Infinity', '[-Infinity]'],
      ['single quotes', "{'a':1}"],
      ['single-quoted value', '{"a":\'b\'}'],
      ['unquoted name', '{a:1}'],
      ['comment', '{"a":1 /* c */}'],
      ['line comment', '{"a":1}\n// c'],
      ['leading zero', '[01]'],
      ['leading plus', '[+1]'],
      ['bare fraction', '[.5]'],
      ['trailing dot', '[1.]'],
      ['hex number', '[0x10]'],
      ['raw control character in string', '["a\u0001b"]'],
      ['raw newline in string', '["a\nb"]'],
      ['bad escape', '["\\x41"]'],
      ['short unicode escape', '["\\u41"]'],
      ['unterminated string', '{"a":"b'],
      ['unterminated string ending in escaped quote', '["a\\"]'],
      ['unterminated object', '{"a":1'],
      ['unbalanced close', '[1]]'],
      ['undefined', '[undefined]'],
      ['non-JSON whitespace (NBSP)', '{\u00A0"a":1}'],
      ['missing colon', '{"a" 1}'],
      ['double colon', '{"a"::1}'],
      ['colon in array', '["a":1]'],
    ];
    for (const [name, text] of bad) {
      it(`refuses ${name}`, () => {
        refused(text);
      });
    }

    it('parses scalars and odd-but-valid texts like JSON.parse', () => {
      for (const t of [
        '0',
        '-0',
        '1',
        'true',
        'false',
        'null',
        '""',
        '"x"',
        '[]',
        '{}',
        ' [ ] ',
        '\t{\r\n}\n',
      ]) {
        sameAsJsonParse(t);
      }
    });

    it('parses big and extreme numbers like JSON.parse', () => {
      for (const t of [
        '[12345678901234567890123456789]',
        '[1e400, -1e400, 1e-400]',
        '[9007199254740993]',
        '[0.1, 1E+2, 1e-2, -0.0, 123.456e7]',
        `[${'9'.repeat(400)}]`,
      ]) {
        sameAsJsonParse(t);
      }
    });

    it('parses unicode escapes and non-ASCII like JSON.parse', () => {
      sameAsJsonParse('["\\u0041\\u00e9\\u4e2d\\ud83d\\ude00\\n\\t\\"\\\\\\/\\b\\f\\r"]');
      sameAsJsonParse('{"中文":"Lạng Sơn","😀":"\u2028\u2029"}');
    });

    it('refuses lone surrogates, escaped or raw', () => {
      refused('["\\ud800"]');
      refused('["\\udc00x"]');
      refused('{"\\ud83d":1}');
      refused('["\\ude00\\ud83d"]');
      refused('["\ud800"]');
    });

    it('does not mistake an escaped backslash before u for a surrogate escape', () => {
      sameAsJsonParse('["\\\\ud800"]');
    });

    it('error details never quote the input', () => {
      const secret = 'TESTPERSON-SECRET';
      for (const t of [
        `{"${secret}":1,"${secret}":2}`,
        `{"a":"${secret}",}`,
        `{"a":${secret}}`,
        `["${secret}`,
        `${'['.repeat(70)}"${secret}"`,
      ]) {
        const e = refused(t);
        expect(e.message).to.not.include('TESTPERSON');
        expect(String(e.stack)).to.not.include('TESTPERSON');
        expect(e.cause, 'no library error with input text attached').to.equal(undefined);
      }
    });

    it('refuses a non-string argument', () => {
      refused(undefined as unknown as string);
    });
  });

  describe('parseStrictJsonBytes', () => {
    it('parses UTF-8', () => {
      expect(parseStrictJsonBytes(new TextEncoder().encode('{"a":"Lạng Sơn"}'))).to.deep.equal({
        a: 'Lạng Sơn',
      });
    });
    it('refuses invalid UTF-8 and a BOM', () => {
      for (const bytes of [
        Uint8Array.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]),
        Uint8Array.from([0x5b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x5d]), // CESU-8 surrogate
        Uint8Array.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]),
      ]) {
        let caught: unknown;
        try {
          parseStrictJsonBytes(bytes);
        } catch (e) {
          caught = e;
        }
        expect((caught as CasebridgeError).code).to.equal('MALFORMED');
      }
    });
  });

  describe('sample envelopes', () => {
    for (const type of MESSAGE_TYPES) {
      it(`round-trips the ${type} fixture`, () => {
        sameAsJsonParse(JSON.stringify(sampleEnvelope(type), null, 2));
      });
    }
  });

  describe('differential against JSON.parse', () => {
    // Seeded so a failure reproduces; the seed is in the test title.
    const SEED = 0x5eed1234;

    function rng(seed: number): () => number {
      let a = seed >>> 0;
      return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      };
    }

    class Gen {
      constructor(private readonly r: () => number) {}
      int(n: number): number {
        return Math.floor(this.r() * n);
      }
      pick<T>(xs: readonly T[]): T {
        return xs[this.int(xs.length)] as T;
      }
      ws(): string {
        return this.r() < 0.7 ? '' : this.pick([' ', '\n', '\t', '\r\n  ', '  ']);
      }
      /** A string value (no lone surrogates), as its decoded form. */
      str(): string {
        const alphabet = [
          'a',
          'b',
          'Z',
          '0',
          ':',
          '"',
          '\\',
          '/',
          '[',
          '{',
          '}',
          ']',
          ',',
          ' ',
          '\n',
          '\u0001',
          'é',
          '中',
          '😀',
          '\u2028',
          'u',
        ];
        let s = '';
        const len = this.int(8);
        for (let i = 0; i < len; i++) s += this.pick(alphabet);
        return s;
      }
      /** Encodes a decoded string as a JSON literal, choosing among equivalent spellings. */
      lit(s: string): string {
        let out = '"';
        for (const ch of s) {
          const cp = ch.codePointAt(0) as number;
          const mode = this.int(4);
          if (ch === '"') out += '\\"';
          else if (ch === '\\') out += '\\\\';
          else if (cp < 0x20)
            out += mode === 0 && ch === '\n' ? '\\n' : `\\u${cp.toString(16).padStart(4, '0')}`;
          else if (mode === 0) {
            for (let i = 0; i < ch.length; i++) {
              const hex = ch.charCodeAt(i).toString(16).padStart(4, '0');
              out += `\\u${this.r() < 0.5 ? hex : hex.toUpperCase()}`;
            }
          } else if (ch === '/' && mode === 1) out += '\\/';
          else out += ch;
        }
        return out + '"';
      }
      num(): string {
        const sign = this.r() < 0.3 ? '-' : '';
        const int =
          this.r() < 0.2
            ? '0'
            : String(1 + this.int(9)) + String(this.int(1e6)).slice(0, this.int(25));
        const frac = this.r() < 0.3 ? '.' + String(this.int(1e9)) : '';
        const exp =
          this.r() < 0.2
            ? this.pick(['e', 'E']) + this.pick(['', '+', '-']) + String(this.int(400))
            : '';
        return sign + int + frac + exp;
      }
      /** A duplicate-free document; with `dupe`, one object somewhere gets a duplicate name. */
      value(depth: number, dupe: { pending: boolean }): string {
        const k = depth >= 6 ? this.int(4) : this.int(6);
        switch (k) {
          case 0:
            return this.pick(['true', 'false', 'null']);
          case 1:
            return this.num();
          case 2:
          case 3:
            return this.lit(this.str());
          case 4: {
            const n = this.int(5);
            const parts: string[] = [];
            for (let i = 0; i < n; i++)
              parts.push(this.ws() + this.value(depth + 1, dupe) + this.ws());
            return `[${parts.join(',')}${n === 0 ? this.ws() : ''}]`;
          }
          default: {
            const n = this.int(6);
            const names = new Set<string>();
            const parts: string[] = [];
            for (let i = 0; i < n; i++) {
              const name = this.str();
              if (names.has(name)) continue;
              names.add(name);
              parts.push(
                `${this.ws()}${this.lit(name)}${this.ws()}:${this.ws()}${this.value(depth + 1, dupe)}${this.ws()}`,
              );
            }
            if (dupe.pending && names.size > 0 && this.r() < 0.5) {
              dupe.pending = false;
              // Re-spelled (possibly escaped differently) copy of an existing name.
              const again = this.lit(this.pick([...names]));
              parts.splice(
                this.int(parts.length + 1),
                0,
                `${again}:${this.value(depth + 1, { pending: false })}`,
              );
            }
            return `{${parts.join(',')}${parts.length === 0 ? this.ws() : ''}}`;
          }
        }
      }
    }

    it(`agrees with JSON.parse on 3000 generated duplicate-free documents (seed ${SEED.toString(16)})`, () => {
      const g = new Gen(rng(SEED));
      let objects = 0;
      for (let i = 0; i < 3000; i++) {
        const text = g.ws() + g.value(0, { pending: false }) + g.ws();
        if (text.includes('{"')) objects++;
        expect(parseStrictJson(text), text).to.deep.equal(JSON.parse(text));
      }
      expect(objects).to.be.greaterThan(500);
    });

    it(`refuses every generated document with one duplicate name (seed ${(SEED + 1).toString(16)})`, () => {
      const g = new Gen(rng(SEED + 1));
      let tried = 0;
      for (let i = 0; i < 6000 && tried < 1500; i++) {
        const dupe = { pending: true };
        const text = g.value(0, dupe);
        if (dupe.pending) continue; // no object got a duplicate
        tried++;
        JSON.parse(text); // still valid JSON
        refused(text);
      }
      expect(tried).to.be.greaterThan(500);
    });
  });
});
