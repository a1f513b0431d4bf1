/**
 * Passkeys the broker holds and verifies itself (WebAuthn through @simplewebauthn/server), so that
 * re-authentication rests on something the broker can check rather than on an IdP's `auth_time`.
 *
 * A ceremony is opened for one operation: its challenge is sha256(binding ‖ nonce), where the binding
 * hashes the operation with the person it is for, so an assertion commits to exactly that operation.
 * It lives two minutes, is answered once (pending → verified | failed) and consumed once (verified →
 * used) by the operation whose binding matches. Relying party: RP ID = the broker's host name,
 * origin = the broker's origin exactly; user verification required; credentials bound to (iss, sub).
 */
import { createHash, randomBytes, randomInt, randomUUID } from 'node:crypto';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { canonicalJson } from '../core/audit/canonical-json.js';
import type { PasskeyChallengeInfo } from '../core/errors.js';
import { ConfigError } from '../core/errors.js';
import type { CeremonyRecord, PasskeyRecord, StoreTx } from '../store/types.js';
import type { BrokerDeps, Principal } from './context.js';

/** Ceremonies (and the assertions they yield) are good for this long: the issue's ≤ 2 minutes. */
export const CEREMONY_TTL_MS = 120_000;

/** What a passkey may be asked to authorise, with the fields that identify the exact operation. */
export interface Operation {
  op: string;
  [field: string]: string | number | boolean | null;
}

/** The relying party: the broker's host name and exact origin. */
export function relyingParty(deps: Pick<BrokerDeps, 'issuer'>): { rpId: string; origin: string } {
  const url = new URL(deps.issuer);
  return { rpId: url.hostname, origin: url.origin };
}

/** Refuses a broker URL a browser cannot run WebAuthn on (an IP address is never an RP ID). */
export function checkPasskeyOrigin(issuer: string): void {
  const url = new URL(issuer);
  if (/^[\d.]+$/.test(url.hostname) || url.hostname.startsWith('['))
    throw new ConfigError(
      `Passkeys need the broker reached by a host name, not ${url.hostname}: browsers refuse an IP address as a WebAuthn relying party. Use --public-url https://<host> (or http://localhost:<port> on one machine).`,
    );
  if (url.protocol !== 'https:' && url.hostname !== 'localhost' && !url.hostname.endsWith('.localhost'))
    throw new ConfigError(`Passkeys need the broker on https (got ${url.origin}).`);
}

/** sha256 of the operation with the person it is for: what the challenge commits to. */
export function bindingOf(principal: Pick<Principal, 'iss' | 'sub'>, operation: Operation): string {
  return createHash('sha256')
    .update(canonicalJson({ iss: principal.iss, sub: principal.sub, operation }))
    .digest('base64url');
}

