/** The command line as a whole: dispatch, usage errors, help for every command, exit codes. */
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { COMMANDS } from '../../src/cli/registry.js';
import { makeTestDeps } from '../helpers/cli-deps.js';

async function imp(argv: string[]) {
  const t = makeTestDeps();
  const code = await main(argv, t.deps, '0.0.0-test');
  return { code, stdout: t.io.stdoutText(), stderr: t.io.stderrText() };
}

describe('imp main', () => {
  it('--help lists every command, grouped', async () => {
    const { code, stdout } = await imp(['--help']);
    expect(code).toBe(0);
    for (const c of COMMANDS) if (!c.hidden) expect(stdout).toContain(c.name);
    expect(stdout).not.toContain('__complete');
    expect(stdout).toMatch(/Login:[\s\S]*Sessions:[\s\S]*Approvals:[\s\S]*Admin:/);
  });

  it.each(COMMANDS.map((c) => [c.name]))(
    'imp %s --help has usage, flags and an example, and matches the registry',
    async (name) => {
      const entry = COMMANDS.find((c) => c.name === name)!;
      const module = await entry.load();
      expect(module.spec.name).toBe(name);
      expect(module.spec.group).toBe(entry.group);
      const { code, stdout } = await imp([...name.split(' '), '--help']);
      expect(code).toBe(0);
      expect(stdout).toContain(`Usage: imp ${name}`);
      expect(stdout).toContain('Examples:');
    },
  );

  it.each([
    [['logn'], 2, 'Did you mean "imp login"?'],
    [['stat'], 2, 'Unknown command "stat"'],
    [['login', '--brokr', 'x'], 2, 'Did you mean --broker?'],
    [['start'], 2, 'imp start needs --tenant'],
    [['start', '--tenant'], 2, 'argument missing'],
    [['audit', 'show'], 2, 'Missing required argument'],
    [['approve'], 2, 'Which request? Give its id'],
    [['end', '--format', 'pdf'], 2, 'Allowed choices are text, markdown, json'],
    [['whoami', 'extra'], 2, 'Too many arguments'],
    [['whoami'], 3, 'no broker configured'],
    [['\u001b]0;pwned\u0007'], 2, '\\x1b]0;pwned\\x07'],
  ])('imp %j exits %i saying %j', async (argv, code, text) => {
    const result = await imp(argv);
    expect(result.code).toBe(code);
    expect(result.stderr).toContain(text);
    expect(result.stderr).not.toContain('\u001b');
  });

  it('--json errors also go to stdout as a JSON event', async () => {
    const result = await imp(['whoami', '--json']);
    expect(JSON.parse(result.stdout)).toMatchObject({ event: 'error', error: { code: 'IMP_AUTH_REQUIRED' } });
  });
});
