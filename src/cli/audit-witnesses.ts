/**
 * The verifier's side of the witnesses: which witnesses and keys to trust (flags, else the CLI
 * config — never the log being verified), and fetching each witness's latest cosigned checkpoint
 * (C2SP tlog-witness "Monitor Retrieval": GET <url>/<sha256(origin)>/checkpoint).
 */
import { createHash } from 'node:crypto';
import type { NoteVerifier } from '../core/audit/signed-note.js';
import { openNote } from '../core/audit/signed-note.js';
import { cosignatureVerifier } from '../core/audit/tlog-cosignature.js';
import { ImpError, UsageError } from '../core/errors.js';
import type { Deps } from './deps.js';

/** Witnesses as the verifier configured them. */
export interface WitnessTrust {
  urls: string[];
  keys: NoteVerifier[];
  quorum: number;
}

/** Flags win; the config's audit_witnesses otherwise. */
export async function witnessTrust(
  deps: Pick<Deps, 'paths'>,
  flags: { urls: string[]; keys: string[]; quorum: number | undefined },
): Promise<WitnessTrust> {
  let urls = flags.urls;
  let keyTexts = flags.keys;
  let quorum = flags.quorum;
  if (urls.length === 0 && keyTexts.length === 0) {
    const { loadConfig } = await import('../client/config.js');
    const config = await loadConfig(deps.paths.configFile);
    urls = (config.audit_witnesses ?? []).flatMap((w) => (w.url ? [w.url] : []));
    keyTexts = (config.audit_witnesses ?? []).map((w) => w.key);
    quorum ??= config.audit_witness_quorum;
  }
  if (urls.length > 0 && keyTexts.length === 0)
    throw new UsageError(
      '--witness needs the witness keys you trust: --witness-key <vkey> (never taken from the broker).',
    );
  const keys = keyTexts.map((text) => {
    try {
      return cosignatureVerifier(text);
    } catch (error) {
      throw new UsageError(`--witness-key ${text.slice(0, 60)}: ${(error as Error).message}`);
    }
  });
  return { urls: urls.map((u) => u.replace(/\/+$/, '')), keys, quorum: quorum ?? keys.length };
}

/** Fetches every witness's latest checkpoint for `origin`; fails when one cannot vouch. */
export async function fetchWitnessHeads(
  deps: Pick<Deps, 'fetch'>,
  trust: WitnessTrust,
  origin: string,
): Promise<{ witness: NoteVerifier; note: string }[]> {
  const hash = createHash('sha256').update(origin).digest('hex');
  return Promise.all(
    trust.urls.map(async (url) => {
      const response = await deps
        .fetch(`${url}/${hash}/checkpoint`, { signal: AbortSignal.timeout(10_000) })
        .catch((error: Error) =>
          Promise.reject(new ImpError('IMP_UNREACHABLE', `Cannot reach witness ${url}: ${error.message}`)),
        );
      const note = await response.text();
      if (response.status === 404)
        throw new ImpError(
          'IMP_AUDIT_BROKEN',
          `Witness ${url} has never cosigned log ${origin}: check the origin and the witness.`,
        );
      if (!response.ok)
        throw new ImpError('IMP_UNREACHABLE', `Witness ${url} answered HTTP ${response.status}.`);
      const witness = trust.keys.find((key) => {
        try {
          return openNote(note, [key]).verified.length > 0;
        } catch {
          return false;
        }
      });
      if (!witness)
        throw new ImpError(
          'IMP_AUDIT_BROKEN',
          `Witness ${url}'s checkpoint is not signed by any witness key you gave.`,
        );
      return { witness, note };
    }),
  );
}
