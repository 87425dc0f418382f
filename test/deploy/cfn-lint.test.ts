/**
 * The templates we ship pass the independent CloudFormation linter (cfn-lint, on these machines and in CI):
 * the packaged serverless.yml stack and every template under infra/.
 * One warning is left out, with its reason: W3005 (a DependsOn that a GetAtt already enforces) is written by
 * the Serverless Framework itself, which adds DependsOn on a function's role.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const IGNORED = ['W3005'];

function cfnLint(...files: string[]): { status: number | null; output: string } {
  const run = spawnSync('cfn-lint', ['--ignore-checks', ...IGNORED, '--', ...files], { encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

describe('cfn-lint', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ibr-cfnlint-'));
  beforeAll(() => {
    execFileSync('npx', ['osls', 'package', '--package', dir], {
      stdio: 'pipe',
      env: { ...process.env, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' },
    });
  }, 180_000);

  it('finds nothing in the packaged stack', () => {
    const result = cfnLint(join(dir, 'cloudformation-template-update-stack.json'));
    expect(result.output).toBe('');
    expect(result.status).toBe(0);
  }, 120_000);

  it('finds nothing in the infra/ templates', () => {
    const templates = readdirSync('infra')
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => join('infra', f));
    expect(templates.length).toBeGreaterThan(0);
    const result = cfnLint(...templates);
    expect(result.output).toBe('');
    expect(result.status).toBe(0);
  }, 120_000);
});
