/** The checked-in completion scripts are what the generator makes from today's command tree. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { completionTree } from '../../src/cli/completion/model.js';
import { bashScript, fishScript, zshScript } from '../../src/cli/completion/scripts.js';
import { ROOT } from '../helpers/cli.js';

describe('completions/', () => {
  it.each([
    ['imp.bash', bashScript],
    ['_imp', zshScript],
    ['imp.fish', fishScript],
  ] as const)('%s is up to date (run: npm run completions)', async (file, generate) => {
    const tree = await completionTree();
    expect(readFileSync(join(ROOT, 'completions', file), 'utf8')).toBe(generate(tree));
  });

  it('covers every visible command', async () => {
    const tree = await completionTree();
    const bash = bashScript(tree);
    for (const command of tree.commands) expect(bash).toContain(`'${command.path}')`);
  });
});
