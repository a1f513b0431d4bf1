import fc from 'fast-check';
import { CompactSign, compactVerify, generateKeyPair } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CHECKPOINT_JWS_TYPE,
  type Checkpoint,
  checkpointPayload,
  isCheckpointClaims,
} from '../../../src/core/audit/checkpoint.js';
import {
  type AuditDraft,
  type AuditEvent,
  GENESIS_PREV,
  hashEvent,
  sealEvent,
} from '../../../src/core/audit/event.js';
import {
  type ChainProblemKind,
  type CheckpointSignatureVerifier,
  verifyChain,
  verifyCheckedRun,
} from '../../../src/core/audit/verify-chain.js';
import { InvalidInputError } from '../../../src/core/errors.js';

type Key = CryptoKey;
let brokerKey: { privateKey: Key; publicKey: Key };
let otherKey: { privateKey: Key; publicKey: Key };

beforeAll(async () => {
  brokerKey = await generateKeyPair('ES256');
  otherKey = await generateKeyPair('ES256');
});

/** Signs a checkpoint of `event` the way the broker does. */
async function checkpoint(event: AuditEvent, key: Key = brokerKey.privateKey): Promise<Checkpoint> {
  const claims = { seq: event.seq, hash: event.hash, ts: '2026-12-01T00:00:00.000Z' };
  const jws = await new CompactSign(new TextEncoder().encode(checkpointPayload(claims)))
    .setProtectedHeader({ alg: 'ES256', kid: 'broker-1', typ: CHECKPOINT_JWS_TYPE })
    .sign(key);
  return { ...claims, jws };
}

/** What `imp audit verify` would inject: the broker's public key, ES256 only, checkpoint typ only. */
const verifier: CheckpointSignatureVerifier = async (cp) => {
  const { payload, protectedHeader } = await compactVerify(cp.jws, brokerKey.publicKey, {
    algorithms: ['ES256'],
  });
  if (protectedHeader.typ !== CHECKPOINT_JWS_TYPE) throw new Error('not a checkpoint signature');
  const claims: unknown = JSON.parse(new TextDecoder().decode(payload));
  if (!isCheckpointClaims(claims)) throw new Error('the signed payload is not a checkpoint');
  return claims;
};

const DRAFTS: AuditDraft[] = [
  {
    type: 'auth.login',
    actor: { iss: 'https://idp.example', sub: 'u-1', email: 'ana@example.com', roles: ['support'] },
  },
  {
    type: 'session.requested',
    tenant: 'acme',
    environment: 'prod',
    ticket: 'SUP-1',
    reason: 'customer asked',
  },
  { type: 'session.started', tenant: 'acme', session: 'ses_1', data: { ttl: 900, write: false } },
  {
    type: 'action.completed',
    tenant: 'acme',
    session: 'ses_1',
    data: { method: 'GET', path: '/orders', status: 200 },
  },
];

/** A valid chain of n events from `seq`, linked to `prev`. */
function chain(n: number, from = { seq: 1, prev: GENESIS_PREV }): AuditEvent[] {
  const events: AuditEvent[] = [];
  let prev = from.prev;
  for (let i = 0; i < n; i++) {
    const seq = from.seq + i;
    const ts = new Date(Date.UTC(2026, 10, 24, 20, 0, 0, seq)).toISOString();
    const event = sealEvent(DRAFTS[i % DRAFTS.length]!, { seq, id: `evt_${seq}`, ts, prev });
    events.push(event);
    prev = event.hash;
  }
  return events;
}

/** A forged row an attacker without the signing key can make: any content, a self-consistent hash. */
function forge(event: Omit<AuditEvent, 'hash'>): AuditEvent {
  return { ...event, hash: hashEvent(event) };
}

const N = 20;
let log: AuditEvent[];
let cps: Checkpoint[]; // at seq 10 and 15

beforeAll(async () => {
  log = chain(N);
  cps = [await checkpoint(log[9]!), await checkpoint(log[14]!)];
});

const at = (seq: number): AuditEvent => structuredClone(log[seq - 1]!);
const copy = (): AuditEvent[] => structuredClone(log);

