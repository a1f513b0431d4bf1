#!/usr/bin/env node
// `npm run completions`: regenerate completions/ from the command tree (run after adding a command or flag).
import { writeFileSync } from 'node:fs';

const { completionTree } = await import('../dist/cli/completion/model.js');
const { bashScript, zshScript, fishScript } = await import('../dist/cli/completion/scripts.js');
const tree = await completionTree();
writeFileSync(new URL('../completions/imp.bash', import.meta.url), bashScript(tree));
writeFileSync(new URL('../completions/_imp', import.meta.url), zshScript(tree));
writeFileSync(new URL('../completions/imp.fish', import.meta.url), fishScript(tree));
console.log('completions/: imp.bash, _imp, imp.fish written');
