/**
 * RFC 6962 / RFC 9162 §2.1 Merkle tree hashing, proofs and verifiers.
 *
 * Storage model: the log stores every *perfect* subtree hash once it is complete.
 * node(level, index) covers leaves [index·2^level, (index+1)·2^level); level 0 holds
 * the leaf hashes. Any subtree hash a proof needs is either one stored node or, on
 * the right edge of a tree whose size is not a power of two, a fold of the perfect
 * subtrees in the binary decomposition of that edge. Proofs therefore cost O(log n)
 * node reads and hashes, with no recursion over leaves.
 *
 * Sizes and indexes are JavaScript numbers (exact up to 2^53); arithmetic avoids
 * 32-bit bitwise operators for that reason.
 */
import { createHash, hash as oneShotHash } from 'node:crypto';
import type { NodeCoord, NodeSource, TreeNode } from './types.js';
import { AuditError } from './errors.js';

/** RFC 6962 §2.1 / RFC 9162 §2.1.1: leaf hash = SHA-256(0x00 || entry). */
export const LEAF_PREFIX = 0x00;
/** RFC 6962 §2.1 / RFC 9162 §2.1.1: interior node hash = SHA-256(0x01 || left || right). */
export const NODE_PREFIX = 0x01;
/** SHA-256 output length: every hash in trees and proofs has it. */
export const HASH_SIZE = 32;
/** RFC 6962 §2.1 / RFC 9162 §2.1.1: MTH({}) = SHA-256(""). */
export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

const LEAF_PREFIX_BYTES = Buffer.from([LEAF_PREFIX]);
/** Scratch input for nodeHash; safe to share because hashing is synchronous. */
const nodeInput = Buffer.alloc(1 + 2 * HASH_SIZE);

export function leafHash(bytes: Uint8Array): Buffer {
  return oneShotHash('sha256', Buffer.concat([LEAF_PREFIX_BYTES, bytes]), 'buffer');
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  if (left.length !== HASH_SIZE || right.length !== HASH_SIZE) {
    return createHash('sha256')
      .update(Buffer.from([NODE_PREFIX]))
      .update(left)
      .update(right)
      .digest();
  }
  nodeInput[0] = NODE_PREFIX;
  nodeInput.set(left, 1);
  nodeInput.set(right, 1 + HASH_SIZE);
  return oneShotHash('sha256', nodeInput, 'buffer');
}

// ---------------------------------------------------------------------------
// Integer helpers, exact for 0 <= n < 2^53.

function isOdd(n: number): boolean {
  return n % 2 === 1;
}

function half(n: number): number {
  return Math.floor(n / 2);
}

/** Largest power of two strictly less than n (n >= 2): RFC 9162 §2.1.1's k. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** log2 of a power of two. */
function levelOf(pow2: number): number {
  let level = 0;
  for (let p = pow2; p > 1; p /= 2) level++;
  return level;
}

function isPowerOfTwo(n: number): boolean {
  return n >= 1 && splitPoint(n + 1) === n;
}

function checkSize(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new AuditError('range-invalid', `${what} must be a non-negative integer`);
}

function read(src: NodeSource, level: number, index: number): Buffer {
  let h: Buffer;
  try {
    h = src.node(level, index);
  } catch (cause) {
    throw new AuditError('node-missing', `node (${level}, ${index}) unavailable`, { cause });
  }
  if (h === undefined || h.length !== HASH_SIZE)
    throw new AuditError('node-missing', `node (${level}, ${index}) missing`);
  return h;
}

// ---------------------------------------------------------------------------
// Appending.

/**
 * The nodes to store when appending the leaf at `leafIndex`: the leaf itself
 * (level 0) and every perfect subtree it completes, bottom-up. Reads only the
 * left siblings already stored in `src`: O(log n).
 */
export function nodesCompletedBy(
  leafIndex: number,
  leafHashValue: Buffer,
  src: NodeSource,
): TreeNode[] {
  checkSize(leafIndex, 'leafIndex');
  if (leafHashValue.length !== HASH_SIZE)
    throw new AuditError('range-invalid', 'leaf hash must be 32 bytes');
  const out: TreeNode[] = [{ level: 0, index: leafIndex, hash: leafHashValue }];
  let level = 0;
  let index = leafIndex;
  let hash = leafHashValue;
  // A right child completes its parent.
  while (isOdd(index)) {
    hash = nodeHash(read(src, level, index - 1), hash);
    level++;
    index = (index - 1) / 2;
    out.push({ level, index, hash });
  }
  return out;
}