async function problemOf(events: AuditEvent[], checkpoints = cps) {
  const result = await verifyChain(events, checkpoints, verifier);
  expect(result.ok).toBe(false);
  return result.problem!;
}

async function expectProblem(events: AuditEvent[], kind: ChainProblemKind, seq: number, checkpoints = cps) {
  const problem = await problemOf(events, checkpoints);
  expect({ kind: problem.kind, seq: problem.seq }).toEqual({ kind, seq });
  expect(problem.message).toContain(String(seq));
  return problem;
}

describe('verifyChain: an untouched log', () => {
  it('verifies, with the right counts', async () => {
    const result = await verifyChain(log, cps, verifier);
    expect(result).toEqual({
      ok: true,
      events: N,
      checkpoints: 2,
      lastSeq: N,
      lastHash: log[N - 1]!.hash,
      problem: null,
    });
  });

  it('verifies after a JSON round trip (an export file)', async () => {
    const exported = log.map((e) => JSON.stringify(e)).join('\n');
    const parsed = exported.split('\n').map((line) => JSON.parse(line) as AuditEvent);
    expect((await verifyChain(parsed, cps, verifier)).ok).toBe(true);
  });

  it('accepts an async iterable (a database cursor) with the same result', async () => {
    async function* cursor() {
      yield* log;
    }
    expect(await verifyChain(cursor(), cps, verifier)).toEqual(await verifyChain(log, cps, verifier));
  });

  it('verifies an empty log with no checkpoints', async () => {
    const result = await verifyChain([], [], verifier);
    expect(result).toEqual({
      ok: true,
      events: 0,
      checkpoints: 0,
      lastSeq: 0,
      lastHash: GENESIS_PREV,
      problem: null,
    });
  });

  it('accepts the same checkpoint twice', async () => {
    expect((await verifyChain(log, [...cps, cps[0]!], verifier)).checkpoints).toBe(3);
  });
});

