import assert from 'node:assert/strict';
import { RandomPool } from '../../src/retention/random-pool.js';
import { newKey, open, seal } from '../../src/retention/seal.js';

/** The pool's buffer, to see what it still holds. */
function bufferOf(pool: RandomPool): Buffer {
  return (pool as unknown as { pool: Buffer }).pool;
}

describe('retention/random-pool', () => {
  it('never hands out the same bytes twice, across refills', () => {
    const pool = new RandomPool(256);
    const seen = new Set<string>();
    // 12- and 32-byte draws, as seals take them: many refills, and draws that do not fit the rest.
    for (let i = 0; i < 2000; i++) {
      const n = i % 3 === 0 ? 32 : 12;
      const b = Buffer.alloc(n);
      pool.fill(b, 0, n);
      const hex = b.toString('hex');
      assert.ok(!seen.has(hex), `draw ${i} repeats an earlier one`);
      assert.notEqual(hex, '00'.repeat(n));
      seen.add(hex);
    }
  });

  it('wipes what it handed out from its buffer', () => {
    const pool = new RandomPool(64);
    const a = Buffer.alloc(40);
    pool.fill(a, 0, 40);
    const buf = bufferOf(pool);
    assert.deepEqual(buf.subarray(0, 40), Buffer.alloc(40));
    // The rest is what a later draw gets, and only it.
    const rest = Buffer.from(buf.subarray(40));
    const b = Buffer.alloc(24);
    pool.fill(b, 0, 24);
    assert.deepEqual(b, rest);
    assert.deepEqual(buf, Buffer.alloc(64));
  });

  it('writes at the offset it is given and nowhere else', () => {
    const pool = new RandomPool(64);
    const into = Buffer.alloc(20, 0xee);
    pool.fill(into, 4, 12);
    assert.deepEqual(into.subarray(0, 4), Buffer.alloc(4, 0xee));
    assert.deepEqual(into.subarray(16), Buffer.alloc(4, 0xee));
    assert.notDeepEqual(into.subarray(4, 16), Buffer.alloc(12, 0xee));
  });

  it('draws larger than the pool straight from the system', () => {
    const pool = new RandomPool(16);
    const big = Buffer.alloc(100);
    pool.fill(big, 0, 100);
    assert.notDeepEqual(big, Buffer.alloc(100));
    assert.deepEqual(bufferOf(pool), Buffer.alloc(16));
  });

  it('gives seals distinct keys and IVs that still open', () => {
    const pool = new RandomPool(128);
    const ivs = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const key = newKey(pool.fill);
      const sealed = seal(key, Buffer.from(`message ${i}`), 'ctx', pool.fill);
      // version (1) || IV (12) || ciphertext || tag (16)
      assert.equal(sealed[0], 1);
      assert.equal(sealed.length, 1 + 12 + `message ${i}`.length + 16);
      ivs.add(sealed.subarray(1, 13).toString('hex'));
      assert.equal(open(key, sealed, 'ctx').toString(), `message ${i}`);
    }
    assert.equal(ivs.size, 50);
  });
});
