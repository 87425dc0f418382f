import * as schemas from '@aws-sdk/client-auto-scaling';
import { AwsError } from '../protocol/errors.ts';
import { type Ctx, type ServiceDef, op } from '../server.ts';
import type { CellStore } from '../state.ts';
import { paginate } from './common.ts';
import { partitionOf } from '../partition.ts';

/**
 * Amazon EC2 Auto Scaling over its query protocol (namespace 2011-01-01), as far as cleanup's in-use
 * check needs it: Auto Scaling groups that launch from a launch template version (pinned, `$Default` or
 * `$Latest`, or through a mixed-instances policy) or from a launch configuration, and launch
 * configurations, which name an AMI directly. Neither is covered by EC2's DescribeImageReferences.
 * Auto Scaling API Reference: CreateAutoScalingGroup, CreateLaunchConfiguration, DescribeAutoScalingGroups,
 * DescribeLaunchConfigurations, DeleteAutoScalingGroup, DeleteLaunchConfiguration.
 */

function here(ctx: Ctx): CellStore {
  return ctx.env.state.cell(ctx.account, ctx.region);
}

interface TemplateSpec {
  LaunchTemplateId?: string | undefined;
  LaunchTemplateName?: string | undefined;
  Version?: string | undefined;
}

function spec(t: TemplateSpec | undefined) {
  return t === undefined ? undefined : { id: t.LaunchTemplateId, name: t.LaunchTemplateName, version: t.Version };
}

function specOut(t: { id: string | undefined; name: string | undefined; version: string | undefined }) {
  return { LaunchTemplateId: t.id, LaunchTemplateName: t.name, Version: t.version };
}

