/**
 * C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint): the note text naming a log's origin, tree size
 * and RFC 6962 root hash. imp writes no extension lines ("Note text" 4: not recommended).
 */
import { decodeBase64, NoteError } from './signed-note.js';

/** The three mandatory lines of a checkpoint. */
export interface CheckpointBody {
  origin: string;
  size: number;
  root: Uint8Array;
}

/** "Note text": origin, size (decimal, no leading zeros), base64 root, each ending in a newline. */
export function formatCheckpoint(body: CheckpointBody): string {
  if (!isOrigin(body.origin))
    throw new NoteError('malformed', 'malformed checkpoint: a checkpoint origin is one non-empty line');
  if (!Number.isSafeInteger(body.size) || body.size < 0)
    throw new NoteError('malformed', 'malformed checkpoint: a tree size is >= 0');
  if (body.root.length !== 32)
    throw new NoteError('malformed', 'malformed checkpoint: a root hash is 32 bytes');
  return `${body.origin}\n${body.size}\n${Buffer.from(body.root).toString('base64')}\n`;
}

/** Parses checkpoint note text (as returned by parseNote/openNote); throws NoteError('malformed'). */
export function parseCheckpoint(text: string): CheckpointBody & { extensions: string[] } {
  const lines = text.split('\n');
  // The text ends in a newline, so the last element is empty; every line before it must not be.
  if (lines.pop() !== '' || lines.length < 3 || lines.some((line) => line === ''))
    throw new NoteError('malformed', 'malformed checkpoint: a checkpoint is at least three non-empty lines');
  const [origin, size, root, ...extensions] = lines as [string, string, string, ...string[]];
  if (!/^(0|[1-9][0-9]*)$/.test(size) || !Number.isSafeInteger(Number(size)))
    throw new NoteError(
      'malformed',
      'malformed checkpoint: the tree size is not a decimal number without leading zeros',
    );
  const hash = decodeBase64(root);
  if (hash?.length !== 32)
    throw new NoteError('malformed', 'malformed checkpoint: the root hash is not 32 bytes of base64');
  return { origin, size: Number(size), root: hash!, extensions };
}

/** An origin is a non-empty line (the spec recommends a schema-less URL without spaces or '+'). */
export function isOrigin(origin: string): boolean {
  return origin.length > 0 && !/[\n\u0000-\u001f]/.test(origin);
}
