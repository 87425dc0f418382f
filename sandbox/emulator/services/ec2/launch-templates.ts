import type {
  CreateLaunchTemplateRequest,
  CreateLaunchTemplateVersionRequest,
  DescribeLaunchTemplatesRequest,
  DescribeLaunchTemplateVersionsRequest,
  ModifyLaunchTemplateRequest,
} from '@aws-sdk/client-ec2';
import { partitionOf } from '../../partition.ts';
import { AwsError } from '../../protocol/errors.ts';
import type { Ctx } from '../../server.ts';
import { type LaunchTemplate, resourceId } from '../../state.ts';
import { applyFilters, paginate, tagFilter, tagList, validateTags } from '../common.ts';
import { parseSelector, selectParameter } from '../parameters.ts';
import { here } from './access.ts';

function findTemplate(ctx: Ctx, id: string | undefined, name: string | undefined): LaunchTemplate {
  if (id !== undefined && name !== undefined) {
    throw new AwsError(
      'InvalidParameterCombination',
      'You can specify either the launch template ID or the launch template name, but not both.',
    );
  }
  const templates = [...here(ctx).launchTemplates.values()];
  if (id !== undefined) {
    const found = templates.find((t) => t.id === id);
    if (found === undefined)
      throw new AwsError('InvalidLaunchTemplateId.NotFound', `The specified launch template, with template ID ${id}, does not exist.`);
    return found;
  }
  if (name !== undefined) {
    const found = templates.find((t) => t.name === name);
    if (found === undefined)
      throw new AwsError(
        'InvalidLaunchTemplateName.NotFoundException',
        `The specified launch template, with template name ${name}, does not exist.`,
      );
    return found;
  }
  throw new AwsError('MissingParameter', 'The request must contain the parameter LaunchTemplateId or LaunchTemplateName');
}

function templateSummary(t: LaunchTemplate) {
  return {
    LaunchTemplateId: t.id,
    LaunchTemplateName: t.name,
    DefaultVersionNumber: t.defaultVersion,
    LatestVersionNumber: t.versions.length,
    CreateTime: new Date(t.createTime),
    CreatedBy: `arn:${partitionOf(t.region)}:iam::${t.ownerId}:root`,
    Tags: t.tags.size > 0 ? tagList(t.tags) : undefined,
  };
}

function versionOut(t: LaunchTemplate, n: number, data?: Record<string, unknown>) {
  const v = t.versions[n - 1];
  return {
    LaunchTemplateId: t.id,
    LaunchTemplateName: t.name,
    VersionNumber: n,
    VersionDescription: v?.description,
    CreateTime: v === undefined ? undefined : new Date(v.createTime),
    CreatedBy: `arn:${partitionOf(t.region)}:iam::${t.ownerId}:root`,
    DefaultVersion: t.defaultVersion === n,
    LaunchTemplateData: data ?? v?.data,
  };
}

function createLaunchTemplate(ctx: Ctx, input: CreateLaunchTemplateRequest) {
  const name = input.LaunchTemplateName;
  if (name === undefined || !/^[a-zA-Z0-9().\-/_]{3,128}$/.test(name))
    throw new AwsError('InvalidLaunchTemplateName.MalformedException', `Launch template name ${String(name)} is invalid`);
  if ([...here(ctx).launchTemplates.values()].some((t) => t.name === name)) {
    throw new AwsError('InvalidLaunchTemplateName.AlreadyExistsException', `Launch template name already in use.`);
  }
  const tags = input.TagSpecifications?.filter((s) => s.ResourceType === 'launch-template').flatMap((s) => s.Tags ?? []) ?? [];
  validateTags(tags);
  checkSsmImageId(ctx, input.LaunchTemplateData?.ImageId);
  const template: LaunchTemplate = {
    id: resourceId('lt'),
    name,
    ownerId: ctx.account,
    region: ctx.region,
    defaultVersion: 1,
    versions: [
      {
        number: 1,
        description: input.VersionDescription,
        createTime: ctx.env.clock.iso(),
        data: (input.LaunchTemplateData ?? {}) as Record<string, unknown>,
      },
    ],
    tags: new Map(tags.map((t) => [t.Key ?? '', t.Value ?? ''])),
    createTime: ctx.env.clock.iso(),
    clientTokens: new Map(),
  };
  here(ctx).launchTemplates.set(template.id, template);
  return { LaunchTemplate: templateSummary(template) };
}

