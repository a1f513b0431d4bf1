/**
 * The audit note key in a PKCS#11 token (an HSM; SoftHSM2 in tests), named by an RFC 7512 URI:
 *   pkcs11:token=<label>;object=<key label>;id=%01?pin-source=file:/etc/imp/pin&module-path=/usr/lib/…so
 * The key is an Ed25519 private key (CKK_EC_EDWARDS) that signs with CKM_EDDSA inside the token: the
 * broker holds a session handle, never the key. The public key comes from the token's public-key
 * object beside it (same CKA_ID), and one self-test signature proves the pair before the broker
 * listens — anything wrong (module, token, PIN, key, mechanism) stops the start with a ConfigError.
 */
import { randomBytes, verify } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type * as Pkcs11js from 'pkcs11js';
import { ED25519_TYPE, ed25519PublicKey, formatVerifierKey, keyIdOf } from '../core/audit/signed-note.js';
import { ConfigError } from '../core/errors.js';
import { type Pkcs11Uri, parsePkcs11Uri, redactPkcs11Uri } from '../core/pkcs11-uri.js';
import { type AuditNoteKey, defaultOrigin } from './note-key.js';

// PKCS#11 3.0 values pkcs11js 2.1 has no names for.
const CKK_EC_EDWARDS = 0x40;
const CKM_EDDSA = 0x1057;
/** DER of the curve: PrintableString "edwards25519" (what SoftHSM2 and pkcs11-tool write) or OID 1.3.101.112. */
const ED25519_PARAMS = ['130c656477617264733235353139', '06032b6570'];
/** Errors after which a new session (and login) may succeed: the token was reset or re-inserted. */
const SESSION_LOST = ['CKR_SESSION_HANDLE_INVALID', 'CKR_SESSION_CLOSED', 'CKR_USER_NOT_LOGGED_IN'];

/** Where the module path may come from when the URI has no module-path. */
export const PKCS11_MODULE_ENV = 'IMP_PKCS11_MODULE';