// ---------------------------------------------------------------------------
// Subtree hashes from stored nodes.

/**
 * MTH(D[start:end]) where start is a multiple of the largest power of two not above
 * end - start — true of every subtree RFC 9162 proofs name. The perfect subtrees of
 * the binary decomposition are folded right to left.
 */
function rangeHash(start: number, end: number, src: NodeSource): Buffer {
  const len = end - start;
  if (len <= 0) return EMPTY_ROOT;
  let acc: Buffer | undefined;
  let width = 1; // 2^level
  let level = 0;
  let rest = len;
  while (rest > 0) {
    if (isOdd(rest)) {
      // Chunk of `width` leaves ending where the previous (smaller) chunk begins.
      const chunkStart = start + (len - (len % (width * 2)));
      const h = read(src, level, chunkStart / width);
      acc = acc === undefined ? h : nodeHash(h, acc);
    }
    rest = half(rest);
    width *= 2;
    level++;
  }
  return acc as Buffer;
}

/** The perfect subtree [start, start + width), width a power of two, start aligned. */
function perfectHash(start: number, width: number, src: NodeSource): Buffer {
  return read(src, levelOf(width), start / width);
}

/** MTH(D[0:size]) (RFC 9162 §2.1.1): O(log n) node reads. */
export function rootHash(size: number, src: NodeSource): Buffer {
  checkSize(size, 'size');
  return rangeHash(0, size, src);
}

/**
 * PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, leaf-side first. Walking down from
 * the root, each step keeps one half and records the other half's hash; the only
 * non-perfect sibling is the right edge met on the first step to the left.
 */
export function inclusionProof(index: number, size: number, src: NodeSource): Buffer[] {
  checkSize(index, 'index');
  checkSize(size, 'size');
  if (index >= size) throw new AuditError('range-invalid', 'index must be below size');
  const siblings: Buffer[] = [];
  let start = 0;
  let n = size;
  let m = index;
  while (n > 1) {
    const k = splitPoint(n);
    if (m < k) {
      // PATH(m, D[0:k]) : MTH(D[k:n])
      siblings.push(rangeHash(start + k, start + n, src));
      n = k;
    } else {
      // PATH(m - k, D[k:n]) : MTH(D[0:k])
      siblings.push(perfectHash(start, k, src));
      start += k;
      m -= k;
      n -= k;
    }
  }
  return siblings.reverse();
}

/**
 * PROOF(from, D[0:to]) = SUBPROOF(from, D[0:to], true) of RFC 9162 §2.1.4.1, in
 * RFC order. Empty when from is 0 or equals to.
 */
export function consistencyProof(from: number, to: number, src: NodeSource): Buffer[] {
  checkSize(from, 'from');
  checkSize(to, 'to');
  if (from > to) throw new AuditError('range-invalid', 'from must not exceed to');
  if (from === 0 || from === to) return [];
  const siblings: Buffer[] = [];
  let start = 0;
  let m = from;
  let n = to;
  let wholeTreeKnown = true; // RFC 9162's b
  while (m !== n) {
    const k = splitPoint(n);
    if (m <= k) {
      // SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
      siblings.push(rangeHash(start + k, start + n, src));
      n = k;
    } else {
      // SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
      siblings.push(perfectHash(start, k, src));
      start += k;
      m -= k;
      n -= k;
      wholeTreeKnown = false;
    }
  }
  // m == n: SUBPROOF is {} when b, else [MTH(D[m])]; that subtree is perfect here
  // because the loop always ends on a step to the left (n became a power of two).
  const head = wholeTreeKnown ? [] : [perfectHash(start, n, src)];
  return head.concat(siblings.reverse());
}

// ---------------------------------------------------------------------------
// Verifiers, from the algorithm text of RFC 9162 §2.1.3.2 and §2.1.4.2. They share
// nothing with the generators above so that each checks the other.

