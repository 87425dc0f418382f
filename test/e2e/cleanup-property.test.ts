/**
 * A property of the whole cleanup (inventory, observe, plan, re-check, apply) on the sandbox: in random
 * worlds of builds, copies in a removed region, every kind of reference (Spot Instance requests, stacks and
 * Image Builder recipes among them), shares used and unused (and used in the sharee account by what no usage
 * report counts), the keep tag and its near misses and look-alikes, deregistration protection, reads that fail, and the configuration changing while apply runs,
 * `cleanup --apply` never deletes an AMI that had to be kept, keeps each with the guard that applies,
 * and (when nothing failed or changed) removes every AMI that was free to go.
 *
 * Runs `CLEANUP_PROPERTY_RUNS` worlds (default 20 in the suite). The planner alone runs 10,000 worlds in
 * seconds: `npm run worlds -- 10000` (test/helpers/planner-worlds.ts).
 */
import { AutoScalingClient, CreateAutoScalingGroupCommand, CreateLaunchConfigurationCommand } from '@aws-sdk/client-auto-scaling';
import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import {
  CreateFleetCommand,
  CreateLaunchTemplateCommand,
  CreateLaunchTemplateVersionCommand,
  CreateTagsCommand,
  DescribeImagesCommand,
  EnableImageDeregistrationProtectionCommand,
  ModifyImageAttributeCommand,
  ModifyLaunchTemplateCommand,
  RequestSpotFleetCommand,
  RequestSpotInstancesCommand,
  RunInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import {
  CreateImageRecipeCommand,
  GetDistributionConfigurationCommand,
  GetImageCommand,
  ImagebuilderClient,
  StartImagePipelineExecutionCommand,
  UpdateDistributionConfigurationCommand,
} from '@aws-sdk/client-imagebuilder';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import type { Scenario } from '../../sandbox/harness/scenario.ts';
import { main } from '../../src/cli/index.ts';
import type { CleanupReport } from '../../src/lib/cleanup/cleanup.ts';
import { A, B, OWNER, REMOVED, cleanupScenario } from '../helpers/cleanup-world.ts';
import { clients, deployCleanupSettings, sandbox } from '../helpers/sandbox.ts';

const RUNS = Number(process.env.CLEANUP_PROPERTY_RUNS ?? 20);

const PROTECTIONS = [
  'none',
  'instance-running',
  'instance-stopped',
  'instance-terminated',
  'lt-default',
  'lt-beyond-depth',
  'launch-configuration',
  'asg-pinned-version',
  'spot-fleet',
  'ec2-fleet-override',
  'ssm-parameter',
  'spot-request',
  'stack-parameter',
  'stack-template',
  'image-recipe',
  'keep-tag',
  'keep-tag-near',
  'keep-tag-lookalike',
  'protected',
  'shared-used',
  'shared-unused',
  'sharee-launch-configuration',
  'sharee-ssm-parameter',
  'sharee-fleet-override',
  'sharee-stack',
] as const;
type Protection = (typeof PROTECTIONS)[number];

/** The guard that must keep an AMI with this protection, or undefined where it is free to go. */
function expectedGuard(p: Protection, shared: 'skip' | 'include'): string | undefined {
  switch (p) {
    case 'none':
    case 'instance-terminated':
    case 'keep-tag-lookalike':
      return undefined;
    case 'keep-tag':
    case 'keep-tag-near':
      return 'keep-tag';
    case 'protected':
      return 'protected';
    case 'shared-used':
      return shared === 'skip' ? 'shared' : 'in-use';
    case 'shared-unused':
      return shared === 'skip' ? 'shared' : undefined;
    case 'sharee-launch-configuration':
    case 'sharee-ssm-parameter':
    case 'sharee-fleet-override':
    case 'sharee-stack':
      // used only in the account it is shared with, by what no usage report counts: seen through its role
      return shared === 'skip' ? 'shared' : 'in-use';
    default:
      return 'in-use';
  }
}

function scenario(): Scenario {
  return cleanupScenario('cleanup-property', [A, B]);
}

const FAILING_READS = [
  'DescribeImages',
  'DescribeImageReferences',
  'DescribeAutoScalingGroups',
  'DescribeLaunchConfigurations',
  'DescribeSpotFleetRequests',
  'DescribeFleets',
  'DescribeSpotInstanceRequests',
  'DescribeStacks',
  'GetTemplate',
  'DescribeFastLaunchImages',
  'DescribeImageAttribute',
  'GetDistributionConfiguration',
  'DescribeImageUsageReports',
];

const world = fc.record({
  builds: fc.integer({ min: 1, max: 3 }),
  protections: fc.array(fc.constantFrom(...PROTECTIONS), { minLength: 6, maxLength: 6 }),
  shared: fc.constantFrom('skip' as const, 'include' as const),
  /** A read that fails (after the SDK's single attempt): what it guarded is unknown, so kept. */
  failingRead: fc.option(
    fc.record({
      operation: fc.constantFrom(...FAILING_READS),
      account: fc.constantFrom(A, B, OWNER),
      afterCalls: fc.integer({ min: 0, max: 40 }),
    }),
    { nil: undefined },
  ),
  /** The removed region comes back after this many AWS calls of the apply run. */
  readdAfter: fc.option(fc.integer({ min: 1, max: 80 }), { nil: undefined }),
});

async function protect(box: Sandbox, imageId: string, account: string, p: Protection, other: string, free: string): Promise<void> {
  const ec2 = clients(box.url, account, REMOVED).ec2;
  const autoscaling = new AutoScalingClient({
    endpoint: box.url,
    region: REMOVED,
    credentials: { accessKeyId: account, secretAccessKey: 'sandbox' },
    maxAttempts: 1,
  });
  const name = `${p}-${imageId}`;
  const config = (who: string) => ({
    endpoint: box.url,
    region: REMOVED,
    credentials: { accessKeyId: who, secretAccessKey: 'sandbox' },
    maxAttempts: 1,
  });
  const share = () => ec2.send(new ModifyImageAttributeCommand({ ImageId: imageId, LaunchPermission: { Add: [{ UserId: other }] } }));
  switch (p) {
    case 'none':
    case 'instance-terminated': {
      if (p === 'none') return;
      const i = await ec2.send(new RunInstancesCommand({ ImageId: imageId, MinCount: 1, MaxCount: 1 }));
      await ec2.send(new TerminateInstancesCommand({ InstanceIds: [i.Instances?.[0]?.InstanceId ?? ''] }));
      return;
    }
    case 'instance-running':
      await ec2.send(new RunInstancesCommand({ ImageId: imageId, MinCount: 1, MaxCount: 1 }));
      return;
    case 'instance-stopped': {
      const i = await ec2.send(new RunInstancesCommand({ ImageId: imageId, MinCount: 1, MaxCount: 1 }));
      await ec2.send(new StopInstancesCommand({ InstanceIds: [i.Instances?.[0]?.InstanceId ?? ''] }));
      return;
    }
    case 'lt-default':
      await ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: name, LaunchTemplateData: { ImageId: imageId } }));
      return;
    case 'lt-beyond-depth': {
      const lt = await ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: name, LaunchTemplateData: { ImageId: imageId } }));
      for (let v = 0; v < 11; v += 1)
        await ec2.send(
          new CreateLaunchTemplateVersionCommand({
            LaunchTemplateId: lt.LaunchTemplate?.LaunchTemplateId,
            LaunchTemplateData: { ImageId: free },
          }),
        );
      await ec2.send(new ModifyLaunchTemplateCommand({ LaunchTemplateId: lt.LaunchTemplate?.LaunchTemplateId, DefaultVersion: '1' }));
      return;
    }
    case 'launch-configuration':
      await autoscaling.send(
        new CreateLaunchConfigurationCommand({ LaunchConfigurationName: name, ImageId: imageId, InstanceType: 't3.micro' }),
      );
      return;
    case 'asg-pinned-version': {
      const lt = await ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: name, LaunchTemplateData: { ImageId: imageId } }));
      await autoscaling.send(
        new CreateAutoScalingGroupCommand({
          AutoScalingGroupName: name,
          LaunchTemplate: { LaunchTemplateId: lt.LaunchTemplate?.LaunchTemplateId, Version: '1' },
          MinSize: 0,
          MaxSize: 1,
        }),
      );
      return;
    }
    case 'spot-fleet':
      await ec2.send(
        new RequestSpotFleetCommand({
          SpotFleetRequestConfig: {
            IamFleetRole: `arn:aws:iam::${account}:role/fleet`,
            TargetCapacity: 1,
            LaunchSpecifications: [{ ImageId: imageId }],
          },
        }),
      );
      return;
    case 'ec2-fleet-override': {
      const lt = await ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: name, LaunchTemplateData: { ImageId: free } }));
      await ec2.send(
        new CreateFleetCommand({
          LaunchTemplateConfigs: [
            {
              LaunchTemplateSpecification: { LaunchTemplateId: lt.LaunchTemplate?.LaunchTemplateId, Version: '1' },
              Overrides: [{ ImageId: imageId }],
            },
          ],
          TargetCapacitySpecification: { TotalTargetCapacity: 1 },
        }),
      );
      return;
    }
    case 'ssm-parameter':
      await clients(box.url, account, REMOVED).ssm.send(
        new PutParameterCommand({ Name: `/golden/${imageId}`, Value: imageId, Type: 'String', DataType: 'text' }),
      );
      return;
    case 'spot-request': {
      // persistent, its instance interrupted: the request is open again and names the AMI alone
      const spot = await ec2.send(
        new RequestSpotInstancesCommand({ Type: 'persistent', LaunchSpecification: { ImageId: imageId, InstanceType: 't3.micro' } }),
      );
      await ec2.send(new TerminateInstancesCommand({ InstanceIds: [spot.SpotInstanceRequests?.[0]?.InstanceId ?? ''] }));
      return;
    }
    case 'stack-parameter':
    case 'stack-template':
    case 'sharee-stack':
      await new CloudFormationClient(config(p === 'sharee-stack' ? other : account)).send(
        new CreateStackCommand({
          StackName: `s-${imageId}`,
          TemplateBody: JSON.stringify(
            p === 'stack-template'
              ? { Resources: { Web: { Type: 'AWS::EC2::Instance', Properties: { ImageId: imageId } } } }
              : { Parameters: { Ami: { Type: 'AWS::EC2::Image::Id' } }, Resources: { Q: { Type: 'AWS::SQS::Queue' } } },
          ),
          Parameters: p === 'stack-template' ? [] : [{ ParameterKey: 'Ami', ParameterValue: imageId }],
        }),
      );
      if (p === 'sharee-stack') await share();
      return;
    case 'image-recipe':
      await new ImagebuilderClient(config(account)).send(
        new CreateImageRecipeCommand({
          name: `r-${imageId}`,
          semanticVersion: '1.0.0',
          parentImage: imageId,
          components: [{ componentArn: `arn:aws:imagebuilder:${REMOVED}:aws:component/update-linux/x.x.x` }],
          clientToken: imageId,
        }),
      );
      return;
    case 'sharee-launch-configuration':
      await new AutoScalingClient(config(other)).send(
        new CreateLaunchConfigurationCommand({ LaunchConfigurationName: name, ImageId: imageId, InstanceType: 't3.micro' }),
      );
      await share();
      return;
    case 'sharee-ssm-parameter':
      await clients(box.url, other, REMOVED).ssm.send(
        new PutParameterCommand({ Name: `/golden/${imageId}`, Value: imageId, Type: 'String', DataType: 'text' }),
      );
      await share();
      return;
    case 'sharee-fleet-override': {
      const theirs = clients(box.url, other, REMOVED).ec2;
      const lt = await theirs.send(
        new CreateLaunchTemplateCommand({ LaunchTemplateName: name, LaunchTemplateData: { InstanceType: 't3.micro' } }),
      );
      await theirs.send(
        new CreateFleetCommand({
          LaunchTemplateConfigs: [
            {
              LaunchTemplateSpecification: { LaunchTemplateId: lt.LaunchTemplate?.LaunchTemplateId, Version: '1' },
              Overrides: [{ ImageId: imageId }],
            },
          ],
          TargetCapacitySpecification: { TotalTargetCapacity: 1 },
        }),
      );
      await share();
      return;
    }
    case 'keep-tag':
    case 'keep-tag-near':
    case 'keep-tag-lookalike': {
      const key = {
        'keep-tag': 'imagebuilder-reconciler:keep',
        'keep-tag-near': 'Imagebuilder-Reconciler:Keep ',
        'keep-tag-lookalike': 'imagebuilder-reconciler:keeps',
      }[p];
      await ec2.send(new CreateTagsCommand({ Resources: [imageId], Tags: [{ Key: key, Value: '' }] }));
      return;
    }
    case 'protected':
      await ec2.send(new EnableImageDeregistrationProtectionCommand({ ImageId: imageId }));
      return;
    case 'shared-used':
    case 'shared-unused':
      await ec2.send(new ModifyImageAttributeCommand({ ImageId: imageId, LaunchPermission: { Add: [{ UserId: other }] } }));
      if (p === 'shared-used')
        await clients(box.url, other, REMOVED).ec2.send(new RunInstancesCommand({ ImageId: imageId, MinCount: 1, MaxCount: 1 }));
      return;
  }
}

