/**
 * The drift sweep end to end on the sandbox: the schedule rule of serverless.yml invokes the real sweep bundle
 * on simulated time, and it makes up a build whose events never arrived and repairs drift made by hand later.
 * The CLI's `sweep` and `reconcile --pipeline` do the same on demand.
 */
import { DeleteTagsCommand, DescribeImagesCommand } from '@aws-sdk/client-ec2';
import { GetImageCommand } from '@aws-sdk/client-imagebuilder';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';
import { latestAvailable, type SweepReport } from '../../src/lib/sweep/sweep.ts';
import { buildBundles } from '../helpers/build.ts';
import { waitFor } from '../helpers/wait.ts';
import { clients, demoScenario, startBuild, useSandbox } from '../helpers/sandbox.ts';
import { cli } from '../helpers/cli.ts';

const OWNER = '111111111111';
const A = '222222222222';
const PIPELINE = 'arn:aws:imagebuilder:us-east-1:111111111111:image-pipeline/golden-windows';
const SIX_HOURS = 6 * 3600_000;

async function copyIn(box: Sandbox, arn: string, account: string, region: string): Promise<string> {
  const out = await clients(box.url, OWNER).imagebuilder.send(new GetImageCommand({ imageBuildVersionArn: arn }));
  const ami = out.image?.outputResources?.amis?.find((a) => a.accountId === account && a.region === region)?.image;
  if (ami === undefined) throw new Error(`no copy in ${account}/${region}`);
  return ami;
}

