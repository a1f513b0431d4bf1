/**
 * Passkey routes: the ceremony page and its two calls (options, answer), the CLI's wait for a
 * ceremony, and enrolment, listing, removal and reset of passkeys. The page's calls carry no broker
 * token (the browser has none): the ceremony id is a 122-bit random capability, and what it can do
 * is limited to the person's own passkeys — an assertion by anyone else's credential is refused.
 */
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { AuthFailedError, ImpError, InvalidInputError, NotFoundError } from '../../core/errors.js';
import { hasControlCharacters } from '../../core/escape.js';
import { sameSubject } from '../../core/policy/decide.js';
import type { CeremonyRecord, PasskeyRecord } from '../../store/types.js';
import { actorOf, type HandlerContext, type HandlerResult, type Principal } from '../context.js';
import { mustHavePrincipal, refuse } from '../guards.js';
import { PAGE_HEADERS, pageAsset, renderPage } from '../passkey-page.js';
import {
  CeremonyRefusal,
  ceremonyOptions,
  challengeInfo,
  openCeremony,
  verifyAssertion,
  verifyEnrolment,
} from '../passkeys.js';

const UUID = /^[0-9a-f-]{36}$/;

async function loadCeremony(ctx: HandlerContext): Promise<CeremonyRecord | null> {
  const id = ctx.params.id ?? '';
  if (!UUID.test(id)) return null;
  return ctx.deps.store.getCeremony(id);
}

/** GET /passkey/:id — the ceremony page. */
export async function getPasskeyPage(ctx: HandlerContext): Promise<HandlerResult> {
  const ceremony = await loadCeremony(ctx);
  return {
    status: ceremony ? 200 : 404,
    body: renderPage(ceremony, ctx.deps.clock.now()),
    headers: { ...PAGE_HEADERS, 'content-type': 'text/html; charset=utf-8' },
  };
}

/** GET /passkey/assets/:name — the page's script, style and the WebAuthn helper. */
export async function getPasskeyAsset(ctx: HandlerContext): Promise<HandlerResult> {
  const asset = await pageAsset(ctx.params.name ?? '');
  if (!asset) throw new NotFoundError('No such asset.');
  return {
    body: asset.body,
    headers: { ...PAGE_HEADERS, 'content-type': asset.type, 'cache-control': 'no-cache' },
  };
}

function usable(ctx: HandlerContext, ceremony: CeremonyRecord | null): CeremonyRecord {
  if (!ceremony) throw new NotFoundError('There is no such passkey confirmation.');
  if (ceremony.state !== 'pending')
    throw new ImpError('IMP_CONFLICT', 'This passkey confirmation was already used. Run the command again.');
  if (ceremony.expiresAt <= ctx.deps.clock.now())
    throw new ImpError('IMP_SESSION_EXPIRED', 'This passkey confirmation expired. Run the command again.');
  return ceremony;
}

/** GET /v1/ceremonies/:id/options — what the page hands to WebAuthn. */
export async function getCeremonyOptions(ctx: HandlerContext): Promise<HandlerResult> {
  const ceremony = usable(ctx, await loadCeremony(ctx));
  const passkeys = await ctx.deps.store.listPasskeys(ceremony.iss, ceremony.sub);
  return {
    body: {
      kind: ceremony.kind,
      description: ceremony.description,
      user_code: ceremony.userCode,
      options: await ceremonyOptions(ctx.deps, ceremony, passkeys),
    },
  };
}

const ceremonyActor = (c: CeremonyRecord) => ({ iss: c.iss, sub: c.sub, email: c.email, roles: [] });