function isHash(b: Uint8Array | undefined): b is Uint8Array {
  return b !== undefined && b.length === HASH_SIZE;
}

function sameHash(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** RFC 9162 §2.1.3.2: does `proof` show `leafHash` at `index` in the tree of `size` with `root`? */
export function verifyInclusion(
  leafHashValue: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0) return false;
  if (!isHash(leafHashValue) || !isHash(root) || !proof.every(isHash)) return false;
  // 1. leaf_index must be below tree_size.
  if (index >= size) return false;
  // 2. fn = leaf_index, sn = tree_size - 1.  3. r = hash.
  let fn = index;
  let sn = size - 1;
  let r: Uint8Array = leafHashValue;
  // 4. For each p in inclusion_path:
  for (const p of proof) {
    // a. sn == 0: fail.
    if (sn === 0) return false;
    // b. LSB(fn) set or fn == sn: r = HASH(0x01 || p || r), then shift while LSB(fn) unset and fn != 0.
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(p, r);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      //    otherwise r = HASH(0x01 || r || p).
      r = nodeHash(r, p);
    }
    // c. right-shift fn and sn once.
    fn = half(fn);
    sn = half(sn);
  }
  // 5. sn == 0 and r == root_hash.
  return sn === 0 && sameHash(r, root);
}

/** RFC 9162 §2.1.4.2: does `proof` show the tree (from, root1) is a prefix of (to, root2)? */
export function verifyConsistency(
  from: number,
  to: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): boolean {
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 0 || from > to)
    return false;
  if (!isHash(root1) || !isHash(root2) || !proof.every(isHash)) return false;
  // RFC 9162 defines the proof for 0 < first < second; the edge cases have empty proofs.
  if (from === to) return proof.length === 0 && sameHash(root1, root2);
  if (from === 0) return proof.length === 0 && sameHash(root1, EMPTY_ROOT);
  // 1. An empty consistency_path fails.
  if (proof.length === 0) return false;
  // 2. If first is an exact power of 2, prepend first_hash.
  const path: readonly Uint8Array[] = isPowerOfTwo(from) ? [root1, ...proof] : proof;
  // 3. fn = first - 1, sn = second - 1.
  let fn = from - 1;
  let sn = to - 1;
  // 4. If LSB(fn) is set, right-shift fn and sn until it is not.
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  // 5. fr = sr = the first value of the path.
  let fr = path[0] as Uint8Array;
  let sr = fr;
  // 6. For each subsequent value c:
  for (let i = 1; i < path.length; i++) {
    const c = path[i] as Uint8Array;
    // a. sn == 0: fail.
    if (sn === 0) return false;
    // b. LSB(fn) set or fn == sn: fold c on the left of both, then shift while LSB(fn) unset and fn != 0.
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      //    otherwise fold c on the right of sr only.
      sr = nodeHash(sr, c);
    }
    // c. right-shift fn and sn once.
    fn = half(fn);
    sn = half(sn);
  }
  // 7. fr == first_hash, sr == second_hash, sn == 0.
  return sn === 0 && sameHash(fr, root1) && sameHash(sr, root2);
}

// ---------------------------------------------------------------------------
// Nodes from a store that answers asynchronously.

/**
 * Runs `compute` (a proof, a root, the nodes an append completes) over nodes read
 * in one round trip. The algorithms above choose which nodes to read from sizes
 * and indexes alone, never from hash values, so a first pass over placeholders
 * names every coordinate, `load` fetches them at once, and a second pass computes
 * with the real hashes.
 */
export async function withNodes<T>(
  compute: (src: NodeSource) => T,
  load: (coords: readonly NodeCoord[]) => Promise<Buffer[]>,
): Promise<T> {
  const wanted = new Map<string, NodeCoord>();
  const placeholder = Buffer.alloc(HASH_SIZE);
  compute({
    node(level, index) {
      wanted.set(`${level}/${index}`, { level, index });
      return placeholder;
    },
  });
  const coords = [...wanted.values()];
  const hashes = coords.length === 0 ? [] : await load(coords);
  const found = new Map<string, Buffer>();
  coords.forEach((c, k) => {
    const h = hashes[k];
    if (h !== undefined) found.set(`${c.level}/${c.index}`, h);
  });
  return compute({
    node(level, index) {
      const h = found.get(`${level}/${index}`);
      if (h === undefined)
        throw new AuditError('node-missing', `node (${level}, ${index}) missing`);
      return h;
    },
  });
}

