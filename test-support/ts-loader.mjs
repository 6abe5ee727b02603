/**
 * Runs a test-support TypeScript file in a child process: `node --import ./test-support/ts-loader.mjs
 * packages/node/src/test-support/lying-node-main.ts …`. Vitest runs TypeScript in its own process
 * only; a test that needs test code in another process (a node made to lie, as a real process of a
 * `verity up` network) starts it through these module hooks. Each `.ts` file is transpiled alone
 * with the repository's TypeScript (`transpileModule`: the code is `isolatedModules`, so no type
 * information is needed; types are checked by `tsc` as usual), and a relative `./x.js` import from a
 * `.ts` file loads `./x.ts` when there is no `x.js` beside it, as the compiler resolves it. Packages
 * (`@verity/contracts`, …) load their built `dist/` as in any process. Test code only: nothing
 * shipped loads this.
 */
import { existsSync, readFileSync } from 'node:fs';
import { register } from 'node:module';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';

// Imported by `--import`, on the main thread: register this same file as the hooks module (the
// hooks run on their own thread, where this file is loaded again and registers nothing).
if (isMainThread) register(import.meta.url);

let ts;

/** Resolves `./x.js` imported by a `.ts` file to `./x.ts` when only the TypeScript exists. */
export async function resolve(specifier, context, next) {
  if (context.parentURL?.endsWith('.ts') && specifier.startsWith('.') && specifier.endsWith('.js')) {
    const js = new URL(specifier, context.parentURL);
    const tsUrl = new URL(specifier.replace(/\.js$/, '.ts'), context.parentURL);
    if (!existsSync(fileURLToPath(js)) && existsSync(fileURLToPath(tsUrl))) {
      return { url: tsUrl.href, format: 'module', shortCircuit: true };
    }
  }
  return next(specifier, context);
}

/** Loads a `.ts` file as an ES module, its types stripped by TypeScript. */
export async function load(url, context, next) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return next(url, context);
  ts ??= (await import('typescript')).default;
  const path = fileURLToPath(url);
  const { outputText } = ts.transpileModule(readFileSync(path, 'utf8'), {
    fileName: path,
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      verbatimModuleSyntax: true,
      sourceMap: false,
      inlineSourceMap: true,
      inlineSources: true,
    },
  });
  return { format: 'module', source: outputText, shortCircuit: true };
}
