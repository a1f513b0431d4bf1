/**
 * The environment variable through which `imp exec` hands its child a credential for one
 * session's proxy. Inside such a child, `imp` uses it for `imp api` and never opens the person's
 * credential store.
 */

/** Name of the variable holding the exec credential. */
export const EXEC_CREDENTIAL_ENV = 'IMP_EXEC_CREDENTIAL';

/** The exec credential of this process's environment, if it runs under `imp exec`. */
export function execCredentialFrom(env: NodeJS.ProcessEnv): string | undefined {
  const value = env[EXEC_CREDENTIAL_ENV];
  return value && value.length > 0 ? value : undefined;
}