async function tagsOf(box: Sandbox, account: string, region: string, imageId: string): Promise<Record<string, string>> {
  const out = await clients(box.url, account, region).ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
  return Object.fromEntries((out.Images?.[0]?.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
}

describe('the scheduled sweep', () => {
  let _box: Sandbox | undefined;
  beforeAll(() => buildBundles());
  const sandboxes = useSandbox('each');

  it('reconciles a build whose events never arrived, then repairs a tag deleted by hand, on the sweepRate schedule', async () => {
    const b = await sandboxes.start({ scenario: demoScenario(), wire: true, clockSpeed: 3000 });
    _box = b;
    // every event of the build is lost (held far longer than the test runs)
    b.faults.merge({
      eventDelays: [{ resourcePrefix: 'arn:aws:imagebuilder:us-east-1:111111111111:image/golden-windows/', seconds: 3650 * 86_400 }],
    });
    const arn = await startBuild(b, 'sweep-lost');
    b.clock.advance(2 * 3600_000);
    await b.idle();
    expect(b.reports(arn)).toHaveLength(0);
    const copy = await copyIn(b, arn, A, 'eu-west-1');
    expect(await tagsOf(b, A, 'eu-west-1', copy)).not.toHaveProperty('Team');

    // serverless.yml: sweepRate rate(6 hours); the first sweep runs six hours after the deployment
    b.clock.advance(SIX_HOURS - 2 * 3600_000);
    const swept = await b.finalReport(arn, 30_000);
    await b.idle();
    expect(b.wiring?.invocations.filter((i) => i.function === 'sweep' && i.trigger === 'schedule')).not.toHaveLength(0);
    expect(swept?.trigger).toMatch(/schedule|sqs/);
    expect(b.reports(arn)[0]?.trigger).toBe('schedule');
    expect(await tagsOf(b, A, 'eu-west-1', copy)).toMatchObject({ Team: 'platform', 'imagebuilder-reconciler:source-image': arn });

    // later drift: someone deletes a tag; the next sweep puts it back
    await clients(b.url, A, 'eu-west-1').ec2.send(new DeleteTagsCommand({ Resources: [copy], Tags: [{ Key: 'Team' }] }));
    const before = b.reports(arn).length;
    b.clock.advance(SIX_HOURS);
    await b.idle();
    await waitFor('the scheduled sweep to report', () => b.reports(arn).length > before, { timeoutMs: 5000 });
    await b.idle();
    const repair = b
      .reports(arn)
      .slice(before)
      .find((r) => r.trigger === 'schedule');
    expect(
      repair?.actions.filter((a) => a.kind === 'create-tags' && a.accountId === A && a.region === 'eu-west-1').map((a) => a.outcome),
    ).toStrictEqual(['applied']);
    expect(await tagsOf(b, A, 'eu-west-1', copy)).toMatchObject({ Team: 'platform' });
  });
});

describe('sweep and reconcile --pipeline from the command line', () => {
  let box: Sandbox;
  let second = '';
  const sandboxes = useSandbox();
  beforeAll(async () => {
    box = await sandboxes.start({ scenario: demoScenario() });
    await startBuild(box, 'cli-sweep-1');
    box.clock.advance(2 * 3600_000);
    second = await startBuild(box, 'cli-sweep-2');
    box.clock.advance(2 * 3600_000);
  });

  it('reconcile --pipeline reconciles the latest AVAILABLE build', async () => {
    const { code, out } = await cli(
      ['reconcile', '--pipeline', PIPELINE, '--plan', '--json', '--endpoint-url', box.url, '--region', 'us-east-1'],
      200,
    );
    expect(code).toBe(3);
    expect((JSON.parse(out) as ReconcileReport).image.arn).toBe(second);
  });

  it('sweep --plan lists every pipeline with its latest build and what it would do', async () => {
    const json = await cli(['sweep', '--plan', '--json', '--endpoint-url', box.url, '--region', 'us-east-1'], 200);
    expect(json.code).toBe(3);
    const report = JSON.parse(json.out) as SweepReport;
    expect(report.pipelines).toStrictEqual([
      { pipelineArn: PIPELINE, imageBuildVersionArn: second, outcome: 'drift', note: null, error: null },
    ]);
    expect(report.reports[0]?.trigger).toBe('cli');
    const human = await cli(['sweep', '--plan', '--no-color', '--endpoint-url', box.url, '--region', 'us-east-1'], 200);
    expect(human.out).toMatch(/golden-windows +│ golden-windows\/1\.0\.0\/2 +│ drift/);
    expect(human.out).toMatch(/SWEEP: 1 pipeline \(1 drift\) \(plan mode: nothing changed\)\./);
    expect(box.server.requests.filter((r) => r.operation === 'CreateTags')).toHaveLength(0);
  });

  it('a pipeline ARN of the wrong shape is bad input', async () => {
    const { code, err } = await cli(
      ['sweep', '--pipeline', 'arn:aws:imagebuilder:us-east-1:111111111111:image/golden-windows/1.0.0/1', '--endpoint-url', box.url],
      200,
    );
    expect(code).toBe(2);
    expect(err).toMatch(/^error: not an image pipeline ARN/);
    const both = await cli(['reconcile', second, '--pipeline', PIPELINE, '--endpoint-url', box.url], 200);
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/^error: give an image build ARN or --pipeline <arn>, not both/);
  });

  it('a pipeline with no AVAILABLE build: one line, exit 1', async () => {
    const { code, err } = await cli(
      ['reconcile', '--pipeline', PIPELINE.replace('golden-windows', 'nothing-yet'), '--endpoint-url', box.url, '--region', 'us-east-1'],
      200,
    );
    expect(code).toBe(1);
    expect(err.trim().split('\n')).toHaveLength(1);
  });
});

describe('latestAvailable', () => {
  it('without dateCreated, takes the highest version, then build number, of the AVAILABLE builds only', () => {
    const s = (arn: string, status: string) =>
      ({ arn: `arn:aws:imagebuilder:us-east-1:111111111111:image/x/${arn}`, state: { status } }) as never;
    expect(
      latestAvailable([
        s('1.0.0/3', 'AVAILABLE'),
        s('1.10.0/1', 'AVAILABLE'),
        s('1.2.0/9', 'AVAILABLE'),
        s('2.0.0/1', 'FAILED'),
        s('1.10.0/2', 'BUILDING'),
      ]),
    ).toBe('arn:aws:imagebuilder:us-east-1:111111111111:image/x/1.10.0/1');
    expect(latestAvailable([s('1.0.0/1', 'FAILED')])).toBeUndefined();
  });

  it('takes the newest by dateCreated when Image Builder gives it: a pipeline pointed back at a lower recipe version', () => {
    const s = (arn: string, status: string, dateCreated: string) =>
      ({ arn: `arn:aws:imagebuilder:us-east-1:111111111111:image/x/${arn}`, state: { status }, dateCreated }) as never;
    const builds = [
      s('2.0.0/1', 'AVAILABLE', '2026-11-29T10:00:00.000Z'),
      s('1.0.0/2', 'AVAILABLE', '2026-11-29T12:00:00.000Z'),
      s('1.0.0/3', 'BUILDING', '2026-11-29T13:00:00.000Z'),
    ];
    expect(latestAvailable(builds)).toBe('arn:aws:imagebuilder:us-east-1:111111111111:image/x/1.0.0/2');
  });
});