/** POST /v1/ceremonies/:id {response} — verifies an enrolment or an assertion, once. */
export async function postCeremony(ctx: HandlerContext): Promise<HandlerResult> {
  const { deps } = ctx;
  const found = await loadCeremony(ctx);
  const response = (ctx.body as { response?: unknown } | null)?.response;
  if (!response || typeof response !== 'object' || typeof (response as { id?: unknown }).id !== 'string')
    throw new InvalidInputError('Send {"response": <the WebAuthn response>}.');
  const now = deps.clock.now();
  let ceremony: CeremonyRecord;
  try {
    ceremony = usable(ctx, found);
  } catch (error) {
    if (found)
      await deps.store.transaction((tx) =>
        tx.appendAudit(
          {
            type: found.kind === 'register' ? 'passkey.refused' : 'stepup.refused',
            actor: ceremonyActor(found),
            data: {
              ceremony: found.id,
              rule: found.state === 'pending' ? 'ceremony.expired' : 'ceremony.used',
            },
          },
          now,
        ),
      );
    throw error;
  }
  try {
    if (ceremony.kind === 'register') {
      const passkey = await verifyEnrolment(
        deps,
        ceremony,
        response as RegistrationResponseJSON,
        passkeyName(ceremony),
      );
      await deps.store.transaction(async (tx) => {
        await tx.lockKey(`passkey\u0000${passkey.id}`);
        if (await tx.getPasskey(passkey.id))
          throw new CeremonyRefusal('duplicate', 'This passkey is already enrolled.');
        if (
          !(await tx.updateCeremony(ceremony.id, 'pending', {
            state: 'used',
            credentialId: passkey.id,
            userVerified: true,
            verifiedAt: now,
          }))
        )
          throw new CeremonyRefusal('ceremony.used', 'This confirmation was already used.');
        await tx.insertPasskey(passkey);
        await tx.appendAudit(
          {
            type: 'passkey.added',
            actor: ceremonyActor(ceremony),
            data: {
              credential: passkey.id,
              aaguid: passkey.aaguid,
              user_verified: true,
              name: passkey.name,
              ceremony: ceremony.id,
            },
          },
          now,
        );
      });
      return { body: { state: 'used', credential: passkey.id } };
    }
    const credentialId = (response as AuthenticationResponseJSON).id;
    const passkey = await deps.store.getPasskey(credentialId);
    const { counter, userVerified } = await verifyAssertion(
      deps,
      ceremony,
      response as AuthenticationResponseJSON,
      passkey,
    );
    await deps.store.transaction(async (tx) => {
      if (
        !(await tx.updateCeremony(ceremony.id, 'pending', {
          state: 'verified',
          credentialId,
          userVerified,
          verifiedAt: now,
        }))
      )
        throw new CeremonyRefusal('ceremony.used', 'This confirmation was already used.');
      await tx.updatePasskeyUse(credentialId, counter, now);
      await tx.appendAudit(
        {
          type: 'stepup.passkey',
          actor: ceremonyActor(ceremony),
          data: {
            credential: credentialId,
            user_verified: userVerified,
            operation: ceremony.operation,
            binding: ceremony.binding,
            ceremony: ceremony.id,
          },
        },
        now,
      );
    });
    return { body: { state: 'verified' } };
  } catch (error) {
    if (!(error instanceof CeremonyRefusal)) throw error;
    // A refused answer burns the ceremony: a second try needs a new one (and a new challenge).
    await deps.store.transaction(async (tx) => {
      await tx.updateCeremony(ceremony.id, 'pending', { state: 'failed' });
      const type =
        error.why === 'sign_count_regression'
          ? 'passkey.clone_suspected'
          : ceremony.kind === 'register'
            ? 'passkey.refused'
            : 'stepup.refused';
      await tx.appendAudit(
        {
          type,
          actor: ceremonyActor(ceremony),
          data: {
            rule: `passkey.${error.why}`,
            detail: error.message.slice(0, 300),
            ceremony: ceremony.id,
            ...error.extra,
          },
        },
        now,
      );
    });
    throw new AuthFailedError(`Refused by rule passkey.${error.why}: ${error.message}`, {
      details: { rule: `passkey.${error.why}` },
    });
  }
}

function passkeyName(ceremony: CeremonyRecord): string {
  const name = ceremony.operation.name;
  return typeof name === 'string' && name
    ? name
    : `passkey ${new Date(ceremony.createdAt).toISOString().slice(0, 10)}`;
}

/** GET /v1/ceremonies/:id[?wait=25] — the CLI waits for its ceremony to be answered. */
export async function getCeremony(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  const waitSeconds = Math.min(Number(/^\d+$/.test(ctx.query.wait ?? '') ? ctx.query.wait : 0), 60);
  const deadline = ctx.deps.clock.now() + waitSeconds * 1000;
  for (;;) {
    const ceremony = await loadCeremony(ctx);
    if (!ceremony || !sameSubject(ceremony, principal))
      throw new NotFoundError('No such passkey confirmation of yours.');
    const expired = ceremony.state === 'pending' && ceremony.expiresAt <= ctx.deps.clock.now();
    if (ceremony.state !== 'pending' || expired || ctx.deps.clock.now() >= deadline || ctx.signal.aborted)
      return { body: { id: ceremony.id, kind: ceremony.kind, state: expired ? 'expired' : ceremony.state } };
    await ctx.deps.clock.sleep(Math.min(250, deadline - ctx.deps.clock.now()), ctx.signal).catch(() => {});
  }
}

