/** `imp completion bash|zsh|fish`: print the completion script (generated from the command tree). */
import { UsageError } from '../../core/errors.js';
import type { CommandSpec, ParsedArgs } from '../command.js';
import type { Deps } from '../deps.js';

/** Help, flags and examples. */
export const spec: CommandSpec = {
  name: 'completion',
  group: 'admin',
  summary: 'Print the shell completion script (bash, zsh, fish)',
  usage: 'imp completion bash|zsh|fish',
  args: [{ name: 'shell', required: true, description: 'bash, zsh or fish' }],
  flags: [],
  examples: [
    'imp completion bash > ~/.local/share/bash-completion/completions/imp',
    'imp completion zsh > ~/.zfunc/_imp   # with fpath=(~/.zfunc $fpath) before compinit in ~/.zshrc',
    'imp completion fish > ~/.config/fish/completions/imp.fish',
  ],
};

/** Which shell. */
export interface CompletionOptions {
  shell: 'bash' | 'zsh' | 'fish';
}

/** argv → options. */
export function parse(parsed: ParsedArgs): CompletionOptions {
  const shell = parsed.args[0];
  if (shell !== 'bash' && shell !== 'zsh' && shell !== 'fish') throw new UsageError(`Usage: ${spec.usage}`);
  return { shell };
}

/** Prints the script. */
export async function run(options: CompletionOptions, deps: Pick<Deps, 'io'>): Promise<number> {
  const { completionTree } = await import('../completion/model.js');
  const scripts = await import('../completion/scripts.js');
  const tree = await completionTree();
  const script =
    options.shell === 'bash'
      ? scripts.bashScript(tree)
      : options.shell === 'zsh'
        ? scripts.zshScript(tree)
        : scripts.fishScript(tree);
  deps.io.stdout.write(script);
  return 0;
}
