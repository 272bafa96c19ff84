import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import fc from 'fast-check';
import { CanonicalizationError, canonicalBytes, canonicalize } from '../../src/envelope/jcs.js';
import { envelopeDigest } from '../../src/messages/replay.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';

/** Checked-in vectors live in the source tree, not in dist/. */
const VECTORS = fileURLToPath(new URL('../../../test/vectors/rfc8785/', import.meta.url));
const read = (name: string) => readFileSync(VECTORS + name);

describe('envelope/jcs: RFC 8785 canonicalization', function () {
  for (const name of ['arrays', 'french', 'structures', 'unicode', 'values', 'weird']) {
    it(`reproduces the ${name} vector byte for byte`, function () {
      const input: unknown = JSON.parse(read(`${name}.input.json`).toString('utf8'));
      expect(canonicalBytes(input).equals(read(`${name}.output.json`))).to.equal(true);
    });
  }

  it('serializes numbers as RFC 8785 Appendix B says', function () {
    const { vectors } = JSON.parse(read('numbers.json').toString('utf8')) as {
      vectors: [string, string | null][];
    };
    for (const [hex, expected] of vectors) {
      const n = Buffer.from(hex, 'hex').readDoubleBE(0);
      if (expected === null) expect(() => canonicalize(n), hex).to.throw(CanonicalizationError);
      else expect(canonicalize(n), hex).to.equal(expected);
    }
  });

  it('sorts names by UTF-16 code units, not code points', function () {
    // U+FB33 (one unit, 0xFB33) sorts after U+1F602 (surrogates 0xD83D 0xDE02).
    expect(canonicalize({ '\ufb33': 1, '\u{1f602}': 2 })).to.equal('{"\u{1f602}":2,"\ufb33":1}');
  });

  it('refuses values JSON cannot carry', function () {
    for (const bad of [NaN, Infinity, '\ud800', { k: undefined }, () => 1, 1n]) {
      expect(() => canonicalize(bad)).to.throw(CanonicalizationError);
    }
  });

  it('refuses a lone surrogate wherever it sits, and takes a paired one', function () {
    for (const bad of [
      'a\udc00',
      '\ud83d',
      'x\ud83dy',
      '\ude02\ud83d',
      ['ok', '\udfff'],
      { ['k\ud800']: 1 },
      { a: { b: '\udbff' } },
    ]) {
      expect(() => canonicalize(bad)).to.throw(CanonicalizationError, /lone surrogate/);
    }
    expect(canonicalize({ '\u{1f602}': '\ud83d\ude02' })).to.equal('{"\u{1f602}":"\u{1f602}"}');
  });

  it('orders members as a plain code-unit sort does, below and above the insertion-sort bound', function () {
    // Reference: the RFC's rule written the obvious way, Array.prototype.sort on every object.
    const reference = (v: unknown): string => {
      if (v === null || typeof v !== 'object') return JSON.stringify(v);
      if (Array.isArray(v)) return `[${v.map(reference).join(',')}]`;
      const o = v as Record<string, unknown>;
      const names = Object.keys(o).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${names.map((n) => `${JSON.stringify(n)}:${reference(o[n])}`).join(',')}}`;
    };
    const name = fc.oneof(
      fc.string({ maxLength: 4 }),
      fc.constantFrom('a', 'b', 'aa', '\u{1f602}', '\ufb33'),
    );
    const value = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        fc.string(),
        fc.integer(),
        fc.boolean(),
        fc.constant(null),
        fc.array(tie('node'), { maxLength: 4 }),
        fc.dictionary(name, tie('node'), { maxKeys: 40 }),
      ),
    })).node;
    fc.assert(
      fc.property(value, (v) => canonicalize(v) === reference(v)),
      { numRuns: 400 },
    );
    // Both sides of the bound, with names in reverse order.
    for (const n of [2, 24, 25, 60]) {
      const obj = Object.fromEntries(
        Array.from({ length: n }, (_, i) => [`k${String(n - i).padStart(3, '0')}`, i]),
      );
      expect(canonicalize(obj)).to.equal(reference(obj));
    }
  });

  it('gives an envelope one digest whatever its member order and whitespace', function () {
    const env = sampleEnvelope('funds.freeze');
    const reordered = JSON.parse(
      JSON.stringify(Object.fromEntries(Object.entries(env).reverse()), null, 2),
    ) as unknown;
    expect(envelopeDigest(reordered)).to.equal(envelopeDigest(env));
    expect(envelopeDigest({ ...env, caseRef: env.caseRef + 'x' })).not.to.equal(
      envelopeDigest(env),
    );
    expect(envelopeDigest(env)).to.match(/^sha256:[0-9a-f]{64}$/);
  });
});