/** Opens the token, finds the key, proves it signs; the returned key signs checkpoints in the token. */
export async function loadPkcs11NoteKey(
  uri: string,
  origin: string | null,
  env: NodeJS.ProcessEnv = {},
): Promise<AuditNoteKey> {
  const shown = redactPkcs11Uri(uri);
  const fail = (why: string) => new ConfigError(`--audit-key ${shown}: ${why}`);
  const parsed = parsePkcs11Uri(uri);
  if (parsed.query['module-name'] !== undefined)
    throw fail(`module-name is not supported: name the library with module-path= or ${PKCS11_MODULE_ENV}.`);
  const modulePath = parsed.query['module-path'] ?? env[PKCS11_MODULE_ENV];
  if (!modulePath)
    throw fail(
      `name the PKCS#11 library: module-path=/path/to/module.so in the URI, or ${PKCS11_MODULE_ENV}.`,
    );
  if (parsed.path.type !== undefined && parsed.path.type !== 'private')
    throw fail('the audit key is a private key: leave out type= or say type=private.');
  if (parsed.path.object === undefined && parsed.id === undefined)
    throw fail('name the key with object=<label> or id=<CKA_ID>.');
  const pin = await readPin(parsed, fail);

  const { default: pkcs11js } = await import('pkcs11js');
  const module = new pkcs11js.PKCS11();
  try {
    module.load(modulePath);
  } catch (error) {
    throw fail(`cannot load the PKCS#11 module ${modulePath}: ${(error as Error).message}`);
  }
  try {
    try {
      module.C_Initialize();
    } catch (error) {
      if (pkcs11Code(error) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') throw error;
    }
    const slot = findSlot(pkcs11js, module, parsed, fail);
    const token = new TokenKey(pkcs11js, module, slot, parsed, pin, fail);
    token.open();
    const publicKey = token.publicKey();
    // Self-test: a line that can never parse as a checkpoint (those have at least three lines).
    const probe = Buffer.from(`imp audit key self-test ${randomBytes(16).toString('hex')}\n`);
    if (!verify(null, probe, ed25519PublicKey(publicKey), token.sign(probe)))
      throw fail("the token's signature does not verify with its public key: the key pair does not match.");
    const name = origin ?? defaultOrigin(publicKey);
    return {
      origin: name,
      vkey: formatVerifierKey(name, ED25519_TYPE, publicKey),
      where: `PKCS#11 token "${token.label}" (${modulePath})`,
      signer: {
        name,
        keyId: keyIdOf(name, ED25519_TYPE, publicKey),
        sign: (text) => token.sign(Buffer.from(text)),
      },
      close: () => token.close(),
    };
  } catch (error) {
    try {
      module.C_Finalize();
    } catch {}
    module.close();
    if (error instanceof ConfigError) throw error;
    throw fail(`the token refused: ${(error as Error).message}`);
  }
}

type Fail = (why: string) => ConfigError;
type Pkcs11Module = typeof Pkcs11js;

/** §2.3 pin-value, or pin-source (a file: URI or a path) whose content, less a final newline, is the PIN. */
async function readPin(parsed: Pkcs11Uri, fail: Fail): Promise<string | undefined> {
  if (parsed.query['pin-value'] !== undefined) return parsed.query['pin-value'];
  const source = parsed.query['pin-source'];
  if (source === undefined) return undefined;
  const path = source.startsWith('file:') ? decodeURIComponent(new URL(source).pathname) : source;
  if (!path.startsWith('/')) throw fail(`pin-source must be an absolute file: URI or path, not ${source}.`);
  const text = await readFile(path, 'utf8').catch((error: Error) =>
    Promise.reject(fail(`cannot read the PIN from ${path}: ${error.message}`)),
  );
  return text.replace(/\r?\n$/, '');
}

/** The one slot whose token matches the URI's token, slot and library attributes. */
function findSlot(pkcs11js: Pkcs11Module, module: Pkcs11js.PKCS11, parsed: Pkcs11Uri, fail: Fail) {
  const want = parsed.path;
  const info = module.C_GetInfo();
  const version = `${info.libraryVersion.major}.${info.libraryVersion.minor}`;
  if (
    !matches(want['library-manufacturer'], info.manufacturerID) ||
    !matches(want['library-description'], info.libraryDescription) ||
    (want['library-version'] !== undefined &&
      want['library-version'] !== version &&
      `${want['library-version']}.0` !== version)
  )
    throw fail(`the module is ${info.libraryDescription.trim()} ${version}, not the library the URI names.`);
  const found = module.C_GetSlotList(true).filter((slot) => {
    const token = module.C_GetTokenInfo(slot);
    const slotInfo = module.C_GetSlotInfo(slot);
    const id = slot.length >= 8 ? slot.readBigUInt64LE(0) : BigInt(slot.readUInt32LE(0));
    return (
      (token.flags & pkcs11js.CKF_TOKEN_INITIALIZED) !== 0 &&
      matches(want.token, token.label) &&
      matches(want.manufacturer, token.manufacturerID) &&
      matches(want.model, token.model) &&
      matches(want.serial, token.serialNumber) &&
      matches(want['slot-description'], slotInfo.slotDescription) &&
      matches(want['slot-manufacturer'], slotInfo.manufacturerID) &&
      (want['slot-id'] === undefined || want['slot-id'] === id.toString())
    );
  });
  if (found.length === 0) throw fail('no initialised token matches the URI.');
  if (found.length > 1)
    throw fail(`${found.length} tokens match the URI: add token= or serial= to choose one.`);
  return found[0]!;
}

/** PKCS#11 pads text fields with spaces; a URI value names them unpadded. */
function matches(wanted: string | undefined, actual: string): boolean {
  return wanted === undefined || wanted === actual.replace(/[ \0]+$/, '');
}

/** The session on the token and the key in it; signing reopens the session once if the token lost it. */
class TokenKey {
  private session: Buffer | null = null;
  private key: Buffer | null = null;
  readonly label: string;

  constructor(
    private readonly pkcs11js: Pkcs11Module,
    private readonly module: Pkcs11js.PKCS11,
    private readonly slot: Buffer,
    private readonly parsed: Pkcs11Uri,
    private readonly pin: string | undefined,
    private readonly fail: Fail,
  ) {
    this.label = module.C_GetTokenInfo(slot).label.trim();
  }

  open(): void {
    const { pkcs11js, module } = this;
    const session = module.C_OpenSession(this.slot, pkcs11js.CKF_SERIAL_SESSION);
    this.session = session;
    const loginRequired = (module.C_GetTokenInfo(this.slot).flags & pkcs11js.CKF_LOGIN_REQUIRED) !== 0;
    if (loginRequired && this.pin === undefined)
      throw this.fail(`token "${this.label}" needs a PIN: add pin-source=file:/path (or pin-value=).`);
    if (this.pin !== undefined) {
      try {
        module.C_Login(session, pkcs11js.CKU_USER, this.pin);
      } catch (error) {
        const code = pkcs11Code(error);
        if (code !== 'CKR_USER_ALREADY_LOGGED_IN')
          throw this.fail(`token "${this.label}" refused the PIN (${code ?? (error as Error).message}).`);
      }
    }
    const keys = this.find([
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: CKK_EC_EDWARDS },
    ]);
    const what = [
      this.parsed.path.object !== undefined ? `object=${this.parsed.path.object}` : '',
      this.parsed.id !== undefined ? `id=${Buffer.from(this.parsed.id).toString('hex')}` : '',
    ].join(' ');
    if (keys.length === 0)
      throw this.fail(
        `token "${this.label}" has no Ed25519 (CKK_EC_EDWARDS) private key with ${what.trim()}.`,
      );
    if (keys.length > 1)
      throw this.fail(`token "${this.label}" has ${keys.length} keys with ${what.trim()}.`);
    this.key = keys[0]!;
    const [extractable] = module.C_GetAttributeValue(session, this.key, [{ type: pkcs11js.CKA_EXTRACTABLE }]);
    // A key that can leave the token could sit beside the data after all: refuse it.
    if (extractable?.value?.[0] === 1)
      throw this.fail(
        `the key on token "${this.label}" is extractable: generate one with CKA_EXTRACTABLE false.`,
      );
  }

  /** The raw 32-byte public key, from the public-key object with the private key's CKA_ID. */
  publicKey(): Uint8Array {
    const { pkcs11js, module } = this;
    const [id] = module.C_GetAttributeValue(this.session!, this.key!, [{ type: pkcs11js.CKA_ID }]);
    const found = this.find([
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: CKK_EC_EDWARDS },
      ...(id?.value?.length ? [{ type: pkcs11js.CKA_ID, value: id.value as Buffer }] : []),
    ]);
    if (found.length !== 1)
      throw this.fail(
        `token "${this.label}" has ${found.length} matching Ed25519 public keys; it needs exactly one.`,
      );
    const [point, params] = module.C_GetAttributeValue(this.session!, found[0]!, [
      { type: pkcs11js.CKA_EC_POINT },
      { type: pkcs11js.CKA_EC_PARAMS },
    ]);
    if (!ED25519_PARAMS.includes(Buffer.from(params!.value as Buffer).toString('hex')))
      throw this.fail(`the key on token "${this.label}" is not on edwards25519 (Ed448 is not a note key).`);
    const raw = Buffer.from(point!.value as Buffer);
    // PKCS#11 3.0 says CKA_EC_POINT is a DER OCTET STRING; some tokens store the bare 32 bytes.
    if (raw.length === 34 && raw[0] === 0x04 && raw[1] === 0x20) return raw.subarray(2);
    if (raw.length === 32) return raw;
    throw this.fail(`token "${this.label}" holds a public key of ${raw.length} bytes, not an Ed25519 point.`);
  }

  /**
   * CKM_EDDSA over the message, in the token. Synchronous on purpose: SignInit and Sign must not
   * interleave with another checkpoint's on the one session, and JS cannot preempt a sync call.
   */
  sign(message: Buffer): Uint8Array {
    try {
      return this.signOnce(message);
    } catch (error) {
      if (!SESSION_LOST.includes(pkcs11Code(error) ?? '')) throw error;
      this.open();
      return this.signOnce(message);
    }
  }

  close(): void {
    try {
      if (this.session) this.module.C_CloseSession(this.session);
      this.module.C_Finalize();
    } catch {}
    this.module.close();
  }

  private signOnce(message: Buffer): Uint8Array {
    this.module.C_SignInit(this.session!, { mechanism: CKM_EDDSA }, this.key!);
    return Uint8Array.from(this.module.C_Sign(this.session!, message, Buffer.alloc(64)));
  }

  private find(template: Pkcs11js.Template): Buffer[] {
    const full = [...template];
    if (this.parsed.path.object !== undefined)
      full.push({ type: this.pkcs11js.CKA_LABEL, value: this.parsed.path.object });
    if (this.parsed.id !== undefined && !template.some((a) => a.type === this.pkcs11js.CKA_ID))
      full.push({ type: this.pkcs11js.CKA_ID, value: Buffer.from(this.parsed.id) });
    this.module.C_FindObjectsInit(this.session!, full);
    try {
      return this.module.C_FindObjects(this.session!, 16);
    } finally {
      this.module.C_FindObjectsFinal(this.session!);
    }
  }
}

/** The CKR_… name of a pkcs11js error (its message starts with it), or undefined. */
function pkcs11Code(error: unknown): string | undefined {
  return /^(CKR_[A-Z_]+)/.exec((error as Error)?.message ?? '')?.[1];
}
