/**
 * `imp witness serve`: a C2SP tlog-witness (c2sp.org/tlog-witness) for imp audit logs, meant to be
 * run by another team than the broker's. Its own Ed25519 key, its own state file; it knows the logs
 * it witnesses by their verifier keys, and cosigns (C2SP tlog-cosignature, Ed25519 v1) a checkpoint
 * only when it is consistent with the last one it cosigned for that log.
 *
 *   POST /add-checkpoint                 "add-checkpoint": 200 cosignature lines · 400 · 403 · 404 ·
 *                                        409 + latest size (text/x.tlog.size) · 422
 *   GET  /<sha256(origin) hex>/checkpoint "Monitor Retrieval": the latest cosigned checkpoint, or 404
 *
 * Check-and-update is atomic (one request at a time, "the witness MUST persist … atomically"), and
 * the state is on disk (temp + rename) before the cosignature is returned.
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { equal, verifyConsistency } from '../core/audit/merkle.js';
import {
  decodeBase64,
  type Ed25519NoteKey,
  ed25519Verifier,
  formatPrivateNoteKey,
  keyIdOf,
  NoteError,
  openNote,
  parsePrivateNoteKey,
  rawEd25519PublicKey,
  signatureLine,
} from '../core/audit/signed-note.js';
import { parseCheckpoint } from '../core/audit/tlog-checkpoint.js';
import { COSIGNATURE_TYPE, cosign, cosignerVerifierKey } from '../core/audit/tlog-cosignature.js';

/** What the witness remembers per log origin. */
interface LogState {
  size: number;
  root: string;
  /** The checkpoint as cosigned: the log's signatures and this witness's cosignature. */
  checkpoint: string;
}

/** Options for {@link startWitness}. */
export interface WitnessOptions {
  key: Ed25519NoteKey;
  /** Verifier keys of the logs this witness accepts (type 0x01 Ed25519 note keys; name = origin). */
  logs: string[];
  stateFile: string;
  now: () => number;
  port: number;
  host?: string;
  log?: (message: string, fields: Record<string, unknown>) => void;
}

/** A running witness. */
export interface Witness {
  url: string;
  /** The cosigner verifier key to give brokers and verifiers. */
  vkey: string;
  server: Server;
  close(): Promise<void>;
}

