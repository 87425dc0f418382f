/**
 * The package as a binary outside the clone: `npm pack`, then what `npm install -g ./imagebuilder-reconciler-*.tgz`
 * makes of it in a prefix (the package in <prefix>/lib/node_modules, its bin linked in <prefix>/bin), run from
 * a directory that is not the clone. The test installs no dependency from a registry (no network in tests):
 * the clone's node_modules stands for the ones npm would install; everything else comes from the tarball.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildBundles } from '../helpers/build.ts';

const ROOT = new URL('../..', import.meta.url).pathname;

describe('the packed package, installed into a prefix', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ibr-install-'));
  const prefix = join(dir, 'prefix');
  const bin = join(prefix, 'bin', 'imagebuilder-reconciler');
  const elsewhere = join(dir, 'elsewhere');
  const run = (args: string[]) => {
    try {
      return {
        code: 0,
        out: execFileSync(bin, args, { cwd: elsewhere, encoding: 'utf8', stdio: 'pipe', env: { ...process.env, NO_COLOR: '1' } }),
      };
    } catch (error: unknown) {
      const e = error as { status: number | null; stdout: string | null; stderr: string | null; message: string };
      return { code: e.status, out: e.status === null ? e.message : `${e.stdout}${e.stderr}` };
    }
  };

  beforeAll(() => {
    buildBundles();
    const name = execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir, '--silent'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).trim();
    const pkgDir = join(prefix, 'lib', 'node_modules', 'imagebuilder-reconciler');
    mkdirSync(pkgDir, { recursive: true });
    mkdirSync(join(prefix, 'bin'), { recursive: true });
    mkdirSync(elsewhere);
    execFileSync('tar', ['-xzf', join(dir, name.split('\n').at(-1) ?? name), '-C', pkgDir, '--strip-components=1']);
    symlinkSync(join(ROOT, 'node_modules'), join(pkgDir, 'node_modules'));
    const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    const target = join(pkgDir, manifest.bin['imagebuilder-reconciler'] ?? '');
    // npm links the bin and makes its target executable
    chmodSync(target, 0o755);
    symlinkSync(target, bin);
  }, 120_000);

  it('runs as imagebuilder-reconciler from any directory', () => {
    expect(run(['--version'])).toStrictEqual({ code: 0, out: `${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}\n` });
    const help = run(['report', '--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/Usage: imagebuilder-reconciler report/);
    // a command that works offline, on a file of the caller's directory
    writeFileSync(
      join(elsewhere, 'd.json'),
      JSON.stringify({ name: 'd', distributions: [{ region: 'us-est-1', amiDistributionConfiguration: {} }] }),
    );
    const lint = run(['lint', 'd.json']);
    expect(lint.out).toMatch(/us-est-1/);
    expect(run([]).code).toBe(2);
  });
});
