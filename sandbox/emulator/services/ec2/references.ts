import type { DescribeImageReferencesRequest } from '@aws-sdk/client-ec2';
import { partitionOf } from '../../partition.ts';
import { AwsError } from '../../protocol/errors.ts';
import type { Ctx } from '../../server.ts';
import { paginate } from '../common.ts';
import { checkImageId, here } from './access.ts';
import { resolveSsmImage } from './launch-templates.ts';

const REFERENCE_TYPE_NAMES = [
  'ec2:Instance',
  'ec2:LaunchTemplate',
  'ssm:Parameter',
  'imagebuilder:ImageRecipe',
  'imagebuilder:ContainerRecipe',
];
const INSTANCE_STATES = ['pending', 'running', 'shutting-down', 'terminated', 'stopping', 'stopped'];

/**
 * DescribeImageReferences with AWS's defaults (EC2 API Reference, DescribeImageReferences and
 * ResourceTypeRequest / ResourceTypeOption; EC2 User Guide, "Identify your resources referencing specified
 * AMIs"): with `IncludeAllResourceTypes`, or a resource type without options, instances in **every** state
 * count, terminated ones included, and only the **10 most recent** versions of each launch template are
 * checked. The `state-name` option narrows instance states; `version-depth` (1–10000) deepens the
 * launch template check. Launch template versions are resolved through `resolve:ssm:`.
 */
function describeImageReferences(ctx: Ctx, input: DescribeImageReferencesRequest) {
  const ids = input.ImageIds ?? [];
  if (ids.length < 1 || ids.length > 10) throw new AwsError('InvalidParameterValue', 'ImageIds must contain 1 to 10 image IDs');
  for (const id of ids) checkImageId(id);
  // IncludeAllResourceTypes with ResourceTypes is allowed: "If you also specify ResourceTypes with
  // ResourceTypeOptions, your specified values override the default values" (EC2 API Reference,
  // DescribeImageReferences, IncludeAllResourceTypes)
  const requested = input.ResourceTypes ?? [];
  for (const t of requested) {
    if (!REFERENCE_TYPE_NAMES.includes(t.ResourceType ?? ''))
      throw new AwsError('InvalidParameterValue', `Invalid resource type: ${t.ResourceType ?? ''}`);
    for (const o of t.ResourceTypeOptions ?? []) {
      const allowed =
        t.ResourceType === 'ec2:Instance' ? 'state-name' : t.ResourceType === 'ec2:LaunchTemplate' ? 'version-depth' : undefined;
      if (o.OptionName !== allowed)
        throw new AwsError('InvalidParameterValue', `Invalid option ${o.OptionName ?? ''} for resource type ${t.ResourceType ?? ''}`);
      if (o.OptionName === 'state-name' && (o.OptionValues ?? []).some((v) => !INSTANCE_STATES.includes(v)))
        throw new AwsError('InvalidParameterValue', `Invalid state-name: ${(o.OptionValues ?? []).join(',')}`);
      if (o.OptionName === 'version-depth') {
        const n = Number(o.OptionValues?.[0]);
        if ((o.OptionValues ?? []).length !== 1 || !Number.isInteger(n) || n < 1 || n > 10000)
          throw new AwsError('InvalidParameterValue', 'version-depth must be an integer between 1 and 10000');
      }
    }
  }
  const types = input.IncludeAllResourceTypes === true ? REFERENCE_TYPE_NAMES : requested.map((t) => t.ResourceType ?? '');
  if (types.length === 0) throw new AwsError('InvalidParameterCombination', 'Specify ResourceTypes or IncludeAllResourceTypes');
  const option = (type: string, name: string) =>
    requested.find((t) => t.ResourceType === type)?.ResourceTypeOptions?.find((o) => o.OptionName === name)?.OptionValues;
  const depth = Number(option('ec2:LaunchTemplate', 'version-depth')?.[0] ?? 10);
  const states = option('ec2:Instance', 'state-name') ?? INSTANCE_STATES;
  const store = here(ctx);
  const refs: { ImageId: string; ResourceType: string; Arn: string }[] = [];
  for (const imageId of ids) {
    if (types.includes('ec2:Instance')) {
      for (const i of store.instances.values()) {
        if (i.imageId === imageId && states.includes(i.state))
          refs.push({
            ImageId: imageId,
            ResourceType: 'ec2:Instance',
            Arn: `arn:${partitionOf(ctx.region)}:ec2:${ctx.region}:${ctx.account}:instance/${i.instanceId}`,
          });
      }
    }
    if (types.includes('ec2:LaunchTemplate')) {
      for (const t of store.launchTemplates.values()) {
        const recent = t.versions.slice(-depth);
        if (recent.some((v) => resolveSsmImage(ctx, v.data.ImageId) === imageId)) {
          refs.push({
            ImageId: imageId,
            ResourceType: 'ec2:LaunchTemplate',
            Arn: `arn:${partitionOf(ctx.region)}:ec2:${ctx.region}:${ctx.account}:launch-template/${t.id}`,
          });
        }
      }
    }
    if (types.includes('ssm:Parameter')) {
      for (const p of store.parameters.values()) {
        if (p.value === imageId)
          refs.push({
            ImageId: imageId,
            ResourceType: 'ssm:Parameter',
            Arn: `arn:${partitionOf(ctx.region)}:ssm:${ctx.region}:${ctx.account}:parameter${p.name.startsWith('/') ? '' : '/'}${p.name}`,
          });
      }
    }
    if (types.includes('imagebuilder:ImageRecipe')) {
      for (const r of store.imagebuilder.recipes.values()) {
        if (r.parentImage === imageId && r.arn !== undefined)
          refs.push({ ImageId: imageId, ResourceType: 'imagebuilder:ImageRecipe', Arn: r.arn });
      }
    }
  }
  // MaxResults: the model's DescribeImageReferencesMaxResults has "min": 5 and no maximum
  const { page, nextToken } = paginate(refs, input.MaxResults, input.NextToken, { default: 1000, min: 5, max: Number.MAX_SAFE_INTEGER });
  return { ImageReferences: page, NextToken: nextToken };
}

export { describeImageReferences };