// ---------------------------------------------------------------------------
// In-memory tree and compact range.

/**
 * An in-memory NodeSource with append, for tests and the offline verifier. Each
 * level is one contiguous buffer of 32-byte hashes (about 64 bytes per leaf in all).
 */
export class MemoryTree implements NodeSource {
  private readonly levels: Buffer[] = [];
  private readonly counts: number[] = [];
  private leaves = 0;

  get size(): number {
    return this.leaves;
  }

  node(level: number, index: number): Buffer {
    const count = this.counts[level] ?? 0;
    if (!Number.isInteger(index) || index < 0 || index >= count) {
      throw new AuditError('node-missing', `node (${level}, ${index}) not stored`);
    }
    const buf = this.levels[level] as Buffer;
    return buf.subarray(index * HASH_SIZE, (index + 1) * HASH_SIZE);
  }

  /** Appends entry bytes; returns the new leaf's index. */
  append(entry: Uint8Array): number {
    return this.appendLeafHash(leafHash(entry));
  }

  /** Appends an already computed leaf hash; returns its index. */
  appendLeafHash(hash: Buffer): number {
    const index = this.leaves;
    for (const n of nodesCompletedBy(index, hash, this)) this.store(n);
    this.leaves++;
    return index;
  }

  root(size: number = this.leaves): Buffer {
    this.checkWithin(size);
    return rootHash(size, this);
  }

  inclusionProof(index: number, size: number = this.leaves): Buffer[] {
    this.checkWithin(size);
    return inclusionProof(index, size, this);
  }

  consistencyProof(from: number, to: number = this.leaves): Buffer[] {
    this.checkWithin(to);
    return consistencyProof(from, to, this);
  }

  private checkWithin(size: number): void {
    if (size > this.leaves) throw new AuditError('range-invalid', 'size exceeds the tree');
  }

  private store(n: TreeNode): void {
    const count = this.counts[n.level] ?? 0;
    if (n.index !== count) throw new AuditError('node-missing', 'nodes must be stored in order');
    let buf = this.levels[n.level];
    if (buf === undefined || buf.length < (count + 1) * HASH_SIZE) {
      const grown = Buffer.allocUnsafe(Math.max(64, count * 2) * HASH_SIZE);
      if (buf !== undefined) buf.copy(grown, 0, 0, count * HASH_SIZE);
      buf = grown;
      this.levels[n.level] = buf;
    }
    n.hash.copy(buf, count * HASH_SIZE);
    this.counts[n.level] = count + 1;
  }
}

/**
 * The compact range [0, size): the hashes of the perfect subtrees in the binary
 * decomposition of size, largest first. Appending is amortized O(1) hashes, the
 * root O(log n); memory is O(log n). Suited to streaming over a large log.
 */
export class CompactRange {
  /** Perfect subtree hashes, largest (leftmost) first. */
  private readonly hashes: Buffer[] = [];
  private leaves = 0;

  get size(): number {
    return this.leaves;
  }

  append(entry: Uint8Array): void {
    this.appendLeafHash(leafHash(entry));
  }

  appendLeafHash(hash: Buffer): void {
    if (hash.length !== HASH_SIZE)
      throw new AuditError('range-invalid', 'leaf hash must be 32 bytes');
    let h = hash;
    // Each trailing 1 bit of the old size is a perfect subtree that now merges.
    for (let n = this.leaves; isOdd(n); n = half(n)) {
      h = nodeHash(this.hashes.pop() as Buffer, h);
    }
    this.hashes.push(h);
    this.leaves++;
  }

  root(): Buffer {
    let acc: Buffer | undefined;
    for (let i = this.hashes.length - 1; i >= 0; i--) {
      const h = this.hashes[i] as Buffer;
      acc = acc === undefined ? h : nodeHash(h, acc);
    }
    return acc ?? EMPTY_ROOT;
  }
}