const autoscaling: ServiceDef = {
  name: 'autoscaling',
  protocol: 'query',
  namespace: 'http://autoscaling.amazonaws.com/doc/2011-01-01/',
  schemas: schemas as unknown as Record<string, unknown>,
  handlers: {
    CreateLaunchConfiguration: op((ctx: Ctx, input: { LaunchConfigurationName?: string; ImageId?: string; InstanceType?: string }) => {
      const name = input.LaunchConfigurationName ?? '';
      if (name === '') throw new AwsError('ValidationError', 'LaunchConfigurationName is required');
      if (input.ImageId === undefined || !/^ami-[0-9a-f]{8,17}$/.test(input.ImageId))
        throw new AwsError('ValidationError', `Invalid image id ${input.ImageId ?? ''}`);
      if (here(ctx).launchConfigurations.has(name))
        throw new AwsError(
          'AlreadyExists',
          `Launch Configuration by this name already exists - A launch configuration already exists with the name ${name}`,
        );
      const arn = `arn:${partitionOf(ctx.region)}:autoscaling:${ctx.region}:${ctx.account}:launchConfiguration:${crypto.randomUUID()}:launchConfigurationName/${name}`;
      here(ctx).launchConfigurations.set(name, {
        name,
        arn,
        imageId: input.ImageId,
        instanceType: input.InstanceType ?? 't3.micro',
        created: ctx.env.clock.iso(),
      });
      return {};
    }),
    DescribeLaunchConfigurations: op(
      (ctx: Ctx, input: { LaunchConfigurationNames?: string[]; MaxRecords?: number; NextToken?: string }) => {
        const all = [...here(ctx).launchConfigurations.values()].filter(
          (c) =>
            input.LaunchConfigurationNames === undefined ||
            input.LaunchConfigurationNames.length === 0 ||
            input.LaunchConfigurationNames.includes(c.name),
        );
        const { page, nextToken } = paginate(all, input.MaxRecords, input.NextToken, { default: 50, max: 100 });
        return {
          LaunchConfigurations: page.map((c) => ({
            LaunchConfigurationName: c.name,
            LaunchConfigurationARN: c.arn,
            ImageId: c.imageId,
            InstanceType: c.instanceType,
            CreatedTime: new Date(c.created),
          })),
          NextToken: nextToken,
        };
      },
    ),
    DeleteLaunchConfiguration: op((ctx: Ctx, input: { LaunchConfigurationName?: string }) => {
      const name = input.LaunchConfigurationName ?? '';
      if ([...here(ctx).autoScalingGroups.values()].some((g) => g.launchConfigurationName === name))
        throw new AwsError('ResourceInUse', `Cannot delete launch configuration ${name} because it is attached to AutoScalingGroup`);
      here(ctx).launchConfigurations.delete(name);
      return {};
    }),
    CreateAutoScalingGroup: op(
      (
        ctx: Ctx,
        input: {
          AutoScalingGroupName?: string;
          LaunchConfigurationName?: string;
          LaunchTemplate?: TemplateSpec;
          MixedInstancesPolicy?: {
            LaunchTemplate?: { LaunchTemplateSpecification?: TemplateSpec; Overrides?: { LaunchTemplateSpecification?: TemplateSpec }[] };
          };
          MinSize?: number;
          MaxSize?: number;
        },
      ) => {
        const name = input.AutoScalingGroupName ?? '';
        if (name === '') throw new AwsError('ValidationError', 'AutoScalingGroupName is required');
        if (here(ctx).autoScalingGroups.has(name))
          throw new AwsError(
            'AlreadyExists',
            `AutoScalingGroup by this name already exists - A group with the name ${name} already exists`,
          );
        const sources = [input.LaunchConfigurationName, input.LaunchTemplate, input.MixedInstancesPolicy].filter(
          (x) => x !== undefined,
        ).length;
        if (sources !== 1)
          throw new AwsError(
            'ValidationError',
            'Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.',
          );
        if (input.LaunchConfigurationName !== undefined && !here(ctx).launchConfigurations.has(input.LaunchConfigurationName)) {
          throw new AwsError(
            'ValidationError',
            `Launch configuration name not found - Launch configuration ${input.LaunchConfigurationName} not found`,
          );
        }
        const mixed = input.MixedInstancesPolicy?.LaunchTemplate;
        here(ctx).autoScalingGroups.set(name, {
          name,
          arn: `arn:${partitionOf(ctx.region)}:autoscaling:${ctx.region}:${ctx.account}:autoScalingGroup:${crypto.randomUUID()}:autoScalingGroupName/${name}`,
          launchConfigurationName: input.LaunchConfigurationName,
          launchTemplate: spec(input.LaunchTemplate),
          mixedTemplates: [
            spec(mixed?.LaunchTemplateSpecification),
            ...(mixed?.Overrides ?? []).map((o) => spec(o.LaunchTemplateSpecification)),
          ].filter((t): t is NonNullable<ReturnType<typeof spec>> => t !== undefined),
          minSize: input.MinSize ?? 0,
          maxSize: input.MaxSize ?? 0,
          created: ctx.env.clock.iso(),
        });
        return {};
      },
    ),
    DescribeAutoScalingGroups: op((ctx: Ctx, input: { AutoScalingGroupNames?: string[]; MaxRecords?: number; NextToken?: string }) => {
      const all = [...here(ctx).autoScalingGroups.values()].filter(
        (g) =>
          input.AutoScalingGroupNames === undefined ||
          input.AutoScalingGroupNames.length === 0 ||
          input.AutoScalingGroupNames.includes(g.name),
      );
      const { page, nextToken } = paginate(all, input.MaxRecords, input.NextToken, { default: 50, max: 100 });
      return {
        AutoScalingGroups: page.map((g) => {
          const [first, ...overrides] = g.mixedTemplates;
          return {
            AutoScalingGroupName: g.name,
            AutoScalingGroupARN: g.arn,
            LaunchConfigurationName: g.launchConfigurationName,
            LaunchTemplate: g.launchTemplate === undefined ? undefined : specOut(g.launchTemplate),
            MixedInstancesPolicy:
              first === undefined
                ? undefined
                : {
                    LaunchTemplate: {
                      LaunchTemplateSpecification: specOut(first),
                      Overrides: overrides.map((o) => ({ LaunchTemplateSpecification: specOut(o) })),
                    },
                  },
            MinSize: g.minSize,
            MaxSize: g.maxSize,
            DesiredCapacity: g.minSize,
            DefaultCooldown: 300,
            AvailabilityZones: [`${ctx.region}a`],
            HealthCheckType: 'EC2',
            CreatedTime: new Date(g.created),
          };
        }),
        NextToken: nextToken,
      };
    }),
    DeleteAutoScalingGroup: op((ctx: Ctx, input: { AutoScalingGroupName?: string }) => {
      if (!here(ctx).autoScalingGroups.delete(input.AutoScalingGroupName ?? ''))
        throw new AwsError(
          'ValidationError',
          `AutoScalingGroup name not found - AutoScalingGroup ${input.AutoScalingGroupName ?? ''} not found`,
        );
      return {};
    }),
  },
};

export { autoscaling };