describe('verifyChain: the tamper matrix', () => {
  it.each<[string, Partial<AuditEvent>]>([
    ['ticket', { ticket: 'SUP-999' }],
    ['data', { data: { ttl: 86_400, write: true } }],
    ['ts', { ts: '2026-11-24T19:00:00.007Z' }],
    ['actor', { actor: { iss: 'https://idp.example', sub: 'someone-else', email: null, roles: [] } }],
    ['reason', { reason: 'routine check' }],
    ['prev', { prev: 'a'.repeat(64) }],
    ['hash', { hash: 'b'.repeat(64) }],
  ])('editing the %s of event 7 → edited at 7', async (_field, change) => {
    const events = copy();
    Object.assign(events[6]!, change);
    await expectProblem(events, 'edited', 7);
  });

  it('editing the newest event (no checkpoint over it) → still edited: its own hash gives it away', async () => {
    const events = copy();
    events[N - 1]!.reason = 'nothing to see';
    await expectProblem(events, 'edited', N);
  });

  it('deleting a middle row → missing at its seq', async () => {
    const events = copy();
    events.splice(6, 1);
    const problem = await expectProblem(events, 'missing', 7);
    expect(problem.message).toBe('event 7 is missing: the log jumps from 6 to 8');
  });

  it('deleting several middle rows → missing at the first', async () => {
    const events = copy();
    events.splice(6, 3);
    await expectProblem(events, 'missing', 7);
  });

  it('deleting the newest rows past a checkpoint → truncated at the checkpoint that proves it', async () => {
    const events = copy().slice(0, 12);
    const problem = await expectProblem(events, 'truncated', 15);
    expect(problem.message).toBe(
      'the log ends at seq 12 but checkpoint 15 covers seq 15: events after 12 were deleted',
    );
  });

  it('deleting every row with checkpoints present → truncated', async () => {
    const problem = await expectProblem([], 'truncated', 15);
    expect(problem.message).toBe(
      'the log ends at seq 0 but checkpoint 15 covers seq 15: events after 0 were deleted',
    );
  });

  it('deleting the newest rows no checkpoint covers → still ok: only a later checkpoint can show it (why checkpoints exist)', async () => {
    const result = await verifyChain(copy().slice(0, 17), cps, verifier);
    expect(result).toMatchObject({ ok: true, events: 17, checkpoints: 2, lastSeq: 17, problem: null });
  });

  it('inserting a forged row at 8 and renumbering the rows after it → inserted at 8', async () => {
    const events = copy();
    const forged = forge({ ...at(8), id: 'evt_forged', reason: 'backdated', prev: events[6]!.hash });
    events.splice(7, 0, forged);
    for (let i = 8; i < events.length; i++) events[i]!.seq = i + 1;
    const problem = await expectProblem(events, 'inserted', 8);
    expect(problem.message).toBe('event 8 was inserted: the events after it were renumbered');
  });

  it('inserting a forged row and re-hashing everything after it → caught by the next checkpoint', async () => {
    const events = copy().slice(0, 7);
    let prev = events[6]!.hash;
    for (const original of [{ ...at(8), reason: 'backdated' }, ...log.slice(7)]) {
      const event = forge({ ...original, seq: events.length + 1, prev });
      events.push(event);
      prev = event.hash;
    }
    await expectProblem(events, 'checkpoint_mismatch', 10);
  });

  it('inserting a forged row without renumbering (a second seq 8) → duplicate at 8', async () => {
    const events = copy();
    events.splice(8, 0, forge({ ...at(8), reason: 'second thoughts', prev: events[7]!.hash }));
    await expectProblem(events, 'duplicate', 8);
  });

  it('appending a forged row that links to an earlier event → inserted at its seq', async () => {
    const events = copy();
    events.push(forge({ ...at(N), seq: N + 1, id: 'evt_extra', prev: events[N - 3]!.hash }));
    await expectProblem(events, 'inserted', N + 1);
  });

  it('replacing a middle row with a forged, self-consistent one → inserted at its seq', async () => {
    const events = copy();
    events[6] = forge({ ...at(7), ticket: 'SUP-999' });
    const problem = await expectProblem(events, 'inserted', 7);
    expect(problem.message).toBe('event 7 was inserted or replaced: event 8 does not link to it');
  });

  it('replacing the first row with a forged one that does not start at genesis → inserted at 1', async () => {
    const events = copy();
    events[0] = forge({ ...at(1), prev: 'c'.repeat(64) });
    await expectProblem(events, 'inserted', 1);
  });

  it('replacing the newest row (covered by no checkpoint) with a forged one → undetectable without a checkpoint', async () => {
    const events = copy();
    events[N - 1] = forge({ ...at(N), ticket: 'SUP-999' });
    expect((await verifyChain(events, cps, verifier)).ok).toBe(true);
    await expectProblem(events, 'checkpoint_mismatch', N, [...cps, await checkpoint(log[N - 1]!)]);
  });

  it('a row that does not link breaks the tie with its successor: the row a checkpoint vouches for is never blamed', async () => {
    // Event 11 is forged to link to event 5, and the attacker re-chains everything after it.
    const events = copy().slice(0, 10);
    let prev = events[4]!.hash;
    for (const original of log.slice(10)) {
      const event = forge({ ...original, prev });
      events.push(event);
      prev = event.hash;
    }
    await expectProblem(events, 'inserted', 11);
    // Without the checkpoint at 10, the successor links to 11, so 10 is the odd one out.
    await expectProblem(events, 'inserted', 10, []);
  });

  it('replacing a checkpointed row → checkpoint_mismatch at that seq', async () => {
    const events = copy();
    events[9] = forge({ ...at(10), ticket: 'SUP-999' });
    await expectProblem(events, 'checkpoint_mismatch', 10);
  });

  it('swapping two adjacent rows → reordered at the lower seq', async () => {
    const events = copy();
    [events[6], events[7]] = [events[7]!, events[6]!];
    const problem = await expectProblem(events, 'reordered', 7);
    expect(problem.message).toBe('event 7 is out of order: it appears after event 8');
  });

  it('swapping two distant rows → reordered at the lower seq', async () => {
    const events = copy();
    [events[4], events[11]] = [events[11]!, events[4]!];
    await expectProblem(events, 'reordered', 5);
  });

  it('moving a row to the end → reordered at its seq', async () => {
    const events = copy();
    events.push(...events.splice(2, 1));
    await expectProblem(events, 'reordered', 3);
  });

  it('swapping the content of two rows but keeping the seq numbers → edited at the first', async () => {
    const events = copy();
    const [a, b] = [events[6]!, events[7]!];
    events[6] = { ...b, seq: 7 };
    events[7] = { ...a, seq: 8 };
    await expectProblem(events, 'edited', 7);
  });

  it('swapping the content of two rows, keeping seq numbers and re-hashing each → inserted at the first', async () => {
    const events = copy();
    const [a, b] = [events[6]!, events[11]!];
    events[6] = forge({ ...b, seq: 7 });
    events[11] = forge({ ...a, seq: 12 });
    await expectProblem(events, 'inserted', 7);
  });

  it('a copy of a row appended right after it → duplicate', async () => {
    const events = copy();
    events.splice(5, 0, at(5));
    await expectProblem(events, 'duplicate', 5);
  });

  it('a value that is not an event → malformed at the expected seq', async () => {
    const events: unknown[] = copy();
    events[4] = { hello: 'world' };
    const problem = await expectProblem(events as AuditEvent[], 'malformed', 5);
    expect(problem.message).toMatch(/^event 5 is malformed: it has an unknown field "hello"/);
  });

  it('an event with an extra field → malformed at its seq', async () => {
    const events = copy();
    Object.assign(events[4]!, { note: 'added later' });
    await expectProblem(events, 'malformed', 5);
  });

  it('a hash that is not hex → malformed, not edited', async () => {
    const events = copy();
    events[4]!.hash = 'Z'.repeat(64);
    await expectProblem(events, 'malformed', 5);
  });
});

