/** The CLI's config file and where the broker URL comes from: flag > IMP_BROKER_URL > config.json. */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AuthRequiredError, ConfigError, UsageError } from '../core/errors.js';
import { isLoopbackHost } from '../core/policy/reader.js';

/** What config.json holds. */
export interface CliConfig {
  broker_url?: string;
  /** Witnesses `imp audit verify` trusts: URL and cosigner key (the verifier's own, never the broker's). */
  audit_witnesses?: { url?: string; key: string }[];
  /** How many of them must have cosigned (default: all listed keys). */
  audit_witness_quorum?: number;
}

/** Reads config.json; a missing file is an empty config, a corrupt one an error naming the file. */
export async function loadConfig(file: string): Promise<CliConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError(`Cannot read ${file}: ${(error as Error).message}`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error('not an object');
    const record = parsed as Record<string, unknown>;
    const config: CliConfig = {};
    if (typeof record.broker_url === 'string') config.broker_url = record.broker_url;
    if (Array.isArray(record.audit_witnesses))
      config.audit_witnesses = record.audit_witnesses.filter(
        (w): w is { url?: string; key: string } =>
          typeof w === 'object' && w !== null && typeof (w as { key?: unknown }).key === 'string',
      );
    if (typeof record.audit_witness_quorum === 'number')
      config.audit_witness_quorum = record.audit_witness_quorum;
    return config;
  } catch {
    throw new ConfigError(`${file} is not valid JSON. Fix or delete it.`);
  }
}

/** Writes config.json atomically. */
export async function saveConfig(file: string, config: CliConfig): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  await rename(temp, file);
}

/** Picks the broker URL by precedence and checks it: https, or http only on loopback. */
export function resolveBrokerUrl(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
  config: CliConfig,
): string {
  const raw = flag ?? env.IMP_BROKER_URL ?? config.broker_url;
  if (!raw) {
    // Nothing configured means nobody logged in here yet: the fix is `imp login --broker`, hence "auth".
    throw new AuthRequiredError(
      'Not logged in: no broker configured. Run: imp login --broker <url> (or set IMP_BROKER_URL).',
    );
  }
  return checkServiceUrl(raw, 'broker');
}

/** Normalises a broker or issuer URL; refuses plain http except on loopback. */
export function checkServiceUrl(raw: string, what: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`The ${what} URL "${raw}" is not a valid URL.`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw new UsageError(
      `The ${what} URL must use https (plain http is accepted only for loopback addresses): ${raw}`,
    );
  }
  if (url.username || url.password) throw new UsageError(`The ${what} URL must not contain credentials.`);
  return url.toString().replace(/\/+$/, '');
}
