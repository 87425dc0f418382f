import {
  DescribeExportImageTasksCommand,
  CreateLaunchTemplateVersionCommand,
  CreateTagsCommand,
  DescribeFastLaunchImagesCommand,
  EnableFastLaunchCommand,
  ModifyImageAttributeCommand,
  ModifyLaunchTemplateCommand,
} from '@aws-sdk/client-ec2';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { RetryImageCommand } from '@aws-sdk/client-imagebuilder';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { AssumeRoleCommand } from '@aws-sdk/client-sts';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InputError } from '../../src/lib/core/errors.ts';
import { reconcile } from '../../src/lib/reconcile/reconcile.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';
import {
  AMI,
  IMAGE_ARN,
  NEWER_ARN,
  OWNER_LT,
  SHARE_WITH,
  TARGET_A,
  TARGET_B,
  TARGET_LT,
  afterImageBuilder,
  testDeps,
  windowsImage,
} from '../helpers/factories.ts';
import { type Mocks, OWN, type World, awsError, installWorld } from '../helpers/world.ts';
import { schemaErrors, validateReconcileReport } from '../helpers/schema.ts';

const MUTATING = [
  CreateTagsCommand,
  ModifyImageAttributeCommand,
  CreateLaunchTemplateVersionCommand,
  ModifyLaunchTemplateCommand,
  EnableFastLaunchCommand,
  PutParameterCommand,
  RetryImageCommand,
];

function cell(report: ReconcileReport, region: string, account: string) {
  const found = report.cells.find((c) => c.region === region && c.accountId === account);
  if (found === undefined) throw new Error(`no cell ${region}/${account}`);
  return found;
}