// Consonants only: no words, no look-alike vowels and digits.
const CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';
function userCode(): string {
  let code = '';
  for (let i = 0; i < 8; i++) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

/** Opens a ceremony (inside the caller's transaction) for `principal` and one operation. */
export async function openCeremony(
  tx: StoreTx,
  deps: BrokerDeps,
  principal: Principal,
  kind: CeremonyRecord['kind'],
  operation: Operation,
  description: string,
): Promise<CeremonyRecord> {
  const now = deps.clock.now();
  const binding = bindingOf(principal, operation);
  const nonce = randomBytes(32).toString('base64url');
  const ceremony: CeremonyRecord = {
    id: randomUUID(),
    kind,
    iss: principal.iss,
    sub: principal.sub,
    email: principal.email,
    loginId: principal.loginId,
    operation,
    binding,
    description,
    userCode: userCode(),
    challenge: createHash('sha256').update(`${binding}.${nonce}`).digest('base64url'),
    createdAt: now,
    expiresAt: now + CEREMONY_TTL_MS,
    state: 'pending',
    credentialId: null,
    userVerified: false,
    verifiedAt: null,
  };
  await tx.insertCeremony(ceremony);
  return ceremony;
}

/** What the CLI shows for a ceremony (the shape of a device authorization). */
export function challengeInfo(deps: BrokerDeps, ceremony: CeremonyRecord): PasskeyChallengeInfo {
  return {
    id: ceremony.id,
    verification_uri_complete: `${deps.issuer.replace(/\/$/, '')}/passkey/${ceremony.id}`,
    user_code: ceremony.userCode,
    expires_in: Math.max(0, Math.round((ceremony.expiresAt - deps.clock.now()) / 1000)),
  };
}

/** The WebAuthn options the ceremony page passes to the browser. */
export async function ceremonyOptions(
  deps: BrokerDeps,
  ceremony: CeremonyRecord,
  passkeys: PasskeyRecord[],
): Promise<unknown> {
  const { generateAuthenticationOptions, generateRegistrationOptions } = await import(
    '@simplewebauthn/server'
  );
  const { rpId } = relyingParty(deps);
  const challenge = Buffer.from(ceremony.challenge, 'base64url');
  const timeout = Math.max(1000, ceremony.expiresAt - deps.clock.now());
  const credentials = passkeys.map((p) => ({ id: p.id, transports: p.transports }));
  if (ceremony.kind === 'register') {
    return generateRegistrationOptions({
      rpName: 'imp',
      rpID: rpId,
      userName: ceremony.email ?? ceremony.sub,
      userID: createHash('sha256').update(`${ceremony.iss} ${ceremony.sub}`).digest(),
      challenge,
      timeout,
      attestationType: deps.policy.reauth.passkeyAaguids.length > 0 ? 'direct' : 'none',
      excludeCredentials: credentials,
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
    });
  }
  return generateAuthenticationOptions({
    rpID: rpId,
    challenge,
    timeout,
    allowCredentials: credentials,
    userVerification: 'required',
  });
}

/** Why a WebAuthn response was refused: a rule name for the audit and a message for the page. */
export class CeremonyRefusal extends Error {
  constructor(
    readonly why: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

// authenticatorData: rpIdHash (32) ‖ flags (1) ‖ signCount (4, big-endian) ‖ … (WebAuthn §6.1).
function authDataFlags(authenticatorData: string): { uv: boolean; signCount: number } {
  const bytes = Buffer.from(authenticatorData, 'base64url');
  if (bytes.length < 37) throw new CeremonyRefusal('malformed', 'The authenticator data is too short.');
  return { uv: (bytes[32]! & 0x04) !== 0, signCount: bytes.readUInt32BE(33) };
}

/** Verifies an enrolment; returns the passkey to store. */
export async function verifyEnrolment(
  deps: BrokerDeps,
  ceremony: CeremonyRecord,
  response: RegistrationResponseJSON,
  name: string,
): Promise<PasskeyRecord> {
  const { verifyRegistrationResponse } = await import('@simplewebauthn/server');
  const { rpId, origin } = relyingParty(deps);
  let result: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
  try {
    result = await verifyRegistrationResponse({
      response,
      expectedChallenge: ceremony.challenge,
      expectedOrigin: origin,
      expectedRPID: rpId,
      requireUserVerification: true,
    });
  } catch (error) {
    throw new CeremonyRefusal('invalid_registration', (error as Error).message);
  }
  if (!result.verified) throw new CeremonyRefusal('invalid_registration', 'The registration did not verify.');
  const info = result.registrationInfo;
  if (!info.userVerified)
    throw new CeremonyRefusal(
      'user_not_verified',
      'The authenticator did not verify the user (PIN or biometrics).',
    );
  const allowed = deps.policy.reauth.passkeyAaguids;
  if (allowed.length > 0 && !allowed.includes(info.aaguid))
    throw new CeremonyRefusal(
      'aaguid_not_allowed',
      `This authenticator model (${info.aaguid}) is not allowed here.`,
      {
        aaguid: info.aaguid,
      },
    );
  return {
    id: info.credential.id,
    iss: ceremony.iss,
    sub: ceremony.sub,
    email: ceremony.email,
    publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
    counter: info.credential.counter,
    transports: info.credential.transports ?? [],
    aaguid: info.aaguid,
    name,
    createdAt: deps.clock.now(),
    lastUsedAt: null,
  };
}

/** Verifies an assertion against the ceremony and the person's own passkey; returns the new counter. */
export async function verifyAssertion(
  deps: BrokerDeps,
  ceremony: CeremonyRecord,
  response: AuthenticationResponseJSON,
  passkey: PasskeyRecord | null,
): Promise<{ counter: number; userVerified: boolean }> {
  if (!passkey || passkey.iss !== ceremony.iss || passkey.sub !== ceremony.sub)
    throw new CeremonyRefusal(
      'credential_not_yours',
      'This passkey is not one of yours: use a passkey you enrolled with imp passkey add.',
      { credential: typeof response.id === 'string' ? response.id.slice(0, 200) : null },
    );
  const flags = authDataFlags(String(response.response?.authenticatorData ?? ''));
  if (!flags.uv)
    throw new CeremonyRefusal(
      'user_not_verified',
      'The authenticator did not verify you (PIN or biometrics).',
    );
  const { verifyAuthenticationResponse } = await import('@simplewebauthn/server');
  const { rpId, origin } = relyingParty(deps);
  let result: Awaited<ReturnType<typeof verifyAuthenticationResponse>>;
  try {
    result = await verifyAuthenticationResponse({
      response,
      expectedChallenge: ceremony.challenge,
      expectedOrigin: origin,
      expectedRPID: rpId,
      // Counter 0 here: the library would refuse a regression before checking the signature; we
      // check the signature first so that a regression is proven, then refuse and audit it below.
      credential: { id: passkey.id, publicKey: Buffer.from(passkey.publicKey, 'base64url'), counter: 0 },
      requireUserVerification: true,
    });
  } catch (error) {
    throw new CeremonyRefusal('invalid_assertion', (error as Error).message);
  }
  if (!result.verified) throw new CeremonyRefusal('invalid_assertion', 'The signature did not verify.');
  const counter = result.authenticationInfo.newCounter;
  if ((counter > 0 || passkey.counter > 0) && counter <= passkey.counter)
    throw new CeremonyRefusal(
      'sign_count_regression',
      'This passkey reported a signature counter that went backwards: it may have been cloned. It was refused; tell your security team.',
      { credential: passkey.id, stored_counter: passkey.counter, presented_counter: counter },
    );
  return { counter, userVerified: result.authenticationInfo.userVerified };
}
