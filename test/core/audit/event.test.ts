import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../src/core/audit/canonical-json.js';
import {
  AUDIT_EVENT_TYPES,
  type AuditEvent,
  auditEventProblem,
  GENESIS_PREV,
  hashEvent,
  hashWellFormedEvent,
  isAuditEvent,
  sealEvent,
} from '../../../src/core/audit/event.js';
import { ImpError } from '../../../src/core/errors.js';

// The canonicalize package, loaded as Node does (CommonJS), as an independent RFC 8785 implementation.
// Its typings declare an ES default export, which TypeScript's NodeNext resolution cannot call.
const canonicalize = createRequire(import.meta.url)('canonicalize') as (value: unknown) => string | undefined;

const ACTOR = { iss: 'https://idp.example', sub: 'u-1', email: 'ana@example.com', roles: ['support'] };
const AT = { seq: 1, id: 'evt_01', ts: '2026-11-24T20:11:40.123Z', prev: GENESIS_PREV };

/** The design's definition, computed with an independent canonicaliser: sha256(prev ‖ JCS(event − hash)). */
function referenceHash(event: Omit<AuditEvent, 'hash'> & { hash?: string }): string {
  const { hash: _ignored, ...body } = event;
  return createHash('sha256')
    .update(event.prev, 'utf8')
    .update(canonicalize(body) ?? '', 'utf8')
    .digest('hex');
}

function sample(): AuditEvent {
  return sealEvent(
    {
      type: 'session.started',
      actor: ACTOR,
      tenant: 'acme',
      environment: 'prod',
      session: 'ses_1',
      ticket: 'SUP-1',
      reason: 'customer asked',
      data: { ttl: 900, write: false },
    },
    AT,
  );
}

describe('GENESIS_PREV', () => {
  it('is 64 zeros', () => {
    expect(GENESIS_PREV).toBe('0000000000000000000000000000000000000000000000000000000000000000');
  });
});

describe('AUDIT_EVENT_TYPES', () => {
  it('lists each known type once and cannot be changed at run time', () => {
    expect(AUDIT_EVENT_TYPES).toContain('auth.machine_refused');
    expect(new Set(AUDIT_EVENT_TYPES).size).toBe(AUDIT_EVENT_TYPES.length);
    expect(AUDIT_EVENT_TYPES).toContain('breakglass.reviewed');
    expect(AUDIT_EVENT_TYPES).toContain('audit.checkpoint');
    expect(Object.isFrozen(AUDIT_EVENT_TYPES)).toBe(true);
  });
});