function describeLaunchTemplates(ctx: Ctx, input: DescribeLaunchTemplatesRequest) {
  let templates = [...here(ctx).launchTemplates.values()];
  if (input.LaunchTemplateIds !== undefined && input.LaunchTemplateIds.length > 0) {
    templates = input.LaunchTemplateIds.map((id) => findTemplate(ctx, id, undefined));
  }
  if (input.LaunchTemplateNames !== undefined && input.LaunchTemplateNames.length > 0) {
    templates = input.LaunchTemplateNames.map((name) => findTemplate(ctx, undefined, name));
  }
  templates = applyFilters(templates, input.Filters, (t, name) => (name === 'launch-template-name' ? [t.name] : tagFilter(t.tags, name)));
  const { page, nextToken } = paginate(templates, input.MaxResults, input.NextToken, { default: 100, min: 1, max: 200 });
  return { LaunchTemplates: page.map(templateSummary), NextToken: nextToken };
}

function resolveVersion(t: LaunchTemplate, version: string): number {
  if (version === '$Latest') return t.versions.length;
  if (version === '$Default') return t.defaultVersion;
  const n = Number(version);
  if (!Number.isInteger(n) || n < 1 || n > t.versions.length) {
    throw new AwsError('InvalidLaunchTemplateId.VersionNotFound', `Could not find launch template version ${version} for template ${t.id}`);
  }
  return n;
}

const SSM_ALIAS = 'resolve:ssm:';

/**
 * The parameter version a `resolve:ssm:` ImageId selects, or the SsmInvalidParameter error EC2 answers.
 *
 * Forms (EC2 API reference, RequestLaunchTemplateData / FleetLaunchTemplateOverridesRequest, ImageId):
 * `resolve:ssm:<name>`, `<name>:<version-number>`, `<name>:<label>`, and the same with the parameter's ARN for
 * a parameter shared from another account. Sharing (AWS RAM, advanced tier) is not modelled: an ARN resolves
 * only in the caller's own account and region; another account's ARN is refused as not found.
 *
 * EC2 refuses a reference it cannot use when the template or version is created: "You must create a Systems
 * Manager parameter before you can use it in a launch template … create a parameter with the data type
 * aws:ec2:image" (EC2 Auto Scaling User Guide, "Use AWS Systems Manager parameters instead of AMI IDs in launch
 * templates", https://docs.aws.amazon.com/autoscaling/ec2/userguide/using-systems-manager-parameters.html).
 * The code is `SsmInvalidParameter`; for a parameter of another data type EC2's message is "Unsupported data
 * type. The following parameter data types are supported: aws:ec2:image", as quoted from CloudFormation's
 * answer to CreateLaunchTemplate in aws/aws-cdk#26712 (and CreateLaunchTemplateVersion "api error
 * SsmInvalidParameter" in kent8192/reinhardt-web#2023). EC2 documents no message for a parameter (or version,
 * or label) that does not exist; the sandbox says which with the same code.
 */
function ssmReference(ctx: Ctx, imageId: string): { value: string } | AwsError {
  const ref = imageId.slice(SSM_ALIAS.length);
  let local = ref;
  const arn = /^arn:aws[\w-]*:ssm:([\w-]+):(\d{12}):parameter(\/.*)$/.exec(ref);
  if (arn !== null) {
    if (arn[1] !== ctx.region || arn[2] !== ctx.account)
      return new AwsError(
        'SsmInvalidParameter',
        `Invalid SSM parameter ${ref}: the parameter does not exist or is not shared with account ${ctx.account}.`,
      );
    // own parameters are named without the leading slash in the ARN unless they are hierarchical
    const path = arn[3] ?? '';
    const name = parseSelector(path).name;
    local = here(ctx).parameters.has(name) ? path : path.slice(1);
  }
  try {
    const { parameter, version } = selectParameter(here(ctx), local);
    if (parameter.dataType !== 'aws:ec2:image')
      return new AwsError('SsmInvalidParameter', 'Unsupported data type. The following parameter data types are supported: aws:ec2:image');
    return { value: version.value };
  } catch (error: unknown) {
    if (!(error instanceof AwsError)) throw error;
    return new AwsError('SsmInvalidParameter', `Invalid SSM parameter ${ref}: ${error.message}`);
  }
}

/** Refuse a launch template ImageId that names a parameter EC2 cannot use (see ssmReference). */
function checkSsmImageId(ctx: Ctx, imageId: unknown): void {
  if (typeof imageId !== 'string' || !imageId.startsWith(SSM_ALIAS)) return;
  const resolved = ssmReference(ctx, imageId);
  if (resolved instanceof AwsError) throw resolved;
}

/**
 * What a launch template ImageId launches: the AMI of the parameter version a `resolve:ssm:` reference selects
 * (latest, `:version` or `:label`), else the value itself. A reference that no longer resolves (the parameter
 * deleted since) is returned as it is.
 */
function resolveSsmImage(ctx: Ctx, imageId: unknown): unknown {
  if (typeof imageId !== 'string' || !imageId.startsWith(SSM_ALIAS)) return imageId;
  const resolved = ssmReference(ctx, imageId);
  return resolved instanceof AwsError ? imageId : resolved.value;
}

