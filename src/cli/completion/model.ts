/** The command tree as shell completion sees it, built from every command's spec. */
import { type CompletionSource, GLOBAL_FLAGS } from '../command.js';
import { COMMANDS } from '../registry.js';

/** A flag for completion. */
export interface CompletionFlag {
  name: string;
  short?: string;
  takesValue: boolean;
  choices?: readonly string[];
  source?: CompletionSource;
  description: string;
}

/** A command for completion: its words, flags and where its positional values come from. */
export interface CompletionCommand {
  path: string;
  summary: string;
  flags: CompletionFlag[];
  argSource?: CompletionSource;
}

/** The whole tree: top-level words and commands by path. */
export interface CompletionTree {
  top: { word: string; summary: string }[];
  subs: Record<string, { word: string; summary: string }[]>;
  commands: CompletionCommand[];
}

/** Loads every visible command's spec (this imports every command module: only for completion). */
export async function completionTree(): Promise<CompletionTree> {
  const commands: CompletionCommand[] = [];
  for (const entry of COMMANDS) {
    if (entry.hidden) continue;
    const { spec } = await entry.load();
    const flags = [...spec.flags, ...GLOBAL_FLAGS].map((f) => ({
      name: f.name,
      ...(f.short ? { short: f.short } : {}),
      takesValue: Boolean(f.value),
      ...(f.choices ? { choices: f.choices } : {}),
      ...(f.complete ? { source: f.complete } : {}),
      description: f.description,
    }));
    const argSource = spec.args?.find((a) => a.complete)?.complete;
    commands.push({ path: spec.name, summary: entry.summary, flags, ...(argSource ? { argSource } : {}) });
  }
  const top: CompletionTree['top'] = [];
  const subs: CompletionTree['subs'] = {};
  for (const command of commands) {
    const [first, second] = command.path.split(' ') as [string, string | undefined];
    if (!top.some((t) => t.word === first))
      top.push({ word: first, summary: second ? `${first} commands` : command.summary });
    else if (!second) top.find((t) => t.word === first)!.summary = command.summary;
    if (second) {
      subs[first] ??= [];
      subs[first].push({ word: second, summary: command.summary });
    }
  }
  return { top, subs, commands };
}
