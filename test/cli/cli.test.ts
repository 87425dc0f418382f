/** The command line through its entry point, against the sandbox (no reconciler wired in: the CLI does the work). */
import { StartImagePipelineExecutionCommand } from '@aws-sdk/client-imagebuilder';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';
import { clients, demoScenario, useSandbox } from '../helpers/sandbox.ts';
import { cli } from '../helpers/cli.ts';

/** A wide terminal: these tests read the content (test/cli/errors.test.ts checks that tables fit narrow ones). */
const WIDE = 200;

const fixture = (name: string) => new URL(`../fixtures/lint/${name}.json`, import.meta.url).pathname;

describe('imagebuilder-reconciler CLI', () => {
  let box: Sandbox;
  let arn = '';
  const at = () => ['--endpoint-url', box.url, '--region', 'us-east-1'];
  const sandboxes = useSandbox();

  beforeAll(async () => {
    box = await sandboxes.start({ scenario: demoScenario() });
    const out = await clients(box.url, '111111111111').imagebuilder.send(
      new StartImagePipelineExecutionCommand({ imagePipelineArn: box.refs.get('pipeline:golden-windows'), clientToken: 'cli' }),
    );
    arn = out.imageBuildVersionArn ?? '';
    box.clock.advance(2 * 3600_000);
  });

  it('status shows the matrix read only and exits 3 when cells differ', async () => {
    const { code, out } = await cli(['status', arn, ...at()], WIDE);
    expect(code).toBe(3);
    expect(out).toMatch(/│ Region\s+│ 111111111111\s+│ 222222222222\s+│ 333333333333\s+│ 444444444444/);
    expect(out).toMatch(/eu-west-1/);
    expect(out).toMatch(/tags≠/);
    expect(out).toMatch(/DRIFT: 8 cells/);
    expect(
      box.server.requests.filter((r) =>
        ['CreateTags', 'CreateLaunchTemplateVersion', 'EnableFastLaunch', 'PutParameter'].includes(r.operation),
      ),
    ).toHaveLength(0);
  });

  it('reconcile --plan reports what it would do as JSON on stdout, changes nothing, exits 3', async () => {
    const { code, out, err } = await cli(['reconcile', arn, '--plan', '--json', ...at()], WIDE);
    const report = JSON.parse(out) as ReconcileReport;
    expect(code).toBe(3);
    expect(err).toBe('');
    expect(report.mode).toBe('plan');
    expect(report.actions.every((a) => a.outcome === 'planned')).toBe(true);
    expect(report.actions.length).toBeGreaterThan(5);
  });

  it('reconcile repairs and exits 4 while Fast Launch is enabling, then 0 once converged', async () => {
    const first = await cli(['reconcile', arn, ...at(), '--no-color'], WIDE);
    expect(first.code).toBe(4);
    expect(first.out).toMatch(/create-tags/);
    expect(first.out).toMatch(/PENDING: 8 cells/);
    expect(first.out).toMatch(/no recheck queue configured; run again later/);
    box.clock.advance(10 * 60_000);
    const second = await cli(['reconcile', arn, ...at()], WIDE);
    expect(second.code).toBe(0);
    expect(second.out).toMatch(/CONVERGED: 8 cells \(8 ok\); 0 actions applied, 0 failed\./);
  });

  it('lint reports findings with path and fix, and exits 1 on errors', async () => {
    const { code, out } = await cli(['lint', fixture('aws-guide-update'), '--no-color'], WIDE);
    expect(code).toBe(1);
    expect(out).toMatch(/distributions\[0\]\.amiDistributionConfiguration\.launchPermissions/);
    expect(out).toMatch(/rename it to "launchPermission"/);
    expect(out).toMatch(/3 error\(s\), 0 warning\(s\)\./);
  });

  it('lint exits 0 on a sound file, and prints JSON with --json', async () => {
    expect((await cli(['lint', fixture('good')], WIDE)).code).toBe(0);
    const { code, out } = await cli(['lint', fixture('aws-guide-export'), '--json'], WIDE);
    expect(code).toBe(1);
    expect(JSON.parse(out)).toMatchObject({ counts: { errors: 5, warnings: 1 } });
  });

  it('lint reads a configuration from Image Builder by ARN', async () => {
    const { code, out } = await cli(['lint', box.refs.get('distribution:golden-windows') ?? '', ...at(), '--json'], WIDE);
    const result = JSON.parse(out) as { findings: { rule: string; path: string }[] };
    expect(code).toBe(0);
    // the demo configuration asks for Fast Launch in 333333333333, which Image Builder will not do
    expect(result.findings.map((f) => f.rule)).toContain('fast-launch-cross-account');
  });

  it.each([
    [
      ['reconcile', 'arn:aws:imagebuilder:us-east-1:111111111111:image/golden-windows/1.0.0'],
      /^error: not an image build version ARN: .* \(this is an image version ARN: add the build number/,
    ],
    [['lint', '/nonexistent/config.json'], /^error: cannot read \/nonexistent\/config.json/],
    [['lint', 'package.json', '--owner', '12'], /^error: --owner must be a 12-digit account ID/],
    [['frobnicate'], /^error: unknown command 'frobnicate' \(see --help\)$/],
    [['status'], /^error: missing required argument 'image-build-arn' \(see --help\)$/],
    [['revoke', 'arn:aws:imagebuilder:us-east-1:111111111111:image/golden-windows/1.0.0'], /^error: not an image build version ARN: /],
    [
      ['revoke', 'arn:aws:imagebuilder:us-east-1:111111111111:image/golden-windows/1.0.0/1', '--reason', 'x'.repeat(201)],
      /^error: --reason: at most 200 characters/,
    ],
    [['unrevoke'], /^error: missing required argument 'image-build-arn' \(see --help\)$/],
  ])('bad input %j gets one clear line on stderr and exit 2', async (args, message) => {
    const { code, err, out } = await cli([...args], WIDE);
    expect(code).toBe(2);
    expect(out).toBe('');
    const lines = err.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
  });

  it('lint of a file that is not JSON is bad input', async () => {
    const { code, err } = await cli(['lint', new URL('../../README.md', import.meta.url).pathname], WIDE);
    expect(code).toBe(2);
    expect(err).toMatch(/^error: .*README\.md is not JSON/);
  });

  it.each(['reconcile', 'status', 'lint', 'cleanup', 'demo', 'sandbox'])('%s --help explains the command', async (command) => {
    const { code, out } = await cli([command, '--help'], WIDE);
    expect(code).toBe(0);
    expect(out).toMatch(new RegExp(`Usage: imagebuilder-reconciler ${command}`));
    if (!['demo', 'sandbox'].includes(command)) expect(out).toMatch(/Examples:/);
  });
});
