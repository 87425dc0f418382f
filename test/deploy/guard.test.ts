/**
 * Packaging refuses mistakes: a mistyped param fails `osls package` naming the param and the values it allows,
 * and the bundles are rebuilt from the source first, so a stale dist/ cannot ship. Both run on a copy of the
 * service whose dist/ holds stale bundles, so the checkout's own dist/ is not touched.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const FUNCTIONS = ['reconcile', 'recheck', 'cleanup', 'cleanup-on-change', 'sweep', 'gate'];
const STALE = 'export const handler = () => "stale bundle";\n';

/** A copy of the service (its files linked) with stale bundles in dist/. */
function staleCopy(): string {
  const root = mkdtempSync(join(tmpdir(), 'ibr-guard-'));
  for (const file of ['serverless.yml', 'package.json']) copyFileSync(file, join(root, file));
  for (const dir of ['src', 'scripts', 'node_modules']) symlinkSync(resolve(dir), join(root, dir));
  for (const name of FUNCTIONS) {
    mkdirSync(join(root, 'dist', 'lambda', name), { recursive: true });
    writeFileSync(join(root, 'dist', 'lambda', name, 'index.mjs'), STALE);
  }
  return root;
}

function osls(root: string, ...args: string[]) {
  return spawnSync(process.execPath, [resolve('node_modules/osls/bin/serverless.js'), 'package', ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', SLS_TELEMETRY_DISABLED: '1' },
  });
}

describe('packaging guards', () => {
  let root: string;
  beforeAll(() => {
    root = staleCopy();
  });

  it('refuses a mistyped param, naming it and the values it allows, and packages nothing', () => {
    const out = join(root, 'typo');
    const run = osls(root, '--package', out, '--param=cleanupMode=aply', '--param=organizationId=org-1');
    expect(run.status).not.toBe(0);
    const text = `${run.stdout}${run.stderr}`;
    expect(text).toMatch(/param cleanupMode: RECONCILER_CLEANUP_MODE must be one of off, plan, apply, got "aply"/);
    expect(text).toMatch(/param organizationId: must be '' or an organization id/);
    expect(spawnSync('ls', [out]).status).not.toBe(0);
  }, 120_000);

  it('rebuilds the bundles: a stale dist/ does not ship', () => {
    const out = join(root, 'package');
    const run = osls(root, '--package', out);
    expect(run.status, `${run.stdout}${run.stderr}`).toBe(0);
    const shipped = execFileSync('unzip', ['-p', join(out, 'reconcile.zip'), 'dist/lambda/reconcile/index.mjs'], {
      encoding: 'utf8',
      maxBuffer: 16 * 1024 * 1024,
    });
    expect(shipped).not.toBe(STALE);
    expect(shipped).toBe(readFileSync(join(root, 'dist', 'lambda', 'reconcile', 'index.mjs'), 'utf8'));
    expect(shipped.length).toBeGreaterThan(100_000);
  }, 180_000);
});
