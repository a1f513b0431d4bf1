/** PKCS#11 audit keys: not built yet (see README "Audit key"); a clear refusal rather than a silent fallback. */
import { ConfigError } from '../core/errors.js';
import type { AuditNoteKey } from './note-key.js';

/** Refuses: this build signs checkpoints with a file key or the derived key only. */
export async function loadPkcs11NoteKey(uri: string, _origin: string | null): Promise<AuditNoteKey> {
  throw new ConfigError(
    `--audit-key ${uri}: PKCS#11 tokens are not supported by this build; use a key file.`,
  );
}
