/**
 * Verifies an audit log (or a window of it) against checkpoints and witness cosignatures, and names
 * the range that is missing or differs. The trust anchors are the witness keys the verifier brings:
 * a checkpoint counts when a quorum of them cosigned it, and each witness's own latest checkpoint
 * counts for that witness. The broker's signature is checked but proves nothing against an operator
 * who holds the broker's key.
 *
 * Given the trusted heads (size, root), the log's tree is recomputed once: the largest trusted size
 * whose root matches (good) and the smallest that does not (bad) bracket the rewritten range
 * good+1..bad; a trusted size beyond the log's end names the deleted range end+1..size.
 */
import {
  decompose,
  EMPTY_ROOT,
  equal,
  Frontier,
  type Hash,
  nodeHash,
  rangeHash,
  type TreeNode,
} from './merkle.js';
import { type NoteVerifier, openNote } from './signed-note.js';
import { parseCheckpoint } from './tlog-checkpoint.js';

/** How the log fails. */
export type TreeProblemKind =
  | 'rewritten'
  | 'truncated'
  | 'unwitnessed'
  | 'bad_checkpoint'
  | 'origin_mismatch';

/** What is wrong, with the seq range it concerns (first..last, inclusive). */
export interface TreeProblem {
  kind: TreeProblemKind;
  first: number;
  last: number;
  message: string;
}

/** A checkpoint somebody vouches for. */
export interface TrustedHead {
  size: number;
  root: Hash;
  /** Who vouches: "witness <name>" or "checkpoint cosigned by …". */
  source: string;
}

/** The verdict. */
export interface TreeVerification {
  ok: boolean;
  /** True when witness keys were given and a quorum-cosigned checkpoint covers the end of the range. */
  witnessed: boolean;
  /** The size of the tree the window was checked against (the export's tree_size). */
  size: number;
  root: string | null;
  checkpoints: number;
  cosigned: number;
  problem: TreeProblem | null;
}

/** A verification that failed before any tree was checked (nothing verified, one problem named). */
export function treeFailure(kind: TreeProblemKind, message: string, first = 0, last = 0): TreeVerification {
  return {
    ok: false,
    witnessed: false,
    size: 0,
    root: null,
    checkpoints: 0,
    cosigned: 0,
    problem: { kind, first, last, message },
  };
}

/** A window of the log: leaves for seqs first..first+leaves.length-1, and the nodes around it. */
export interface TreeWindow {
  /** The seq of the first leaf (1 for a whole log). */
  first: number;
  leaves: readonly Hash[];
  /** Tree size the window is tied to (≥ first-1+leaves.length). */
  size: number;
  /** decompose(0, first-1) hashes, for a window that does not start at 1. */
  left: readonly Hash[];
  /** decompose(first-1+leaves.length, size) hashes, for a window that ends before size. */
  right: readonly Hash[];
  /**
   * Hashes of complete subtrees of 2^level leaves already computed from these leaves (by index at
   * that level, tree-wide), so roots need not rehash every leaf.
   */
  blocks?: { level: number; hashes: ReadonlyMap<number, Hash> };
}

/** Inputs of {@link verifyTree}. */
export interface TreeInputs {
  window: TreeWindow;
  origin: string;
  /** Checkpoint notes carried by the log or export (with any cosignature lines). */
  notes: readonly string[];
  /** The broker's note key, if known (its signature is then required on every note). */
  logKey: NoteVerifier | null;
  /** Witness cosigner keys from the verifier (never from the log). */
  witnessKeys: readonly NoteVerifier[];
  quorum: number;
  /** Latest checkpoints fetched from witnesses, with the name of the witness they came from. */
  witnessHeads: readonly { witness: NoteVerifier; note: string }[];
  /**
   * A window of the log was asked for: it may start after 1 and end before its tree. Otherwise the
   * window must be the whole tree — an export cut at either end fails even with a rewritten header.
   */
  partial?: boolean;
}

