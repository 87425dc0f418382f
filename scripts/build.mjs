// Builds one esbuild bundle per Lambda function (only what it imports) and the CLI.
// The Lambda bundles take the ES module builds of their dependencies (`module` before `main`), which
// esbuild can tree-shake: of the AWS SDK clients only the commands the code sends are kept (the CommonJS
// builds keep every command: 2.1 MB a bundle instead of 1.1 MB). Source maps are written apart, to
// dist/sourcemaps/<function>/, so that they are not deployed with the code.
// Usage: node scripts/build.mjs [--quiet]
import { mkdirSync, renameSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { build } from 'esbuild';

/**
 * zod re-exports every message locale as `z.locales` (about 200 KiB minified), and a namespace object
 * defeats tree-shaking. The reconciler's messages are English, zod's default (it configures `en` itself),
 * so the bundles keep only that locale.
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, (args) => ({
      contents: 'export { default as en } from "./en.js";\n',
      resolveDir: dirname(args.path),
      loader: 'js',
    }));
  },
};

const quiet = process.argv.includes('--quiet');
const functions = ['reconcile', 'recheck', 'cleanup', 'cleanup-on-change', 'sweep'];
const banner = { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" };

const started = Date.now();
await Promise.all([
  ...functions.map((name) =>
    build({
      entryPoints: [`src/handlers/${name}.ts`],
      outfile: `dist/lambda/${name}/index.mjs`,
      bundle: true,
      platform: 'node',
      target: 'node22',
      format: 'esm',
      minify: true,
      keepNames: true,
      legalComments: 'none',
      mainFields: ['module', 'main'],
      sourcemap: 'external',
      plugins: [zodEnglishOnly],
      banner,
      logLevel: 'warning',
    }).then(() => {
      mkdirSync(`dist/sourcemaps/${name}`, { recursive: true });
      renameSync(`dist/lambda/${name}/index.mjs.map`, `dist/sourcemaps/${name}/index.mjs.map`);
    }),
  ),
  build({
    entryPoints: ['src/cli/index.ts'],
    outfile: 'dist/cli/index.mjs',
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    packages: 'external',
    banner: { js: '#!/usr/bin/env node' },
    logLevel: 'warning',
  }),
]);
if (!quiet) {
  for (const name of functions) {
    const size = statSync(`dist/lambda/${name}/index.mjs`).size;
    console.log(`dist/lambda/${name}/index.mjs  ${(size / 1024).toFixed(0)} KiB`);
  }
  console.log(`built in ${Date.now() - started} ms`);
}