describe('sealEvent', () => {
  it('normalises absent fields to null and {} and assigns the position', () => {
    const event = sealEvent({ type: 'policy.loaded' }, AT);
    expect(event).toEqual({
      ...AT,
      type: 'policy.loaded',
      actor: null,
      tenant: null,
      environment: null,
      session: null,
      ticket: null,
      reason: null,
      data: {},
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(isAuditEvent(event)).toBe(true);
  });

  it('computes hash = sha256(prev ‖ canonical JSON of the event without hash)', () => {
    const event = sample();
    expect(event.hash).toBe(referenceHash(event));
    expect(hashEvent(event)).toBe(event.hash);
  });

  it('matches a fixed vector, so a change to the hashing is never silent', () => {
    const event = sealEvent({ type: 'auth.login', actor: ACTOR, data: { amr: ['pwd', 'otp'] } }, AT);
    expect(event.hash).toBe(referenceHash(event));
    expect(event.hash).toBe('b2d002c4d160c657475d3a7d647ea33cd3cc6b4d726c1e77b4df6c12af262520');
  });

  it('freezes the data as JSON: later changes to the draft do not reach the event, Dates become strings', () => {
    const data: Record<string, unknown> = {
      when: new Date(Date.UTC(2026, 0, 2)),
      skip: undefined,
      list: [1],
    };
    const actor = { ...ACTOR, roles: ['support'] };
    const event = sealEvent({ type: 'audit.export', actor, data }, AT);
    (data.list as number[]).push(2);
    actor.roles.push('admin');
    expect(event.data).toEqual({ when: '2026-01-02T00:00:00.000Z', list: [1] });
    expect(event.actor?.roles).toEqual(['support']);
    expect(hashEvent(event)).toBe(event.hash);
  });

  it('survives a JSON round trip: a stored and re-read event has the same hash', () => {
    const event = sample();
    const reread = JSON.parse(JSON.stringify(event)) as AuditEvent;
    expect(hashEvent(reread)).toBe(event.hash);
    expect(isAuditEvent(reread)).toBe(true);
  });

  it.each([
    ['data that JSON cannot carry', { type: 'x.y', data: { n: Number.NaN } }, AT],
    ['an empty type', { type: '' }, AT],
    ['a ts without milliseconds', { type: 'x.y' }, { ...AT, ts: '2026-11-24T20:11:40Z' }],
    ['a prev that is not a hash', { type: 'x.y' }, { ...AT, prev: 'abc' }],
    ['seq 0', { type: 'x.y' }, { ...AT, seq: 0 }],
  ])('refuses %s with IMP_INTERNAL', (_name, draft, at) => {
    expect(() => sealEvent(draft, at)).toThrow(ImpError);
    try {
      sealEvent(draft, at);
    } catch (error) {
      expect((error as ImpError).code).toBe('IMP_INTERNAL');
    }
  });
});

describe('hashEvent', () => {
  it('ignores a hash property and the order of keys', () => {
    const event = sample();
    const { hash, ...body } = event;
    const reversed = Object.fromEntries(Object.entries({ ...body, hash: 'f'.repeat(64) }).reverse());
    expect(hashEvent(body)).toBe(hash);
    expect(hashEvent(reversed as unknown as AuditEvent)).toBe(hash);
  });

  it('covers unknown fields too (the generic path), so adding a field changes the hash', () => {
    const event = sample();
    const extended = { ...event, extra: 1 };
    expect(hashEvent(extended)).toBe(referenceHash(extended));
    expect(hashEvent(extended)).not.toBe(event.hash);
  });

  it('treats an actor with extra or missing keys exactly like canonicalJson would', () => {
    const base = sample();
    for (const actor of [
      { ...ACTOR, name: 'Ana' },
      { sub: 'u-1', roles: [] },
      { ...ACTOR, email: undefined },
    ]) {
      const event = { ...base, actor } as unknown as AuditEvent;
      expect(hashEvent(event)).toBe(referenceHash(event));
    }
  });

  it('changes when any single field changes', () => {
    const event = sample();
    const changes: Partial<AuditEvent>[] = [
      { seq: 2 },
      { id: 'evt_02' },
      { ts: '2026-11-24T20:11:40.124Z' },
      { type: 'session.ended' },
      { actor: null },
      { actor: { ...ACTOR, roles: ['support', 'admin'] } },
      { tenant: null },
      { environment: 'staging' },
      { session: 'ses_2' },
      { ticket: 'SUP-2' },
      { reason: 'customer asked.' },
      { data: { ttl: 901, write: false } },
      { prev: '1'.repeat(64) },
    ];
    for (const change of changes) expect(hashEvent({ ...event, ...change })).not.toBe(event.hash);
  });

  it('agrees with the reference definition on arbitrary events, fast and generic paths alike', () => {
    fc.assert(
      fc.property(arbitraryEvent(), (event) => {
        const expected = referenceHash(event);
        expect(hashEvent(event)).toBe(expected);
        expect(hashWellFormedEvent(event)).toBe(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('agrees with the reference on events as read back from storage, whatever the characters', () => {
    // Stored data comes back in canonical key order, which sends hashing down its JSON.stringify path;
    // lone surrogates, controls, U+2028 and integer-like keys must hash as the reference says.
    const anyText = fc.string({ unit: 'binary', maxLength: 12 });
    fc.assert(
      fc.property(arbitraryEvent(anyText), (event) => {
        const stored = { ...event, data: JSON.parse(canonicalJson(event.data)) as Record<string, unknown> };
        expect(hashWellFormedEvent(stored)).toBe(referenceHash(stored));
        expect(hashEvent(stored)).toBe(referenceHash(stored));
      }),
      { numRuns: 500 },
    );
  });
});

describe('isAuditEvent / auditEventProblem', () => {
  it('accepts a sealed event and its JSON round trip', () => {
    expect(isAuditEvent(sample())).toBe(true);
    expect(isAuditEvent(JSON.parse(JSON.stringify(sample())))).toBe(true);
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['seq 0', { seq: 0 }, /seq/],
    ['a fractional seq', { seq: 1.5 }, /seq/],
    ['a string seq', { seq: '1' }, /seq/],
    ['an empty id', { id: '' }, /id/],
    ['a ts with an offset', { ts: '2026-11-24T20:11:40.123+01:00' }, /ts/],
    ['a ts without milliseconds', { ts: '2026-11-24T20:11:40Z' }, /ts/],
    ['a ts in month 13', { ts: '2026-13-24T20:11:40.123Z' }, /ts/],
    ['an empty type', { type: '' }, /type/],
    ['an actor without roles', { actor: { iss: null, sub: 'x', email: null } }, /actor/],
    ['an actor with an extra key', { actor: { ...ACTOR, name: 'Ana' } }, /actor/],
    ['a non-string role', { actor: { ...ACTOR, roles: [1] } }, /actor\.roles/],
    ['a numeric sub', { actor: { ...ACTOR, sub: 7 } }, /actor\.sub/],
    ['an array actor', { actor: [] }, /actor/],
    ['a numeric tenant', { tenant: 5 }, /tenant/],
    ['an undefined ticket', { ticket: undefined }, /ticket/],
    ['array data', { data: [] }, /data/],
    ['null data', { data: null }, /data/],
    ['an upper-case prev', { prev: 'A'.repeat(64) }, /prev/],
    ['a short hash', { hash: 'abc' }, /hash/],
    ['an unknown field', { extra: true }, /unknown field "extra"/],
  ])('rejects %s', (_name, change, message) => {
    const value = { ...sample(), ...change };
    expect(isAuditEvent(value)).toBe(false);
    expect(auditEventProblem(value)).toMatch(message);
  });

  it('names missing fields', () => {
    const { reason: _r, data: _d, ...rest } = sample();
    expect(auditEventProblem(rest)).toBe('it is missing data, reason');
  });

  it('rejects non-objects', () => {
    for (const value of [null, undefined, 1, 'x', []]) expect(isAuditEvent(value)).toBe(false);
  });

  it('accepts event types it does not know, so an older CLI can verify a newer log', () => {
    expect(isAuditEvent({ ...sample(), type: 'future.thing' })).toBe(true);
  });

  it('skips the hex check of prev and hash only when asked', () => {
    const value = { ...sample(), hash: 'not hex' };
    expect(auditEventProblem(value, { hexHashes: false })).toBeNull();
    expect(auditEventProblem(value)).toMatch(/hash/);
  });
});

const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);

/** Any well-formed event; its hash is arbitrary (this is about hashing, not chaining). */
function arbitraryEvent(text: fc.Arbitrary<string> = fc.string()): fc.Arbitrary<AuditEvent> {
  const nullableString = fc.option(text, { nil: null });
  return fc.record({
    seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    id: text.filter((id) => id.length > 0),
    ts: fc
      .date({
        min: new Date('2000-01-01T00:00:00Z'),
        max: new Date('2099-12-31T23:59:59Z'),
        noInvalidDate: true,
      })
      .map((d) => d.toISOString()),
    type: text.filter((type) => type.length > 0),
    actor: fc.option(
      fc.record({
        iss: nullableString,
        sub: text,
        email: nullableString,
        roles: fc.array(text),
      }),
      { nil: null },
    ),
    tenant: nullableString,
    environment: nullableString,
    session: nullableString,
    ticket: nullableString,
    reason: nullableString,
    data: fc.dictionary(text, fc.jsonValue()),
    prev: hex64,
    hash: hex64,
  });
}