/** Checks the window against every trusted head; the first problem wins. */
export function verifyTree(input: TreeInputs): TreeVerification {
  const { window } = input;
  const end = window.first - 1 + window.leaves.length;
  const result: TreeVerification = {
    ok: false,
    witnessed: false,
    size: window.size,
    root: null,
    checkpoints: 0,
    cosigned: 0,
    problem: null,
  };
  const fail = (kind: TreeProblemKind, first: number, last: number, message: string) => {
    result.problem = { kind, first, last, message };
    return result;
  };
  if (!input.partial && window.first !== 1)
    return fail(
      'truncated',
      1,
      window.first - 1,
      `events 1–${window.first - 1} are missing: the export starts at ${window.first}`,
    );
  if (!input.partial && end !== window.size)
    return fail(
      'truncated',
      end + 1,
      window.size,
      `events ${end + 1}–${window.size} are missing: the export stops at ${end} but its tree has ${window.size}`,
    );
  const trusted: TrustedHead[] = [];
  for (const note of input.notes) {
    let opened: ReturnType<typeof openNote>;
    let body: ReturnType<typeof parseCheckpoint>;
    try {
      opened = openNote(note, [...(input.logKey ? [input.logKey] : []), ...input.witnessKeys]);
      body = parseCheckpoint(opened.note.text);
    } catch (error) {
      return fail('bad_checkpoint', 0, 0, `a checkpoint does not verify: ${(error as Error).message}`);
    }
    if (input.logKey && !opened.verified.includes(input.logKey))
      return fail(
        'bad_checkpoint',
        body.size,
        body.size,
        `checkpoint ${body.size} is not signed by the log key`,
      );
    if (body.origin !== input.origin)
      return fail(
        'origin_mismatch',
        body.size,
        body.size,
        `checkpoint ${body.size} is for ${body.origin}, not ${input.origin}`,
      );
    result.checkpoints++;
    const cosigners = opened.verified.filter((v) => input.witnessKeys.includes(v));
    if (input.witnessKeys.length > 0 && cosigners.length >= input.quorum) {
      result.cosigned++;
      trusted.push({
        size: body.size,
        root: body.root,
        source: `the checkpoint cosigned by ${cosigners.map((c) => c.name).join(', ')}`,
      });
    }
  }
  for (const { witness, note } of input.witnessHeads) {
    try {
      const body = parseCheckpoint(openNote(note, [witness]).note.text);
      if (body.origin !== input.origin)
        return fail(
          'origin_mismatch',
          0,
          0,
          `witness ${witness.name} answered for ${body.origin}, not ${input.origin}`,
        );
      trusted.push({ size: body.size, root: body.root, source: `witness ${witness.name}` });
    } catch (error) {
      return fail(
        'bad_checkpoint',
        0,
        0,
        `the checkpoint of witness ${witness.name} does not verify: ${(error as Error).message}`,
      );
    }
  }
  const roots = rootsAt(
    window,
    trusted.map((t) => t.size),
  );
  result.root = roots.has(window.size) ? Buffer.from(roots.get(window.size)!).toString('base64') : null;
  let good = 0;
  let bad: TrustedHead | null = null;
  let beyond: TrustedHead | null = null;
  for (const head of trusted) {
    const root = roots.get(head.size);
    if (head.size > (input.partial ? window.size : end)) {
      if (!beyond || head.size > beyond.size) beyond = head;
    } else if (root === undefined) {
      // Inside the window's tree but not computable from a partial window: nothing to compare.
    } else if (equal(root, head.root)) good = Math.max(good, head.size);
    else if (!bad || head.size < bad.size) bad = head;
  }
  if (bad) {
    const first = Math.max(good + 1, 1);
    return fail(
      'rewritten',
      first,
      bad.size,
      `events ${first}–${bad.size} differ from what ${bad.source} cosigned: the log was rewritten`,
    );
  }
  if (beyond) {
    const unvouched = good < end ? ` (and events ${good + 1}–${end} are vouched for by no witness)` : '';
    const message = `events ${end + 1}–${beyond.size} are missing: ${beyond.source} cosigned a log of ${beyond.size} events, this one ends at ${end}${unvouched}`;
    return fail('truncated', end + 1, beyond.size, message);
  }
  if (input.witnessKeys.length > 0) {
    const covered = trusted.some((t) => t.size === window.size && roots.get(t.size) !== undefined);
    if (!covered) {
      const last = Math.max(0, ...trusted.filter((t) => t.size <= window.size).map((t) => t.size));
      return fail(
        'unwitnessed',
        last + 1,
        window.size,
        `events ${last + 1}–${window.size} are not covered by a checkpoint a quorum of your witnesses cosigned`,
      );
    }
    result.witnessed = true;
  }
  result.ok = true;
  return result;
}

