import type { Image as Ec2Image } from '@aws-sdk/client-ec2';
import type { Image } from '@aws-sdk/client-imagebuilder';
import { createClientFactory } from '../../src/lib/aws/clients.ts';
import { type Config, loadConfig } from '../../src/lib/core/config.ts';
import type { ReconcileDeps } from '../../src/lib/reconcile/reconcile.ts';
import { OWN, type World, newWorld } from './world.ts';

const TARGET_A = '444455556666';
const TARGET_B = '777788889999';
const SHARE_WITH = '123456789012';
const IMAGE_ARN = `arn:aws:imagebuilder:us-east-1:${OWN}:image/golden-windows/1.0.0/3`;
const NEWER_ARN = `arn:aws:imagebuilder:us-east-1:${OWN}:image/golden-windows/1.0.0/4`;
const PIPELINE_ARN = `arn:aws:imagebuilder:us-east-1:${OWN}:image-pipeline/golden-windows`;
const OWNER_LT = 'lt-0aaaaaaaaaaaaaaaa';
const TARGET_LT = 'lt-0bbbbbbbbbbbbbbbb';
const AMI = { owner: 'ami-00000000000000001', a: 'ami-00000000000000002', b: 'ami-00000000000000003' };

/** The image build of the standard scenario: a Windows image, owner in us-east-1, two targets in eu-west-1. */
function windowsImage(overrides: Partial<Image> = {}): Image {
  return {
    arn: IMAGE_ARN,
    name: 'golden-windows',
    version: '1.0.0/3',
    platform: 'Windows',
    state: { status: 'AVAILABLE' },
    sourcePipelineArn: PIPELINE_ARN,
    dateCreated: '2026-11-29T17:00:00.000Z',
    distributionConfiguration: {
      arn: `arn:aws:imagebuilder:us-east-1:${OWN}:distribution-configuration/golden`,
      name: 'golden',
      timeoutMinutes: 360,
      distributions: [
        {
          region: 'us-east-1',
          amiDistributionConfiguration: {
            name: 'golden-{{imagebuilder:buildVersion}}-{{imagebuilder:buildDate}}',
            amiTags: { Team: 'platform' },
          },
          launchTemplateConfigurations: [{ launchTemplateId: OWNER_LT, setDefaultVersion: true }],
          fastLaunchConfigurations: [
            {
              enabled: true,
              maxParallelLaunches: 6,
              snapshotConfiguration: { targetResourceCount: 5 },
              launchTemplate: { launchTemplateName: 'fast-launch', launchTemplateVersion: '$Latest' },
            },
          ],
          ssmParameterConfigurations: [{ parameterName: '/golden/windows/latest', dataType: 'aws:ec2:image' }],
        },
        {
          region: 'eu-west-1',
          amiDistributionConfiguration: {
            name: 'golden-{{imagebuilder:buildVersion}}-{{imagebuilder:buildDate}}',
            amiTags: { Team: 'platform' },
            targetAccountIds: [TARGET_A, TARGET_B],
            launchPermission: { userIds: [SHARE_WITH] },
          },
          launchTemplateConfigurations: [{ launchTemplateId: TARGET_LT, accountId: TARGET_A, setDefaultVersion: true }],
          fastLaunchConfigurations: [
            {
              enabled: true,
              maxParallelLaunches: 6,
              snapshotConfiguration: { targetResourceCount: 5 },
              launchTemplate: { launchTemplateName: 'fast-launch', launchTemplateVersion: '$Latest' },
            },
          ],
        },
      ],
    },
    outputResources: {
      amis: [
        { region: 'us-east-1', image: AMI.owner, accountId: OWN, name: 'golden-3-2026-11-29T17-00-00', state: { status: 'AVAILABLE' } },
        { region: 'eu-west-1', image: AMI.a, accountId: TARGET_A, name: 'golden-3-2026-11-29T17-00-00', state: { status: 'AVAILABLE' } },
        { region: 'eu-west-1', image: AMI.b, accountId: TARGET_B, name: 'golden-3-2026-11-29T17-00-00', state: { status: 'AVAILABLE' } },
      ],
    },
    ...overrides,
  };
}

