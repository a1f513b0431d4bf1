/** Reads policy YAML text into a validated Policy; errors name the file, line and key. */
import { isMap, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { ConfigError } from '../errors.js';
import { formatPolicyPath, type PolicyProblem } from './reader.js';
import type { Policy } from './types.js';
import { validatePolicy } from './validate.js';

/** Parses and validates; throws ConfigError (IMP_POLICY_INVALID) listing every problem as `file:line: key: message`. */
export function parsePolicy(text: string, fileName: string): Policy {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const line = lineCounter.linePos(first.pos[0]).line;
    throw new ConfigError(
      `${fileName}:${line}: invalid YAML: ${first.message.split('\n')[0]}`,
      'IMP_POLICY_INVALID',
    );
  }
  const { policy, problems } = validatePolicy(doc.toJS());
  if (problems.length > 0) {
    const lines = problems.map(
      (problem) =>
        `${fileName}:${lineOf(doc.contents, problem, lineCounter)}: ${formatPolicyPath(problem.path)}: ${problem.message}`,
    );
    throw new ConfigError(`Invalid policy:\n  ${lines.join('\n  ')}`, 'IMP_POLICY_INVALID');
  }
  return policy;
}

function lineOf(root: unknown, problem: PolicyProblem, lineCounter: LineCounter): number {
  // Walk as deep as the path exists; point at the key itself when possible.
  let node = root as YamlNode | null | undefined;
  let best = 1;
  for (const part of problem.path) {
    if (isMap(node)) {
      const pair = node.items.find((item) => (item.key as { value?: unknown } | null)?.value === part);
      if (!pair) break;
      const keyRange = (pair.key as YamlNode).range;
      if (keyRange) best = lineCounter.linePos(keyRange[0]).line;
      node = pair.value as YamlNode;
    } else if (isSeq(node) && typeof part === 'number') {
      node = node.items[part] as YamlNode;
      if (node?.range) best = lineCounter.linePos(node.range[0]).line;
    } else break;
  }
  return best;
}
