import { createHash, randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import {
  CompactRange,
  EMPTY_ROOT,
  MemoryTree,
  consistencyProof,
  inclusionProof,
  leafHash,
  nodeHash,
  nodesCompletedBy,
  rootHash,
  verifyConsistency,
  verifyInclusion,
} from '../../src/audit/merkle.js';
import { AuditError } from '../../src/audit/errors.js';
import type { NodeSource } from '../../src/audit/types.js';

// ---------------------------------------------------------------------------
// The RFC 9162 §2.1 recursive definitions, over leaf hashes: a slow, obvious oracle.

function largestPow2Below(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function mth(d: Buffer[]): Buffer {
  if (d.length === 0) return createHash('sha256').digest();
  if (d.length === 1) return d[0] as Buffer;
  const k = largestPow2Below(d.length);
  return nodeHash(mth(d.slice(0, k)), mth(d.slice(k)));
}

function path(m: number, d: Buffer[]): Buffer[] {
  if (d.length <= 1) return [];
  const k = largestPow2Below(d.length);
  return m < k
    ? [...path(m, d.slice(0, k)), mth(d.slice(k))]
    : [...path(m - k, d.slice(k)), mth(d.slice(0, k))];
}

function subproof(m: number, d: Buffer[], b: boolean): Buffer[] {
  if (m === d.length) return b ? [] : [mth(d)];
  const k = largestPow2Below(d.length);
  return m <= k
    ? [...subproof(m, d.slice(0, k), b), mth(d.slice(k))]
    : [...subproof(m - k, d.slice(k), false), mth(d.slice(0, k))];
}

function leafFor(i: number): Buffer {
  return Buffer.from(`entry ${i}`);
}

function buildTree(n: number): { tree: MemoryTree; leaves: Buffer[] } {
  const tree = new MemoryTree();
  const leaves: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    tree.append(leafFor(i));
    leaves.push(leafHash(leafFor(i)));
  }
  return { tree, leaves };
}

function flip(b: Buffer, bit = 3): Buffer {
  const c = Buffer.from(b);
  c[0] = (c[0] as number) ^ (1 << bit);
  return c;
}

/** A NodeSource that counts reads, to bound the work proofs do. */
class CountingSource implements NodeSource {
  reads = 0;
  constructor(private readonly inner: NodeSource) {}
  node(level: number, index: number): Buffer {
    this.reads++;
    return this.inner.node(level, index);
  }
}

describe('audit/merkle', function () {
  // Exhaustive over 300 sizes: seconds on a quiet machine, more on a loaded CI box.
  this.timeout(120_000);

  it('hashes leaves and nodes with the RFC 6962 domain prefixes', () => {
    const entry = Buffer.from('abc');
    assert.deepEqual(
      leafHash(entry),
      createHash('sha256')
        .update(Buffer.from([0]))
        .update(entry)
        .digest(),
    );
    const l = randomBytes(32);
    const r = randomBytes(32);
    assert.deepEqual(
      nodeHash(l, r),
      createHash('sha256')
        .update(Buffer.from([1]))
        .update(l)
        .update(r)
        .digest(),
    );
    assert.equal(
      EMPTY_ROOT.toString('hex'),
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });

  it('nodesCompletedBy stores the leaf and every perfect subtree it completes', () => {
    const tree = new MemoryTree();
    for (let i = 0; i < 7; i++) tree.append(leafFor(i));
    const nodes = nodesCompletedBy(7, leafHash(leafFor(7)), tree);
    assert.deepEqual(
      nodes.map((n) => [n.level, n.index]),
      [
        [0, 7],
        [1, 3],
        [2, 1],
        [3, 0],
      ],
    );
    const leaves = Array.from({ length: 8 }, (_, i) => leafHash(leafFor(i)));
    assert.deepEqual(nodes[3]?.hash, mth(leaves));
    assert.deepEqual(
      nodesCompletedBy(8, leafHash(leafFor(8)), tree).map((n) => [n.level, n.index]),
      [[0, 8]],
    );
  });

  it('matches the RFC recursive definitions for every index and size up to 64', () => {
    const { tree, leaves } = buildTree(64);
    for (let n = 0; n <= 64; n++) {
      const d = leaves.slice(0, n);
      assert.deepEqual(tree.root(n), mth(d), `root ${n}`);
      for (let m = 0; m < n; m++)
        assert.deepEqual(tree.inclusionProof(m, n), path(m, d), `path ${m}/${n}`);
      for (let m = 1; m < n; m++)
        assert.deepEqual(tree.consistencyProof(m, n), subproof(m, d, true), `proof ${m}/${n}`);
    }
  });

  it('compact range and stored-node roots agree for every size up to 300', () => {
    const { tree } = buildTree(300);
    const range = new CompactRange();
    assert.deepEqual(range.root(), EMPTY_ROOT);
    for (let i = 0; i < 300; i++) {
      range.append(leafFor(i));
      assert.deepEqual(range.root(), tree.root(i + 1), `size ${i + 1}`);
      assert.equal(range.size, i + 1);
    }
  });

  it('every inclusion proof of every tree up to 300 verifies, and tampering fails', () => {
    const { tree, leaves } = buildTree(300);
    for (let n = 1; n <= 300; n++) {
      const root = tree.root(n);
      for (let m = 0; m < n; m++) {
        const proof = tree.inclusionProof(m, n);
        const leaf = leaves[m] as Buffer;
        assert.equal(verifyInclusion(leaf, m, n, proof, root), true, `${m}/${n}`);
        if (proof.length > 0) {
          const i = (m * 7 + n) % proof.length;
          const tampered = proof.map((h, j) => (j === i ? flip(h) : h));
          assert.equal(verifyInclusion(leaf, m, n, tampered, root), false, `tampered ${m}/${n}`);
        }
        assert.equal(verifyInclusion(leaf, m, n, proof, flip(root)), false, `bad root ${m}/${n}`);
        // The remaining probes on a sample, to keep the suite quick.
        if ((m + n) % 11 !== 0) continue;
        assert.equal(verifyInclusion(flip(leaf), m, n, proof, root), false);
        if (proof.length > 0)
          assert.equal(verifyInclusion(leaf, m, n, proof.slice(0, -1), root), false);
        assert.equal(verifyInclusion(leaf, m, n, [...proof, root], root), false);
        if (n > 1) assert.equal(verifyInclusion(leaf, (m + 1) % n, n, proof, root), false);
      }
    }
  });

  it('every consistency proof between tree sizes up to 300 verifies, and tampering fails', () => {
    const { tree } = buildTree(300);
    const roots = Array.from({ length: 301 }, (_, n) => tree.root(n));
    for (let to = 0; to <= 300; to++) {
      for (let from = 0; from <= to; from++) {
        const proof = tree.consistencyProof(from, to);
        const r1 = roots[from] as Buffer;
        const r2 = roots[to] as Buffer;
        assert.equal(verifyConsistency(from, to, proof, r1, r2), true, `${from}->${to}`);
        // Size 0 is a prefix of anything; a tree is consistent with itself only.
        if (from === to) {
          if (to > 0) assert.equal(verifyConsistency(from, to, proof, r1, flip(r2)), false);
          continue;
        }
        if (from === 0) continue;
        const i = (from * 3 + to) % proof.length;
        const tampered = proof.map((h, j) => (j === i ? flip(h, 4) : h));
        assert.equal(
          verifyConsistency(from, to, tampered, r1, r2),
          false,
          `tampered ${from}->${to}`,
        );
        assert.equal(
          verifyConsistency(from, to, proof, r1, flip(r2)),
          false,
          `bad root2 ${from}->${to}`,
        );
        assert.equal(
          verifyConsistency(from, to, proof, flip(r1), r2),
          false,
          `bad root1 ${from}->${to}`,
        );
        if ((from + to) % 11 !== 0) continue;
        assert.equal(verifyConsistency(from, to, proof.slice(0, -1), r1, r2), false);
        assert.equal(verifyConsistency(from, to, [...proof, r2], r1, r2), false);
        assert.equal(verifyConsistency(from, to, [], r1, r2), false);
        assert.equal(verifyConsistency(from, to, proof, r2, r1), false);
      }
    }
  });

  it('proves random indexes and ranges of a 100,000-leaf tree with O(log n) node reads', () => {
    const n = 100_000;
    const tree = new MemoryTree();
    const leaves: Buffer[] = [];
    for (let i = 0; i < n; i++) leaves.push(leafHash(leafFor(i)));
    for (const l of leaves) tree.appendLeafHash(l);
    const root = tree.root();
    let seed = 42;
    const rand = (k: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % k;
    };
    for (let t = 0; t < 300; t++) {
      const size = 1 + rand(n);
      const index = rand(size);
      const src = new CountingSource(tree);
      const proof = inclusionProof(index, size, src);
      assert.ok(src.reads <= 2 * 17 + 2);
      const sizeRoot = rootHash(size, tree);
      assert.equal(verifyInclusion(leaves[index] as Buffer, index, size, proof, sizeRoot), true);
      assert.equal(verifyInclusion(leaves[index] as Buffer, index, size, proof, root), size === n);

      const from = 1 + rand(size);
      const csrc = new CountingSource(tree);
      const cproof = consistencyProof(from, size, csrc);
      assert.ok(csrc.reads <= 3 * 17 + 2);
      assert.equal(verifyConsistency(from, size, cproof, rootHash(from, tree), sizeRoot), true);
      if (from < size)
        assert.equal(
          verifyConsistency(from, size, cproof, rootHash(from, tree), flip(sizeRoot)),
          false,
        );
    }
  });

  it('refuses out-of-range requests with a typed error', () => {
    const { tree } = buildTree(5);
    const reason = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        return e instanceof AuditError ? e.reason : 'untyped';
      }
      return undefined;
    };
    assert.equal(
      reason(() => tree.inclusionProof(5, 5)),
      'range-invalid',
    );
    assert.equal(
      reason(() => tree.inclusionProof(0, 6)),
      'range-invalid',
    );
    assert.equal(
      reason(() => tree.consistencyProof(4, 3)),
      'range-invalid',
    );
    assert.equal(
      reason(() => tree.root(6)),
      'range-invalid',
    );
    assert.equal(
      reason(() => inclusionProof(-1, 3, tree)),
      'range-invalid',
    );
    assert.equal(
      reason(() => rootHash(9, tree)),
      'node-missing',
    );
  });

  it('verifiers reject malformed input instead of throwing', () => {
    const { tree, leaves } = buildTree(8);
    const root = tree.root();
    const proof = tree.inclusionProof(3, 8);
    assert.equal(verifyInclusion(leaves[3] as Buffer, 3, 8, proof, root), true);
    assert.equal(verifyInclusion(Buffer.alloc(0), 3, 8, proof, root), false);
    assert.equal(
      verifyInclusion(leaves[3] as Buffer, 3, 8, [...proof.slice(0, 2), Buffer.alloc(31)], root),
      false,
    );
    assert.equal(verifyInclusion(leaves[3] as Buffer, 3.5, 8, proof, root), false);
    assert.equal(verifyInclusion(leaves[3] as Buffer, 0, 0, [], EMPTY_ROOT), false);
    assert.equal(verifyConsistency(5, 3, [], root, root), false);
    assert.equal(verifyConsistency(0, 8, [], EMPTY_ROOT, root), true);
    assert.equal(verifyConsistency(0, 8, [], root, root), false);
  });
});
