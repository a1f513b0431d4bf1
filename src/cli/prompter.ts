/**
 * Prompts go through this interface (after gh's internal/prompter): the real one loads
 * @inquirer/prompts only when a prompt is shown; the test one fails on any prompt nobody scripted.
 */
import type { IO } from './io.js';

/** A text question; `validate` returns true or the message to show. */
export interface InputQuestion {
  message: string;
  default?: string;
  validate?: (value: string) => true | string;
}

/** What commands may ask. */
export interface Prompter {
  input(question: InputQuestion): Promise<string>;
  confirm(question: { message: string; default?: boolean }): Promise<boolean>;
  select<T extends string>(question: { message: string; choices: { value: T; name: string }[] }): Promise<T>;
}

/** The interactive prompter, on stderr so stdout stays clean for results. */
export async function systemPrompter(io: IO): Promise<Prompter> {
  const prompts = await import('@inquirer/prompts');
  const context = { input: io.stdin, output: io.stderr as NodeJS.WritableStream, clearPromptOnDone: false };
  return {
    input: (q) =>
      prompts.input(
        {
          message: q.message,
          ...(q.default ? { default: q.default } : {}),
          ...(q.validate ? { validate: q.validate } : {}),
        },
        context,
      ),
    confirm: (q) => prompts.confirm({ message: q.message, default: q.default ?? false }, context),
    select: <T extends string>(q: { message: string; choices: { value: T; name: string }[] }) =>
      prompts.select<T>({ message: q.message, choices: q.choices }, context),
  };
}

/** A scripted answer: the message it expects (substring) and the answer. */
export interface ScriptedAnswer {
  match: string;
  answer: string | boolean;
}

/** A prompter for tests: answers in order, fails on an unexpected prompt, `assertDone` fails on leftovers. */
export function scriptedPrompter(
  answers: ScriptedAnswer[],
): Prompter & { assertDone(): void; asked: string[]; shown: string[][] } {
  const queue = [...answers];
  const asked: string[] = [];
  // The choices each select offered, so a test can assert what a picker showed.
  const shown: string[][] = [];
  const next = (message: string): string | boolean => {
    asked.push(message);
    const answer = queue.shift();
    if (!answer) throw new Error(`Unexpected prompt: "${message}"`);
    if (!message.includes(answer.match))
      throw new Error(`Prompt "${message}" does not match scripted "${answer.match}"`);
    return answer.answer;
  };
  return {
    asked,
    shown,
    async input(q) {
      const answer = String(next(q.message));
      const verdict = q.validate?.(answer) ?? true;
      if (verdict !== true) throw new Error(`Scripted answer "${answer}" rejected: ${verdict}`);
      return answer;
    },
    async confirm(q) {
      return Boolean(next(q.message));
    },
    async select<T extends string>(q: { message: string; choices: { value: T; name: string }[] }) {
      shown.push(q.choices.map((c) => c.name));
      const answer = String(next(q.message));
      if (!q.choices.some((c) => c.value === answer))
        throw new Error(`Scripted answer "${answer}" is not one of the choices offered`);
      return answer as T;
    },
    assertDone() {
      if (queue.length > 0)
        throw new Error(`Scripted answers left unused: ${queue.map((a) => a.match).join(', ')}`);
    },
  };
}
