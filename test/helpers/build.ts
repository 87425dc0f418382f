import { execFileSync } from 'node:child_process';

let built = false;

/** Build the Lambda bundles the sandbox runs (once per test process). */
function buildBundles(): void {
  if (built) return;
  execFileSync('node', ['scripts/build.mjs', '--quiet'], { stdio: 'pipe' });
  built = true;
}

export { buildBundles };
