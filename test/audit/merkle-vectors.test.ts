import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import {
  EMPTY_ROOT,
  MemoryTree,
  CompactRange,
  leafHash,
  verifyConsistency,
  verifyInclusion,
} from '../../src/audit/merkle.js';

interface Vectors {
  leaves: string[];
  roots: string[];
  inclusion: { index: number; size: number; path: string[] }[];
  consistency: { from: number; to: number; path: string[] }[];
}

// Read from the source tree: tests run from dist/test/audit.
const vectors = JSON.parse(
  readFileSync(new URL('../../../test/vectors/rfc6962-ct-8leaf.json', import.meta.url), 'utf8'),
) as Vectors;

const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const hexAll = (a: string[]): Buffer[] => a.map(hex);

function referenceTree(): MemoryTree {
  const t = new MemoryTree();
  for (const l of vectors.leaves) t.append(hex(l));
  return t;
}

function rootAt(size: number): Buffer {
  return hex(vectors.roots[size] as string);
}

describe('audit/merkle: RFC 6962 Certificate Transparency test vectors', () => {
  it('has the whole data set', () => {
    assert.equal(vectors.leaves.length, 8);
    assert.equal(vectors.roots.length, 9);
    assert.ok(vectors.inclusion.length > 3);
    assert.ok(vectors.consistency.length > 3);
  });

  it('the empty tree hashes to SHA-256("")', () => {
    assert.equal(EMPTY_ROOT.toString('hex'), vectors.roots[0]);
    assert.equal(new MemoryTree().root().toString('hex'), vectors.roots[0]);
  });

  it('reproduces the tree head for every size 0..8 (stored nodes and compact range)', () => {
    const tree = referenceTree();
    const range = new CompactRange();
    assert.equal(range.root().toString('hex'), vectors.roots[0]);
    for (let size = 0; size <= 8; size++) {
      assert.equal(tree.root(size).toString('hex'), vectors.roots[size], `size ${size}`);
    }
    vectors.leaves.forEach((l, i) => {
      range.append(hex(l));
      assert.equal(range.root().toString('hex'), vectors.roots[i + 1], `compact size ${i + 1}`);
    });
  });

  for (const v of vectors.inclusion) {
    it(`inclusion proof of leaf ${v.index} in tree ${v.size}: generated and verified`, () => {
      const tree = referenceTree();
      assert.deepEqual(
        tree.inclusionProof(v.index, v.size).map((h) => h.toString('hex')),
        v.path,
      );
      const leaf = leafHash(hex(vectors.leaves[v.index] as string));
      assert.equal(verifyInclusion(leaf, v.index, v.size, hexAll(v.path), rootAt(v.size)), true);
      // The same proof must not verify for a neighbouring index or another size.
      if (v.path.length > 0) {
        assert.equal(
          verifyInclusion(leaf, v.index ^ 1, v.size, hexAll(v.path), rootAt(v.size)),
          false,
        );
        assert.equal(
          verifyInclusion(leaf, v.index, v.size * 2, hexAll(v.path), rootAt(v.size)),
          false,
        );
      }
    });
  }

  for (const v of vectors.consistency) {
    it(`consistency proof ${v.from} -> ${v.to}: generated and verified`, () => {
      const tree = referenceTree();
      assert.deepEqual(
        tree.consistencyProof(v.from, v.to).map((h) => h.toString('hex')),
        v.path,
      );
      assert.equal(
        verifyConsistency(v.from, v.to, hexAll(v.path), rootAt(v.from), rootAt(v.to)),
        true,
      );
      if (v.path.length > 0) {
        assert.equal(
          verifyConsistency(v.from, v.to, hexAll(v.path), rootAt(v.to), rootAt(v.from)),
          false,
        );
        assert.equal(
          verifyConsistency(v.from, v.to, hexAll(v.path).slice(1), rootAt(v.from), rootAt(v.to)),
          false,
        );
      }
    });
  }
});