describe('verifyChain: checkpoints', () => {
  it('a checkpoint signed by another key → bad_signature at its seq', async () => {
    const forged = await checkpoint(log[11]!, otherKey.privateKey);
    const problem = await expectProblem(log, 'bad_signature', 12, [...cps, forged]);
    expect(problem.message).toMatch(/^checkpoint 12 has a bad signature: /);
  });

  it('a checkpoint whose clear fields differ from what was signed → bad_signature', async () => {
    const tampered = { ...cps[0]!, hash: log[10]!.hash };
    const problem = await expectProblem(log, 'bad_signature', 10, [tampered, cps[1]!]);
    expect(problem.message).toBe('checkpoint 10 differs from what was signed');
  });

  it('a validly signed checkpoint whose hash does not match the log → checkpoint_mismatch at its seq', async () => {
    const wrong = await checkpoint({ ...log[11]!, hash: 'd'.repeat(64) });
    const problem = await expectProblem(log, 'checkpoint_mismatch', 12, [...cps, wrong]);
    expect(problem.message).toBe(
      'event 12 differs from its signed checkpoint: the log was rewritten at or before it',
    );
  });

  it('a checkpoint missing its JWS → malformed', async () => {
    const { jws: _jws, ...bare } = cps[0]!;
    await expectProblem(log, 'malformed', 10, [bare as Checkpoint]);
  });

  it('a verifier that throws synchronously still yields bad_signature', async () => {
    const throwing = ((): Promise<never> => {
      throw new Error('no key');
    }) as CheckpointSignatureVerifier;
    const result = await verifyChain(log, cps, throwing);
    expect(result.problem).toEqual({
      kind: 'bad_signature',
      seq: 10,
      message: 'checkpoint 10 has a bad signature: no key',
    });
  });

  it('checks signatures before events: a forged checkpoint is reported even when an earlier event is edited', async () => {
    const events = copy();
    events[2]!.ticket = 'SUP-999';
    const forged = await checkpoint(log[14]!, otherKey.privateKey);
    await expectProblem(events, 'bad_signature', 15, [cps[0]!, forged]);
  });
});