describe('cleanup never deletes what must be kept (property, on the sandbox)', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it(
    `holds in ${RUNS} random worlds`,
    async () => {
      await fc.assert(
        fc.asyncProperty(world, async (w) => {
          const box = await sandbox({ scenario: scenario(), wire: false, clockSpeed: 1 });
          try {
            const ib = clients(box.url, OWNER).imagebuilder;
            const builds: string[] = [];
            for (let i = 1; i <= w.builds; i += 1) {
              builds.push(
                (
                  await ib.send(
                    new StartImagePipelineExecutionCommand({ imagePipelineArn: box.refs.get('pipeline:base'), clientToken: `b${i}` }),
                  )
                ).imageBuildVersionArn ?? '',
              );
            }
            box.clock.advance(3 * 3600_000);
            const amis: { imageId: string; account: string; protection: Protection }[] = [];
            let n = 0;
            for (const arn of builds) {
              const image = (await ib.send(new GetImageCommand({ imageBuildVersionArn: arn }))).image;
              for (const account of [A, B]) {
                const imageId = image?.outputResources?.amis?.find((a) => a.region === REMOVED && a.accountId === account)?.image ?? '';
                amis.push({ imageId, account, protection: w.protections[n % w.protections.length] ?? 'none' });
                // reconciled: the reconciler's source tag, which the cleanup role's retire grants require
                await clients(box.url, account, REMOVED).ec2.send(
                  new CreateTagsCommand({ Resources: [imageId], Tags: [{ Key: 'imagebuilder-reconciler:source-image', Value: arn }] }),
                );
                n += 1;
              }
            }
            box.clock.advance(10 * 86_400_000);
            // a template's newer versions launch an AMI of the owner's current cell: never a candidate
            const free =
              (await ib.send(new GetImageCommand({ imageBuildVersionArn: builds[0] }))).image?.outputResources?.amis?.find(
                (a) => a.region === 'us-east-1' && a.accountId === OWNER,
              )?.image ?? '';
            for (const a of amis) await protect(box, a.imageId, a.account, a.protection, a.account === A ? B : A, free);
            // a month later: the launches above are past the launched-within guard (30 days); what still runs
            // keeps its AMI through the in-use checks
            box.clock.advance(31 * 86_400_000);

            const configArn = box.refs.get('distribution:base') ?? '';
            const current = await ib.send(new GetDistributionConfigurationCommand({ distributionConfigurationArn: configArn }));
            const removed = current.distributionConfiguration?.distributions?.find((d) => d.region === REMOVED);
            await ib.send(
              new UpdateDistributionConfigurationCommand({
                distributionConfigurationArn: configArn,
                distributions: current.distributionConfiguration?.distributions?.filter((d) => d.region !== REMOVED),
                clientToken: 'remove',
              }),
            );

            await deployCleanupSettings(box, { RECONCILER_CLEANUP_SHARED: w.shared });
            vi.stubEnv('RECONCILER_SDK_MAX_ATTEMPTS', '1');
            const start = box.server.requests.length;
            let readded = false;
            let readdAt = -1;
            let failed = false;
            box.onRequest = (record) => {
              const calls = box.server.requests.length - start;
              if (record.operation === 'CreateImageUsageReport') box.clock.advance(60_000);
              if (w.failingRead !== undefined && !failed && calls >= w.failingRead.afterCalls) {
                failed = true;
                box.faults.merge({
                  errors: [
                    {
                      operation: w.failingRead.operation,
                      account: w.failingRead.account,
                      code: 'UnauthorizedOperation',
                      message: 'denied by the property test',
                      status: 403,
                    },
                  ],
                });
              }
              if (w.readdAfter !== undefined && !readded && calls >= w.readdAfter) {
                readded = true;
                readdAt = box.server.requests.length;
                const state = box.state.cell(OWNER, 'us-east-1').imagebuilder.distributions.get(configArn);
                if (state !== undefined && removed !== undefined) state.distributions = [...(state.distributions ?? []), removed];
              }
            };
            let out = '';
            const code = await main(
              ['cleanup', configArn, '--apply', '--json', '--endpoint-url', box.url, '--region', 'us-east-1', '--stage', 'sandbox'],
              {
                out: (s) => (out += s),
                err: () => undefined,
                isTTY: false,
              },
            );
            box.onRequest = undefined;
            box.faults.set({});
            expect([0, 1, 3, 5]).toContain(code);
            if (code === 5) {
              // the configuration itself could not be read (refused): the run stops before any AMI is looked at
              expect(w.failingRead?.operation).toBe('GetDistributionConfiguration');
              expect(
                box.server.requests
                  .slice(start)
                  .filter((r) => /^(Deregister|Disable|EnableImageDeprecation|CreateTags|DeleteSnapshot)/.test(r.operation)),
              ).toStrictEqual([]);
              return;
            }
            const report = JSON.parse(out) as CleanupReport;

            for (const a of amis) {
              const still = (
                (
                  await clients(box.url, a.account, REMOVED).ec2.send(
                    new DescribeImagesCommand({ Filters: [{ Name: 'image-id', Values: [a.imageId] }], IncludeDisabled: true }),
                  )
                ).Images ?? []
              ).some((i) => i.State !== 'deregistered'); // listed a while after deregistering, as on AWS
              const guard = expectedGuard(a.protection, w.shared);
              const candidate = report.candidates.find((c) => c.imageId === a.imageId);
              // never a wrongful deletion
              if (guard !== undefined) expect(still, `${a.imageId} (${a.protection}) was deleted`).toBe(true);
              // kept with the right guard, when nothing failed or changed
              if (w.failingRead === undefined && w.readdAfter === undefined) {
                if (guard === undefined) expect(still, `${a.imageId} (${a.protection}) was free to go`).toBe(false);
                else expect(candidate?.guard, `${a.imageId} (${a.protection}): ${candidate?.reason ?? ''}`).toBe(guard);
              } else if (still && guard === undefined) {
                // a free AMI kept: only because something failed or changed, and the report says which
                expect(['unknown', 'changed', 'current-cell', 'not-recorded', 'gone']).toContain(candidate?.guard);
              }
            }
            // once the region is back, a deletion may only follow a configuration read made before it came back
            // (the unavoidable window between the last re-check and the call); every later re-check keeps the AMI
            if (readded) {
              const log = box.server.requests;
              for (let i = readdAt; i < log.length; i += 1) {
                if (log[i]?.operation !== 'DeregisterImage') continue;
                const reread = log.slice(readdAt, i).some((r) => r.operation === 'GetDistributionConfiguration');
                expect(reread, 'a deletion after a re-check that saw the region back').toBe(false);
              }
            }
          } finally {
            await box.stop();
          }
        }),
        { numRuns: RUNS },
      );
    },
    Math.max(600_000, RUNS * 2_000),
  );
});
