// Builds one esbuild bundle per Lambda function (only what it imports) and the CLI.
// Usage: node scripts/build.mjs [--quiet]
import { statSync } from 'node:fs';
import { build } from 'esbuild';

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
      banner,
      logLevel: 'warning',
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