describe('reconcile (adapters on aws-sdk-client-mock)', () => {
  let world: World;
  let mocks: Mocks;

  beforeEach(() => {
    // Prepare
    world = afterImageBuilder();
    mocks = installWorld(world);
  });
  afterEach(() => {
    for (const mock of Object.values(mocks)) mock.restore();
  });

  it('repairs every gap Image Builder leaves and requeues while Fast Launch is enabling', async () => {
    // Act
    const report = await reconcile({ imageBuildVersionArn: IMAGE_ARN, trigger: 'eventbridge' }, testDeps());

    // Assess: one AssumeRole per target account, none for the own account
    expect(mocks.sts).toHaveReceivedCommandTimes(AssumeRoleCommand, 2);
    expect(mocks.sts).toHaveReceivedCommandWith(AssumeRoleCommand, {
      RoleArn: `arn:aws:iam::${TARGET_A}:role/ImageBuilderReconcilerTarget`,
    });
    expect(mocks.sts).toHaveReceivedCommandWith(AssumeRoleCommand, {
      RoleArn: `arn:aws:iam::${TARGET_B}:role/ImageBuilderReconcilerTarget`,
    });
    // amiTags carried to target copies, plus the source tag everywhere
    const tagsOf = (ami: string, account: string, region: string) =>
      Object.fromEntries((world.images[`${account}/${region}`]?.find((i) => i.ImageId === ami)?.Tags ?? []).map((t) => [t.Key, t.Value]));
    expect(tagsOf(AMI.a, TARGET_A, 'eu-west-1')).toMatchObject({ Team: 'platform', 'imagebuilder-reconciler:source-image': IMAGE_ARN });
    expect(tagsOf(AMI.b, TARGET_B, 'eu-west-1')).toMatchObject({ Team: 'platform', 'imagebuilder-reconciler:source-image': IMAGE_ARN });
    expect(tagsOf(AMI.owner, OWN, 'us-east-1')).toMatchObject({ 'imagebuilder-reconciler:source-image': IMAGE_ARN });
    // the missing share added, the existing one not touched
    expect(mocks.ec2).toHaveReceivedCommandTimes(ModifyImageAttributeCommand, 1);
    expect(mocks.ec2).toHaveReceivedCommandWith(ModifyImageAttributeCommand, {
      ImageId: AMI.a,
      LaunchPermission: { Add: [{ UserId: SHARE_WITH }] },
    });
    // launch templates: a new version from the current default with a deterministic token, then the default
    expect(mocks.ec2).toHaveReceivedCommandWith(CreateLaunchTemplateVersionCommand, {
      LaunchTemplateId: OWNER_LT,
      SourceVersion: '1',
      LaunchTemplateData: { ImageId: AMI.owner },
      ClientToken: expect.stringMatching(/^ibr-[0-9a-f]{48}$/),
    });
    expect(mocks.ec2).toHaveReceivedCommandWith(ModifyLaunchTemplateCommand, { LaunchTemplateId: OWNER_LT, DefaultVersion: '2' });
    expect(mocks.ec2).toHaveReceivedCommandWith(ModifyLaunchTemplateCommand, { LaunchTemplateId: TARGET_LT, DefaultVersion: '2' });
    // Fast Launch in every account that owns a copy, with the template found by name there and a pinned version
    expect(mocks.ec2).toHaveReceivedCommandTimes(EnableFastLaunchCommand, 3);
    expect(mocks.ec2).toHaveReceivedCommandWith(EnableFastLaunchCommand, {
      ImageId: AMI.a,
      MaxParallelLaunches: 6,
      SnapshotConfiguration: { TargetResourceCount: 5 },
      LaunchTemplate: { LaunchTemplateId: 'lt-0dddddddddddddddd', Version: '2' },
    });
    expect(mocks.ec2).toHaveReceivedCommandWith(EnableFastLaunchCommand, {
      ImageId: AMI.b,
      LaunchTemplate: { LaunchTemplateId: 'lt-0eeeeeeeeeeeeeeee', Version: '2' },
    });
    expect(mocks.ssm).toHaveReceivedCommandWith(PutParameterCommand, { Name: '/golden/windows/latest', Value: AMI.owner, Overwrite: true });
    // the report: all cells pending on Fast Launch; a recheck queued; the report published
    expect(report.outcome).toBe('pending');
    expect(report.cells.map((c) => c.status)).toStrictEqual(['pending', 'pending', 'pending']);
    expect(report.counts.actions.failed).toBe(0);
    expect(report.next).toStrictEqual({ recheck: true, attempt: 2, delaySeconds: 300 });
    expect(mocks.sqs).toHaveReceivedCommandWith(SendMessageCommand, {
      DelaySeconds: 300,
      MessageBody: expect.stringContaining('"attempt":2'),
    });
    expect(mocks.eventBridge).toHaveReceivedCommandWith(PutEventsCommand, {
      Entries: [
        expect.objectContaining({
          Source: 'imagebuilder-reconciler',
          DetailType: 'Image Builder Reconcile Report',
          Resources: [IMAGE_ARN],
        }),
      ],
    });
    // the published event conforms to the schema documented in docs/schemas
    const published = mocks.eventBridge.commandCalls(PutEventsCommand)[0]?.args[0].input.Entries?.[0]?.Detail ?? '';
    expect(schemaErrors(validateReconcileReport, JSON.parse(published))).toStrictEqual([]);
  });

  it("puts the trigger's notes first in the report (the gate's unreadable step outputs)", async () => {
    const note = 'the outputs of step DistributeStage1 could not be read: the AMIs Image Builder recorded are judged instead';
    const report = await reconcile({ imageBuildVersionArn: IMAGE_ARN, trigger: 'eventbridge', notes: [note] }, testDeps());
    expect(report.notes[0]).toBe(note);
  });

  it('converges on the recheck once Fast Launch is enabled, and changes nothing more', async () => {
    // Prepare
    await reconcile({ imageBuildVersionArn: IMAGE_ARN, trigger: 'eventbridge' }, testDeps());
    for (const item of Object.values(world.fastLaunch)) item.State = 'enabled';
    for (const mock of [mocks.ec2, mocks.ssm, mocks.sqs]) mock.resetHistory();

    // Act
    const report = await reconcile(
      { imageBuildVersionArn: IMAGE_ARN, trigger: 'sqs', attempt: 2, firstSeenAt: '2026-11-29T17:55:00.000Z' },
      testDeps(),
    );

    // Assess
    expect(report.outcome).toBe('converged');
    expect(report.cells.every((c) => c.status === 'ok')).toBe(true);
    for (const command of MUTATING) expect(mocks.ec2.commandCalls(command as never)).toHaveLength(0);
    expect(mocks.ssm).not.toHaveReceivedCommand(PutParameterCommand);
    expect(mocks.sqs).not.toHaveReceivedCommand(SendMessageCommand);
    expect(report.next).toStrictEqual({ recheck: false, reason: 'nothing pending' });
  });

  it('finds the inherited Fast Launch template by name in each target account when the owner names it by id', async () => {
    // Prepare: the owner's eu-west-1 entry uses its own template id, which means nothing in other accounts
    const image = windowsImage();
    const euWest = image.distributionConfiguration?.distributions?.[1];
    if (euWest?.fastLaunchConfigurations?.[0] !== undefined)
      euWest.fastLaunchConfigurations[0].launchTemplate = { launchTemplateId: 'lt-0ffffffffffffffff', launchTemplateVersion: '2' };
    world.imagebuilder[IMAGE_ARN] = image;
    world.templates[`${OWN}/eu-west-1`] = [
      {
        id: 'lt-0ffffffffffffffff',
        name: 'fast-launch',
        defaultVersion: 1,
        versions: [
          { number: 1, imageId: undefined },
          { number: 2, imageId: undefined },
        ],
      },
    ];

    // Act
    await reconcile({ imageBuildVersionArn: IMAGE_ARN, trigger: 'eventbridge' }, testDeps());

    // Assess
    expect(mocks.ec2).toHaveReceivedCommandWith(EnableFastLaunchCommand, {
      ImageId: AMI.a,
      LaunchTemplate: { LaunchTemplateId: 'lt-0dddddddddddddddd', Version: '2' },
    });
    expect(mocks.ec2).toHaveReceivedCommandWith(EnableFastLaunchCommand, {
      ImageId: AMI.b,
      LaunchTemplate: { LaunchTemplateId: 'lt-0eeeeeeeeeeeeeeee', Version: '2' },
    });
  });

  it.each([
    ['enabling', 'InvalidParameter', 'already-done', 'pending'],
    ['enabled', 'InvalidParameterValue', 'already-done', 'repaired'],
    ['enabled', 'UnauthorizedOperation', 'already-done', 'repaired'],
  ] as const)('after any EnableFastLaunch error, reads the state again: %s after %s counts as %s', async (state, code, outcome, status) => {
    // Prepare: a duplicate run enables Fast Launch on AMI.a between this run's read and its EnableFastLaunch;
    // EC2 documents no error code for that, so the code must not matter
    mocks.ec2.on(EnableFastLaunchCommand, { ImageId: AMI.a }).callsFakeOnce(() => {
      world.fastLaunch[AMI.a] = { State: state };
      throw awsError(code, `refused by EC2 (${code})`);
    });

    // Act
    const report = await reconcile({ imageBuildVersionArn: IMAGE_ARN, trigger: 'eventbridge' }, testDeps());

    // Assess
    const action = report.actions.find((a) => a.kind === 'enable-fast-launch' && a.target === AMI.a);
    expect(action).toMatchObject({ outcome, detail: `Fast Launch already ${state} (EnableFastLaunch answered ${code})` });
    expect(mocks.ec2).toHaveReceivedCommandWith(DescribeFastLaunchImagesCommand, { ImageIds: [AMI.a] });
    expect(cell(report, 'eu-west-1', TARGET_A).status).toBe(status);
    expect(report.counts.actions.failed).toBe(0);
  });

  it.each([
    ['no Fast Launch state', undefined],
    ['enabling-failed', 'enabling-failed'],
  ] as const)("fails with EC2's own error when the fresh read shows %s", async (_name, state) => {
    mocks.ec2.on(EnableFastLaunchCommand, { ImageId: AMI.a }).callsFakeOnce(() => {
      if (state !== undefined) world.fastLaunch[AMI.a] = { State: state };
      throw awsError(
        'UnauthorizedOperation',
        `You are not authorized to perform this operation. User: arn:aws:sts::${TARGET_A}:assumed-role/ImageBuilderReconcilerTarget/r is not authorized to perform: iam:CreateServiceLinkedRole on resource: arn:aws:iam::${TARGET_A}:role/aws-service-role/ec2fastlaunch.amazonaws.com/AWSServiceRoleForEC2FastLaunch because no identity-based policy allows the iam:CreateServiceLinkedRole action. Encoded authorization failure message: x`,
      );
    });

    const report = await reconcile({ imageBuildVersionArn: IMAGE_ARN, trigger: 'eventbridge' }, testDeps());

    const action = report.actions.find((a) => a.kind === 'enable-fast-launch' && a.target === AMI.a);
    expect(action).toMatchObject({
      outcome: 'failed',
      error: {
        code: 'UnauthorizedOperation',
        message: expect.stringMatching(/not authorized to perform: iam:CreateServiceLinkedRole on resource/),
      },
    });
    expect(cell(report, 'eu-west-1', TARGET_A).status).toBe('failed');
  });

  it("says the state is unknown, with the read's own error, when the fresh read after an EnableFastLaunch error fails too", async () => {
    mocks.ec2.on(EnableFastLaunchCommand, { ImageId: AMI.a }).callsFakeOnce(() => {
      world.fastLaunch[AMI.a] = { State: 'enabling' };
      // the fresh read in that account and region is throttled
      world.throttled.add(`DescribeFastLaunchImages ${TARGET_A}/eu-west-1`);
      throw awsError('InvalidParameter', 'EC2 Fast Launch is enabling; try again when it has finished.');
    });

    const report = await reconcile({ imageBuildVersionArn: IMAGE_ARN, trigger: 'eventbridge' }, testDeps());

    const action = report.actions.find((a) => a.kind === 'enable-fast-launch' && a.target === AMI.a);
    // throttled, not "InvalidParameter": what stopped the run was the read, and the next pass retries it
    expect(action).toMatchObject({
      outcome: 'failed',
      error: {
        kind: 'throttled',
        code: 'RequestLimitExceeded',
        message: expect.stringMatching(
          /EnableFastLaunch answered InvalidParameter .*could not be read again .*DescribeFastLaunchImages: RequestLimitExceeded/,
        ),
      },
    });
  });

  it('has nothing to reconcile for a container image, and says its container distribution is not checked', async () => {
    const image = windowsImage({
      type: 'DOCKER',
      outputResources: {
        containers: [{ region: 'us-east-1', imageUris: ['111122223333.dkr.ecr.us-east-1.amazonaws.com/golden:1.0.0-3'] }],
      },
    });
    const [first] = image.distributionConfiguration?.distributions ?? [];
    if (first !== undefined) first.containerDistributionConfiguration = { targetRepository: { service: 'ECR', repositoryName: 'golden' } };
    world.imagebuilder[IMAGE_ARN] = image;
    const report = await reconcile({ imageBuildVersionArn: IMAGE_ARN, trigger: 'eventbridge' }, testDeps());
    expect(report.cells).toStrictEqual([]);
    expect(report.outcome).toBe('converged');
    expect(report.notes).toContain('a container image: it is distributed to ECR, not as AMIs; nothing to reconcile');
    expect(report.notes).toContain('containerDistributionConfiguration of us-east-1: not checked (the reconciler does not read ECR)');
  });

  it('checks a VM export: no export task of the AMI to the bucket and prefix fails the owner cell, naming them', async () => {
    const image = windowsImage();
    const [first] = image.distributionConfiguration?.distributions ?? [];
    if (first === undefined) throw new Error('no distribution');
    first.s3ExportConfiguration = { roleName: 'export', diskImageFormat: 'VMDK', s3Bucket: 'exports', s3Prefix: 'golden/' };
    world.imagebuilder[IMAGE_ARN] = image;
    mocks.ec2.on(DescribeExportImageTasksCommand).resolves({ ExportImageTasks: [] });
    const report = await reconcile({ imageBuildVersionArn: IMAGE_ARN, trigger: 'eventbridge' }, testDeps());
    expect(schemaErrors(validateReconcileReport, report)).toStrictEqual([]);
    const owner = report.cells.find((c) => c.region === 'us-east-1' && c.accountId === OWN);
    expect(owner?.status).toBe('failed');
    expect(owner?.checks.filter((c) => c.check === 's3-export').map((c) => `${c.subject} ${c.result}`)).toStrictEqual([
      's3://exports/golden/ failed',
    ]);
    expect(owner?.reasons).toContainEqual(
      expect.stringMatching(/^s3-export s3:\/\/exports\/golden\/: failed: no export task of ami-\w+ to s3:\/\/exports\/golden\//),
    );
    // the other cells of the region are not the export's
    expect(report.cells.filter((c) => c !== owner).flatMap((c) => c.checks.filter((k) => k.check === 's3-export'))).toStrictEqual([]);
  });

  it('changes nothing in plan mode and reports what it would do', async () => {
    // Act
    const report = await reconcile({ imageBuildVersionArn: IMAGE_ARN, trigger: 'manual', mode: 'plan' }, testDeps());

    // Assess
    for (const command of MUTATING) {
      expect(mocks.ec2.commandCalls(command as never)).toHaveLength(0);
      expect(mocks.imagebuilder.commandCalls(command as never)).toHaveLength(0);
    }
    expect(mocks.ssm).not.toHaveReceivedCommand(PutParameterCommand);
    expect(mocks.sqs).not.toHaveReceivedCommand(SendMessageCommand);
    expect(report.outcome).toBe('drift');
    expect(report.actions.every((a) => a.outcome === 'planned')).toBe(true);
    expect(report.actions.map((a) => a.kind).sort()).toStrictEqual([
      'add-launch-permission',
      'create-tags',
      'create-tags',
      'create-tags',
      'enable-fast-launch',
      'enable-fast-launch',
      'enable-fast-launch',
      'put-parameter',
      'update-launch-template',
      'update-launch-template',
    ]);
    expect(cell(report, 'eu-west-1', TARGET_A).status).toBe('drift');
    expect(schemaErrors(validateReconcileReport, report)).toStrictEqual([]);
  });

  it('records AccessDenied in one account as that cell failing, while the other cells are repaired', async () => {
    // Prepare
    world.deniedAccounts.add(TARGET_B);

    // Act
    const report = await reconcile({ imageBuildVersionArn: IMAGE_ARN, trigger: 'eventbridge' }, testDeps());

    // Assess
    const denied = cell(report, 'eu-west-1', TARGET_B);
    expect(denied.status).toBe('failed');
    expect(denied.reasons.join(' ')).toMatch(/cannot assume arn:aws:iam::777788889999:role\/ImageBuilderReconcilerTarget.*AccessDenied/);
    expect(cell(report, 'eu-west-1', TARGET_A).status).toBe('pending');
    expect(mocks.ec2).toHaveReceivedCommandWith(CreateTagsCommand, { Resources: [AMI.a] });
    expect(report.outcome).toBe('failed');
    // the denied account must not stop the rechecks the pending cells need
    expect(report.next).toMatchObject({ recheck: true, attempt: 2 });
  });

  it('keeps rechecking a cell that failed for one reason while another part of it still waits on AWS', async () => {
    // Prepare: after the first run, Fast Launch is enabled everywhere but in TARGET_A, whose copy has also
    // lost a tag that it cannot get back
    await reconcile({ imageBuildVersionArn: IMAGE_ARN, trigger: 'eventbridge' }, testDeps());
    for (const [imageId, item] of Object.entries(world.fastLaunch)) if (imageId !== AMI.a) item.State = 'enabled';
    const copy = world.images[`${TARGET_A}/eu-west-1`]?.find((i) => i.ImageId === AMI.a);
    if (copy === undefined) throw new Error('no copy of TARGET_A');
    copy.Tags = (copy.Tags ?? []).filter((t) => t.Key !== 'Team');
    mocks.ec2.on(CreateTagsCommand).rejects(awsError('UnauthorizedOperation', 'You are not authorized to perform this operation.'));
    mocks.sqs.resetHistory();

    // Act
    const report = await reconcile(
      { imageBuildVersionArn: IMAGE_ARN, trigger: 'sqs', attempt: 2, firstSeenAt: '2026-11-29T17:55:00.000Z' },
      testDeps(),
    );

    // Assess: the cell fails (the tag) and says it still waits (Fast Launch enabling); the run is rechecked
    const failed = cell(report, 'eu-west-1', TARGET_A);
    expect(failed.status).toBe('failed');
    expect(failed.reasons.join(' ')).toMatch(/create-tags .*UnauthorizedOperation|create-tags .*not authorized/);
    expect(failed.reasons.join(' ')).toMatch(/fast-launch.*enabling/);
    expect(failed.waiting).toBe(true);
    expect(report.cells.filter((c) => c !== failed).map((c) => c.status)).toStrictEqual(['ok', 'ok']);
    expect(report.outcome).toBe('failed');
    expect(report.next).toMatchObject({ recheck: true, attempt: 3 });
    expect(mocks.sqs).toHaveReceivedCommandWith(SendMessageCommand, { MessageBody: expect.stringContaining('"attempt":3') });
    expect(schemaErrors(validateReconcileReport, report)).toStrictEqual([]);
  });

  it('marks a cell throttled past retries as pending, and the others go on', async () => {
    // Prepare
    world.throttled.add(`DescribeImages ${TARGET_A}/eu-west-1`);

    // Act
    const report = await reconcile({ imageBuildVersionArn: IMAGE_ARN, trigger: 'eventbridge' }, testDeps());

    // Assess
    const throttled = cell(report, 'eu-west-1', TARGET_A);
    expect(throttled.status).toBe('pending');
    expect(throttled.reasons.join(' ')).toContain('RequestLimitExceeded');
    expect(mocks.ec2).toHaveReceivedCommandWith(CreateTagsCommand, { Resources: [AMI.b] });
    expect(report.next).toMatchObject({ recheck: true });
  });

  it('never rolls a launch template, SSM parameter or Fast Launch back for a superseded build', async () => {
    // Prepare: build 4 already finished and moved the template and parameter to its AMI
    const newerAmi = 'ami-00000000000000100';
    world.pipelineImages.push({
      arn: NEWER_ARN,
      state: { status: 'AVAILABLE' },
      dateCreated: '2026-11-29T19:00:00.000Z',
      outputResources: { amis: [{ region: 'us-east-1', accountId: OWN, image: newerAmi }] },
    });
    const template = world.templates[`${OWN}/us-east-1`]?.[0];
    template?.versions.push({ number: 2, imageId: newerAmi });
    if (template !== undefined) template.defaultVersion = 2;
    world.parameters[`${OWN}/us-east-1//golden/windows/latest`] = newerAmi;

    // Act
    const report = await reconcile({ imageBuildVersionArn: IMAGE_ARN, trigger: 'eventbridge' }, testDeps());

    // Assess
    expect(mocks.ec2).not.toHaveReceivedCommandWith(CreateLaunchTemplateVersionCommand, { LaunchTemplateId: OWNER_LT });
    expect(mocks.ec2).not.toHaveReceivedCommandWith(ModifyLaunchTemplateCommand, { LaunchTemplateId: OWNER_LT });
    expect(mocks.ec2).not.toHaveReceivedCommandWith(EnableFastLaunchCommand, { ImageId: AMI.owner });
    expect(mocks.ssm).not.toHaveReceivedCommand(PutParameterCommand);
    expect(world.parameters[`${OWN}/us-east-1//golden/windows/latest`]).toBe(newerAmi);
    const owner = cell(report, 'us-east-1', OWN);
    const skipped = owner.checks.filter((c) => c.result === 'skipped').map((c) => c.check);
    expect(skipped).toStrictEqual(['launch-template', 'fast-launch', 'ssm-parameter']);
    expect(owner.checks.find((c) => c.check === 'launch-template')?.reason).toContain(`superseded: newer build ${NEWER_ARN}`);
    expect(report.image.supersededBy).toBe(NEWER_ARN);
    // tags are not a rollback: still repaired
    expect(mocks.ec2).toHaveReceivedCommandWith(CreateTagsCommand, { Resources: [AMI.owner] });
  });

  it('reports an unknown image build as failed without throwing', async () => {
    // Act
    const report = await reconcile({ imageBuildVersionArn: IMAGE_ARN.replace('/3', '/99'), trigger: 'manual' }, testDeps());

    // Assess
    expect(report.outcome).toBe('failed');
    expect(report.notes[0]).toMatch(/ResourceNotFoundException/);
    expect(report.cells).toHaveLength(0);
    expect(schemaErrors(validateReconcileReport, report)).toStrictEqual([]);
  });

  it('rejects an ARN of the wrong shape with an InputError', async () => {
    await expect(
      reconcile({ imageBuildVersionArn: 'arn:aws:imagebuilder:us-east-1:111122223333:image/golden/1.0.0', trigger: 'manual' }, testDeps()),
    ).rejects.toThrow(InputError);
  });

  it("for a FAILED image, reports the missing cells with Image Builder's reason and retries distribution once when asked", async () => {
    // Prepare
    const reason = `Not all distribution jobs are completed. 1) AMI Copy Reported Failure For ${AMI.b}`;
    const image = windowsImage({ state: { status: 'FAILED', reason } });
    image.outputResources = { amis: image.outputResources?.amis?.filter((a) => a.accountId !== TARGET_B) ?? [] };
    world.imagebuilder[IMAGE_ARN] = image;

    // Act
    const report = await reconcile(
      { imageBuildVersionArn: IMAGE_ARN, trigger: 'eventbridge' },
      testDeps({ RECONCILER_RETRY_FAILED_IMAGES: 'true' }),
    );

    // Assess
    const missing = cell(report, 'eu-west-1', TARGET_B);
    expect(missing.status).toBe('failed');
    expect(missing.reasons[0]).toContain(reason);
    expect(mocks.imagebuilder).toHaveReceivedCommandWith(RetryImageCommand, {
      imageBuildVersionArn: IMAGE_ARN,
      clientToken: expect.stringMatching(/^ibr-/),
    });
    // what landed is tagged and shared, but nothing is rolled out from a build that did not finish
    const landed = cell(report, 'eu-west-1', TARGET_A);
    expect(landed.status).toBe('repaired');
    expect(landed.checks.filter((c) => c.result === 'skipped').map((c) => c.check)).toStrictEqual(['launch-template', 'fast-launch']);
    expect(mocks.ec2).not.toHaveReceivedCommand(EnableFastLaunchCommand);
    expect(mocks.ec2).not.toHaveReceivedCommand(CreateLaunchTemplateVersionCommand);
    expect(mocks.ssm).not.toHaveReceivedCommand(PutParameterCommand);
  });

  it('splits a build past RECONCILER_SHARD_MAX_CELLS by account: shards 2..n queued first, shard 1 reconciled here', async () => {
    // Act: 3 accounts of one cell each, one cell per shard
    const deps = { ...testDeps({ RECONCILER_SHARD_MAX_CELLS: '1' }), fanOut: true };
    const report = await reconcile({ imageBuildVersionArn: IMAGE_ARN, trigger: 'eventbridge' }, deps);

    // Assess: the shard messages are recheck messages with the shard, without delay, in account order
    const sent = mocks.sqs.commandCalls(SendMessageCommand).map((c) => ({
      delay: c.args[0].input.DelaySeconds,
      body: JSON.parse(c.args[0].input.MessageBody ?? '{}') as { attempt: number; shard?: { index: number; accounts: string[] } },
    }));
    const shards = sent.filter((m) => m.body.attempt === 1);
    expect(shards.map((m) => [m.delay, m.body.shard?.index, m.body.shard?.accounts])).toStrictEqual([
      [0, 2, [TARGET_A]],
      [0, 3, [TARGET_B]],
    ]);
    expect(report.shard).toStrictEqual({ runId: 'run-1', index: 1, count: 3, totalCells: 3 });
    expect(report.cells.map((c) => c.accountId)).toStrictEqual([OWN]);
    // shard 1's own recheck carries its shard
    expect(sent.filter((m) => m.body.attempt === 2).map((m) => m.body.shard?.index)).toStrictEqual(report.next.recheck ? [1] : []);
    expect(schemaErrors(validateReconcileReport, report)).toStrictEqual([]);
  });

  it("a shard reconciles its cells only; only shard 1 retries the image, counting every shard's missing cells", async () => {
    // Prepare: a FAILED build whose copy to TARGET_B is missing
    const image = windowsImage({ state: { status: 'FAILED', reason: 'Not all distribution jobs are completed.' } });
    image.outputResources = { amis: image.outputResources?.amis?.filter((a) => a.accountId !== TARGET_B) ?? [] };
    world.imagebuilder[IMAGE_ARN] = image;
    const deps = { ...testDeps({ RECONCILER_RETRY_FAILED_IMAGES: 'true' }), fanOut: true };
    const shard = (index: number, accounts: string[]) => ({ runId: 'run-0', index, count: 3, accounts });

    // Act: the shard with the missing cell is not shard 1
    const third = await reconcile({ imageBuildVersionArn: IMAGE_ARN, trigger: 'sqs', shard: shard(3, [TARGET_B]) }, deps);
    expect(mocks.imagebuilder).not.toHaveReceivedCommand(RetryImageCommand);
    const first = await reconcile({ imageBuildVersionArn: IMAGE_ARN, trigger: 'sqs', shard: shard(1, [OWN]) }, deps);

    // Assess
    expect(third.cells.map((c) => `${c.region}/${c.accountId}`)).toStrictEqual([`eu-west-1/${TARGET_B}`]);
    expect(third.shard).toStrictEqual({ runId: 'run-0', index: 3, count: 3, totalCells: 3 });
    expect(third.actions.map((a) => a.kind)).not.toContain('retry-image');
    expect(first.cells.every((c) => c.accountId === OWN)).toBe(true);
    expect(first.actions.find((a) => a.kind === 'retry-image')?.reason).toContain(`eu-west-1/${TARGET_B}`);
    expect(mocks.imagebuilder).toHaveReceivedCommandTimes(RetryImageCommand, 1);
  });

  it('a shard that cannot be queued fails the run: said in the report, no recheck of its own, requeueFailed', async () => {
    // Prepare
    mocks.sqs.on(SendMessageCommand).rejects(awsError('AccessDenied', 'not authorized to perform: sqs:SendMessage'));
    const deps = { ...testDeps({ RECONCILER_SHARD_MAX_CELLS: '1' }), fanOut: true };

    // Act
    const report = await reconcile({ imageBuildVersionArn: IMAGE_ARN, trigger: 'eventbridge' }, deps);

    // Assess
    expect(report.next).toMatchObject({
      recheck: false,
      requeueFailed: true,
      reason: expect.stringMatching(/^could not queue shard\(s\) 2\/3, 3\/3 of this build: .*sqs:SendMessage/),
    });
    expect(report.notes.at(-1)).toMatch(/^could not queue shard\(s\) 2\/3, 3\/3/);
  });

  it('never splits without fanOut (the command line): the whole build in one run', async () => {
    const report = await reconcile({ imageBuildVersionArn: IMAGE_ARN, trigger: 'cli' }, testDeps({ RECONCILER_SHARD_MAX_CELLS: '1' }));
    expect(report.shard).toBeUndefined();
    expect(report.cells).toHaveLength(3);
  });

  it('gives up with a final report once the attempts are used', async () => {
    // Act
    const report = await reconcile(
      { imageBuildVersionArn: IMAGE_ARN, trigger: 'sqs', attempt: 12, firstSeenAt: '2026-11-29T17:00:00.000Z' },
      testDeps(),
    );

    // Assess
    expect(report.outcome).toBe('failed');
    expect(report.next).toStrictEqual({ recheck: false, reason: 'still pending after 12 attempt(s) (RECONCILER_MAX_ATTEMPTS)' });
    expect(report.cells.every((c) => c.status === 'failed' && c.reasons.at(-1)?.startsWith('gave up'))).toBe(true);
    expect(schemaErrors(validateReconcileReport, report)).toStrictEqual([]);
    expect(mocks.sqs).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('converges to the same state when the same event arrives twice', async () => {
    // Act
    await reconcile({ imageBuildVersionArn: IMAGE_ARN, trigger: 'eventbridge' }, testDeps());
    const templatesAfterFirst = structuredClone(world.templates);
    const second = await reconcile({ imageBuildVersionArn: IMAGE_ARN, trigger: 'eventbridge' }, testDeps());

    // Assess: no second launch template version, no new actions beyond waiting for Fast Launch
    expect(world.templates).toStrictEqual(templatesAfterFirst);
    expect(second.actions).toHaveLength(0);
    expect(second.outcome).toBe('pending');
  });
});