const passkeyView = (p: PasskeyRecord) => ({
  id: p.id,
  name: p.name,
  aaguid: p.aaguid,
  created_at: new Date(p.createdAt).toISOString(),
  last_used_at: p.lastUsedAt === null ? null : new Date(p.lastUsedAt).toISOString(),
});

/** GET /v1/passkeys — my passkeys. */
export async function listPasskeys(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  const passkeys = await ctx.deps.store.listPasskeys(principal.iss, principal.sub);
  return { body: { passkeys: passkeys.map(passkeyView) } };
}

/** POST /v1/passkeys {name?} — starts enrolment: a fresh IdP login, and an existing passkey if any. */
export async function addPasskey(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  const { deps } = ctx;
  const raw = (ctx.body as { name?: unknown } | null)?.name;
  if (raw !== undefined && (typeof raw !== 'string' || raw.length > 60 || hasControlCharacters(raw)))
    throw new InvalidInputError('name must be text of at most 60 characters.');
  const name = typeof raw === 'string' ? raw.trim() : '';
  const existing = await deps.store.listPasskeys(principal.iss, principal.sub);
  const operation = { op: 'passkey.add', name };
  // Always a fresh IdP login; a second passkey is vouched for by one already held.
  await ctx.guard.freshLogin({
    operation,
    description: `${who(principal)} adds a passkey`,
    method: existing.length > 0 ? 'idp+passkey' : 'idp',
  });
  const ceremony = await deps.store.transaction((tx) =>
    openCeremony(
      tx,
      deps,
      principal,
      'register',
      operation,
      `${who(principal)} adds a passkey${name ? ` "${name}"` : ''}`,
    ),
  );
  return { status: 202, body: { passkey_authorization: challengeInfo(deps, ceremony) } };
}

/** DELETE /v1/passkeys/:id — removes one of my passkeys (confirmed with a passkey). */
export async function removePasskey(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  const id = ctx.params.id ?? '';
  const mine = await ctx.deps.store.listPasskeys(principal.iss, principal.sub);
  if (!mine.some((p) => p.id === id)) throw new NotFoundError(`You have no passkey ${id.slice(0, 80)}.`);
  const proof = await ctx.guard.freshLogin({
    operation: { op: 'passkey.remove', credential: id },
    description: `${who(principal)} removes passkey ${id.slice(0, 16)}…`,
    method: 'passkey',
  });
  await ctx.guard.commit(async (tx) => {
    if (!(await tx.deletePasskey(principal.iss, principal.sub, id)))
      throw new NotFoundError('That passkey is gone.');
    await tx.appendAudit(
      { type: 'passkey.removed', actor: actorOf(principal), data: { credential: id, reauth: proof } },
      ctx.deps.clock.now(),
    );
  });
  return { body: { removed: id } };
}

/** POST /v1/passkeys/reset {user} — someone else's passkeys, by a holder of passkey_reset (never one's own). */
export async function resetPasskeys(ctx: HandlerContext): Promise<HandlerResult> {
  const principal = mustHavePrincipal(ctx);
  const { deps } = ctx;
  const user = (ctx.body as { user?: unknown } | null)?.user;
  if (typeof user !== 'string' || user === '' || user.length > 320 || hasControlCharacters(user))
    throw new InvalidInputError('Send {"user": "<email or subject of the person>"}.');
  const target = await deps.store.findLatestLogin(user);
  if (!target) throw new NotFoundError(`Nobody called ${user.slice(0, 80)} has logged in to this broker.`);
  if (sameSubject(target, principal))
    await refuse(ctx, {
      rule: 'passkey_reset.not_self',
      message:
        'Denied by rule passkey_reset.not_self: nobody resets their own passkeys; ask another person with passkey_reset.',
      data: { action: 'reset passkeys' },
    });
  const proof = await ctx.guard.freshLogin({
    operation: { op: 'passkey.reset', iss: target.iss, sub: target.sub },
    description: `${who(principal)} resets every passkey of ${target.email ?? target.sub}`,
    method: 'idp+passkey',
  });
  const count = await ctx.guard.commit(async (tx) => {
    const removed = await tx.deletePasskeys(target.iss, target.sub);
    await tx.appendAudit(
      {
        type: 'passkey.reset',
        actor: actorOf(principal),
        data: { target: { iss: target.iss, sub: target.sub, email: target.email }, removed, reauth: proof },
      },
      deps.clock.now(),
    );
    return removed;
  });
  return { body: { user: { sub: target.sub, email: target.email }, removed: count } };
}

function who(principal: Principal): string {
  return principal.email ?? principal.sub;
}