/** Loads the state file (empty when absent) and listens. */
export async function startWitness(options: WitnessOptions): Promise<Witness> {
  const verifiers = options.logs.map((vkey) => ed25519Verifier(vkey));
  const state = await readState(options.stateFile);
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(work: () => Promise<T>): Promise<T> => {
    const run = queue.then(work, work);
    queue = run.catch(() => {});
    return run;
  };

  const addCheckpoint = async (body: string): Promise<[number, string, string]> => {
    const split = body.indexOf('\n\n');
    if (split < 0)
      return [400, 'text/plain', 'the body is old size, proof lines, a blank line, a checkpoint\n'];
    const head = body.slice(0, split).split('\n');
    const note = body.slice(split + 2);
    const oldLine = /^old (0|[1-9][0-9]*)$/.exec(head[0] ?? '');
    if (!oldLine || head.length - 1 > 63)
      return [400, 'text/plain', 'bad old size line or too many proof lines\n'];
    const old = Number(oldLine[1]);
    const proof = head.slice(1).map(decodeBase64);
    if (proof.some((p) => p?.length !== 32))
      return [400, 'text/plain', 'a proof line is not a base64 hash\n'];
    let parsed: ReturnType<typeof parseCheckpoint>;
    let origin: string;
    try {
      origin = note.slice(0, note.indexOf('\n'));
      const known = verifiers.filter((v) => v.name === origin);
      if (known.length === 0) return [404, 'text/plain', 'unknown log origin\n'];
      parsed = parseCheckpoint(openNote(note, known).note.text);
    } catch (error) {
      const status = error instanceof NoteError && error.reason === 'malformed' ? 400 : 403;
      return [status, 'text/plain', `${(error as Error).message}\n`];
    }
    if (parsed.origin !== origin) return [400, 'text/plain', 'origin mismatch\n'];
    if (old > parsed.size) return [400, 'text/plain', 'old size is larger than the checkpoint\n'];
    return serial(async () => {
      const known = state[origin];
      const latest = known?.size ?? 0;
      if (old !== latest) return [409, 'text/x.tlog.size', `${latest}\n`];
      if (parsed.size === 0) return [422, 'text/plain', 'an empty tree is not cosigned\n'];
      if (old === 0 && proof.length > 0) return [422, 'text/plain', 'a proof from size 0 must be empty\n'];
      if (known) {
        const oldRoot = Buffer.from(known.root, 'base64');
        const ok =
          old === parsed.size
            ? equal(oldRoot, parsed.root) && proof.length === 0
            : verifyConsistency(old, parsed.size, oldRoot, parsed.root, proof as Buffer[]);
        if (!ok) {
          options.log?.('refused an inconsistent checkpoint', { origin, old, size: parsed.size });
          return [
            422,
            'text/plain',
            'the consistency proof does not verify: this is not an extension of what I cosigned\n',
          ];
        }
      }
      const time = Math.floor(options.now() / 1000);
      const line = signatureLine({
        name: options.key.name,
        keyId: keyIdOf(options.key.name, COSIGNATURE_TYPE, options.key.publicKey),
        signature: cosign(options.key, parseNoteText(note), time),
      });
      state[origin] = {
        size: parsed.size,
        root: Buffer.from(parsed.root).toString('base64'),
        checkpoint: note + line,
      };
      await writeState(options.stateFile, state);
      return [200, 'text/plain; charset=utf-8', line];
    });
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const send = (status: number, type: string, text: string) => {
      response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      response.end(text);
    };
    const path = (request.url ?? '/').split('?')[0]!;
    if (request.method === 'POST' && path === '/add-checkpoint') {
      const body = await readBody(request, 64 * 1024);
      if (body === null) return send(413, 'text/plain', 'too large\n');
      const [status, type, text] = await addCheckpoint(body);
      return send(status, type, text);
    }
    const match = /^\/([0-9a-f]{64})\/checkpoint$/.exec(path);
    if (request.method === 'GET' && match) {
      const entry = Object.entries(state).find(([origin]) => sha256Hex(origin) === match[1]);
      if (!entry) return send(404, 'text/plain', 'never cosigned a checkpoint of that log\n');
      return send(200, 'text/plain; charset=utf-8', entry[1].checkpoint);
    }
    if (request.method === 'GET' && path === '/healthz') return send(200, 'text/plain', 'ok\n');
    send(404, 'text/plain', 'not found\n');
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      options.log?.('request failed', { message: (error as Error).message });
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
      response.end('internal error\n');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    vkey: cosignerVerifierKey(options.key),
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Reads a witness key (Go note private key, type 0x04), creating it (0600) when the file does not exist. */
export async function loadOrCreateKey(file: string, name: string | undefined): Promise<Ed25519NoteKey> {
  try {
    const key = parsePrivateNoteKey(await readFile(file, 'utf8'));
    if (key.type !== COSIGNATURE_TYPE) throw new Error(`${file} is not a witness (cosigner) key.`);
    return key;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const { privateKey } = generateKeyPairSync('ed25519');
  const key = {
    name: name ?? `witness.imp.local/${randomBytes(4).toString('hex')}`,
    privateKey,
    publicKey: rawEd25519PublicKey(privateKey),
  };
  await writeFile(file, `${formatPrivateNoteKey(key, COSIGNATURE_TYPE)}\n`, { mode: 0o600, flag: 'wx' });
  return key;
}

/** The origin hash of "Monitor Retrieval": lowercase hex SHA-256 of the origin line. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function parseNoteText(note: string): string {
  return note.slice(0, note.lastIndexOf('\n\n') + 1);
}

async function readBody(request: IncomingMessage, limit: number): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > limit) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readState(file: string): Promise<Record<string, LogState>> {
  try {
    return (JSON.parse(await readFile(file, 'utf8')) as { logs: Record<string, LogState> }).logs;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw error;
  }
}

async function writeState(file: string, logs: Record<string, LogState>): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify({ logs }, null, 2)}\n`, { mode: 0o600 });
  await rename(temp, file);
}