describe('verifyChain: a range (fromSeq / fromPrev)', () => {
  it('verifies the tail of a log from a known hash, anchored by the checkpoint just before it', async () => {
    const result = await verifyChain(log.slice(10), cps, verifier, { fromSeq: 11, fromPrev: log[9]!.hash });
    expect(result).toEqual({
      ok: true,
      events: 10,
      checkpoints: 2,
      lastSeq: N,
      lastHash: log[N - 1]!.hash,
      problem: null,
    });
  });

  it('refuses a starting hash that contradicts the checkpoint just before the range', async () => {
    const result = await verifyChain(log.slice(10), cps, verifier, { fromSeq: 11, fromPrev: 'e'.repeat(64) });
    expect(result.problem).toMatchObject({ kind: 'checkpoint_mismatch', seq: 10 });
  });

  it('a first event that does not link to fromPrev → inserted at fromSeq', async () => {
    const result = await verifyChain(log.slice(11), [], verifier, { fromSeq: 12, fromPrev: 'e'.repeat(64) });
    expect(result.problem).toMatchObject({ kind: 'inserted', seq: 12 });
  });

  it('a range that starts late → missing at fromSeq', async () => {
    const result = await verifyChain(log.slice(12), [], verifier, { fromSeq: 12, fromPrev: log[10]!.hash });
    expect(result.problem).toMatchObject({ kind: 'missing', seq: 12 });
  });

  it('an event before the range → reordered', async () => {
    const result = await verifyChain(log.slice(10), [], verifier, { fromSeq: 12, fromPrev: log[10]!.hash });
    expect(result.problem).toMatchObject({ kind: 'reordered', seq: 11 });
  });

  it('rejects nonsense options as invalid input', async () => {
    await expect(verifyChain(log, [], verifier, { fromSeq: 0 })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(verifyChain(log, [], verifier, { fromPrev: 'xyz' })).rejects.toBeInstanceOf(
      InvalidInputError,
    );
  });
});

describe('verifyChain: reading', () => {
  it('stops pulling events at the first problem (one event of look-ahead at most)', async () => {
    const events = copy();
    events[2]!.ticket = 'SUP-999';
    let pulled = 0;
    function* counting() {
      for (const event of events) {
        pulled++;
        yield event;
      }
    }
    await verifyChain(counting(), [], verifier);
    expect(pulled).toBe(3);
  });

  it('reports the verified prefix with the problem', async () => {
    const events = copy();
    events[6] = forge({ ...at(7), ticket: 'SUP-999' });
    const result = await verifyChain(events, cps, verifier);
    expect(result).toMatchObject({ ok: false, events: 6, lastSeq: 6, lastHash: log[5]!.hash });
  });
});

describe('verifyChain: properties', () => {
  const FIELDS = [
    'seq',
    'id',
    'ts',
    'type',
    'actor',
    'tenant',
    'environment',
    'session',
    'ticket',
    'reason',
    'data',
    'prev',
    'hash',
  ] as const;
  const anyValue = fc.oneof(
    fc.string(),
    fc.integer(),
    fc.constant(null),
    fc.boolean(),
    fc.jsonValue(),
    fc.stringMatching(/^[0-9a-f]{64}$/),
    fc
      .date({ noInvalidDate: true, min: new Date('2000-01-01'), max: new Date('2099-01-01') })
      .map((d) => d.toISOString()),
    fc.record({
      iss: fc.constant(null),
      sub: fc.string(),
      email: fc.constant(null),
      roles: fc.array(fc.string()),
    }),
  );

  it('detects any single-field change of any event in a random chain, at that event', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }),
        fc.nat(),
        fc.constantFrom(...FIELDS),
        anyValue,
        async (length, pick, field, value) => {
          const events = chain(length);
          const target = events[pick % length]!;
          fc.pre(JSON.stringify(target[field]) !== JSON.stringify(value));
          (target as unknown as Record<string, unknown>)[field] = value;
          const result = await verifyChain(events, [], verifier);
          expect(result.ok).toBe(false);
          if (field !== 'seq') {
            expect(result.problem?.seq).toBe(target.seq);
            expect(['edited', 'malformed']).toContain(result.problem?.kind);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('deleting any middle row → missing at its seq', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 3, max: 15 }), fc.nat(), async (length, pick) => {
        const events = chain(length);
        const index = 1 + (pick % (length - 2));
        events.splice(index, 1);
        const result = await verifyChain(events, [], verifier);
        expect(result.problem).toMatchObject({ kind: 'missing', seq: index + 1 });
      }),
    );
  });

  it('swapping the positions of any two rows → reordered at the lower seq', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 15 }), fc.nat(), fc.nat(), async (length, p, q) => {
        const events = chain(length);
        const [i, j] = [p % length, q % length];
        fc.pre(i !== j);
        [events[i], events[j]] = [events[j]!, events[i]!];
        const result = await verifyChain(events, [], verifier);
        expect(result.problem).toMatchObject({ kind: 'reordered', seq: Math.min(i, j) + 1 });
      }),
    );
  });

  it('inserting a forged row anywhere before the end and renumbering → inserted at its seq', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 15 }),
        fc.nat(),
        fc.string(),
        async (length, pick, reason) => {
          const events = chain(length);
          const index = pick % length;
          const prev = index === 0 ? GENESIS_PREV : events[index - 1]!.hash;
          const forged = forge({ ...events[index]!, id: 'evt_forged', reason, prev });
          events.splice(index, 0, forged);
          for (let k = index + 1; k < events.length; k++) events[k]!.seq = k + 1;
          const result = await verifyChain(events, [], verifier);
          expect(result.problem).toMatchObject({ kind: 'inserted', seq: index + 1 });
        },
      ),
    );
  });

  it('a random chain verifies from any checkpointed split point', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 15 }), fc.nat(), async (length, pick) => {
        const events = chain(length);
        const split = pick % length;
        const fromPrev = split === 0 ? GENESIS_PREV : events[split - 1]!.hash;
        const result = await verifyChain(events.slice(split), [], verifier, { fromSeq: split + 1, fromPrev });
        expect(result).toMatchObject({ ok: true, events: length - split, lastSeq: length });
      }),
      { numRuns: 50 },
    );
  });
});