function ec2Image(imageId: string, owner: string, tags: Record<string, string> = {}): Ec2Image {
  return {
    ImageId: imageId,
    OwnerId: owner,
    State: 'available',
    Name: 'golden-3-2026-11-29T17-00-00',
    Public: false,
    PlatformDetails: 'Windows',
    CreationDate: '2026-11-29T17:30:00.000Z',
    BlockDeviceMappings: [{ DeviceName: '/dev/sda1', Ebs: { SnapshotId: `snap-${imageId.slice(4)}` } }],
    Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
  };
}

/**
 * The world as Image Builder leaves it: the owner's AMI tagged, target copies without `amiTags`, launch
 * templates on an older AMI, Fast Launch nowhere, the SSM parameter on an older AMI.
 */
function afterImageBuilder(): World {
  const world = newWorld();
  world.imagebuilder[IMAGE_ARN] = windowsImage();
  world.images[`${OWN}/us-east-1`] = [
    ec2Image(AMI.owner, OWN, { CreatedBy: 'EC2 Image Builder', Ec2ImageBuilderArn: IMAGE_ARN, Team: 'platform' }),
  ];
  world.images[`${TARGET_A}/eu-west-1`] = [ec2Image(AMI.a, TARGET_A)];
  world.images[`${TARGET_B}/eu-west-1`] = [ec2Image(AMI.b, TARGET_B)];
  world.launchPermissions[AMI.a] = [];
  world.launchPermissions[AMI.b] = [{ UserId: SHARE_WITH }];
  const fastLaunchTemplate = (id: string) => ({
    id,
    name: 'fast-launch',
    defaultVersion: 1,
    versions: [
      { number: 1, imageId: undefined },
      { number: 2, imageId: undefined },
    ],
  });
  world.templates[`${OWN}/us-east-1`] = [
    { id: OWNER_LT, name: 'web', defaultVersion: 1, versions: [{ number: 1, imageId: 'ami-0000000000000000a' }] },
    fastLaunchTemplate('lt-0cccccccccccccccc'),
  ];
  world.templates[`${TARGET_A}/eu-west-1`] = [
    { id: TARGET_LT, name: 'web', defaultVersion: 1, versions: [{ number: 1, imageId: 'ami-0000000000000000b' }] },
    fastLaunchTemplate('lt-0dddddddddddddddd'),
  ];
  world.templates[`${TARGET_B}/eu-west-1`] = [fastLaunchTemplate('lt-0eeeeeeeeeeeeeeee')];
  world.parameters[`${OWN}/us-east-1//golden/windows/latest`] = 'ami-0000000000000000a';
  world.pipelineImages = [{ arn: IMAGE_ARN, state: { status: 'AVAILABLE' }, outputResources: windowsImage().outputResources }];
  return world;
}

function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    AWS_REGION: 'us-east-1',
    RECONCILER_ACCOUNT_ID: OWN,
    RECONCILER_EVENT_BUS: 'default',
    RECONCILER_RECHECK_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/111122223333/recheck',
    // the in-memory world shows each account only its own AMIs (no sharing): cells of origin shared are tested
    // in test/unit/plan.test.ts and on the sandbox (test/e2e/reconcile.test.ts, test/integration/awscli.test.ts)
    RECONCILER_SHARED_ACCOUNTS: 'off',
    ...env,
  });
}

const silentLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

function testDeps(env: Record<string, string> = {}, now = new Date('2026-11-29T18:00:00.000Z')): ReconcileDeps {
  const config = testConfig(env);
  return {
    config,
    clients: createClientFactory({ ...config, credentials: { accessKeyId: 'AKIAOWN', secretAccessKey: 'secret' } }),
    log: silentLog,
    now: () => now,
    newRunId: () => 'run-1',
  };
}

export {
  AMI,
  IMAGE_ARN,
  NEWER_ARN,
  OWNER_LT,
  PIPELINE_ARN,
  SHARE_WITH,
  TARGET_A,
  TARGET_B,
  TARGET_LT,
  afterImageBuilder,
  ec2Image,
  silentLog,
  testConfig,
  testDeps,
  windowsImage,
};
