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
    // the summary first; accounts down, regions across (accounts are the many)
    expect(out.split('\n')[0]).toMatch(/^DRIFT: 8 cells \(8 drift\); 16 actions planned \(read only\)\.$/);
    expect(out).toMatch(/│ Account\s+│ ap-northeast-1\s+│ ap-southeast-2\s+│ eu-west-1\s+│ us-east-1\s+│/);
    expect(out).toMatch(/│ 444444444444 │/);
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

  it.each(['reconcile', 'sweep', 'status', 'report', 'lint', 'cleanup', 'doctor', 'demo', 'sandbox'])(
    '%s --help explains the command, with the global options, the defaults and an example',
    async (command) => {
      const { code, out } = await cli([command, '--help'], WIDE);
      expect(code).toBe(0);
      expect(out).toMatch(new RegExp(`Usage: imagebuilder-reconciler ${command}`));
      expect(out).toMatch(/Examples:\n {2}\$ /);
      expect(out).toMatch(/Global Options:[\s\S]*--endpoint-url <url>[\s\S]*--json[\s\S]*--no-color/);
      // every option that takes a value and has a default says what it is
      const valued = out
        .split('Global Options:')[0]
        ?.split('\n')
        .filter((line) => /^ {2}--[a-z-]+ <[^>]+>/.test(line) && !/--(pipeline|html|plan-out|plan|build|config) </.test(line));
      for (const line of valued ?? []) expect(line).toMatch(/default/);
    },
  );

  it('no command at all shows the help on stderr and exits 2', async () => {
    const { code, out, err } = await cli([], WIDE);
    expect(code).toBe(2);
    expect(out).toBe('');
    expect(err).toMatch(/^Usage: imagebuilder-reconciler \[options\] \[command\]/);
    expect((await cli(['help'], WIDE)).code).toBe(0);
  });

  it('echoes control characters in arguments escaped, never raw', async () => {
    const { code, err } = await cli(['frob\x1b[31mnicate\r'], WIDE);
    expect(code).toBe(2);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what must not be there
    expect(err).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
    expect(err).toContain('frob\\x1b[31mnicate\\x0d');
    const owner = await cli(['lint', 'x.json', '--owner', '12\x07'], WIDE);
    expect(owner.err).toContain('12\\x07');
  });
});
