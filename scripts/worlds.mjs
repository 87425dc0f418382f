// Builds scripts/worlds-main.ts with esbuild and runs it: N random worlds against cleanup's planner.
// Usage: npm run worlds -- [N] [--seed S]
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';

await build({
  entryPoints: { worlds: 'scripts/worlds-main.ts' },
  outdir: 'dist/worlds',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  packages: 'external',
  logLevel: 'warning',
});
const result = spawnSync(process.execPath, ['dist/worlds/worlds.mjs', ...process.argv.slice(2)], { stdio: 'inherit' });
process.exitCode = result.status ?? 1;
