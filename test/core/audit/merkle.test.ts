import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  consistencyRanges,
  EMPTY_ROOT,
  Frontier,
  type Hash,
  inclusionRanges,
  leafHash,
  nodesFor,
  rangeHash,
  rootFromLeafHashes,
  type TreeNode,
  verifyConsistency,
  verifyInclusion,
} from '../../../src/core/audit/merkle.js';

interface InclusionVector {
  file: string;
  leafIdx: number;
  treeSize: number;
  root: string | null;
  leafHash: string | null;
  proof: (string | null)[] | null;
  wantErr: boolean;
}
interface ConsistencyVector {
  file: string;
  size1: number;
  size2: number;
  root1: string | null;
  root2: string | null;
  proof: (string | null)[] | null;
  wantErr: boolean;
}
const vectors = JSON.parse(
  readFileSync(new URL('../../fixtures/merkle-vectors.json', import.meta.url), 'utf8'),
) as {
  inclusion: InclusionVector[];
  consistency: ConsistencyVector[];
};
const b64 = (s: string | null): Hash => Buffer.from(s ?? '', 'base64');
const hex = (h: Hash) => Buffer.from(h).toString('hex');

// transparency-dev/merkle testonly: the RFC 6962 leaf inputs and the root for every size 0..8.
const LEAVES = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
];
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

/** A tree kept the way stores keep it: every complete node appendLeaf reported. */
function storedTree(leaves: Hash[]) {
  const nodes = new Map<string, Hash>();
  const frontier = new Frontier();
  for (const leaf of leaves)
    for (const { node, hash } of frontier.append(leaf)) nodes.set(`${node.level}/${node.index}`, hash);
  const get = (n: TreeNode) => {
    const hash = nodes.get(`${n.level}/${n.index}`);
    if (!hash) throw new Error(`node ${n.level}/${n.index} was never stored`);
    return hash;
  };
  return {
    frontier,
    get,
    root: (size: number) => rangeHash({ start: 0, end: size }, get),
    inclusion: (index: number, size: number) => inclusionRanges(index, size).map((r) => rangeHash(r, get)),
    consistency: (m: number, n: number) => consistencyRanges(m, n).map((r) => rangeHash(r, get)),
  };
}

describe('RFC 9162 tree hashing (transparency-dev vectors)', () => {
  test('roots for sizes 0..8 of the reference leaves', () => {
    const leaves = LEAVES.map((l) => leafHash(Buffer.from(l, 'hex')));
    expect(hex(EMPTY_ROOT)).toBe(ROOTS[0]);
    for (let size = 0; size <= 8; size++) {
      expect(hex(rootFromLeafHashes(leaves.slice(0, size)))).toBe(ROOTS[size]);
      if (size > 0) expect(hex(storedTree(leaves).root(size))).toBe(ROOTS[size]);
    }
  });

  test('every published inclusion vector verifies or fails as published', () => {
    expect(vectors.inclusion.length).toBeGreaterThan(90);
    for (const v of vectors.inclusion) {
      const ok =
        v.root !== null &&
        v.leafHash !== null &&
        verifyInclusion(v.leafIdx, v.treeSize, b64(v.leafHash), (v.proof ?? []).map(b64), b64(v.root));
      expect(ok, v.file).toBe(!v.wantErr);
    }
  });

  test('every published consistency vector verifies or fails as published', () => {
    expect(vectors.consistency.length).toBeGreaterThan(90);
    for (const v of vectors.consistency) {
      const ok =
        v.root1 !== null &&
        v.root2 !== null &&
        verifyConsistency(v.size1, v.size2, b64(v.root1), b64(v.root2), (v.proof ?? []).map(b64));
      expect(ok, v.file).toBe(!v.wantErr);
    }
  });

  test('the proofs we build equal the published happy-path proofs', () => {
    const leaves = LEAVES.map((l) => leafHash(Buffer.from(l, 'hex')));
    const tree = storedTree(leaves);
    for (const v of vectors.inclusion.filter((x) => !x.wantErr && x.treeSize <= 8 && x.treeSize > 0))
      expect(
        tree.inclusion(v.leafIdx, v.treeSize).map((h) => Buffer.from(h).toString('base64')),
        v.file,
      ).toEqual(v.proof ?? []);
    for (const v of vectors.consistency.filter((x) => !x.wantErr && x.size2 <= 8))
      expect(
        tree.consistency(v.size1, v.size2).map((h) => Buffer.from(h).toString('base64')),
        v.file,
      ).toEqual(v.proof ?? []);
  });
});

