/** fast-check arbitraries for audit events, shared by the property tests of the export's fast paths. */
import fc from 'fast-check';

/** Short strings of any UTF-16 code units (controls, lone surrogates and all). */
export const anyText = fc.string({ unit: 'binary', maxLength: 12 });

/** An audit draft whose `data` comes from `data`; every other field optional as the broker writes them. */
export function auditDrafts(data: fc.Arbitrary<Record<string, unknown>>) {
  return fc.record({
    type: fc.constantFrom('action.requested', 'auth.login', 'recording.chunk'),
    actor: fc.option(
      fc.record({
        iss: fc.option(anyText, { nil: null }),
        sub: anyText,
        email: fc.option(anyText, { nil: null }),
        roles: fc.array(anyText, { maxLength: 3 }),
      }),
      { nil: null },
    ),
    tenant: fc.option(anyText, { nil: null }),
    environment: fc.option(anyText, { nil: null }),
    session: fc.option(anyText, { nil: null }),
    ticket: fc.option(anyText, { nil: null }),
    reason: fc.option(anyText, { nil: null }),
    data,
  });
}