/** Roots of the window's tree at the asked sizes, where they can be computed. */
function rootsAt(window: TreeWindow, sizes: readonly number[]): Map<number, Hash> {
  const roots = new Map<number, Hash>();
  const end = window.first - 1 + window.leaves.length;
  if (window.first === 1 && window.blocks) {
    // A whole log with its subtrees hashed already: each root folds them (shared nodes once).
    const node = blockNodes(window, window.blocks);
    for (const size of sizes) if (size <= end) roots.set(size, rangeHash({ start: 0, end: size }, node));
  } else if (window.first === 1) {
    // A whole log: one pass with a frontier, a root whenever a wanted size comes by.
    const wanted = new Set(sizes.filter((s) => s <= end));
    const frontier = new Frontier();
    if (wanted.has(0)) roots.set(0, EMPTY_ROOT);
    for (const leaf of window.leaves) {
      frontier.append(leaf);
      if (wanted.has(frontier.size)) roots.set(frontier.size, frontier.root());
    }
  }
  if (!roots.has(window.size) && window.size >= end) {
    const root = windowRoot(window);
    if (root) roots.set(window.size, root);
  }
  return roots;
}

/** Node hashes of a whole-log window from its blocks, its leaves below them, memoised above them. */
function blockNodes(
  window: TreeWindow,
  blocks: { level: number; hashes: ReadonlyMap<number, Hash> },
): (n: TreeNode) => Hash {
  const memo = new Map<string, Hash>();
  const node = (n: TreeNode): Hash => {
    if (n.level === 0) return window.leaves[n.index]!;
    if (n.level === blocks.level) {
      const block = blocks.hashes.get(n.index);
      if (block) return block;
    }
    const key = `${n.level}/${n.index}`;
    const known = memo.get(key);
    if (known) return known;
    const hash = nodeHash(
      node({ level: n.level - 1, index: n.index * 2 }),
      node({ level: n.level - 1, index: n.index * 2 + 1 }),
    );
    if (n.level >= blocks.level) memo.set(key, hash);
    return hash;
  };
  return node;
}

/** MTH of the window's tree from its leaves and the nodes left and right of it; null if they do not fit. */
export function windowRoot(window: TreeWindow): Hash | null {
  const start = window.first - 1;
  const end = start + window.leaves.length;
  const given = new Map<string, Hash>();
  const put = (nodes: TreeNode[], hashes: readonly Hash[]) => {
    if (nodes.length !== hashes.length) return false;
    for (const [i, n] of nodes.entries()) given.set(`${n.level}/${n.index}`, hashes[i]!);
    return true;
  };
  if (!put(decompose(0, start), window.left) || !put(decompose(end, window.size), window.right)) return null;
  const node = (n: TreeNode): Hash => {
    const lo = n.index * 2 ** n.level;
    const hi = lo + 2 ** n.level;
    if (lo >= start && hi <= end) {
      if (n.level === 0) return window.leaves[lo - start]!;
      const block = n.level === window.blocks?.level ? window.blocks.hashes.get(n.index) : undefined;
      if (block) return block;
    } else {
      const hash = given.get(`${n.level}/${n.index}`);
      if (hash) return hash;
      if (n.level === 0) throw new Error('missing');
    }
    return nodeHash(
      node({ level: n.level - 1, index: n.index * 2 }),
      node({ level: n.level - 1, index: n.index * 2 + 1 }),
    );
  };
  try {
    return window.size === 0 ? EMPTY_ROOT : rangeHash({ start: 0, end: window.size }, node);
  } catch {
    return null;
  }
}