describe('verifyCheckedRun: a run the parallel scan vouched for', () => {
  const run = (events: AuditEvent[]) => ({
    first: events[0]!.seq,
    prev: events[0]!.prev,
    count: events.length,
    lastHash: events.at(-1)!.hash,
    hashAt: (seq: number) => events.find((e) => e.seq === seq)!.hash,
  });

  it('gives what verifyChain gives: counts, checkpoints met, and truncation past the end', async () => {
    expect(await verifyCheckedRun(run(log), cps, verifier)).toEqual(await verifyChain(log, cps, verifier));
    const short = log.slice(0, 12); // checkpoint 15 lies beyond the end
    const truncated = await verifyCheckedRun(run(short), cps, verifier);
    expect(truncated).toEqual(await verifyChain(short, cps, verifier));
    expect(truncated?.problem?.kind).toBe('truncated');
  });

  it('a window verifies from its header prev, anchored by the checkpoint just before it', async () => {
    const window = log.slice(10);
    const range = { fromSeq: 11, fromPrev: log[9]!.hash };
    expect(await verifyCheckedRun(run(window), cps, verifier, range)).toEqual(
      await verifyChain(window, cps, verifier, range),
    );
  });

  it('hands back to the sequential walk (null) where a checkpoint differs or the run starts elsewhere', async () => {
    const rewritten = chain(N, { seq: 1, prev: 'a'.repeat(64) });
    expect(await verifyCheckedRun(run(rewritten), cps, verifier, { fromPrev: 'a'.repeat(64) })).toBeNull();
    expect(await verifyCheckedRun(run(log.slice(1)), cps, verifier)).toBeNull();
    expect(await verifyCheckedRun(run(log), cps, verifier, { fromPrev: 'b'.repeat(64) })).toBeNull();
  });

  it('a bad checkpoint signature is reported before any event, as verifyChain does', async () => {
    const forged = [await checkpoint(log[9]!, otherKey.privateKey)];
    const result = await verifyCheckedRun(run(log), forged, verifier);
    expect(result).toEqual(await verifyChain(log, forged, verifier));
    expect(result?.problem?.kind).toBe('bad_signature');
  });
});
