// Writes a version-2 audit export of N chained events to a file, as GET /v1/audit/export serves
// it: the header (`canonical: true`), every event line as its canonical JSON (canonicalEventLine),
// a JWS checkpoint and a C2SP checkpoint note (signed by the log key and cosigned by one witness)
// every 100,000 events and at the end. `legacy`: event lines as exports before `canonical` wrote
// them (exportLine, the store's field order), for comparing the two verify paths.
// Used by bench/audit.js to time `imp audit verify --file` on a million events.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { signCheckpoint } from '../dist/broker/checkpoints.js';
import { KeyRing } from '../dist/broker/keys.js';
import { GENESIS_PREV, sealEvent } from '../dist/core/audit/event.js';
import { canonicalEventLine, exportLine } from '../dist/core/audit/export-format.js';
import { eventLeafHash } from '../dist/core/audit/log-tree.js';
import { Frontier } from '../dist/core/audit/merkle.js';
import {
  ED25519_TYPE,
  ed25519Signer,
  formatVerifierKey,
  rawEd25519PublicKey,
  signNote,
} from '../dist/core/audit/signed-note.js';
import { formatCheckpoint } from '../dist/core/audit/tlog-checkpoint.js';
import { cosigner, cosignerVerifierKey } from '../dist/core/audit/tlog-cosignature.js';

const actor = {
  iss: 'https://idp.example.com',
  sub: 'user-alice',
  email: 'alice@example.com',
  roles: ['support'],
};

/** A proxied call's two events, as the broker writes them. */
export function draft(i, session) {
  const completed = i % 2 === 1;
  return {
    type: completed ? 'action.completed' : 'action.requested',
    actor,
    tenant: 'acme',
    environment: 'prod',
    session,
    ticket: 'SUP-4711',
    reason: 'Customer cannot see their November invoice',
    data: {
      scope: 'read',
      mode: 'standard',
      action_id: `act-${i >> 1}`,
      method: 'GET',
      path: '/v1/invoices?month=2026-11',
      kind: 'read',
      request_id: randomUUID(),
      ...(completed ? { status: 200, bytes: 2048, duration_ms: 4 } : {}),
    },
  };
}

function noteKey(name) {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { name, privateKey, publicKey: rawEd25519PublicKey(privateKey) };
}

/**
 * Writes the export to `file` and the JWKS to `jwksFile`; returns the witness vkey to trust and the
 * number of bytes of event lines.
 */
export async function writeExportFile(file, jwksFile, count, every = 100_000, legacy = false) {
  const keys = await KeyRing.load(null, Date.now());
  const origin = 'bench.example/audit';
  const log = noteKey(origin);
  const witness = noteKey('witness.bench.example');
  const logVkey = formatVerifierKey(origin, ED25519_TYPE, log.publicKey);
  const out = createWriteStream(file);
  const write = async (text) => {
    if (!out.write(text)) await once(out, 'drain');
  };
  const base = Date.UTC(2026, 10, 24, 12);
  await write(
    exportLine({
      export: {
        version: 2,
        broker: 'https://broker.bench.example',
        exported_at: new Date(base + count).toISOString(),
        from_seq: 1,
        prev: GENESIS_PREV,
        to_seq: count,
        origin,
        log_key: logVkey,
        tree_size: count,
        left: [],
        right: [],
        ...(legacy ? {} : { canonical: true }),
      },
    }),
  );
  const session = randomUUID();
  const frontier = new Frontier();
  const checkpoints = [];
  const notes = [];
  let prev = GENESIS_PREV;
  let eventBytes = 0;
  for (let i = 0; i < count; i++) {
    const ts = new Date(base + i).toISOString();
    const event = sealEvent(draft(i, session), { seq: i + 1, id: randomUUID(), ts, prev });
    prev = event.hash;
    frontier.append(eventLeafHash(event));
    const line = legacy ? exportLine(event) : canonicalEventLine(event);
    eventBytes += Buffer.byteLength(line);
    await write(line);
    if ((i + 1) % every === 0 || i + 1 === count) {
      checkpoints.push(await signCheckpoint({ keys }, event, ts));
      const text = formatCheckpoint({ origin, size: i + 1, root: frontier.root() });
      notes.push(await signNote(text, [ed25519Signer(log), cosigner(witness, () => base + i)]));
    }
  }
  for (const checkpoint of checkpoints) await write(exportLine({ checkpoint }));
  for (const note of notes) await write(exportLine({ note }));
  out.end();
  await once(out, 'close');
  await writeFile(jwksFile, JSON.stringify(keys.jwks(Date.now())));
  return { witnessKey: cosignerVerifierKey(witness), eventBytes };
}

// node bench/audit-export-file.js FILE JWKS [COUNT] [--legacy] writes a file by hand (for profiling).
if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, jwks, count] = process.argv.slice(2).filter((a) => a !== '--legacy');
  const legacyLines = process.argv.includes('--legacy');
  const result = await writeExportFile(file, jwks, Number(count ?? 1_000_000), 100_000, legacyLines);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
