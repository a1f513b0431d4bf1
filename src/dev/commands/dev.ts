/** `imp dev`: the local stack, with a walkthrough that ends in a real device-flow login. */

import { boolFlag, type CommandSpec, type ParsedArgs, stringFlag } from '../../cli/command.js';
import type { Deps } from '../../cli/deps.js';
import { brokerTarget, loginWithProgress } from '../../cli/login-flow.js';
import { parseDuration } from '../../core/duration.js';
import { UsageError } from '../../core/errors.js';
import { escapeUntrusted } from '../../core/escape.js';
import { REAUTH_METHODS, type ReauthMethod } from '../../core/policy/types.js';
import { startDevStack } from '../stack.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'dev',
  group: 'admin',
  summary: 'Run the local stack: a real OIDC provider, the broker and a demo tenant API on loopback',
  usage:
    'imp dev [--port <n>] [--state-dir <dir>] [--policy <file>] [--reauth idp|passkey|idp+passkey] [--login] [--json]',
  flags: [
    {
      name: 'port',
      value: '<n>',
      description:
        'Base port: broker n, IdP n+1, tenant API n+2, alert webhook n+3 (default 7700; 0 = free ports)',
    },
    {
      name: 'state-dir',
      value: '<dir>',
      description: 'Keep the SQLite file and keys here (default: a new temp dir)',
    },
    {
      name: 'policy',
      value: '<file>',
      description: 'Broker policy (default: the built-in dev policy)',
      complete: 'files',
    },
    {
      name: 'reauth',
      value: '<method>',
      description: 'Re-authentication the broker demands: idp (default), passkey or idp+passkey',
    },
    { name: 'login', description: 'After start, walk through imp login against the stack' },
    { name: 'for', value: '<duration>', description: 'Stop by itself after this long (for scripts)' },
  ],
  examples: ['imp dev', 'imp dev --port 0 --json', 'imp dev --login', 'imp dev --reauth passkey'],
};

/** Typed options. */
export interface DevOptions {
  port: number;
  stateDir: string | undefined;
  policyFile: string | undefined;
  reauth: ReauthMethod | undefined;
  login: boolean;
  json: boolean;
  forSeconds: number | undefined;
}

/** argv → options. */
export function parse(parsed: ParsedArgs): DevOptions {
  const portText = stringFlag(parsed, 'port') ?? '7700';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65532)
    throw new UsageError(`--port must be a port number (0-65532), not "${portText}".`);
  const forText = stringFlag(parsed, 'for');
  const reauth = stringFlag(parsed, 'reauth');
  if (reauth !== undefined && !(REAUTH_METHODS as readonly string[]).includes(reauth))
    throw new UsageError(`--reauth must be one of ${REAUTH_METHODS.join(', ')}, not "${reauth}".`);
  return {
    reauth: reauth as ReauthMethod | undefined,
    port,
    stateDir: stringFlag(parsed, 'state-dir'),
    policyFile: stringFlag(parsed, 'policy'),
    login: boolFlag(parsed, 'login'),
    json: boolFlag(parsed, 'json'),
    forSeconds: forText === undefined ? undefined : parseDuration(forText, '--for'),
  };
}

/** Starts the stack, prints where it is, optionally logs in, and runs until Ctrl-C or SIGTERM. */
export async function run(options: DevOptions, deps: Deps): Promise<number> {
  const { io } = deps;
  const stack = await startDevStack({
    port: options.port,
    stateDir: options.stateDir,
    policyFile: options.policyFile,
    ...(options.reauth ? { reauth: options.reauth } : {}),
    clock: deps.clock,
    log: (level, message, fields) =>
      io.err(`[broker ${level}] ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`),
    reportAlert: (line) => io.err(line),
  });
  const users = stack.users.map((u) => ({ login: u.login, password: u.password, groups: u.groups }));
  if (options.json) {
    io.out(
      JSON.stringify({
        issuer: stack.issuer,
        broker: stack.broker,
        tenant_api: stack.tenantApi,
        alert_receiver: stack.alertReceiver,
        reauth: stack.reauth,
        witnesses: stack.witnesses,
        users,
      }),
    );
  } else {
    io.err('imp dev — local stack is up (loopback only, dev use only)');
    io.err(`  identity provider  ${stack.issuer}`);
    io.err(`  broker             ${stack.broker}`);
    io.err(`  demo tenant API    ${stack.tenantApi}`);
    io.err(`  alert webhook      ${stack.alertReceiver}  (break-glass alerts are printed here)`);
    for (const w of stack.witnesses) io.err(`  witness            ${w.url}  key ${w.key}`);
    io.err(`  state              ${stack.stateDir}`);
    io.err(`  re-authentication  ${stack.reauth}`);
    io.err('  dev users (password = login):');
    for (const user of users)
      io.err(`    ${user.login.padEnd(8)} ${user.groups.join(', ') || '(no groups)'}`);
    io.err('');
    io.err(`In another terminal:  export IMP_BROKER_URL=${stack.broker}`);
    io.err('                      imp login            # log in as alice / alice in the browser');
    io.err('                      imp whoami');
    if (stack.reauth !== 'idp')
      io.err('                      imp passkey add      # then every session asks for the passkey');
    io.err('Press Ctrl-C to stop.');
  }
  try {
    if (options.login && !options.json) {
      io.err(
        '\nLet us log in now: a browser opens (or open the link below); sign in as alice, password alice.',
      );
      const target = await brokerTarget(deps, stack.broker);
      // A login that fails or runs out of time must not take the stack (and everyone's state) down.
      const loggedIn = await loginWithProgress(deps, target, { json: false, noBrowser: false }).then(
        () => true,
        (error: unknown) => {
          if (deps.interrupt.aborted) return false;
          io.err(`error: the first login did not finish: ${escapeUntrusted((error as Error).message)}`);
          io.err(
            `The stack keeps running. Log in from another terminal: IMP_BROKER_URL=${stack.broker} imp login`,
          );
          return false;
        },
      );
      if (loggedIn) io.err('Now try: imp whoami');
    }
    await waitForStop(deps, options.forSeconds);
  } finally {
    await stack.close();
    if (!options.json) io.err('imp dev stopped.');
  }
  return 0;
}

async function waitForStop(
  deps: Pick<Deps, 'interrupt' | 'clock'>,
  forSeconds: number | undefined,
): Promise<void> {
  if (deps.interrupt.aborted) return;
  await new Promise<void>((resolve) => {
    deps.interrupt.addEventListener('abort', () => resolve(), { once: true });
    if (forSeconds !== undefined) deps.clock.sleep(forSeconds * 1000, deps.interrupt).then(resolve, resolve);
  });
}
