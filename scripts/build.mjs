// Builds one esbuild bundle per Lambda function (only what it imports), the CLI, and the demo (the sandbox's
// harness, which the CLI's `demo` and `sandbox` commands load from dist/demo/ only when asked).
// The Lambda bundles take the ES module builds of their dependencies (`module` before `main`), which
// esbuild can tree-shake: of the AWS SDK clients only the commands the code sends are kept (the CommonJS
// builds keep every command: 2.1 MB a bundle instead of 1.1 MB). Source maps are written apart, to
// dist/sourcemaps/<function>/, so that they are not deployed with the code.
// Usage: node scripts/build.mjs [--quiet]
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
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

/**
 * The AWS SDK's generated schema modules (`dist-es/schemas/schemas_0.js`) describe every shape of the service
 * as a top-level array, with member traits written as computed keys (`{ [_xN]: _sIn }`) over module-level
 * string constants. esbuild cannot prove that a computed key has no side effect, so it keeps every shape:
 * EC2's 2,175 shapes (about 550 KiB) in every bundle, whatever commands the code sends. Writing each key
 * that names one of the module's own `const _x = "…"` strings as that string literal changes nothing at run
 * time (a string constant is its own property key) and lets esbuild drop the shapes no command reaches.
 */
const sdkSchemaKeys = {
  name: 'sdk-schema-literal-keys',
  setup(b) {
    b.onLoad(
      { filter: /[\\/]@aws-sdk[\\/][^\\/]+[\\/]dist-es[\\/](?:submodules[\\/][^\\/]+[\\/])?schemas[\\/]schemas_\d+\.js$/ },
      async (args) => {
        const source = await readFile(args.path, 'utf8');
        const strings = new Map();
        for (const m of source.matchAll(/^const (_[A-Za-z0-9_]+) = ("(?:[^"\\\n]|\\.)*");$/gm)) strings.set(m[1], m[2]);
        const contents = source.replace(/\[(_[A-Za-z0-9_]+)\]:/g, (key, name) => (strings.has(name) ? `${strings.get(name)}:` : key));
        return { contents, loader: 'js' };
      },
    );
  },
};

/**
 * `import { z } from 'zod'` binds zod's namespace object as a value, so esbuild keeps all of zod (JSON Schema
 * conversion included, about 120 KiB); `import * as z from 'zod'` names the same exports and lets esbuild keep
 * only the ones used. Our code imports it that way; this rewrites Powertools Parser's imports to match.
 */
const zodNamespaceImports = {
  name: 'zod-namespace-imports',
  setup(b) {
    b.onLoad({ filter: /[\\/]@aws-lambda-powertools[\\/]parser[\\/].*\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const contents = source
        .replace(/^import \{ z \} from 'zod';$/gm, "import * as z from 'zod';")
        .replace(/^import \{ ZodError, z \} from 'zod';$/gm, "import * as z from 'zod';\nimport { ZodError } from 'zod';");
      return { contents, loader: 'js' };
    });
  },
};

const quiet = process.argv.includes('--quiet');
const functions = ['reconcile', 'recheck', 'cleanup', 'cleanup-on-change', 'sweep', 'gate'];
const banner = { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" };

const DEMO = 'sandbox/harness/demo.ts';
const withDemo = existsSync(DEMO);

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
      // no keepNames: every error class here and in the SDK and Powertools sets its `name` itself, and keeping
      // every function's name costs each bundle about 60 KiB of __name() calls
      minify: true,
      legalComments: 'none',
      mainFields: ['module', 'main'],
      sourcemap: 'external',
      plugins: [zodEnglishOnly, zodNamespaceImports, sdkSchemaKeys],
      // Lambda gives credentials in the environment only: see src/handlers/shared/credential-provider.ts
      alias: { '@aws-sdk/credential-provider-node': './src/handlers/shared/credential-provider.ts' },
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
  // the demo needs the sandbox: a copy of the service without it (the packaging guard's) builds the rest
  ...(withDemo
    ? [
        build({
          entryPoints: [DEMO],
          outfile: 'dist/demo/index.mjs',
          bundle: true,
          platform: 'node',
          target: 'node20',
          format: 'esm',
          packages: 'external',
          logLevel: 'warning',
        }),
      ]
    : []),
]);
if (!quiet) {
  for (const name of functions) {
    const size = statSync(`dist/lambda/${name}/index.mjs`).size;
    console.log(`dist/lambda/${name}/index.mjs  ${(size / 1024).toFixed(0)} KiB`);
  }
  for (const file of ['dist/cli/index.mjs', ...(withDemo ? ['dist/demo/index.mjs'] : [])])
    console.log(`${file}  ${(statSync(file).size / 1024).toFixed(0)} KiB`);
  console.log(`built in ${Date.now() - started} ms`);
}
