import { execFileSync } from 'node:child_process';
import { inject } from 'vitest';

let built = false;

/**
 * Make sure the Lambda bundles the sandbox runs exist. The global setup builds them once per run; a
 * test process started without it (an editor's runner, say) builds them itself, once.
 */
function buildBundles(): void {
  if (built || inject('bundlesBuilt')) return;
  execFileSync('node', ['scripts/build.mjs', '--quiet'], { stdio: 'pipe' });
  built = true;
}

export { buildBundles };