describe('property: any sequence of appends', () => {
  const leavesArb = fc
    .array(fc.uint8Array({ maxLength: 8 }), { minLength: 1, maxLength: 70 })
    .map((xs) => xs.map(leafHash));

  test('every inclusion proof verifies against the root; the same root as a recompute', () => {
    fc.assert(
      fc.property(leavesArb, (leaves) => {
        const tree = storedTree(leaves);
        const size = leaves.length;
        const root = tree.root(size);
        expect(hex(root)).toBe(hex(rootFromLeafHashes(leaves)));
        expect(hex(tree.frontier.root())).toBe(hex(root));
        for (let i = 0; i < size; i++)
          expect(verifyInclusion(i, size, leaves[i]!, tree.inclusion(i, size), root)).toBe(true);
      }),
    );
  });

  test('every consistency proof verifies between every pair of sizes', () => {
    fc.assert(
      fc.property(leavesArb, (leaves) => {
        const tree = storedTree(leaves);
        const n = leaves.length;
        for (let m = 1; m <= n; m++)
          expect(verifyConsistency(m, n, tree.root(m), tree.root(n), tree.consistency(m, n))).toBe(true);
      }),
    );
  });

  test('any single flipped bit in a leaf, proof or root makes inclusion fail', () => {
    const arb = leavesArb.chain((leaves) =>
      fc.record({
        leaves: fc.constant(leaves),
        index: fc.nat(leaves.length - 1),
        bit: fc.nat(),
        where: fc.constantFrom('leaf', 'proof', 'root'),
      }),
    );
    fc.assert(
      fc.property(arb, ({ leaves, index, bit, where }) => {
        const tree = storedTree(leaves);
        const size = leaves.length;
        let leaf = leaves[index]!;
        let root = tree.root(size);
        const proof = tree.inclusion(index, size).map((h) => Buffer.from(h));
        const flip = (h: Hash) => {
          const copy = Buffer.from(h);
          copy[(bit >> 3) % 32]! ^= 1 << (bit & 7);
          return copy;
        };
        if (where === 'leaf') leaf = flip(leaf);
        else if (where === 'root') root = flip(root);
        else if (proof.length > 0) proof[bit % proof.length] = flip(proof[bit % proof.length]!);
        else root = flip(root);
        expect(verifyInclusion(index, size, leaf, proof, root)).toBe(false);
      }),
    );
  });

  test('any single flipped bit in a consistency proof or either root makes it fail', () => {
    const arb = fc.array(fc.uint8Array({ maxLength: 4 }), { minLength: 2, maxLength: 70 }).chain((raw) =>
      fc.record({
        leaves: fc.constant(raw.map(leafHash)),
        m: fc.integer({ min: 1, max: raw.length - 1 }),
        bit: fc.nat(),
        where: fc.constantFrom('root1', 'root2', 'proof'),
      }),
    );
    fc.assert(
      fc.property(arb, ({ leaves, m, bit, where }) => {
        const tree = storedTree(leaves);
        const n = leaves.length;
        let [r1, r2] = [tree.root(m), tree.root(n)];
        const proof = tree.consistency(m, n).map((h) => Buffer.from(h));
        const flip = (h: Hash) => {
          const copy = Buffer.from(h);
          copy[(bit >> 3) % 32]! ^= 1 << (bit & 7);
          return copy;
        };
        if (where === 'root1') r1 = flip(r1);
        else if (where === 'root2') r2 = flip(r2);
        else proof[bit % proof.length] = flip(proof[bit % proof.length]!);
        expect(verifyConsistency(m, n, r1, r2, proof)).toBe(false);
      }),
    );
  });

  test('a restored frontier continues the same tree', () => {
    fc.assert(
      fc.property(leavesArb, fc.array(fc.uint8Array({ maxLength: 4 }), { maxLength: 20 }), (leaves, more) => {
        const tree = storedTree(leaves);
        const restored = Frontier.restore(
          leaves.length,
          nodesFor([{ start: 0, end: leaves.length }])
            .sort((a, b) => b.level - a.level)
            .map(tree.get),
        );
        const extra = more.map(leafHash);
        for (const leaf of extra) restored.append(leaf);
        expect(hex(restored.root())).toBe(hex(rootFromLeafHashes([...leaves, ...extra])));
      }),
    );
  });
});

describe('event leaves', () => {
  test('the fast leaf JSON is exactly RFC 8785 canonical JSON, for odd data and malformed events too', async () => {
    const { eventLeafJson } = await import('../../../src/core/audit/log-tree.js');
    const { canonicalJson } = await import('../../../src/core/audit/canonical-json.js');
    const base = {
      seq: 7,
      id: 'id-7',
      ts: '2026-11-24T12:00:00.000Z',
      type: 'auth.login',
      actor: { sub: 's', iss: 'https://idp', email: null, roles: ['a', 'b'] },
      tenant: 'acme',
      environment: null,
      session: null,
      ticket: 'SUP-1',
      reason: 'r\u2028\u00e9\ud83d\ude00',
      data: { z: 1, a: [1.5, 'x', { y: null, b: true }], '\u00e9': 1e21 },
      prev: '0'.repeat(64),
      hash: 'f'.repeat(64),
    };
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom('data', 'tenant', 'actor', 'none'), (value, where) => {
        const event = where === 'none' ? base : { ...base, [where]: where === 'data' ? { v: value } : value };
        expect(eventLeafJson(event as never)).toBe(canonicalJson(event));
      }),
    );
  });
});
