#!/usr/bin/env node
// Part of `npm run build`, after tsc: bundles src/cli/fast-path.ts and the modules it imports statically
// into one CommonJS file, dist/cli/fast-path.cjs, which bin/imp.js requires first (`imp prompt`,
// `imp --help`, `imp --version`; why in src/cli/fast-path.ts). Not minified, with a source map
// holding the sources, so a stack trace names the function and `--enable-source-maps` the .ts line.
//
// It refuses a bundle that would make those paths slow or wrong: anything from node_modules or
// outside src/ inside it, a warning (such as `import.meta` turned empty in CommonJS), or a lazy
// `import()` left in it whose file tsc did not emit next to the bundle.
import { existsSync, rmSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'dist', 'cli', 'fast-path.cjs');

/** Dynamic `import()`s (the registry's command loaders) stay lazy, separate files: they are not bundled. */
const lazyImportsStayExternal = {
  name: 'lazy-imports-stay-external',
  setup(build) {
    build.onResolve({ filter: /^\./ }, (args) =>
      args.kind === 'dynamic-import' ? { path: args.path, external: true } : undefined,
    );
  },
};

const result = await build({
  absWorkingDir: root,
  entryPoints: ['src/cli/fast-path.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20.19',
  format: 'cjs',
  sourcemap: 'linked',
  plugins: [lazyImportsStayExternal],
  metafile: true,
  logLevel: 'silent',
});

const problems = result.warnings.map((w) => `${w.location?.file ?? ''}: ${w.text}`);
const foreign = Object.keys(result.metafile.inputs).filter((input) => !input.startsWith('src/'));
// One line per package (node_modules/yaml, node_modules/@inquirer/core), not per file.
const packageOf = (input) => input.replace(/^(.*?node_modules\/(?:@[^/]+\/)?[^/]+).*$/, '$1');
for (const where of new Set(foreign.map(packageOf))) {
  problems.push(`${where} is not one of our modules: keep it off the fast path`);
}
const output = result.metafile.outputs[relative(root, outfile)];
for (const { path, external } of output?.imports ?? []) {
  if (!external || isBuiltin(path)) continue;
  if (!path.startsWith('.') || !existsSync(resolve(dirname(outfile), path))) {
    problems.push(`the bundle imports ${path}, which is not a file tsc emitted next to it`);
  }
}
if (problems.length > 0) {
  rmSync(outfile, { force: true }); // bin/imp.js must not start from a refused bundle
  rmSync(`${outfile}.map`, { force: true });
  process.stderr.write(`bundle-fast-path: refused\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
  process.exitCode = 1;
}
