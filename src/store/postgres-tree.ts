/**
 * The audit tree in PostgreSQL (see sqlite-tree.ts for the layout). Appends happen under the chain
 * lock: the first append of a transaction reads the frontier (O(log n) rows, one round trip), later
 * ones extend it in memory, and the node rows travel with the event rows at COMMIT.
 */
import type pg from 'pg';
import type { AuditEvent } from '../core/audit/event.js';
import { eventLeafHash, type StoredNote } from '../core/audit/log-tree.js';
import {
  decompose,
  EMPTY_ROOT,
  Frontier,
  type Hash,
  rangeHash,
  type TreeNode,
} from '../core/audit/merkle.js';
import { withCosignatures } from './sqlite-tree.js';

type Queryable = {
  query<R extends pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
};

/** Reads stored nodes, in the order asked; throws when one is missing (a damaged tree). */
export async function readNodes(db: Queryable, nodes: readonly TreeNode[]): Promise<Hash[]> {
  if (nodes.length === 0) return [];
  const result = await db.query<{ level: number; idx: string; hash: Buffer }>(
    'SELECT level, idx, hash FROM audit_tree WHERE (level, idx) IN (SELECT * FROM unnest($1::int[], $2::bigint[]))',
    [nodes.map((n) => n.level), nodes.map((n) => n.index)],
  );
  const found = new Map(result.rows.map((row) => [`${row.level}/${row.idx}`, row.hash]));
  return nodes.map((n) => {
    const hash = found.get(`${n.level}/${n.index}`);
    if (!hash) throw new Error(`audit tree node ${n.level}/${n.index} is missing`);
    return hash;
  });
}

/** The tree size: one past the highest leaf. */
export async function treeSize(db: Queryable): Promise<number> {
  const result = await db.query<{ size: string }>(
    'SELECT COALESCE(MAX(idx) + 1, 0) AS size FROM audit_tree WHERE level = 0',
  );
  return Number(result.rows[0]!.size);
}

/** Size and root of the committed tree. */
export async function treeHead(db: Queryable): Promise<{ size: number; root: Hash }> {
  const size = await treeSize(db);
  if (size === 0) return { size, root: EMPTY_ROOT };
  const nodes = decompose(0, size);
  const hashes = await readNodes(db, nodes);
  const byKey = new Map(nodes.map((n, i) => [`${n.level}/${n.index}`, hashes[i]!]));
  return { size, root: rangeHash({ start: 0, end: size }, (n) => byKey.get(`${n.level}/${n.index}`)!) };
}

/** The frontier of a tree of `size` (read once per appending transaction). */
export async function loadFrontier(db: Queryable, size: number): Promise<Frontier> {
  return Frontier.restore(size, await readNodes(db, decompose(0, size)));
}

/** The INSERT for the nodes integrating `event` creates (escaped literals: it goes in a multi-statement batch). */
export function integrateSql(frontier: Frontier, event: AuditEvent): string {
  if (frontier.size !== event.seq - 1)
    throw new Error(`event ${event.seq} is not the next leaf (${frontier.size})`);
  const rows = frontier
    .append(eventLeafHash(event))
    .map(
      ({ node, hash }) => `(${node.level}, ${node.index}, '\\x${Buffer.from(hash).toString('hex')}'::bytea)`,
    );
  return `INSERT INTO audit_tree (level, idx, hash) VALUES ${rows.join(', ')}`;
}

/** Every checkpoint note with its cosignature lines. */
export async function listNotes(db: Queryable): Promise<StoredNote[]> {
  const notes = await db.query<{ size: string; note: string }>(
    'SELECT size, note FROM audit_notes ORDER BY size',
  );
  const cosigs = await db.query<{ size: string; line: string }>(
    'SELECT size, line FROM audit_cosignatures ORDER BY size, witness',
  );
  return withCosignatures(
    notes.rows.map((r) => ({ size: Number(r.size), note: r.note })),
    cosigs.rows.map((r) => ({ size: Number(r.size), line: r.line })),
  );
}

/** Migration 3 (PostgreSQL): the tree, checkpoint notes and cosignatures, append-only by trigger. */
export const POSTGRES_TREE_MIGRATION = `
  CREATE TABLE audit_tree (level INT NOT NULL, idx BIGINT NOT NULL, hash BYTEA NOT NULL, PRIMARY KEY (level, idx));
  CREATE TABLE audit_notes (size BIGINT PRIMARY KEY, note TEXT NOT NULL);
  CREATE TABLE audit_cosignatures (size BIGINT NOT NULL, witness TEXT NOT NULL, line TEXT NOT NULL, PRIMARY KEY (size, witness));
  ${['audit_tree', 'audit_notes', 'audit_cosignatures']
    .map(
      (
        t,
      ) => `CREATE TRIGGER ${t}_append_only BEFORE UPDATE OR DELETE ON ${t} FOR EACH ROW EXECUTE FUNCTION imp_refuse_change();
  CREATE TRIGGER ${t}_no_truncate BEFORE TRUNCATE ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION imp_refuse_change();`,
    )
    .join('\n  ')}
`;
