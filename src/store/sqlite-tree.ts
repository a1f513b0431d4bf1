/**
 * The audit tree in SQLite: every complete subtree's hash in `audit_tree`, inserted as events are
 * integrated (amortised two rows and one point lookup per event), so roots and proofs are read from
 * O(log n) rows, never recomputed. Checkpoint notes and their witness cosignatures sit beside it.
 * Runs on the store's connection inside its transactions (better-sqlite3 is synchronous).
 */
import type Database from 'better-sqlite3';
import type { AuditEvent } from '../core/audit/event.js';
import { eventLeafHash, type StoredNote } from '../core/audit/log-tree.js';
import {
  appendedNodes,
  decompose,
  EMPTY_ROOT,
  type Hash,
  leftSiblings,
  rangeHash,
  type TreeNode,
} from '../core/audit/merkle.js';

/** Tree reads and writes on one SQLite connection. */
export class SqliteTree {
  private readonly getNode: Database.Statement;
  private readonly putNode: Database.Statement;
  private readonly sizeStatement: Database.Statement;

  constructor(private readonly db: Database.Database) {
    this.getNode = db.prepare('SELECT hash FROM audit_tree WHERE level = ? AND idx = ?');
    this.putNode = db.prepare('INSERT INTO audit_tree (level, idx, hash) VALUES (?, ?, ?)');
    this.sizeStatement = db.prepare(
      'SELECT COALESCE(MAX(idx) + 1, 0) AS size FROM audit_tree WHERE level = 0',
    );
  }

  /** Integrates an event as leaf seq−1 (inside the caller's transaction). */
  integrate(event: AuditEvent): void {
    const index = event.seq - 1;
    const siblings = leftSiblings(index).map((node) => this.node(node));
    for (const { node, hash } of appendedNodes(index, eventLeafHash(event), siblings))
      this.putNode.run(node.level, node.index, hash);
  }

  /** Integrates every event not yet in the tree (an existing log on first open: migration). */
  catchUp(events: Iterable<AuditEvent>): number {
    let count = 0;
    this.db.transaction(() => {
      for (const event of events) {
        this.integrate(event);
        count++;
      }
    })();
    return count;
  }

  size(): number {
    return (this.sizeStatement.get() as { size: number }).size;
  }

  head(): { size: number; root: Hash } {
    const size = this.size();
    return { size, root: size === 0 ? EMPTY_ROOT : rangeHash({ start: 0, end: size }, (n) => this.node(n)) };
  }

  node(node: TreeNode): Hash {
    const row = this.getNode.get(node.level, node.index) as { hash: Buffer } | undefined;
    if (!row) throw new Error(`audit tree node ${node.level}/${node.index} is missing`);
    return row.hash;
  }

  nodes(nodes: readonly TreeNode[]): Hash[] {
    return nodes.map((node) => this.node(node));
  }

  /** The frontier nodes of a tree of `size` (for partial exports). */
  frontier(size: number): Hash[] {
    return this.nodes(decompose(0, size));
  }

  insertNote(size: number, note: string): void {
    this.db.prepare('INSERT OR IGNORE INTO audit_notes (size, note) VALUES (?, ?)').run(size, note);
  }

  addCosignatures(size: number, lines: readonly { witness: string; line: string }[]): void {
    const insert = this.db.prepare(
      'INSERT OR IGNORE INTO audit_cosignatures (size, witness, line) VALUES (?, ?, ?)',
    );
    for (const { witness, line } of lines) insert.run(size, witness, line);
  }

  listNotes(): StoredNote[] {
    const notes = this.db.prepare('SELECT size, note FROM audit_notes ORDER BY size').all() as StoredNote[];
    const cosigs = this.db
      .prepare('SELECT size, line FROM audit_cosignatures ORDER BY size, witness')
      .all() as {
      size: number;
      line: string;
    }[];
    return withCosignatures(notes, cosigs);
  }
}

/** Appends each note's cosignature lines (each line ends in a newline). */
export function withCosignatures(
  notes: StoredNote[],
  cosigs: readonly { size: number; line: string }[],
): StoredNote[] {
  const bySize = new Map<number, string>();
  for (const { size, line } of cosigs) bySize.set(size, (bySize.get(size) ?? '') + line);
  return notes.map((n) => ({ size: Number(n.size), note: n.note + (bySize.get(Number(n.size)) ?? '') }));
}

/** Migration 4 (SQLite): the tree, checkpoint notes and cosignatures, append-only like the events. */
export const SQLITE_TREE_MIGRATION = `
  CREATE TABLE audit_tree (level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID;
  CREATE TABLE audit_notes (size INTEGER PRIMARY KEY, note TEXT NOT NULL);
  CREATE TABLE audit_cosignatures (size INTEGER NOT NULL, witness TEXT NOT NULL, line TEXT NOT NULL, PRIMARY KEY (size, witness));
  ${['audit_tree', 'audit_notes', 'audit_cosignatures']
    .map(
      (
        t,
      ) => `CREATE TRIGGER ${t}_no_update BEFORE UPDATE ON ${t} BEGIN SELECT RAISE(ABORT, '${t} is append-only'); END;
  CREATE TRIGGER ${t}_no_delete BEFORE DELETE ON ${t} BEGIN SELECT RAISE(ABORT, '${t} is append-only'); END;`,
    )
    .join('\n  ')}
`;
