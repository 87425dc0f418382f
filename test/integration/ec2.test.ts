/** EC2 in the sandbox, through the real SDK client. */
import {
  CreateLaunchTemplateCommand,
  CreateLaunchTemplateVersionCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeleteTagsCommand,
  DeregisterImageCommand,
  DescribeFastLaunchImagesCommand,
  DescribeImageAttributeCommand,
  DescribeImageReferencesCommand,
  DescribeImagesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeRegionsCommand,
  DescribeSnapshotsCommand,
  DisableImageCommand,
  EnableFastLaunchCommand,
  EnableImageDeregistrationProtectionCommand,
  ModifyImageAttributeCommand,
  ModifyLaunchTemplateCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { DEREGISTERED_VISIBLE_MS } from '../../sandbox/emulator/services/ec2/access.ts';
import { createClientFactory } from '../../src/lib/aws/clients.ts';
import { loadConfig } from '../../src/lib/core/config.ts';
import { apply } from '../../src/lib/reconcile/apply.ts';
import type { Action, Plan } from '../../src/lib/reconcile/types.ts';
import { clients, smallScenario, useSandbox } from '../helpers/sandbox.ts';

const OWNER = '111111111111';
const OTHER = '222222222222';

describe('sandbox EC2', () => {
  let box: Sandbox;
  let ec2: ReturnType<typeof clients>['ec2'];
  let other: ReturnType<typeof clients>['ec2'];
  const ami = (ref: string) => box.refs.get(`ami:${ref}`) ?? '';
  const sandboxes = useSandbox();

  beforeAll(async () => {
    const scenario = smallScenario();
    scenario.images = [
      { ref: 'win', account: OWNER, region: 'us-east-1', name: 'win-base', platform: 'windows', tags: { Team: 'platform' } },
      { ref: 'linux', account: OWNER, region: 'us-east-1', name: 'linux-base' },
      ...Array.from({ length: 12 }, (_, i) => ({ ref: `bulk${i}`, account: OWNER, region: 'us-east-1', name: `bulk-${i}` })),
    ];
    box = await sandboxes.start({ scenario });
    ec2 = clients(box.url, OWNER).ec2;
    other = clients(box.url, OTHER).ec2;
  });

  it('describes images by id, owner, name wildcard and tag, with NextToken pagination', async () => {
    const byId = await ec2.send(new DescribeImagesCommand({ ImageIds: [ami('win')] }));
    expect(byId.Images?.[0]).toMatchObject({
      ImageId: ami('win'),
      OwnerId: OWNER,
      State: 'available',
      Platform: 'windows',
      PlatformDetails: 'Windows',
      Tags: [{ Key: 'Team', Value: 'platform' }],
    });
    const byTag = await ec2.send(new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'tag:Team', Values: ['plat*'] }] }));
    expect(byTag.Images?.map((i) => i.ImageId)).toStrictEqual([ami('win')]);
    const page1 = await ec2.send(
      new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'name', Values: ['bulk-*'] }], MaxResults: 5 }),
    );
    expect(page1.Images).toHaveLength(5);
    expect(page1.NextToken).toMatch(/\S/);
    const all: string[] = [];
    let token: string | undefined;
    do {
      const page = await ec2.send(
        new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'name', Values: ['bulk-*'] }], MaxResults: 5, NextToken: token }),
      );
      all.push(...(page.Images ?? []).map((i) => i.ImageId ?? ''));
      token = page.NextToken;
    } while (token !== undefined);
    expect(new Set(all).size).toBe(12);
  });

  it('answers InvalidAMIID.NotFound and InvalidAMIID.Malformed as EC2 does', async () => {
    await expect(ec2.send(new DescribeImagesCommand({ ImageIds: ['ami-0123456789abcdef0'] }))).rejects.toMatchObject({
      name: 'InvalidAMIID.NotFound',
    });
    await expect(ec2.send(new DescribeImagesCommand({ ImageIds: ['image-1'] }))).rejects.toMatchObject({ name: 'InvalidAMIID.Malformed' });
  });

  it("shares through launch permissions; the other account sees the AMI but none of the owner's tags", async () => {
    expect((await other.send(new DescribeImagesCommand({ Filters: [{ Name: 'image-id', Values: [ami('win')] }] }))).Images).toHaveLength(0);
    await ec2.send(new ModifyImageAttributeCommand({ ImageId: ami('win'), LaunchPermission: { Add: [{ UserId: OTHER }] } }));
    const seen = await other.send(new DescribeImagesCommand({ ImageIds: [ami('win')] }));
    expect(seen.Images?.[0]?.Tags).toBeUndefined();
    const attribute = await ec2.send(new DescribeImageAttributeCommand({ ImageId: ami('win'), Attribute: 'launchPermission' }));
    expect(attribute.LaunchPermissions).toStrictEqual([{ UserId: OTHER }]);
    await expect(
      other.send(new DescribeImageAttributeCommand({ ImageId: ami('win'), Attribute: 'launchPermission' })),
    ).rejects.toMatchObject({ name: 'AuthFailure' });
  });

  it('gives tags on a shared AMI account scope: the sharee tags it for itself, the owner and other accounts never see them', async () => {
    await ec2.send(new ModifyImageAttributeCommand({ ImageId: ami('linux'), LaunchPermission: { Add: [{ UserId: OTHER }] } }));
    await ec2.send(new CreateTagsCommand({ Resources: [ami('linux')], Tags: [{ Key: 'Team', Value: 'owner' }] }));
    await other.send(
      new CreateTagsCommand({
        Resources: [ami('linux')],
        Tags: [
          { Key: 'Team', Value: 'sharee' },
          { Key: 'Stage', Value: 'test' },
        ],
      }),
    );
    const shareeView = await other.send(new DescribeImagesCommand({ ImageIds: [ami('linux')] }));
    expect(shareeView.Images?.[0]?.Tags).toStrictEqual([
      { Key: 'Team', Value: 'sharee' },
      { Key: 'Stage', Value: 'test' },
    ]);
    const ownerView = await ec2.send(new DescribeImagesCommand({ ImageIds: [ami('linux')] }));
    expect(ownerView.Images?.[0]?.Tags).toStrictEqual([{ Key: 'Team', Value: 'owner' }]);
    // tag filters match the caller's own tags
    const byTag = await other.send(new DescribeImagesCommand({ Filters: [{ Name: 'tag:Team', Values: ['sharee'] }] }));
    expect(byTag.Images?.map((i) => i.ImageId)).toStrictEqual([ami('linux')]);
    expect((await ec2.send(new DescribeImagesCommand({ Filters: [{ Name: 'tag:Team', Values: ['sharee'] }] }))).Images).toHaveLength(0);
    await other.send(new DeleteTagsCommand({ Resources: [ami('linux')], Tags: [{ Key: 'Stage' }] }));
    expect((await other.send(new DescribeImagesCommand({ ImageIds: [ami('linux')] }))).Images?.[0]?.Tags).toStrictEqual([
      { Key: 'Team', Value: 'sharee' },
    ]);
    expect((await ec2.send(new DescribeImagesCommand({ ImageIds: [ami('linux')] }))).Images?.[0]?.Tags).toStrictEqual([
      { Key: 'Team', Value: 'owner' },
    ]);
    // an account the AMI is not shared with cannot see it, so for it the AMI does not exist
    const stranger = clients(box.url, '333333333333').ec2;
    await expect(
      stranger.send(new CreateTagsCommand({ Resources: [ami('linux')], Tags: [{ Key: 'x', Value: 'y' }] })),
    ).rejects.toMatchObject({ name: 'InvalidAMIID.NotFound' });
  });

  it('rejects reserved aws: tag keys', async () => {
    await expect(
      ec2.send(new CreateTagsCommand({ Resources: [ami('linux')], Tags: [{ Key: 'aws:foo', Value: 'x' }] })),
    ).rejects.toMatchObject({ name: 'InvalidParameterValue' });
  });

  it('creates launch template versions idempotently by ClientToken and sets the default', async () => {
    const lt = await ec2.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: 'web',
        LaunchTemplateData: { ImageId: ami('linux'), InstanceType: 't3.small' },
      }),
    );
    const id = lt.LaunchTemplate?.LaunchTemplateId ?? '';
    const first = await ec2.send(
      new CreateLaunchTemplateVersionCommand({
        LaunchTemplateId: id,
        SourceVersion: '1',
        LaunchTemplateData: { ImageId: ami('win') },
        ClientToken: 'tok-1',
      }),
    );
    const again = await ec2.send(
      new CreateLaunchTemplateVersionCommand({
        LaunchTemplateId: id,
        SourceVersion: '1',
        LaunchTemplateData: { ImageId: ami('win') },
        ClientToken: 'tok-1',
      }),
    );
    expect(first.LaunchTemplateVersion?.VersionNumber).toBe(2);
    expect(again.LaunchTemplateVersion?.VersionNumber).toBe(2);
    expect(first.LaunchTemplateVersion?.LaunchTemplateData).toMatchObject({ ImageId: ami('win'), InstanceType: 't3.small' });
    await ec2.send(new ModifyLaunchTemplateCommand({ LaunchTemplateId: id, DefaultVersion: '2' }));
    const def = await ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: id, Versions: ['$Default'] }));
    expect(def.LaunchTemplateVersions?.[0]).toMatchObject({ VersionNumber: 2, DefaultVersion: true });
    const byImage = await ec2.send(
      new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: id, Filters: [{ Name: 'image-id', Values: [ami('linux')] }] }),
    );
    expect(byImage.LaunchTemplateVersions?.map((v) => v.VersionNumber)).toStrictEqual([1]);
    await expect(ec2.send(new ModifyLaunchTemplateCommand({ LaunchTemplateId: id, DefaultVersion: '9' }))).rejects.toMatchObject({
      name: 'InvalidLaunchTemplateId.VersionNotFound',
    });
    await expect(ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: 'lt-0123456789abcdef0' }))).rejects.toMatchObject({
      name: 'InvalidLaunchTemplateId.NotFound',
    });
  });

  it('validates Fast Launch as EC2 documents it, and moves enabling to enabled as the clock runs', async () => {
    await expect(ec2.send(new EnableFastLaunchCommand({ ImageId: ami('win'), MaxParallelLaunches: 5 }))).rejects.toThrow(/6 or greater/);
    await expect(ec2.send(new EnableFastLaunchCommand({ ImageId: ami('linux') }))).rejects.toThrow(/Windows/);
    await expect(
      ec2.send(
        new EnableFastLaunchCommand({
          ImageId: ami('win'),
          LaunchTemplate: { LaunchTemplateName: 'web', LaunchTemplateId: 'lt-0123456789abcdef0', Version: '1' },
        }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidParameterCombination' });
    const out = await ec2.send(
      new EnableFastLaunchCommand({
        ImageId: ami('win'),
        MaxParallelLaunches: 6,
        LaunchTemplate: { LaunchTemplateName: 'web', Version: '2' },
      }),
    );
    expect(out.State).toBe('enabling');
    // EC2 documents no code for "already enabling": the sandbox answers with a common client error
    await expect(ec2.send(new EnableFastLaunchCommand({ ImageId: ami('win'), MaxParallelLaunches: 6 }))).rejects.toMatchObject({
      name: 'InvalidParameter',
    });
    // and the reconciler reads the state again after the error: in progress, not failed
    const config = loadConfig({ AWS_REGION: 'us-east-1', RECONCILER_ACCOUNT_ID: OWNER });
    const factory = createClientFactory({ ...config, endpoint: box.url, credentials: { accessKeyId: OWNER, secretAccessKey: 'sandbox' } });
    const action: Action = {
      id: 'fl',
      kind: 'enable-fast-launch',
      cell: { region: 'us-east-1', accountId: OWNER },
      target: ami('win'),
      reason: 'r',
      imageId: ami('win'),
      targetResourceCount: undefined,
      maxParallelLaunches: 6,
      launchTemplate: undefined,
      isRetry: false,
    };
    const plan: Plan = {
      cells: [
        {
          key: `us-east-1/${OWNER}`,
          region: 'us-east-1',
          accountId: OWNER,
          origin: 'owner',
          imageId: ami('win'),
          checks: [],
          actions: [action],
        },
      ],
      imageActions: [],
      supersededBy: undefined,
    };
    const [outcome] = await apply(plan, factory, { mode: 'apply', imageArn: `arn:aws:imagebuilder:us-east-1:${OWNER}:image/win/1.0.0/1` });
    expect(outcome).toMatchObject({
      status: 'already-done',
      resultingState: 'enabling',
      detail: 'Fast Launch already enabling (EnableFastLaunch answered InvalidParameter)',
    });
    box.clock.advance(3 * 60_000);
    const described = await ec2.send(new DescribeFastLaunchImagesCommand({ ImageIds: [ami('win')] }));
    expect(described.FastLaunchImages?.[0]).toMatchObject({
      State: 'enabled',
      MaxParallelLaunches: 6,
      OwnerId: OWNER,
      LaunchTemplate: { LaunchTemplateName: 'web', Version: '2' },
    });
  });

  it('finds references (instances, launch templates) and deregisters with snapshots, honouring protection', async () => {
    const run = await ec2.send(new RunInstancesCommand({ ImageId: ami('linux'), MinCount: 1, MaxCount: 1 }));
    const refs = await ec2.send(new DescribeImageReferencesCommand({ ImageIds: [ami('linux')], IncludeAllResourceTypes: true }));
    expect(refs.ImageReferences?.map((r) => r.ResourceType).sort()).toStrictEqual(['ec2:Instance', 'ec2:LaunchTemplate']);
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [run.Instances?.[0]?.InstanceId ?? ''] }));

    const image = (await ec2.send(new DescribeImagesCommand({ ImageIds: [ami('bulk0')] }))).Images?.[0];
    const snapshot = image?.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId ?? '';
    await expect(ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshot }))).rejects.toMatchObject({ name: 'InvalidSnapshot.InUse' });
    await ec2.send(new EnableImageDeregistrationProtectionCommand({ ImageId: ami('bulk1') }));
    await expect(ec2.send(new DeregisterImageCommand({ ImageId: ami('bulk1') }))).rejects.toThrow(/deregistration protection/);
    const out = await ec2.send(new DeregisterImageCommand({ ImageId: ami('bulk0'), DeleteAssociatedSnapshots: true }));
    expect(out.DeleteSnapshotResults).toStrictEqual([{ SnapshotId: snapshot, ReturnCode: 'success' }]);
    await expect(ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshot] }))).rejects.toMatchObject({
      name: 'InvalidSnapshot.NotFound',
    });
    // "Recently deregistered images appear in the returned results for a short interval" (DescribeImages)
    expect((await ec2.send(new DescribeImagesCommand({ ImageIds: [ami('bulk0')] }))).Images?.map((i) => i.State)).toStrictEqual([
      'deregistered',
    ]);
    box.clock.advance(DEREGISTERED_VISIBLE_MS);
    await expect(ec2.send(new DescribeImagesCommand({ ImageIds: [ami('bulk0')] }))).rejects.toMatchObject({
      name: 'InvalidAMIID.NotFound',
    });
  });

  it('hides disabled images unless asked, and lists its regions', async () => {
    await ec2.send(new DisableImageCommand({ ImageId: ami('bulk2') }));
    expect(
      (await ec2.send(new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'image-id', Values: [ami('bulk2')] }] }))).Images,
    ).toHaveLength(0);
    const included = await ec2.send(
      new DescribeImagesCommand({ Owners: ['self'], IncludeDisabled: true, Filters: [{ Name: 'image-id', Values: [ami('bulk2')] }] }),
    );
    expect(included.Images?.[0]?.State).toBe('disabled');
    expect((await ec2.send(new DescribeRegionsCommand({}))).Regions?.map((r) => r.RegionName)).toStrictEqual(['us-east-1', 'eu-west-1']);
  });

  it('throttles with RequestLimitExceeded when a token bucket is empty', async () => {
    box.faults.set({ throttles: [{ service: 'ec2', account: OTHER, burst: 2, ratePerSecond: 0.001 }] });
    await other.send(new DescribeRegionsCommand({}));
    await other.send(new DescribeRegionsCommand({}));
    await expect(other.send(new DescribeRegionsCommand({}))).rejects.toMatchObject({ name: 'RequestLimitExceeded' });
    // another account has its own bucket
    expect((await ec2.send(new DescribeRegionsCommand({}))).Regions?.map((r) => r.RegionName)).toStrictEqual(['us-east-1', 'eu-west-1']);
    box.faults.set({});
  });
});
