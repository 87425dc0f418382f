// Builds the benchmark (bench/) with esbuild and runs it; arguments go to bench/main.ts.
// Usage: npm run bench -- [--sizes 10,100,1000] [--full] [--latency 50] [--json [file]] [--env KEY=VALUE]
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';

// the Lambda bundles, whose import time the bench measures
const built = spawnSync(process.execPath, ['scripts/build.mjs', '--quiet'], { stdio: 'inherit' });
if (built.status !== 0) process.exit(built.status ?? 1);

await build({
  entryPoints: { main: 'bench/main.ts', runner: 'bench/runner.ts' },
  outdir: 'dist/bench',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  packages: 'external',
  logLevel: 'warning',
});
const result = spawnSync(process.execPath, ['dist/bench/main.mjs', ...process.argv.slice(2)], { stdio: 'inherit' });
process.exitCode = result.status ?? 1;
