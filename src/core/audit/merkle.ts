/**
 * RFC 9162 §2.1 Merkle tree hashing, inclusion and consistency proofs (the RFC 6962 tree).
 *
 * Storage-agnostic: a tree is addressed by its complete subtrees, node (level, index) covering
 * leaves [index·2^level, (index+1)·2^level). Stores keep those nodes (appendLeaf says which appear),
 * proofs are computed as lists of leaf ranges (§2.1.3.1 PATH, §2.1.4.1 SUBPROOF), and a range's
 * hash is folded from the stored nodes that cover it, so nothing is ever recomputed from the leaves.
 */
import { createHash, hash as oneShot } from 'node:crypto';

/** A SHA-256 digest (32 bytes). */
export type Hash = Uint8Array;

/** A complete subtree: leaves [index·2^level, (index+1)·2^level). */
export interface TreeNode {
  level: number;
  index: number;
}

/** §2.1.1: the hash of an empty tree, SHA-256 of the empty string. */
export const EMPTY_ROOT: Hash = createHash('sha256').digest();

/** §2.1.1: MTH({d(0)}) = SHA-256(0x00 || d(0)). */
export function leafHash(data: Uint8Array): Hash {
  // The one-shot digest: a Hash object per leaf costs more than hashing the leaf (see event.ts).
  return oneShot('sha256', Buffer.concat([LEAF_PREFIX, data]), 'buffer');
}

/** §2.1.1: SHA-256(0x01 || left || right). */
export function nodeHash(left: Hash, right: Hash): Hash {
  return oneShot('sha256', Buffer.concat([NODE_PREFIX, left, right]), 'buffer');
}

const LEAF_PREFIX = Uint8Array.of(0);
const NODE_PREFIX = Uint8Array.of(1);

/** §2.1.1 MTH over leaf hashes, without storage (verifiers recomputing a whole log or export). */
export function rootFromLeafHashes(leaves: readonly Hash[]): Hash {
  const frontier = new Frontier();
  for (const leaf of leaves) frontier.append(leaf);
  return frontier.root();
}

/**
 * The right edge of a tree: one hash per complete subtree of its decomposition, largest first.
 * Appending is amortised O(1) hashing and reports the nodes that became complete, which is all a
 * store needs to write to keep proofs computable (incremental: no recompute per append).
 */
export class Frontier {
  private readonly hashes: Hash[] = [];
  private readonly levels: number[] = [];
  private count = 0;

  /** Rebuilds the frontier of a tree of `size` leaves from its decomposition's node hashes (largest first). */
  static restore(size: number, hashes: readonly Hash[]): Frontier {
    const frontier = new Frontier();
    const nodes = decompose(0, size);
    if (nodes.length !== hashes.length) throw new Error('frontier needs one hash per subtree');
    nodes.forEach((node, i) => {
      frontier.levels.push(node.level);
      frontier.hashes.push(hashes[i]!);
    });
    frontier.count = size;
    return frontier;
  }

  get size(): number {
    return this.count;
  }

  /** Adds a leaf; returns every node that became complete (the leaf first), with its hash. */
  append(leaf: Hash): { node: TreeNode; hash: Hash }[] {
    const index = this.count++;
    const created = [{ node: { level: 0, index }, hash: leaf }];
    let hash = leaf;
    let level = 0;
    while (this.levels.length > 0 && this.levels.at(-1) === level) {
      this.levels.pop();
      hash = nodeHash(this.hashes.pop()!, hash);
      level++;
      created.push({ node: { level, index: index >> level }, hash });
    }
    this.levels.push(level);
    this.hashes.push(hash);
    return created;
  }

  /** §2.1.1: the root, folding the right edge from the smallest subtree up. */
  root(): Hash {
    if (this.hashes.length === 0) return EMPTY_ROOT;
    let hash = this.hashes.at(-1)!;
    for (let i = this.hashes.length - 2; i >= 0; i--) hash = nodeHash(this.hashes[i]!, hash);
    return hash;
  }
}

/**
 * The stored nodes appending leaf `index` needs: its left siblings on the way up, one per trailing
 * 1-bit of the index (amortised one), smallest first.
 */
export function leftSiblings(index: number): TreeNode[] {
  const nodes: TreeNode[] = [];
  for (let level = 0; Math.floor(index / 2 ** level) % 2 === 1; level++)
    nodes.push({ level, index: Math.floor(index / 2 ** level) - 1 });
  return nodes;
}

/**
 * The nodes that become complete when leaf `index` (hash `leaf`) is appended, given the hashes of
 * leftSiblings(index) in order: what a store inserts so every later proof can be read, not recomputed.
 */
export function appendedNodes(
  index: number,
  leaf: Hash,
  siblings: readonly Hash[],
): { node: TreeNode; hash: Hash }[] {
  const created = [{ node: { level: 0, index }, hash: leaf }];
  let hash = leaf;
  siblings.forEach((sibling, level) => {
    hash = nodeHash(sibling, hash);
    created.push({ node: { level: level + 1, index: Math.floor(index / 2 ** (level + 1)) }, hash });
  });
  return created;
}

