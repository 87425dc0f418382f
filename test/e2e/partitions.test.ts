/**
 * The whole demo in China and in GovCloud: the sandbox answers with the partition's ARNs (arn:aws-cn:,
 * arn:aws-us-gov:), the deployment's rule matches that partition's image ARNs, the reconciler assumes the
 * target roles by that partition's ARNs, and every cell converges as it does in the aws partition.
 */
import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
import { StartImagePipelineExecutionCommand } from '@aws-sdk/client-imagebuilder';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import type { Scenario } from '../../sandbox/harness/scenario.ts';
import { buildBundles } from '../helpers/build.ts';
import { schemaErrors, validateReconcileReport } from '../helpers/schema.ts';
import { DEMO_OWNER, clients, demoScenario, finished, useSandbox } from '../helpers/sandbox.ts';

/** The demo moved to a partition: its four regions mapped to that partition's, every ARN in it rewritten. */
function demoIn(partition: string, regions: Record<string, string>): Scenario {
  let text = JSON.stringify(demoScenario()).replaceAll('arn:aws:', `arn:${partition}:`);
  for (const [from, to] of Object.entries(regions)) text = text.replaceAll(`"${from}"`, `"${to}"`);
  const scenario = JSON.parse(text) as Scenario;
  scenario.regions = [...new Set(scenario.regions)];
  return scenario;
}

describe.each([
  [
    'aws-cn',
    { 'us-east-1': 'cn-north-1', 'eu-west-1': 'cn-northwest-1', 'ap-southeast-2': 'cn-northwest-1', 'ap-northeast-1': 'cn-north-1' },
  ],
  [
    'aws-us-gov',
    { 'us-east-1': 'us-gov-west-1', 'eu-west-1': 'us-gov-east-1', 'ap-southeast-2': 'us-gov-east-1', 'ap-northeast-1': 'us-gov-west-1' },
  ],
])('the demo in the %s partition', (partition, regions) => {
  let box: Sandbox | undefined;
  beforeAll(() => buildBundles(), 120_000);
  const sandboxes = useSandbox('each');

  it('converges every cell, with ARNs of the partition throughout', async () => {
    const scenario = demoIn(partition, regions);
    // two of the demo's distributions now share a region: keep one distribution per region, as Image Builder requires
    const config = scenario.imagebuilder?.distributions?.[0];
    if (config !== undefined)
      config.distributions = (config.distributions ?? []).filter((d, i, all) => all.findIndex((o) => o.region === d.region) === i);
    box = await sandboxes.start({ scenario, wire: true, clockSpeed: 3000 });
    const home = regions['us-east-1'];
    const started = await clients(box.url, DEMO_OWNER, home).imagebuilder.send(
      new StartImagePipelineExecutionCommand({
        imagePipelineArn: box.refs.get('pipeline:golden-windows'),
        clientToken: `partition-${partition}`,
      }),
    );
    const arn = started.imageBuildVersionArn ?? '';
    expect(arn).toMatch(new RegExp(`^arn:${partition}:imagebuilder:${home}:${DEMO_OWNER}:image/golden-windows/`));
    const final = await finished(box, arn);

    expect(final.outcome).toBe('converged');
    expect(schemaErrors(validateReconcileReport, final)).toStrictEqual([]);
    expect(final.cells.length).toBeGreaterThanOrEqual(5);
    expect(
      final.cells.every((c) => c.status === 'ok'),
      JSON.stringify(final.cells.filter((c) => c.status !== 'ok')),
    ).toBe(true);
    // target accounts were reached through their role, by its ARN in this partition
    const assumed = box.server.requests.filter((r) => r.operation === 'AssumeRole' && r.status === 200);
    expect(assumed.length).toBeGreaterThan(0);
    expect(
      box.server.requests.filter((r) => r.principal !== undefined).every((r) => r.principal?.startsWith(`arn:${partition}:iam::`) === true),
    ).toBe(true);
    // the amiTags reached a target account's copy
    const target = final.cells.find((c) => c.origin === 'target' && c.accountId !== DEMO_OWNER && c.imageId !== null);
    const out = await clients(box.url, target?.accountId ?? '', target?.region).ec2.send(
      new DescribeImagesCommand({ ImageIds: [target?.imageId ?? ''] }),
    );
    expect(Object.fromEntries((out.Images?.[0]?.Tags ?? []).map((t) => [t.Key, t.Value]))).toMatchObject({
      Team: 'platform',
      'imagebuilder-reconciler:source-image': arn,
    });
  });
});
