/**
 * Every consumer that can name an AMI keeps it, end to end on the sandbox, in one world: the deployed wiring's
 * CloudTrail-triggered run (plan) and `cleanup --apply` from the CLI keep each copy with a reason naming what
 * uses it: a persistent Spot Instance request whose instance was interrupted, a CloudFormation stack's
 * `AWS::EC2::Image::Id` parameter, a stack template that writes the AMI ID, an Image Builder recipe built on
 * it; an AWS Batch compute environment, disabled and scaled to zero, through its `imageIdOverride` or its
 * `imageId`; an EMR cluster through an instance fleet's or an instance group's custom AMI (a terminated
 * cluster's custom AMI keeps nothing); and, with `shared: include`, what the account it is shared with runs from it through its own role: an
 * Auto Scaling group on a launch configuration, an SSM parameter, an EC2 Fleet override, a stack. The copies
 * nothing uses go, the unused shared one with a reason that says what was checked (in the sharee with a role)
 * and what was not (in one without: its usage report only).
 */
import { AutoScalingClient, CreateAutoScalingGroupCommand, CreateLaunchConfigurationCommand } from '@aws-sdk/client-auto-scaling';
import { BatchClient, CreateComputeEnvironmentCommand } from '@aws-sdk/client-batch';
import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import {
  CreateFleetCommand,
  CreateLaunchTemplateCommand,
  CreateTagsCommand,
  DescribeImagesCommand,
  DescribeSpotInstanceRequestsCommand,
  ModifyImageAttributeCommand,
  RequestSpotInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { EMRClient, RunJobFlowCommand, TerminateJobFlowsCommand } from '@aws-sdk/client-emr';
import {
  CreateImageRecipeCommand,
  GetDistributionConfigurationCommand,
  GetImageCommand,
  ImagebuilderClient,
  StartImagePipelineExecutionCommand,
  UpdateDistributionConfigurationCommand,
} from '@aws-sdk/client-imagebuilder';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import type { CleanupReport } from '../../src/lib/cleanup/cleanup.ts';
import { buildBundles } from '../helpers/build.ts';
import { cli } from '../helpers/cli.ts';
import { A, B, OWNER, REMOVED, cleanupScenario } from '../helpers/cleanup-world.ts';
import { clients, useSandbox } from '../helpers/sandbox.ts';
import { schemaErrors, validateCleanupReport } from '../helpers/schema.ts';

const DAY = 86_400_000;
const NO_ROLE = '444444444444';
const BUILDS = 7;

/** What keeps each copy, and the reason the report must give. */
const EXPECTED: Record<string, { guard: string; reason: RegExp }> = {
  a1: { guard: 'in-use', reason: /ec2:SpotInstanceRequest sir-[0-9a-f]+ \(persistent, open\)/ },
  a2: { guard: 'in-use', reason: /cloudformation:Stack arn:aws:cloudformation:ap-northeast-1:222222222222:stack\/web\/\S+ \(parameter\)/ },
  a3: {
    guard: 'in-use',
    reason: /cloudformation:Stack arn:aws:cloudformation:ap-northeast-1:222222222222:stack\/mapped\/\S+ \(template\)/,
  },
  a4: { guard: 'in-use', reason: /imagebuilder:ImageRecipe arn:aws:imagebuilder:ap-northeast-1:222222222222:image-recipe\/on-top/ },
  a6: {
    guard: 'in-use',
    reason: /batch:ComputeEnvironment arn:aws:batch:ap-northeast-1:222222222222:compute-environment\/idle \(DISABLED, VALID\)/,
  },
  a7: {
    guard: 'in-use',
    reason:
      /elasticmapreduce:Cluster arn:aws:elasticmapreduce:ap-northeast-1:222222222222:cluster\/j-[A-Z0-9]{13} \(WAITING, instance fleet if-[A-Z0-9]{13}\)/,
  },
  b6: {
    guard: 'in-use',
    reason:
      /elasticmapreduce:Cluster arn:aws:elasticmapreduce:ap-northeast-1:333333333333:cluster\/j-[A-Z0-9]{13} \(WAITING, instance group ig-[A-Z0-9]{13}\)/,
  },
  b7: {
    guard: 'in-use',
    reason: /batch:ComputeEnvironment arn:aws:batch:ap-northeast-1:333333333333:compute-environment\/jobs \(ENABLED, VALID\)/,
  },
  b1: {
    guard: 'in-use',
    reason:
      /in use in the accounts it is shared with: 222222222222: autoscaling:LaunchConfiguration \S+launchConfigurationName\/lc-b1, autoscaling:AutoScalingGroup \S+autoScalingGroupName\/asg-b1/,
  },
  b2: { guard: 'in-use', reason: /shared with: 222222222222: ssm:Parameter arn:aws:ssm:ap-northeast-1:222222222222:parameter\/golden\/b2/ },
  b3: { guard: 'in-use', reason: /shared with: 222222222222: ec2:Fleet fleet-/ },
  b4: { guard: 'in-use', reason: /shared with: 222222222222: cloudformation:Stack \S+stack\/uses-b4\/\S+ \(parameter\)/ },
};

describe('cleanup keeps an AMI any consumer names (sandbox, wiring and CLI)', () => {
  let box: Sandbox;
  let configArn = '';
  /** Copies in the removed region: a1…a7 in A, b1…b7 in B. */
  const copy = new Map<string, string>();
  const sandboxes = useSandbox();
  afterEach(() => vi.unstubAllEnvs());

  beforeAll(async () => {
    buildBundles();
    const scenario = cleanupScenario('cleanup-consumers', [A, B]);
    scenario.deploymentParams = { cleanupShared: 'include' };
    // an account without the reconciler's roles: what it runs is seen only through the usage report
    scenario.accounts = [...scenario.accounts, NO_ROLE];
    scenario.removedRoles = [NO_ROLE];
    box = await sandboxes.start({ scenario, wire: true, clockSpeed: 3000 });
    const ib = clients(box.url, OWNER).imagebuilder;
    const builds: string[] = [];
    for (let i = 1; i <= BUILDS; i += 1) {
      const out = await ib.send(
        new StartImagePipelineExecutionCommand({ imagePipelineArn: box.refs.get('pipeline:base'), clientToken: `b${i}` }),
      );
      builds.push(out.imageBuildVersionArn ?? '');
    }
    box.clock.advance(3 * 3600_000);
    for (const arn of builds) await box.finalReport(arn, 30_000);
    await box.idle();
    for (const [i, arn] of builds.entries()) {
      const image = (await ib.send(new GetImageCommand({ imageBuildVersionArn: arn }))).image;
      for (const [prefix, account] of [
        ['a', A],
        ['b', B],
      ] as const) {
        const id = image?.outputResources?.amis?.find((x) => x.region === REMOVED && x.accountId === account)?.image ?? '';
        copy.set(`${prefix}${i + 1}`, id);
        // reconciled: the reconciler's source tag, which the target cleanup role's retire grants require
        await clients(box.url, account, REMOVED).ec2.send(
          new CreateTagsCommand({ Resources: [id], Tags: [{ Key: 'imagebuilder-reconciler:source-image', Value: arn }] }),
        );
      }
    }
    const id = (name: string) => copy.get(name) ?? '';
    const config = (account: string) => ({
      endpoint: box.url,
      region: REMOVED,
      credentials: { accessKeyId: account, secretAccessKey: 'sandbox' },
      maxAttempts: 1,
    });
    const a = clients(box.url, A, REMOVED);
    const cfn = new CloudFormationClient(config(A));

    // a1: a persistent Spot request; its instance interrupted, the request waits to launch again
    const spot = await a.ec2.send(
      new RequestSpotInstancesCommand({ Type: 'persistent', LaunchSpecification: { ImageId: id('a1'), InstanceType: 't3.micro' } }),
    );
    await a.ec2.send(new TerminateInstancesCommand({ InstanceIds: [spot.SpotInstanceRequests?.[0]?.InstanceId ?? ''] }));
    // a2: a stack parameter of type AWS::EC2::Image::Id
    await cfn.send(
      new CreateStackCommand({
        StackName: 'web',
        TemplateBody: JSON.stringify({
          Parameters: { Ami: { Type: 'AWS::EC2::Image::Id' } },
          Resources: { Web: { Type: 'AWS::EC2::Instance', Properties: { ImageId: { Ref: 'Ami' } } } },
        }),
        Parameters: [{ ParameterKey: 'Ami', ParameterValue: id('a2') }],
      }),
    );
    // a3: a template that writes the AMI ID in a mapping (YAML)
    await cfn.send(
      new CreateStackCommand({
        StackName: 'mapped',
        TemplateBody: [
          'Mappings:',
          '  Amis:',
          `    ${REMOVED}: { Id: ${id('a3')} }`,
          'Resources:',
          '  Web:',
          '    Type: AWS::EC2::Instance',
          '    Properties:',
          '      ImageId: !FindInMap [Amis, !Ref AWS::Region, Id]',
        ].join('\n'),
      }),
    );
    // a4: an Image Builder recipe built on the copy
    await new ImagebuilderClient(config(A)).send(
      new CreateImageRecipeCommand({
        name: 'on-top',
        semanticVersion: '1.0.0',
        parentImage: id('a4'),
        components: [{ componentArn: `arn:aws:imagebuilder:${REMOVED}:aws:component/update-linux/x.x.x` }],
        clientToken: 'on-top',
      }),
    );
    // a6: a Batch compute environment, disabled and scaled to zero, whose ECS image type overrides to the copy
    const resources = { type: 'EC2' as const, minvCpus: 0, maxvCpus: 0, subnets: ['subnet-1'], instanceRole: 'ecsInstanceRole' };
    await new BatchClient(config(A)).send(
      new CreateComputeEnvironmentCommand({
        computeEnvironmentName: 'idle',
        type: 'MANAGED',
        state: 'DISABLED',
        computeResources: { ...resources, ec2Configuration: [{ imageType: 'ECS_AL2023', imageIdOverride: id('a6') }] },
      }),
    );
    // a7: an EMR cluster whose core fleet launches the copy; a5: named only by a terminated cluster
    const emr = new EMRClient(config(A));
    await emr.send(
      new RunJobFlowCommand({
        Name: 'spark',
        ReleaseLabel: 'emr-7.5.0',
        Instances: {
          KeepJobFlowAliveWhenNoSteps: true,
          InstanceFleets: [
            { InstanceFleetType: 'MASTER', TargetOnDemandCapacity: 1, InstanceTypeConfigs: [{ InstanceType: 'm5.xlarge' }] },
            {
              InstanceFleetType: 'CORE',
              TargetOnDemandCapacity: 2,
              InstanceTypeConfigs: [{ InstanceType: 'm5.xlarge', CustomAmiId: id('a7') }],
            },
          ],
        },
      }),
    );
    const ended = await emr.send(
      new RunJobFlowCommand({
        Name: 'ended',
        ReleaseLabel: 'emr-7.5.0',
        CustomAmiId: id('a5'),
        Instances: {
          KeepJobFlowAliveWhenNoSteps: true,
          InstanceGroups: [{ InstanceRole: 'MASTER', InstanceType: 'm5.xlarge', InstanceCount: 1 }],
        },
      }),
    );
    await emr.send(new TerminateJobFlowsCommand({ JobFlowIds: [ended.JobFlowId ?? ''] }));
    // b6: an EMR cluster in B whose task group launches the copy; b7: a Batch compute environment's imageId
    await new EMRClient(config(B)).send(
      new RunJobFlowCommand({
        Name: 'hive',
        ReleaseLabel: 'emr-7.5.0',
        Instances: {
          KeepJobFlowAliveWhenNoSteps: true,
          InstanceGroups: [
            { InstanceRole: 'MASTER', InstanceType: 'm5.xlarge', InstanceCount: 1 },
            { InstanceRole: 'TASK', InstanceType: 'm5.xlarge', InstanceCount: 2, CustomAmiId: id('b6') },
          ],
        },
      }),
    );
    await new BatchClient(config(B)).send(
      new CreateComputeEnvironmentCommand({
        computeEnvironmentName: 'jobs',
        type: 'MANAGED',
        computeResources: { ...resources, maxvCpus: 16, imageId: id('b7') },
      }),
    );
    // b1…b5 shared with A, which uses b1…b4 through what no usage report counts
    const b = clients(box.url, B, REMOVED);
    for (const name of ['b1', 'b2', 'b3', 'b4', 'b5'])
      await b.ec2.send(new ModifyImageAttributeCommand({ ImageId: id(name), LaunchPermission: { Add: [{ UserId: A }] } }));
    await b.ec2.send(new ModifyImageAttributeCommand({ ImageId: id('b5'), LaunchPermission: { Add: [{ UserId: NO_ROLE }] } }));
    const autoscaling = new AutoScalingClient(config(A));
    await autoscaling.send(
      new CreateLaunchConfigurationCommand({ LaunchConfigurationName: 'lc-b1', ImageId: id('b1'), InstanceType: 't3.micro' }),
    );
    await autoscaling.send(
      new CreateAutoScalingGroupCommand({ AutoScalingGroupName: 'asg-b1', LaunchConfigurationName: 'lc-b1', MinSize: 0, MaxSize: 2 }),
    );
    await a.ssm.send(new PutParameterCommand({ Name: '/golden/b2', Value: id('b2'), Type: 'String', DataType: 'text' }));
    const lt = await a.ec2.send(
      new CreateLaunchTemplateCommand({ LaunchTemplateName: 'fleet', LaunchTemplateData: { InstanceType: 't3.micro' } }),
    );
    await a.ec2.send(
      new CreateFleetCommand({
        LaunchTemplateConfigs: [
          {
            LaunchTemplateSpecification: { LaunchTemplateId: lt.LaunchTemplate?.LaunchTemplateId, Version: '1' },
            Overrides: [{ ImageId: id('b3') }],
          },
        ],
        TargetCapacitySpecification: { TotalTargetCapacity: 1 },
      }),
    );
    await cfn.send(
      new CreateStackCommand({
        StackName: 'uses-b4',
        TemplateBody: JSON.stringify({
          Parameters: { Ami: { Type: 'AWS::EC2::Image::Id' } },
          Resources: { Queue: { Type: 'AWS::SQS::Queue' } },
        }),
        Parameters: [{ ParameterKey: 'Ami', ParameterValue: id('b4') }],
      }),
    );

    // past the minimum age and the recently-launched guard of a1's one launch; then the region is removed
    box.clock.advance(31 * DAY);
    configArn = box.refs.get('distribution:base') ?? '';
    const current = await ib.send(new GetDistributionConfigurationCommand({ distributionConfigurationArn: configArn }));
    await ib.send(
      new UpdateDistributionConfigurationCommand({
        distributionConfigurationArn: configArn,
        distributions: current.distributionConfiguration?.distributions?.filter((d) => d.region !== REMOVED),
        clientToken: 'remove',
      }),
    );
    await box.idle();
  }, 240_000);

  async function exists(account: string, imageId: string): Promise<boolean> {
    const out = await clients(box.url, account, REMOVED).ec2.send(
      new DescribeImagesCommand({ Filters: [{ Name: 'image-id', Values: [imageId] }], IncludeDisabled: true }),
    );
    // a deregistered AMI stays listed for a while (state deregistered), as on AWS
    return (out.Images ?? []).some((i) => i.State !== 'deregistered');
  }

  function expectKept(report: CleanupReport | undefined): void {
    const byImage = new Map(report?.candidates.map((c) => [c.imageId, c]));
    for (const [name, want] of Object.entries(EXPECTED)) {
      const candidate = byImage.get(copy.get(name) ?? '');
      expect(candidate?.decision, `${name}: ${candidate?.reason ?? 'not a candidate'}`).toBe('skip');
      expect(candidate?.guard, `${name}: ${candidate?.reason ?? ''}`).toBe(want.guard);
      expect(candidate?.reason, name).toMatch(want.reason);
    }
  }

  it('the sandbox keeps the interrupted persistent Spot request open, with no instance', async () => {
    const out = await clients(box.url, A, REMOVED).ec2.send(new DescribeSpotInstanceRequestsCommand({}));
    expect(out.SpotInstanceRequests).toMatchObject([
      {
        Type: 'persistent',
        State: 'open',
        Status: { Code: 'instance-terminated-by-user' },
        LaunchSpecification: { ImageId: copy.get('a1') },
      },
    ]);
    expect(out.SpotInstanceRequests?.[0]?.InstanceId).toBeUndefined();
  });

  it('the deployed wiring (CloudTrail → cleanup, plan) keeps every used copy, naming its consumer', () => {
    const report = box.state.events.find((e) => e.detailType === 'Image Builder Cleanup Report')?.detail as CleanupReport | undefined;
    expect(report).toMatchObject({ trigger: 'eventbridge', mode: 'plan', settings: { shared: 'include' } });
    expect(schemaErrors(validateCleanupReport, report)).toStrictEqual([]);
    expectKept(report);
    const planned = report?.candidates.filter((c) => c.decision === 'deregister').map((c) => c.imageId);
    expect(planned?.sort()).toStrictEqual([copy.get('a5'), copy.get('b5')].sort());
  });

  it('cleanup --apply from the CLI removes only the free copies; the shared one says what was checked', async () => {
    vi.stubEnv('RECONCILER_CLEANUP_SHARED', 'include');
    const { out } = await cli(['cleanup', configArn, '--apply', '--json', '--endpoint-url', box.url, '--region', 'us-east-1']);
    const report = JSON.parse(out) as CleanupReport;
    expect(schemaErrors(validateCleanupReport, report)).toStrictEqual([]);
    expectKept(report);
    expect(report.candidates.find((c) => c.imageId === copy.get('a5'))).toMatchObject({ outcome: 'done', verified: 'gone' });
    expect(report.candidates.find((c) => c.imageId === copy.get('b5'))).toMatchObject({
      outcome: 'done',
      verified: 'gone',
      reason: expect.stringContaining(
        'shared with 222222222222, 444444444444: nothing in 222222222222 uses it (checked through their role); 444444444444 not checked through a role: the usage report is empty and it was not launched within 30 day(s)',
      ),
    });
    for (const name of Object.keys(EXPECTED)) {
      const account = name.startsWith('a') ? A : B;
      expect(await exists(account, copy.get(name) ?? ''), name).toBe(true);
    }
    expect(await exists(A, copy.get('a5') ?? '')).toBe(false);
    expect(await exists(B, copy.get('b5') ?? '')).toBe(false);
  });
});
