import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';

/**
 * Build the Lambda bundles and the CLI once for the whole run, before any test file starts: every
 * end-to-end file runs the same bundles, and building them in each file cost about 7 s per file.
 */
export default function setup(project: TestProject): void {
  execFileSync('node', ['scripts/build.mjs', '--quiet'], { stdio: 'pipe' });
  project.provide('bundlesBuilt', true);
}

declare module 'vitest' {
  export interface ProvidedContext {
    bundlesBuilt: boolean;
  }
}