function describeLaunchTemplateVersions(ctx: Ctx, input: DescribeLaunchTemplateVersionsRequest) {
  const t = findTemplate(ctx, input.LaunchTemplateId, input.LaunchTemplateName);
  let numbers = t.versions.map((v) => v.number);
  if (input.Versions !== undefined && input.Versions.length > 0) numbers = [...new Set(input.Versions.map((v) => resolveVersion(t, v)))];
  if (input.MinVersion !== undefined) numbers = numbers.filter((n) => n >= resolveVersion(t, input.MinVersion ?? '1'));
  if (input.MaxVersion !== undefined) numbers = numbers.filter((n) => n <= resolveVersion(t, input.MaxVersion ?? '$Latest'));
  const data = (n: number) => {
    const d = { ...(t.versions[n - 1]?.data ?? {}) };
    if (input.ResolveAlias === true && d.ImageId !== undefined) d.ImageId = resolveSsmImage(ctx, d.ImageId);
    return d;
  };
  numbers = applyFilters(numbers, input.Filters, (n, name) => {
    if (name === 'image-id') return typeof data(n).ImageId === 'string' ? [String(data(n).ImageId)] : [];
    if (name === 'is-default-version') return [String(t.defaultVersion === n)];
    if (name === 'instance-type') return typeof data(n).InstanceType === 'string' ? [String(data(n).InstanceType)] : [];
    return undefined;
  });
  const { page, nextToken } = paginate(numbers, input.MaxResults, input.NextToken, { default: 100, min: 1, max: 200 });
  return { LaunchTemplateVersions: page.map((n) => versionOut(t, n, data(n))), NextToken: nextToken };
}

function createLaunchTemplateVersion(ctx: Ctx, input: CreateLaunchTemplateVersionRequest) {
  const t = findTemplate(ctx, input.LaunchTemplateId, input.LaunchTemplateName);
  if (input.LaunchTemplateData === undefined)
    throw new AwsError('MissingParameter', 'The request must contain the parameter LaunchTemplateData');
  // "If you reuse a client token, you must use the same parameters": a different request with the same token is
  // refused with IdempotentParameterMismatch, "The request uses the same client token as a previous, but
  // non-identical request. Do not reuse a client token with different requests, unless the requests are
  // identical." (EC2 API Reference, "Ensuring idempotency in Amazon EC2 API requests" and "Error codes",
  // https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html)
  const { ClientToken: token, DryRun: _dryRun, ...parameters } = input;
  const request = JSON.stringify(parameters);
  if (token !== undefined) {
    const existing = t.clientTokens.get(token);
    if (existing !== undefined && existing.request !== request)
      throw new AwsError(
        'IdempotentParameterMismatch',
        'The request uses the same client token as a previous, but non-identical request. Do not reuse a client token with different requests, unless the requests are identical.',
      );
    if (existing !== undefined) return { LaunchTemplateVersion: versionOut(t, existing.version) };
  }
  if (t.versions.length >= 10_000)
    throw new AwsError('LaunchTemplateVersionLimitExceeded', 'You have reached the maximum of 10000 versions for this launch template.');
  const source = input.SourceVersion === undefined ? {} : (t.versions[resolveVersion(t, input.SourceVersion) - 1]?.data ?? {});
  const data = { ...source, ...(input.LaunchTemplateData as Record<string, unknown>) };
  checkSsmImageId(ctx, data.ImageId);
  const number = t.versions.length + 1;
  t.versions.push({ number, description: input.VersionDescription, createTime: ctx.env.clock.iso(), data });
  if (token !== undefined) t.clientTokens.set(token, { version: number, request });
  return { LaunchTemplateVersion: versionOut(t, number) };
}

function modifyLaunchTemplate(ctx: Ctx, input: ModifyLaunchTemplateRequest) {
  const t = findTemplate(ctx, input.LaunchTemplateId, input.LaunchTemplateName);
  if (input.DefaultVersion !== undefined) t.defaultVersion = resolveVersion(t, input.DefaultVersion);
  return { LaunchTemplate: templateSummary(t) };
}

/** The AMI a launch template version launches (`resolve:ssm:` resolved), or undefined. */
function templateImage(
  ctx: Ctx,
  spec: { id?: string | undefined; name?: string | undefined; version?: string | undefined },
): string | undefined {
  try {
    const t = findTemplate(ctx, spec.id, spec.name);
    const value = resolveSsmImage(ctx, t.versions[resolveVersion(t, spec.version ?? '$Default') - 1]?.data.ImageId);
    return typeof value === 'string' ? value : undefined;
  } catch (error: unknown) {
    if (error instanceof AwsError) return undefined;
    throw error;
  }
}

export {
  createLaunchTemplate,
  createLaunchTemplateVersion,
  describeLaunchTemplates,
  describeLaunchTemplateVersions,
  findTemplate,
  modifyLaunchTemplate,
  resolveSsmImage,
  resolveVersion,
  templateImage,
};
