/**
 * Cleanup end to end on the sandbox: a region removed from the configuration; the CloudTrail-triggered run
 * plans and deletes nothing; `cleanup --apply` from the CLI deregisters only the AMI nothing protects.
 */
import {
  CreateLaunchTemplateCommand,
  CreateTagsCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  EnableImageDeregistrationProtectionCommand,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import {
  GetDistributionConfigurationCommand,
  GetImageCommand,
  StartImagePipelineExecutionCommand,
  UpdateDistributionConfigurationCommand,
} from '@aws-sdk/client-imagebuilder';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import type { CleanupReport } from '../../src/lib/cleanup/cleanup.ts';
import { buildBundles } from '../helpers/build.ts';
import { clients, demoScenario, useSandbox } from '../helpers/sandbox.ts';
import { schemaErrors, validateCleanupReport } from '../helpers/schema.ts';
import { cli } from '../helpers/cli.ts';

const OWNER = '111111111111';
const A = '222222222222';
const REMOVED = 'ap-northeast-1';

describe('cleanup end to end on the sandbox', () => {
  let box: Sandbox;
  const copies: string[] = [];
  let configArn = '';
  const sandboxes = useSandbox();

  beforeAll(async () => {
    buildBundles();
    box = await sandboxes.start({ scenario: demoScenario(), wire: true, clockSpeed: 3000 });
    const ib = clients(box.url, OWNER).imagebuilder;
    const builds: string[] = [];
    for (let i = 1; i <= 5; i += 1) {
      const out = await ib.send(
        new StartImagePipelineExecutionCommand({ imagePipelineArn: box.refs.get('pipeline:golden-windows'), clientToken: `b${i}` }),
      );
      builds.push(out.imageBuildVersionArn ?? '');
    }
    box.clock.advance(3 * 3600_000);
    for (const arn of builds) await box.finalReport(arn, 30_000);
    await box.idle();
    for (const arn of builds) {
      const image = (await ib.send(new GetImageCommand({ imageBuildVersionArn: arn }))).image;
      copies.push(image?.outputResources?.amis?.find((a) => a.region === REMOVED && a.accountId === A)?.image ?? '');
    }
    // a week and a day later (past the minimum age of 7 days, on the clock the functions share with AWS)
    box.clock.advance(8 * 86_400_000);
    await box.idle();
    // what keeps copies 1-4 in use or protected, as their owner would set it up
    const ec2 = clients(box.url, A, REMOVED).ec2;
    await ec2.send(new RunInstancesCommand({ ImageId: copies[0], MinCount: 1, MaxCount: 1 }));
    await ec2.send(new EnableImageDeregistrationProtectionCommand({ ImageId: copies[1] }));
    await ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: 'batch', LaunchTemplateData: { ImageId: copies[2] } }));
    await ec2.send(
      new CreateTagsCommand({ Resources: [copies[3] ?? ''], Tags: [{ Key: 'imagebuilder-reconciler:keep', Value: 'audit' }] }),
    );

    // the region is removed from the configuration: CloudTrail → the cleanup rule (plan mode by default)
    configArn = box.refs.get('distribution:golden-windows') ?? '';
    const current = await ib.send(new GetDistributionConfigurationCommand({ distributionConfigurationArn: configArn }));
    await ib.send(
      new UpdateDistributionConfigurationCommand({
        distributionConfigurationArn: configArn,
        distributions: current.distributionConfiguration?.distributions?.filter((d) => d.region !== REMOVED),
        clientToken: 'remove',
      }),
    );
    await box.idle();
  }, 120_000);

  async function exists(imageId: string): Promise<boolean> {
    const out = await clients(box.url, A, REMOVED).ec2.send(
      new DescribeImagesCommand({ Filters: [{ Name: 'image-id', Values: [imageId] }], IncludeDisabled: true }),
    );
    // a deregistered AMI stays in the results as `deregistered` for a short interval (DescribeImages)
    return (out.Images ?? []).some((i) => i.State !== 'deregistered');
  }

  it('the CloudTrail-triggered run plans, deletes nothing, and reports every candidate with its reason', async () => {
    const event = box.state.events.find((e) => e.detailType === 'Image Builder Cleanup Report');
    const report = event?.detail as CleanupReport | undefined;
    expect(report).toMatchObject({ trigger: 'eventbridge', mode: 'plan', counts: { candidates: 5, planned: 1, deregistered: 0 } });
    expect(schemaErrors(validateCleanupReport, report)).toStrictEqual([]);
    for (const copy of copies) expect(await exists(copy)).toBe(true);
    const byImage = new Map(report?.candidates.map((c) => [c.imageId, c]));
    expect(byImage.get(copies[0] ?? '')).toMatchObject({
      decision: 'skip',
      guard: 'in-use',
      reason: expect.stringMatching(/ec2:Instance/),
    });
    expect(byImage.get(copies[1] ?? '')).toMatchObject({ decision: 'skip', guard: 'protected' });
    expect(byImage.get(copies[2] ?? '')).toMatchObject({
      decision: 'skip',
      guard: 'in-use',
      reason: expect.stringMatching(/ec2:LaunchTemplate/),
    });
    expect(byImage.get(copies[3] ?? '')).toMatchObject({
      decision: 'skip',
      guard: 'keep-tag',
      reason: 'tagged imagebuilder-reconciler:keep=audit',
    });
    expect(byImage.get(copies[4] ?? '')).toMatchObject({ decision: 'deregister', outcome: 'planned' });
    // AMIs in cells still configured are never candidates
    expect(report?.candidates.filter((c) => c.region !== REMOVED).every((c) => c.guard === 'current-cell')).toBe(true);
  });

  it('cleanup --apply deregisters the orphaned AMI and its snapshot; the protected ones survive, each with its reason', async () => {
    const snapshot =
      (await clients(box.url, A, REMOVED).ec2.send(new DescribeImagesCommand({ ImageIds: [copies[4] ?? ''] }))).Images?.[0]
        ?.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId ?? '';
    const { code, out } = await cli(['cleanup', configArn, '--apply', '--json', '--endpoint-url', box.url, '--region', 'us-east-1']);
    const report = JSON.parse(out) as CleanupReport;
    expect(code).toBe(3);
    expect(schemaErrors(validateCleanupReport, report)).toStrictEqual([]);
    expect(report.counts).toMatchObject({ candidates: 5, deregistered: 1, failed: 0 });
    expect(report.candidates.find((c) => c.imageId === copies[4])).toMatchObject({
      outcome: 'done',
      verified: 'gone',
      snapshots: [{ snapshotId: snapshot, sizeGiB: 30, result: 'success' }],
    });
    expect(report.snapshotsDeleted).toBe(1);
    expect(report.gibFreed).toBe(30);
    expect(report.estimatedMonthlySavingUsd).toBe(1.5);
    expect(await exists(copies[4] ?? '')).toBe(false);
    await expect(clients(box.url, A, REMOVED).ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshot] }))).rejects.toMatchObject({
      name: 'InvalidSnapshot.NotFound',
    });
    for (const copy of copies.slice(0, 4)) expect(await exists(copy)).toBe(true);
  });

  it('running apply again changes nothing', async () => {
    const { code, out } = await cli(['cleanup', configArn, '--apply', '--json', '--endpoint-url', box.url, '--region', 'us-east-1']);
    const report = JSON.parse(out) as CleanupReport;
    expect(code).toBe(0);
    expect(report.counts).toMatchObject({ deregistered: 0, disabled: 0, deprecated: 0, failed: 0 });
    expect(report.candidates.find((c) => c.imageId === copies[4])).toMatchObject({ decision: 'skip', guard: 'gone' });
    for (const copy of copies.slice(0, 4)) expect(await exists(copy)).toBe(true);
  });

  it('prints a readable plan by default', async () => {
    const { code, out } = await cli(['cleanup', configArn, '--endpoint-url', box.url, '--region', 'us-east-1', '--no-color', '--wide']);
    expect(code).toBe(0);
    expect(out).toMatch(/PLAN: 5 AMI\(s\) in removed cells/);
    expect(out).toMatch(/keep \(in-use\)/);
    expect(out).toMatch(/keep \(protected\)/);
  });

  it('rejects an ARN of the wrong shape with one clear line and exit 2', async () => {
    const { code, err } = await cli([
      'cleanup',
      'arn:aws:imagebuilder:us-east-1:111111111111:image-pipeline/golden-windows',
      '--endpoint-url',
      box.url,
    ]);
    expect(code).toBe(2);
    expect(err.trim()).toMatch(/^error: not a distribution configuration ARN/);
    expect(err.split('\n').filter((l) => l.trim() !== '')).toHaveLength(1);
  });
});