/** A half-open range of leaves [start, end) whose MTH is one element of a proof. */
export interface LeafRange {
  start: number;
  end: number;
}

/** Largest power of two smaller than n (n > 1): the split point k of §2.1.1. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * The complete subtrees covering [start, end), left to right. For the ranges proofs use, MTH of the
 * range is the right fold of these (each is the left child at its split point).
 */
export function decompose(start: number, end: number): TreeNode[] {
  const nodes: TreeNode[] = [];
  let at = start;
  while (at < end) {
    let size = 1;
    while (at % (size * 2) === 0 && at + size * 2 <= end) size *= 2;
    nodes.push({ level: Math.log2(size), index: at / size });
    at += size;
  }
  return nodes;
}

/** §2.1.1 MTH(D[start:end]) from stored complete-subtree hashes. */
export function rangeHash(range: LeafRange, node: (n: TreeNode) => Hash): Hash {
  const n = range.end - range.start;
  if (n === 0) return EMPTY_ROOT;
  if ((n & (n - 1)) === 0 && range.start % n === 0)
    return node({ level: Math.log2(n), index: range.start / n });
  const k = splitPoint(n);
  const left = rangeHash({ start: range.start, end: range.start + k }, node);
  return nodeHash(left, rangeHash({ start: range.start + k, end: range.end }, node));
}

/** Every stored node rangeHash will ask for, to fetch them in one query. */
export function nodesFor(ranges: readonly LeafRange[]): TreeNode[] {
  const seen = new Map<string, TreeNode>();
  const visit = (start: number, end: number): void => {
    const n = end - start;
    if (n === 0) return;
    if ((n & (n - 1)) === 0 && start % n === 0) {
      const node = { level: Math.log2(n), index: start / n };
      seen.set(`${node.level}/${node.index}`, node);
      return;
    }
    const k = splitPoint(n);
    visit(start, start + k);
    visit(start + k, end);
  };
  for (const range of ranges) visit(range.start, range.end);
  return [...seen.values()];
}

/** §2.1.3.1 PATH(m, D[n]): the ranges whose hashes prove leaf `index` in a tree of `size`, leaf side first. */
export function inclusionRanges(index: number, size: number): LeafRange[] {
  if (!(index >= 0 && index < size)) throw new RangeError(`leaf ${index} is not in a tree of ${size}`);
  const path = (m: number, start: number, end: number): LeafRange[] => {
    const n = end - start;
    if (n === 1) return [];
    const k = splitPoint(n);
    if (m < k) return [...path(m, start, start + k), { start: start + k, end }];
    return [...path(m - k, start + k, end), { start, end: start + k }];
  };
  return path(index, 0, size);
}

/** §2.1.4.1 PROOF(m, D[n]) = SUBPROOF(m, D[n], true): ranges proving size m is a prefix of size n. */
export function consistencyRanges(m: number, n: number): LeafRange[] {
  if (!(m >= 0 && m <= n)) throw new RangeError(`no consistency proof from ${m} to ${n}`);
  if (m === 0 || m === n) return [];
  const subproof = (m: number, start: number, end: number, b: boolean): LeafRange[] => {
    const n = end - start;
    if (m === n) return b ? [] : [{ start, end }];
    const k = splitPoint(n);
    if (m <= k) return [...subproof(m, start, start + k, b), { start: start + k, end }];
    return [...subproof(m - k, start + k, end, false), { start, end: start + k }];
  };
  return subproof(m, 0, n, true);
}

/** §2.1.3.2: true when `proof` shows the leaf hash at `index` is in the tree of `size` with `root`. */
export function verifyInclusion(
  index: number,
  size: number,
  leaf: Hash,
  proof: readonly Hash[],
  root: Hash,
): boolean {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size))
    return false;
  if (leaf.length !== 32 || root.length !== 32 || proof.some((p) => p.length !== 32)) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}

/** §2.1.4.2: true when `proof` shows the tree (size1, root1) is a prefix of (size2, root2). */
export function verifyConsistency(
  size1: number,
  size2: number,
  root1: Hash,
  root2: Hash,
  proof: readonly Hash[],
): boolean {
  if (!(Number.isSafeInteger(size1) && Number.isSafeInteger(size2) && size1 >= 0 && size1 <= size2))
    return false;
  // The empty tree is a prefix of every tree, but there is no proof to check: callers (the witness,
  // old size 0) handle it themselves, so a claimed proof from 0 is refused like transparency-dev does.
  if (size1 === 0) return false;
  if (size1 === size2) return proof.length === 0 && equal(root1, root2);
  if (root1.length !== 32 || root2.length !== 32 || proof.some((p) => p.length !== 32)) return false;
  if (proof.length === 0) return false;
  // Step 1: if size1 is an exact power of 2, prepend first_hash.
  const path = (size1 & (size1 - 1)) === 0 ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  // Step 4: right-shift both while LSB(fn) is set.
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return equal(fr, root1) && equal(sr, root2) && sn === 0;
}

/** Constant-structure byte comparison (the hashes are public; this only avoids Buffer-vs-Uint8Array pitfalls). */
export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
