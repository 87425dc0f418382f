import { randomUUID } from 'node:crypto';
import * as schemas from '@aws-sdk/client-imagebuilder';
import type {
  CreateDistributionConfigurationRequest,
  CreateImagePipelineRequest,
  CreateImageRecipeRequest,
  CreateImageRequest,
  CreateInfrastructureConfigurationRequest,
  Distribution,
  DistributionConfiguration,
  Image,
  ImagePipeline,
  ImageRecipe,
  ImageSummary,
  UpdateDistributionConfigurationRequest,
  UpdateImagePipelineRequest,
} from '@aws-sdk/client-imagebuilder';
import { validateAgainstModel, validationMessage } from '../model/validate.ts';
import { AwsError } from '../protocol/errors.ts';
import { type Ctx, type SandboxEnv, type ServiceDef, op, systemCtx } from '../server.ts';
import type { Ami } from '../state.ts';
import { paginate } from './common.ts';
import { COPY_MS, ec2, registerImage } from './ec2/index.ts';
import { parameterNameError, writeParameter } from './parameters.ts';
import { isKnownRegion, partitionOf } from '../partition.ts';
import {
  type DistributedImage,
  checkWorkflowConfigurations,
  distributionWorkflowOf,
  runDistributionWorkflow,
  workflowHandlers,
} from './imagebuilder-workflows.ts';

/** Simulated durations of a build's phases. */
const PHASES = { pending: 10_000, building: 20 * 60_000, testing: 5 * 60_000, distributing: COPY_MS + 30_000, integrating: 60_000 };

const NAME = /^[-_A-Za-z-0-9][-_A-Za-z0-9 ]{1,126}[-_A-Za-z-0-9]$/;

function ibNotFound(arn: string): AwsError {
  return new AwsError('ResourceNotFoundException', `The resource ARN '${arn}' does not exist.`, 404);
}

function invalid(message: string): AwsError {
  return new AwsError('InvalidParameterValueException', message, 400);
}

function arnOf(ctx: Ctx, kind: string, ...parts: string[]): string {
  return `arn:${partitionOf(ctx.region)}:imagebuilder:${ctx.region}:${ctx.account}:${kind}/${parts.map((p) => p.toLowerCase().replace(/\s+/g, '-')).join('/')}`;
}

/** The store of the account and region an Image Builder ARN names (GetImage works on any the caller owns). */
function storeFor(ctx: Ctx, arn: string) {
  const match = /^arn:aws[a-z-]*:imagebuilder:([a-z0-9-]+):(\d{12}|aws):/.exec(arn);
  if (match === null) throw invalid(`The value supplied for parameter 'arn' is not valid: ${arn}`);
  if (match[2] !== ctx.account || match[1] !== ctx.region) throw ibNotFound(arn);
  return ctx.env.state.cell(ctx.account, ctx.region).imagebuilder;
}

/**
 * The service model's constraints (required members, enums, patterns, lengths, ranges; generated from
 * Image Builder's model into src/lib/preflight/model/imagebuilder-model.ts), checked before the operation runs:
 * a request that breaks one gets ValidationException, HTTP 400, with the service's "N validation errors
 * detected: Value … at '…' failed to satisfy constraint: …" message
 * (https://docs.aws.amazon.com/imagebuilder/latest/APIReference/CommonErrors.html).
 */
function validateModel(input: unknown, shape: string): void {
  const violations = validateAgainstModel(input, shape);
  if (violations.length > 0) throw new AwsError('ValidationException', validationMessage(violations), 400);
}

/**
 * The checks the service makes beyond its model, with its InvalidParameterValueException and its words
 * ("The value supplied for parameter 'distributions[0]' is not valid. One or more outputs should be
 * provided for each region in a distribution configuration.", as AWS answered in
 * hashicorp/terraform-provider-aws#17409).
 */
function validateDistributions(distributions: Distribution[] | undefined): void {
  if (distributions === undefined || distributions.length === 0)
    throw invalid("The value supplied for parameter 'distributions' is not valid. Provide at least one distribution.");
  const seen = new Set<string>();
  for (const [i, d] of distributions.entries()) {
    if (d.region === undefined || d.region === '') throw invalid(`distributions[${i}].region is required.`);
    if (seen.has(d.region))
      throw invalid(
        `The region ${d.region} is specified more than once. A distribution configuration can only have one distribution per region.`,
      );
    seen.add(d.region);
    const ami = d.amiDistributionConfiguration;
    const hasOutput =
      ami !== undefined ||
      d.containerDistributionConfiguration !== undefined ||
      (d.launchTemplateConfigurations?.length ?? 0) > 0 ||
      d.s3ExportConfiguration !== undefined ||
      (d.fastLaunchConfigurations?.length ?? 0) > 0 ||
      (d.ssmParameterConfigurations?.length ?? 0) > 0;
    if (!hasOutput)
      throw invalid(
        `The value supplied for parameter 'distributions[${i}]' is not valid. One or more outputs should be provided for each region in a distribution configuration.`,
      );
    for (const fl of d.fastLaunchConfigurations ?? []) {
      // EC2's rule for EnableFastLaunch's LaunchTemplate ("You can specify either the LaunchTemplateName or the LaunchTemplateId, but not both")
      if (fl.launchTemplate?.launchTemplateId !== undefined && fl.launchTemplate.launchTemplateName !== undefined) {
        throw invalid('You can specify either the launch template ID or the launch template name, but not both.');
      }
    }
  }
}

/**
 * CloudTrail's record of a mutating Image Builder call, as EventBridge delivers it. A failed call is
 * recorded too, with errorCode and errorMessage and no responseElements
 * (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html).
 */
function cloudTrail(ctx: Ctx, eventName: string, requestParameters: unknown, responseElements: unknown, error?: AwsError): void {
  ctx.env.publish({
    account: ctx.account,
    region: ctx.region,
    bus: 'default',
    source: 'aws.imagebuilder',
    detailType: 'AWS API Call via CloudTrail',
    resources: [],
    detail: {
      eventVersion: '1.08',
      userIdentity: { type: 'IAMUser', accountId: ctx.account, arn: `arn:${partitionOf(ctx.region)}:iam::${ctx.account}:root` },
      eventTime: ctx.env.clock.iso(),
      eventSource: 'imagebuilder.amazonaws.com',
      eventName,
      awsRegion: ctx.region,
      requestParameters,
      responseElements: error === undefined ? responseElements : null,
      ...(error === undefined ? {} : { errorCode: error.code, errorMessage: error.message }),
      requestID: ctx.requestId,
      eventID: randomUUID(),
      readOnly: false,
      eventType: 'AwsApiCall',
      managementEvent: true,
      recipientAccountId: ctx.account,
    },
  });
}

function createDistributionConfiguration(ctx: Ctx, input: CreateDistributionConfigurationRequest) {
  validateModel(input, 'CreateDistributionConfigurationRequest');
  validateDistributions(input.distributions);
  // required by the model: validateModel has checked it is there
  const name = input.name ?? '';
  const store = ctx.env.state.cell(ctx.account, ctx.region).imagebuilder;
  const arn = arnOf(ctx, 'distribution-configuration', name);
  if (store.distributions.has(arn)) throw new AwsError('ResourceAlreadyExistsException', `The resource ${arn} already exists.`, 400);
  const now = ctx.env.clock.iso();
  store.distributions.set(arn, {
    arn,
    name,
    description: input.description,
    distributions: input.distributions,
    timeoutMinutes: 360,
    dateCreated: now,
    tags: input.tags,
  });
  cloudTrail(ctx, 'CreateDistributionConfiguration', input, { distributionConfigurationArn: arn });
  return { clientToken: input.clientToken, distributionConfigurationArn: arn };
}

function updateDistributionConfiguration(ctx: Ctx, input: UpdateDistributionConfigurationRequest) {
  try {
    return updateDistributionConfigurationOrThrow(ctx, input);
  } catch (error: unknown) {
    if (error instanceof AwsError) cloudTrail(ctx, 'UpdateDistributionConfiguration', input, null, error);
    throw error;
  }
}

function updateDistributionConfigurationOrThrow(ctx: Ctx, input: UpdateDistributionConfigurationRequest) {
  validateModel(input, 'UpdateDistributionConfigurationRequest');
  const arn = input.distributionConfigurationArn ?? '';
  const store = storeFor(ctx, arn);
  const existing = store.distributions.get(arn);
  if (existing === undefined) throw ibNotFound(arn);
  validateDistributions(input.distributions);
  store.distributions.set(arn, {
    ...existing,
    description: input.description ?? existing.description,
    distributions: input.distributions,
    dateUpdated: ctx.env.clock.iso(),
  });
  cloudTrail(ctx, 'UpdateDistributionConfiguration', input, { distributionConfigurationArn: arn });
  return { clientToken: input.clientToken, distributionConfigurationArn: arn };
}

function getDistributionConfiguration(ctx: Ctx, input: { distributionConfigurationArn?: string }) {
  const arn = input.distributionConfigurationArn ?? '';
  const found = storeFor(ctx, arn).distributions.get(arn);
  if (found === undefined) throw ibNotFound(arn);
  return { distributionConfiguration: found };
}

function listDistributionConfigurations(ctx: Ctx, input: { maxResults?: number; nextToken?: string }) {
  const all = [...ctx.env.state.cell(ctx.account, ctx.region).imagebuilder.distributions.values()];
  const { page, nextToken } = paginate(all, input.maxResults, input.nextToken, { default: 25, max: 25 });
  return {
    distributionConfigurationSummaryList: page.map((d) => ({
      arn: d.arn,
      name: d.name,
      description: d.description,
      dateCreated: d.dateCreated,
      dateUpdated: d.dateUpdated,
      tags: d.tags,
      regions: d.distributions?.map((x) => x.region ?? ''),
    })),
    nextToken,
  };
}

function deleteDistributionConfiguration(ctx: Ctx, input: { distributionConfigurationArn?: string }) {
  const arn = input.distributionConfigurationArn ?? '';
  const store = storeFor(ctx, arn);
  if (!store.distributions.has(arn)) throw ibNotFound(arn);
  if ([...store.pipelines.values()].some((p) => p.distributionConfigurationArn === arn)) {
    throw new AwsError(
      'ResourceDependencyException',
      `Resource dependency error: the distribution configuration ${arn} is used by an image pipeline.`,
      400,
    );
  }
  store.distributions.delete(arn);
  cloudTrail(ctx, 'DeleteDistributionConfiguration', input, { distributionConfigurationArn: arn });
  return { distributionConfigurationArn: arn };
}

/** Windows when the parent is an Image Builder managed Windows image, or a Windows AMI the sandbox holds. */
function platformOf(ctx: Ctx, parentImage: string): 'Windows' | 'Linux' {
  if (parentImage.startsWith('ami-')) return ctx.env.state.findImage(ctx.region, parentImage)?.platform === 'windows' ? 'Windows' : 'Linux';
  return /:image\/windows/i.test(parentImage) ? 'Windows' : 'Linux';
}

function createImageRecipe(ctx: Ctx, input: CreateImageRecipeRequest) {
  if (input.name === undefined || !NAME.test(input.name))
    throw invalid(`The value supplied for parameter 'name' is not valid: ${String(input.name)}`);
  if (input.semanticVersion === undefined || !/^\d+\.\d+\.\d+$/.test(input.semanticVersion))
    throw invalid(`The value supplied for parameter 'semanticVersion' is not valid: ${String(input.semanticVersion)}`);
  if (input.parentImage === undefined) throw invalid("The value supplied for parameter 'parentImage' is not valid.");
  if (input.parentImage.startsWith('ami-') && ctx.env.state.findImage(ctx.region, input.parentImage) === undefined) {
    throw invalid(`The parent image ${input.parentImage} does not exist or you do not have access to it.`);
  }
  const store = ctx.env.state.cell(ctx.account, ctx.region).imagebuilder;
  const arn = arnOf(ctx, 'image-recipe', input.name, input.semanticVersion);
  if (store.recipes.has(arn)) throw new AwsError('ResourceAlreadyExistsException', `The resource ${arn} already exists.`, 400);
  const recipe: ImageRecipe = {
    arn,
    name: input.name,
    version: input.semanticVersion,
    description: input.description,
    platform: platformOf(ctx, input.parentImage),
    owner: ctx.account,
    parentImage: input.parentImage,
    components: input.components,
    blockDeviceMappings: input.blockDeviceMappings,
    dateCreated: ctx.env.clock.iso(),
    tags: input.tags,
    additionalInstanceConfiguration: input.additionalInstanceConfiguration,
  };
  store.recipes.set(arn, recipe);
  return { clientToken: input.clientToken, imageRecipeArn: arn };
}

function createInfrastructureConfiguration(ctx: Ctx, input: CreateInfrastructureConfigurationRequest) {
  if (input.name === undefined || !NAME.test(input.name))
    throw invalid(`The value supplied for parameter 'name' is not valid: ${String(input.name)}`);
  if (input.instanceProfileName === undefined) throw invalid("The value supplied for parameter 'instanceProfileName' is not valid.");
  const store = ctx.env.state.cell(ctx.account, ctx.region).imagebuilder;
  const arn = arnOf(ctx, 'infrastructure-configuration', input.name);
  store.infrastructure.set(arn, {
    arn,
    name: input.name,
    instanceProfileName: input.instanceProfileName,
    instanceTypes: input.instanceTypes,
    dateCreated: ctx.env.clock.iso(),
    tags: input.tags,
  });
  return { clientToken: input.clientToken, infrastructureConfigurationArn: arn };
}

function createImagePipeline(ctx: Ctx, input: CreateImagePipelineRequest) {
  if (input.name === undefined || !NAME.test(input.name))
    throw invalid(`The value supplied for parameter 'name' is not valid: ${String(input.name)}`);
  const store = ctx.env.state.cell(ctx.account, ctx.region).imagebuilder;
  const recipe = store.recipes.get(input.imageRecipeArn ?? '');
  if (recipe === undefined) throw ibNotFound(input.imageRecipeArn ?? '');
  if (!store.infrastructure.has(input.infrastructureConfigurationArn ?? '')) throw ibNotFound(input.infrastructureConfigurationArn ?? '');
  if (input.distributionConfigurationArn !== undefined && !store.distributions.has(input.distributionConfigurationArn))
    throw ibNotFound(input.distributionConfigurationArn);
  const workflows = checkWorkflowConfigurations(ctx, input.workflows);
  const arn = arnOf(ctx, 'image-pipeline', input.name);
  const pipeline: ImagePipeline = {
    ...(workflows === undefined ? {} : { workflows }),
    ...(input.executionRole === undefined ? {} : { executionRole: input.executionRole }),
    arn,
    name: input.name,
    description: input.description,
    platform: recipe.platform,
    imageRecipeArn: input.imageRecipeArn,
    infrastructureConfigurationArn: input.infrastructureConfigurationArn,
    distributionConfigurationArn: input.distributionConfigurationArn,
    status: input.status ?? 'ENABLED',
    dateCreated: ctx.env.clock.iso(),
    tags: input.tags,
  };
  store.pipelines.set(arn, pipeline);
  return { clientToken: input.clientToken, imagePipelineArn: arn };
}

/** A member the model requires, missing: the ValidationException the service answers (validate.ts's words). */
function requiredMissing(input: object, members: string[]): AwsError | undefined {
  const given = new Map(Object.entries(input));
  const missing = members.filter((m) => given.get(m) === undefined || given.get(m) === null);
  if (missing.length === 0) return undefined;
  const parts = missing.map((m) => `Value null at '${m}' failed to satisfy constraint: Member must not be null`);
  return new AwsError(
    'ValidationException',
    `${parts.length} validation error${parts.length === 1 ? '' : 's'} detected: ${parts.join('; ')}`,
    400,
  );
}

/**
 * UpdateImagePipeline (Image Builder API reference): "does not support selective updates for the pipeline.
 * You must specify all of the required properties in the update request, not just the properties that have
 * changed." So the request replaces the pipeline's settings: a member left out (description, distribution
 * configuration) is no longer set, and status is ENABLED unless given. Required by the SDK model:
 * imagePipelineArn and infrastructureConfigurationArn, and clientToken (an idempotency token the SDK and the
 * AWS CLI fill in). The builds already made keep the recipe and configuration they were made with.
 */
function updateImagePipeline(ctx: Ctx, input: UpdateImagePipelineRequest) {
  try {
    return updateImagePipelineOrThrow(ctx, input);
  } catch (error: unknown) {
    if (error instanceof AwsError) cloudTrail(ctx, 'UpdateImagePipeline', input, null, error);
    throw error;
  }
}

function updateImagePipelineOrThrow(ctx: Ctx, input: UpdateImagePipelineRequest) {
  const missing = requiredMissing(input, ['imagePipelineArn', 'infrastructureConfigurationArn', 'clientToken']);
  if (missing !== undefined) throw missing;
  const arn = input.imagePipelineArn ?? '';
  if (!/^arn:aws[^:]*:imagebuilder:[^:]+:(?:[0-9]{12}|aws):image-pipeline\/[a-z0-9-_]+$/.test(arn))
    throw invalid(`The value supplied for parameter 'imagePipelineArn' is not valid: ${arn}`);
  const store = storeFor(ctx, arn);
  const existing = store.pipelines.get(arn);
  if (existing === undefined) throw ibNotFound(arn);
  const token = `UpdateImagePipeline/${input.clientToken ?? ''}`;
  const request = JSON.stringify(input);
  const seen = store.clientTokens.get(token);
  if (seen !== undefined) {
    if (seen !== request)
      throw new AwsError(
        'IdempotentParameterMismatchException',
        `The client token ${input.clientToken ?? ''} was already used with other parameters.`,
        400,
      );
    return { requestId: ctx.requestId, clientToken: input.clientToken, imagePipelineArn: arn };
  }
  if (input.containerRecipeArn !== undefined) throw invalid('Container recipes are not supported by this sandbox: set imageRecipeArn.');
  const recipe = store.recipes.get(input.imageRecipeArn ?? '');
  if (input.imageRecipeArn === undefined)
    throw invalid("The value supplied for parameter 'imageRecipeArn' is not valid. An image pipeline needs an image recipe.");
  if (recipe === undefined) throw ibNotFound(input.imageRecipeArn);
  if (!store.infrastructure.has(input.infrastructureConfigurationArn ?? '')) throw ibNotFound(input.infrastructureConfigurationArn ?? '');
  if (input.distributionConfigurationArn !== undefined && !store.distributions.has(input.distributionConfigurationArn))
    throw ibNotFound(input.distributionConfigurationArn);
  if (input.status !== undefined && input.status !== 'ENABLED' && input.status !== 'DISABLED')
    throw invalid(`The value supplied for parameter 'status' is not valid: ${String(input.status)}`);
  const workflows = checkWorkflowConfigurations(ctx, input.workflows);
  store.pipelines.set(arn, {
    ...(workflows === undefined ? {} : { workflows }),
    ...(input.executionRole === undefined ? {} : { executionRole: input.executionRole }),
    arn,
    name: existing.name,
    description: input.description,
    platform: recipe.platform,
    imageRecipeArn: input.imageRecipeArn,
    infrastructureConfigurationArn: input.infrastructureConfigurationArn,
    distributionConfigurationArn: input.distributionConfigurationArn,
    status: input.status ?? 'ENABLED',
    dateCreated: existing.dateCreated,
    dateUpdated: ctx.env.clock.iso(),
    tags: existing.tags,
  });
  store.clientTokens.set(token, request);
  cloudTrail(ctx, 'UpdateImagePipeline', input, { imagePipelineArn: arn });
  return { requestId: ctx.requestId, clientToken: input.clientToken, imagePipelineArn: arn };
}

function summary(image: Image): ImageSummary {
  return {
    arn: image.arn,
    name: image.name,
    type: image.type,
    version: image.version,
    platform: image.platform,
    osVersion: image.osVersion,
    state: image.state,
    owner: image.arn?.split(':')[4],
    dateCreated: image.dateCreated,
    outputResources: image.outputResources,
    tags: image.tags,
    buildType: image.buildType,
    imageSource: image.imageSource,
  };
}

// ---- builds

function publishState(env: SandboxEnv, image: Image, previous: string): void {
  const [, , , region = '', account = ''] = (image.arn ?? '').split(':');
  env.publish({
    account,
    region,
    bus: 'default',
    source: 'aws.imagebuilder',
    detailType: 'EC2 Image Builder Image State Change',
    resources: [image.arn ?? ''],
    detail: {
      'previous-state': { status: previous },
      state: { status: image.state?.status ?? 'UNKNOWN', ...(image.state?.reason === undefined ? {} : { reason: image.state.reason }) },
    },
  });
}

function setState(env: SandboxEnv, image: Image, status: string, reason?: string): void {
  const previous = image.state?.status ?? 'PENDING';
  image.state = { status: status as NonNullable<Image['state']>['status'], ...(reason === undefined ? {} : { reason }) };
  publishState(env, image, previous);
}

function resolveName(pattern: string | undefined, fallback: string, buildNumber: number, date: string): string {
  const stamp = date.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
  if (pattern === undefined) return `${fallback} ${stamp}`;
  return pattern
    .replace(/\{\{\s*imagebuilder:buildVersion\s*\}\}/g, String(buildNumber))
    .replace(/\{\{\s*imagebuilder:buildDate(?::[^}]*)?\s*\}\}/g, stamp);
}

function kmsArn(key: string | undefined, account: string, region: string): string | undefined {
  if (key === undefined) return undefined;
  return key.startsWith('arn:') ? key : `arn:${partitionOf(region)}:kms:${region}:${account}:key/${key.replace(/^key\//, '')}`;
}

/**
 * What EC2 refuses of a region's distribution, worded as EC2 answers the call Image Builder makes for it (the
 * image then ends FAILED with it, as a failed copy does), or undefined:
 * - a region that does not exist, or that the sandbox does not hold: CopyImage cannot reach it;
 * - a launch permission group other than `all`: ModifyImageAttribute's `InvalidAMIAttributeItemValue`
 *   ("Group: The name of the group. Valid Values: all", EC2 API Reference, LaunchPermission);
 * - an AMI name EC2 refuses: "Constraints: 3-128 alphanumeric characters, parentheses (()), square brackets
 *   ([]), spaces ( ), periods (.), slashes (/), dashes (-), single quotes ('), at-signs (@), or underscores(_)"
 *   (EC2 API Reference, CopyImage and CreateImage, Name: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CopyImage.html),
 *   `InvalidAMIName.Malformed` (a `:` or a non-breaking space is refused).
 */
function distributionRefusal(
  env: SandboxEnv,
  d: NonNullable<NonNullable<Image['distributionConfiguration']>['distributions']>[number],
  buildNumber: number,
  image: Image,
): string | undefined {
  const region = d.region ?? '';
  if (!isKnownRegion(region) || !env.state.regions.includes(region))
    return `InvalidRegion: the region '${region}' does not exist or is not enabled for this account`;
  const config = d.amiDistributionConfiguration;
  for (const group of config?.launchPermission?.userGroups ?? [])
    if (group !== 'all') return `InvalidAMIAttributeItemValue: Invalid attribute item value "${group}" for group item type.`;
  const owner = (image.arn ?? '').split(':')[4] ?? '';
  const accounts = config?.targetAccountIds?.length ? config.targetAccountIds : [owner];
  const blocked = accounts.find((a) => env.state.imageBlockPublicAccess.has(`${a}/${region}`));
  if (config?.launchPermission?.userGroups?.includes('all') === true && blocked !== undefined)
    return `OperationNotPermitted: block public access for AMIs is enabled for account ${blocked} in ${region}: the AMI cannot be made public`;
  const name = resolveName(config?.name, image.name ?? 'image', buildNumber, image.dateCreated ?? env.clock.iso());
  if (!EC2_AMI_NAME.test(name))
    return `InvalidAMIName.Malformed: AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '[', ']', ' ', '.', '/', '-', ''', '@' and '_' (${JSON.stringify(name)})`;
  return undefined;
}

/** EC2's AMI name rule (CopyImage, CreateImage, RegisterImage: Name). */
const EC2_AMI_NAME = /^[A-Za-z0-9()[\] ./'@_-]{3,128}$/;

/**
 * Distribute an image as Image Builder does, with its real gaps: copies to target accounts get no
 * `amiTags` (nor Image Builder's own tags); cross-account launch templates are updated only when they carry
 * `CreatedBy: EC2 Image Builder` (the distribution role's condition), and skipped quietly otherwise; Fast
 * Launch is enabled only in the owner account. A copy can be made to fail (faults.failedCopies).
 */
function distribute(
  env: SandboxEnv,
  image: Image,
  source: Ami,
  only?: Set<string>,
  distributions: Distribution[] = image.distributionConfiguration?.distributions ?? [],
): { failures: string[] } {
  const owner = source.ownerId;
  const buildRegion = source.region;
  const buildNumber = Number((image.arn ?? '').split('/').at(-1));
  const amis = image.outputResources?.amis ?? [];
  const failures: string[] = [];
  for (const d of distributions) {
    const region = d.region ?? '';
    const config = d.amiDistributionConfiguration;
    const targets = config?.targetAccountIds?.length ? config.targetAccountIds : [owner];
    const cells = region === buildRegion && !targets.includes(owner) ? [owner, ...targets] : targets;
    const refused = distributionRefusal(env, d, buildNumber, image);
    for (const account of cells) {
      const key = `${account}/${region}`;
      if (only !== undefined && !only.has(key)) continue;
      if (amis.some((a) => a.region === region && (a.accountId ?? owner) === account)) continue;
      let ami: Ami;
      if (refused !== undefined) {
        failures.push(
          `AMI Copy Reported Failure For ${source.imageId} when distributing the image from the source account (ID: ${owner}) to the destination account (ID: ${account}) in Region ${region}: ${refused}`,
        );
        continue;
      } else if (account === owner && region === buildRegion) {
        ami = source;
      } else if (env.faults.copyFails(account, region)) {
        failures.push(
          `AMI Copy Reported Failure For ${source.imageId} when distributing the image from the source account (ID: ${owner}) to the destination account (ID: ${account}) in Region ${region}`,
        );
        continue;
      } else {
        const ownerCopy = account === owner;
        ami = registerImage(env.state, env.clock, {
          account,
          region,
          name: resolveName(config?.name, image.name ?? 'image', buildNumber, image.dateCreated ?? env.clock.iso()),
          description: ownerCopy ? config?.description : undefined,
          platform: source.platform,
          state: 'pending',
          // the gap: tags do not follow copies into target accounts
          tags: ownerCopy ? { CreatedBy: 'EC2 Image Builder', Ec2ImageBuilderArn: image.arn ?? '', ...(config?.amiTags ?? {}) } : {},
          kmsKeyId: kmsArn(config?.kmsKeyId, account, region),
          sourceImageId: source.imageId,
          sourceRegion: buildRegion,
          invisibleReads: env.faults.settings.invisibleReads,
        });
        env.clock.after(COPY_MS, () => {
          if (ami.state === 'pending') ami.state = 'available';
        });
      }
      if (account === owner) for (const [k, v] of Object.entries(config?.amiTags ?? {})) ami.tags.set(k, v);
      const p = config?.launchPermission;
      for (const id of p?.userIds ?? []) ami.launchPermissions.userIds.add(id);
      for (const g of p?.userGroups ?? []) ami.launchPermissions.groups.add(g);
      for (const o of p?.organizationArns ?? []) ami.launchPermissions.organizationArns.add(o);
      for (const o of p?.organizationalUnitArns ?? []) ami.launchPermissions.organizationalUnitArns.add(o);
      amis.push({
        region,
        image: ami.imageId,
        name: ami.name,
        description: ami.description,
        accountId: account,
        state: { status: 'AVAILABLE' },
      });
    }
  }
  image.outputResources = { amis };
  return { failures };
}

/**
 * The integration step: launch templates, Fast Launch (owner only), licences (owner only) and SSM parameters,
 * for `only` these cells when given (a distribution workflow's ApplyImageConfigurations step). Returns what
 * failed (an SSM parameter SSM refuses, an S3 export EC2 refuses), which fails the image.
 */
function integrate(env: SandboxEnv, image: Image, only?: Set<string>): string[] {
  const failures: string[] = [];
  const owner = (image.arn ?? '').split(':')[4] ?? '';
  // only these cells (a distribution workflow's ApplyImageConfigurations step configures the copies it names)
  const amiFor = (account: string, region: string) =>
    only !== undefined && !only.has(`${account}/${region}`)
      ? undefined
      : image.outputResources?.amis?.find((a) => a.region === region && (a.accountId ?? owner) === account)?.image;
  for (const d of image.distributionConfiguration?.distributions ?? []) {
    const region = d.region ?? '';
    for (const lt of d.launchTemplateConfigurations ?? []) {
      const account = lt.accountId ?? owner;
      const imageId = amiFor(account, region);
      const template = env.state.cell(account, region).launchTemplates.get(lt.launchTemplateId ?? '');
      if (imageId === undefined || template === undefined) continue;
      // the distribution role may only touch templates tagged CreatedBy: EC2 Image Builder in other accounts
      if (account !== owner && template.tags.get('CreatedBy') !== 'EC2 Image Builder') continue;
      const ctx = systemCtx(env, account, region, 'ec2', 'CreateLaunchTemplateVersion');
      const out = ec2.handlers.CreateLaunchTemplateVersion?.(ctx, {
        LaunchTemplateId: template.id,
        SourceVersion: '$Default',
        LaunchTemplateData: { ImageId: imageId },
      }) as { LaunchTemplateVersion: { VersionNumber: number } };
      template.tags.set('CreatedBy', 'EC2 Image Builder');
      if (lt.setDefaultVersion === true) template.defaultVersion = out.LaunchTemplateVersion.VersionNumber;
    }
    if (image.platform === 'Windows') {
      for (const fl of d.fastLaunchConfigurations ?? []) {
        const account = fl.accountId ?? owner;
        // the gap: "EC2 Fast Launch must be enabled from the destination account"
        if (account !== owner || fl.enabled !== true) continue;
        const imageId = amiFor(owner, region);
        if (imageId === undefined) continue;
        try {
          ec2.handlers.EnableFastLaunch?.(systemCtx(env, owner, region, 'ec2', 'EnableFastLaunch'), {
            ImageId: imageId,
            MaxParallelLaunches: fl.maxParallelLaunches,
            SnapshotConfiguration:
              fl.snapshotConfiguration?.targetResourceCount === undefined
                ? undefined
                : { TargetResourceCount: fl.snapshotConfiguration.targetResourceCount },
            LaunchTemplate:
              fl.launchTemplate === undefined
                ? undefined
                : {
                    LaunchTemplateId: fl.launchTemplate.launchTemplateId,
                    LaunchTemplateName: fl.launchTemplate.launchTemplateName,
                    Version: fl.launchTemplate.launchTemplateVersion ?? '$Default',
                  },
          });
        } catch (error: unknown) {
          // Image Builder reports Fast Launch problems only in its own logs, never in the image's state
          if (!(error instanceof AwsError)) throw error;
        }
      }
    }
    // License Manager associations: "Configurations apply to distributed images only in the source account,
    // except for SSM parameter configs" (Image Builder API reference, ApplyImageConfigurations), so only the
    // owner's AMI of the region gets them; a target account's copy gets none (the reconciler's check finds it).
    // Only the owner's own license configurations can be associated (License Manager is per account).
    const licensed = amiFor(owner, region);
    if (licensed !== undefined && (d.licenseConfigurationArns?.length ?? 0) > 0) {
      const store = env.state.cell(owner, region);
      const usable = (d.licenseConfigurationArns ?? []).filter((arn) => store.licenseConfigurations.has(arn));
      if (usable.length > 0)
        store.licenseAssociations.set(licensed, new Set([...(store.licenseAssociations.get(licensed) ?? []), ...usable]));
    }
    // S3 export: Image Builder exports the owner's AMI of the region with VM Import/Export's ExportImage
    // (Image Builder API reference, S3ExportConfiguration: "Properties that configure export from your build
    // instance to a compatible file format for your VM"; the file lands as EC2 names it, see ec2.ts). A refused
    // export is not modelled further: the build stays as it is, and the reconciler finds no export task.
    const s3Export = d.s3ExportConfiguration;
    const exported = amiFor(owner, region);
    if (s3Export !== undefined && exported !== undefined) {
      const start = () => {
        try {
          ec2.handlers.ExportImage?.(systemCtx(env, owner, region, 'ec2', 'ExportImage'), {
            ImageId: exported,
            DiskImageFormat: s3Export.diskImageFormat,
            RoleName: s3Export.roleName,
            S3ExportLocation: { S3Bucket: s3Export.s3Bucket, S3Prefix: s3Export.s3Prefix },
            ClientToken: `${image.arn ?? ''}/${region}`.slice(-64),
          });
        } catch (error: unknown) {
          if (!(error instanceof AwsError)) throw error;
          // the export is part of the distribution: a refused one (a bucket that does not exist, …) fails it
          failures.push(
            `Failed to export ${exported} to s3://${s3Export.s3Bucket ?? ''} in Region ${region}: ${error.code}: ${error.message}`,
          );
        }
      };
      // a copy still pending is exported once it is available
      if (env.state.findImage(region, exported)?.state === 'pending') env.clock.after(COPY_MS, start);
      else start();
    }
    for (const p of d.ssmParameterConfigurations ?? []) {
      const account = p.amiAccountId ?? owner;
      const imageId = amiFor(account, region);
      if (imageId === undefined || p.parameterName === undefined) continue;
      // Image Builder writes the parameter with SSM's PutParameter, whose name rules hold here too
      // (parameters.ts); a refused write fails the image with SSM's answer
      const refused = parameterNameError(p.parameterName);
      if (refused !== undefined) {
        failures.push(
          `Failed to update the SSM parameter ${p.parameterName} in account ${account} in Region ${region}: ${refused.code}: ${refused.message}`,
        );
        continue;
      }
      writeParameter(env.state.cell(account, region), {
        name: p.parameterName,
        value: imageId,
        type: 'String',
        dataType: p.dataType ?? 'text',
        lastModified: env.clock.date(),
      });
    }
  }
  return failures;
}

/** Run a build through its phases, publishing an Image State Change event at each step. */
function runBuild(env: SandboxEnv, image: Image, recipe: ImageRecipe, kmsKeyId: string | undefined): void {
  const [, , , region = '', owner = ''] = (image.arn ?? '').split(':');
  const buildNumber = Number((image.arn ?? '').split('/').at(-1));
  const at = (ms: number, fn: () => void) => env.clock.after(ms, fn);
  let t = PHASES.pending;
  at(t, () => setState(env, image, 'BUILDING'));
  t += PHASES.building;
  let source: Ami | undefined;
  at(t, () => {
    const buildRegionConfig = image.distributionConfiguration?.distributions?.find(
      (d) => d.region === region,
    )?.amiDistributionConfiguration;
    source = registerImage(env.state, env.clock, {
      account: owner,
      region,
      name: resolveName(buildRegionConfig?.name, image.name ?? 'image', buildNumber, image.dateCreated ?? env.clock.iso()),
      description: buildRegionConfig?.description,
      platform: recipe.platform === 'Windows' ? 'windows' : undefined,
      tags: { CreatedBy: 'EC2 Image Builder', Ec2ImageBuilderArn: image.arn ?? '' },
      kmsKeyId: kmsArn(kmsKeyId, owner, region),
    });
    setState(env, image, 'TESTING');
  });
  t += PHASES.testing;
  at(t, () => setState(env, image, 'DISTRIBUTING'));
  t += 1000;
  at(t, () => {
    const workflow = distributionWorkflowOf(env, image);
    if (workflow === undefined || source === undefined) finishDistribution(env, image, source, undefined);
    else runDistributionWorkflow(env, image, workflow, workflowHooks(env, image, source), COPY_MS);
  });
}

/**
 * The build's distribution, split into what a DISTRIBUTION workflow's steps do (imagebuilder-workflows.ts):
 * DistributeImage copies, ModifyImageAttributes shares, ApplyImageConfigurations integrates; the image ends
 * AVAILABLE or FAILED with the workflow.
 */
function workflowHooks(env: SandboxEnv, image: Image, source: Ami) {
  const owner = source.ownerId;
  return {
    distribute(cells: Set<string>, distributions: Distribution[] | undefined) {
      const started = env.clock.iso();
      const { failures } = distribute(env, image, source, cells, distributions);
      const copies: DistributedImage[] = (image.outputResources?.amis ?? [])
        .filter((a) => cells.has(`${a.accountId ?? owner}/${a.region ?? ''}`))
        .map((a) => ({
          region: a.region ?? '',
          name: a.name,
          amiId: a.image ?? '',
          accountId: a.accountId ?? owner,
          dateStarted: started,
          dateStopped: env.clock.iso(),
          status: 'Completed',
          step: 'Completed',
        }));
      return { copies, failures };
    },
    modify(copies: DistributedImage[], attributes: Distribution[] | undefined) {
      const list = attributes ?? image.distributionConfiguration?.distributions ?? [];
      for (const copy of copies) {
        const p = list.find((d) => d.region === copy.region)?.amiDistributionConfiguration?.launchPermission;
        const ami = env.state.findImage(copy.region, copy.amiId);
        if (ami === undefined || p === undefined) continue;
        for (const id of p.userIds ?? []) ami.launchPermissions.userIds.add(id);
        for (const g of p.userGroups ?? []) ami.launchPermissions.groups.add(g);
        for (const o of p.organizationArns ?? []) ami.launchPermissions.organizationArns.add(o);
        for (const o of p.organizationalUnitArns ?? []) ami.launchPermissions.organizationalUnitArns.add(o);
      }
    },
    configure(copies: DistributedImage[]) {
      integrate(env, image, new Set(copies.map((c) => `${c.accountId}/${c.region}`)));
    },
    finish(outcome: { status: 'AVAILABLE' } | { status: 'FAILED'; reason: string }) {
      if (outcome.status === 'AVAILABLE') setState(env, image, 'AVAILABLE');
      else setState(env, image, 'FAILED', outcome.reason);
    },
  };
}

function finishDistribution(env: SandboxEnv, image: Image, source: Ami | undefined, only: Set<string> | undefined): void {
  if (source === undefined) return;
  const { failures } = distribute(env, image, source, only);
  env.clock.after(PHASES.distributing, () => {
    if (failures.length > 0) {
      setState(env, image, 'FAILED', `Not all distribution jobs are completed. ${failures.map((f, i) => `${i + 1}) ${f}`).join(' ')}`);
      return;
    }
    setState(env, image, 'INTEGRATING');
    env.clock.after(PHASES.integrating, () => {
      const failed = integrate(env, image);
      if (failed.length > 0)
        setState(env, image, 'FAILED', `Not all distribution jobs are completed. ${failed.map((f, i) => `${i + 1}) ${f}`).join(' ')}`);
      else setState(env, image, 'AVAILABLE');
    });
  });
}

function startBuild(
  ctx: Ctx,
  recipeArn: string | undefined,
  infraArn: string | undefined,
  distributionArn: string | undefined,
  pipelineArn: string | undefined,
  workflows?: { workflows?: Image['workflows']; executionRole?: string | undefined },
): string {
  const store = ctx.env.state.cell(ctx.account, ctx.region).imagebuilder;
  const recipe = store.recipes.get(recipeArn ?? '');
  if (recipe === undefined) throw ibNotFound(recipeArn ?? '');
  if (!store.infrastructure.has(infraArn ?? '')) throw ibNotFound(infraArn ?? '');
  const distribution: DistributionConfiguration | undefined =
    distributionArn === undefined ? undefined : store.distributions.get(distributionArn);
  if (distributionArn !== undefined && distribution === undefined) throw ibNotFound(distributionArn);
  const versionPrefix = arnOf(ctx, 'image', recipe.name ?? '', recipe.version ?? '1.0.0');
  const builds = [...store.images.keys()].filter((arn) => arn.startsWith(`${versionPrefix}/`)).length;
  const arn = `${versionPrefix}/${builds + 1}`;
  const image: Image = {
    ...(workflows?.workflows === undefined ? {} : { workflows: workflows.workflows }),
    ...(workflows?.executionRole === undefined ? {} : { executionRole: workflows.executionRole }),
    arn,
    type: 'AMI',
    name: recipe.name,
    version: `${recipe.version ?? '1.0.0'}/${builds + 1}`,
    platform: recipe.platform,
    state: { status: 'PENDING' },
    imageRecipe: recipe,
    sourcePipelineName: pipelineArn?.split('/').at(-1),
    sourcePipelineArn: pipelineArn,
    infrastructureConfiguration: store.infrastructure.get(infraArn ?? ''),
    // the snapshot Image Builder used for this build: later edits of the configuration do not change it
    distributionConfiguration: distribution === undefined ? undefined : structuredClone(distribution),
    dateCreated: ctx.env.clock.iso(),
    outputResources: { amis: [] },
    buildType: pipelineArn === undefined ? 'USER_INITIATED' : 'SCHEDULED',
    imageSource: 'AMAZON_MANAGED',
  };
  store.images.set(arn, image);
  const kms = distribution?.distributions?.find((d) => d.region === ctx.region)?.amiDistributionConfiguration?.kmsKeyId;
  runBuild(ctx.env, image, recipe, kms);
  return arn;
}

/**
 * A create or update with a `clientToken`: "Unique, case-sensitive identifier you provide to ensure
 * idempotency of the request" (Image Builder API Reference, e.g. CreateDistributionConfiguration). A retry with
 * the same token and the same parameters gets the first answer (not ResourceAlreadyExistsException); other
 * parameters get IdempotentParameterMismatchException, "You have specified a client token for an operation
 * using parameter values that differ from a previous request that used the same client token." (HTTP 400,
 * https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_UpdateDistributionConfiguration.html, Errors).
 */
function withClientToken<I extends { clientToken?: string | undefined }>(operation: string, fn: (ctx: Ctx, input: I) => object) {
  return (ctx: Ctx, input: I): object => {
    if (input.clientToken === undefined) return fn(ctx, input);
    const store = ctx.env.state.cell(ctx.account, ctx.region).imagebuilder;
    const key = `${operation}/${input.clientToken}`;
    const { clientToken: _token, ...parameters } = input;
    const request = JSON.stringify(parameters);
    const seen = store.clientTokens.get(key);
    if (seen !== undefined) {
      const first = JSON.parse(seen) as { request: string; response: object };
      if (first.request !== request)
        throw new AwsError(
          'IdempotentParameterMismatchException',
          'You have specified a client token for an operation using parameter values that differ from a previous request that used the same client token.',
          400,
        );
      return first.response;
    }
    const response = fn(ctx, input);
    store.clientTokens.set(key, JSON.stringify({ request, response }));
    return response;
  };
}

function idempotent(ctx: Ctx, token: string | undefined, start: () => string): string {
  const store = ctx.env.state.cell(ctx.account, ctx.region).imagebuilder;
  if (token !== undefined) {
    const existing = store.clientTokens.get(token);
    if (existing !== undefined) return existing;
  }
  const arn = start();
  if (token !== undefined) store.clientTokens.set(token, arn);
  return arn;
}

function getImage(ctx: Ctx, input: { imageBuildVersionArn?: string }) {
  const arn = input.imageBuildVersionArn ?? '';
  if (!/^arn:aws[a-z-]*:imagebuilder:[^:]+:(\d{12}|aws):image\/[a-z0-9-_]+\/\d+\.\d+\.\d+\/\d+$/.test(arn)) {
    throw invalid(`The value supplied for parameter 'imageBuildVersionArn' is not valid: ${arn}`);
  }
  const image = storeFor(ctx, arn).images.get(arn);
  if (image === undefined) throw ibNotFound(arn);
  return { image };
}

function retryImage(ctx: Ctx, input: { imageBuildVersionArn?: string; clientToken?: string }) {
  const arn = input.imageBuildVersionArn ?? '';
  const store = storeFor(ctx, arn);
  const image = store.images.get(arn);
  if (image === undefined) throw ibNotFound(arn);
  if (input.clientToken !== undefined && store.clientTokens.get(input.clientToken) === arn)
    return { clientToken: input.clientToken, imageBuildVersionArn: arn };
  if (image.state?.status !== 'FAILED')
    throw invalid(`Image ${arn} is in state ${image.state?.status ?? 'UNKNOWN'}; only FAILED images can be retried.`);
  if (input.clientToken !== undefined) store.clientTokens.set(input.clientToken, arn);
  const source = [...ctx.env.state.cell(ctx.account, ctx.region).images.values()].find(
    (a) => a.tags.get('Ec2ImageBuilderArn') === arn && a.region === ctx.region && a.ownerId === ctx.account,
  );
  setState(ctx.env, image, 'DISTRIBUTING');
  ctx.env.clock.after(1000, () => finishDistribution(ctx.env, image, source, undefined));
  return { clientToken: input.clientToken, imageBuildVersionArn: arn };
}

/**
 * DistributeImage (API Reference: "distributes existing AMIs to additional regions and accounts without
 * rebuilding the image"; User Guide, "Use enhanced AMI distribution capabilities"): the source image's copies
 * to the cells of the given distribution configuration that have none yet, then its integration (launch
 * templates, Fast Launch, licences, S3 export, SSM parameters) for those cells; the copies are added to the
 * image's outputResources, and the image build ARN is answered. Only an image build version ARN as
 * `sourceImage` is modelled (an AMI id or an `ssm:` parameter is refused as not modelled). Required members,
 * patterns and the execution role's form: the model (ValidationException); an image or configuration that does
 * not exist: ResourceNotFoundException; an image that is not AVAILABLE: ResourceInUseException; a client token
 * reused with other parameters: IdempotentParameterMismatchException.
 */
function distributeImage(
  ctx: Ctx,
  input: {
    sourceImage?: string;
    distributionConfigurationArn?: string;
    executionRole?: string;
    tags?: Record<string, string>;
    clientToken?: string;
  },
) {
  validateModel(input, 'DistributeImageRequest');
  const source = input.sourceImage ?? '';
  if (!/:image\/[a-z0-9-_]+\/\d+\.\d+\.\d+\/\d+$/.test(source))
    throw new AwsError(
      'InvalidRequestException',
      `The sourceImage ${source} is not an image build version ARN: AMI ids and SSM parameters are not modelled by this sandbox.`,
      400,
    );
  const store = storeFor(ctx, source);
  const token = `DistributeImage/${input.clientToken ?? ''}`;
  const request = JSON.stringify({ ...input, clientToken: undefined });
  const seen = store.clientTokens.get(token);
  if (seen !== undefined) {
    if (seen !== request)
      throw new AwsError(
        'IdempotentParameterMismatchException',
        `The client token ${input.clientToken ?? ''} was already used with other parameters.`,
        400,
      );
    return { clientToken: input.clientToken, imageBuildVersionArn: source };
  }
  const image = store.images.get(source);
  if (image === undefined) throw ibNotFound(source);
  const configArn = input.distributionConfigurationArn ?? '';
  const config = storeFor(ctx, configArn).distributions.get(configArn);
  if (config === undefined) throw ibNotFound(configArn);
  if (image.state?.status !== 'AVAILABLE')
    throw new AwsError(
      'ResourceInUseException',
      `The image ${source} is ${image.state?.status ?? 'UNKNOWN'}; only an AVAILABLE image can be distributed.`,
      400,
    );
  const ami = [...ctx.env.state.cell(ctx.account, ctx.region).images.values()].find(
    (a) => a.tags.get('Ec2ImageBuilderArn') === source && a.ownerId === ctx.account && a.region === ctx.region,
  );
  if (ami === undefined) throw invalid(`The image ${source} has no AMI in ${ctx.region} to distribute.`);
  store.clientTokens.set(token, request);
  const before = new Set((image.outputResources?.amis ?? []).map((a) => `${a.accountId ?? ctx.account}/${a.region ?? ''}`));
  const { failures } = distribute(ctx.env, image, ami, undefined, config.distributions ?? []);
  const added = new Set(
    (image.outputResources?.amis ?? []).map((a) => `${a.accountId ?? ctx.account}/${a.region ?? ''}`).filter((key) => !before.has(key)),
  );
  // a copy that fails is not recorded (the image keeps the copies it has): the caller finds the cell missing
  void failures;
  const env = ctx.env;
  env.clock.after(COPY_MS + 30_000, () => integrate(env, { ...image, distributionConfiguration: config }, added));
  cloudTrail(ctx, 'DistributeImage', input, { imageBuildVersionArn: source });
  return { clientToken: input.clientToken, imageBuildVersionArn: source };
}

/**
 * TagResource on an image build (Image Builder API Reference, TagResource: `POST /tags/{resourceArn}`; tag
 * keys 1–128 characters, not starting with `aws:`, at most 50 tags per resource).
 */
function tagResource(ctx: Ctx, input: { resourceArn?: string; tags?: Record<string, string> }) {
  const arn = input.resourceArn ?? '';
  const image = /:image\//.test(arn) ? storeFor(ctx, arn).images.get(arn) : undefined;
  if (image === undefined) throw ibNotFound(arn);
  const tags = input.tags ?? {};
  for (const [key, value] of Object.entries(tags)) {
    if (key.length < 1 || key.length > 128 || key.toLowerCase().startsWith('aws:')) throw invalid(`Invalid tag key: ${key}`);
    if (value.length > 256) throw invalid(`Tag value too long for ${key}`);
  }
  const merged = { ...(image.tags ?? {}), ...tags };
  if (Object.keys(merged).length > 50) throw invalid('A resource can have at most 50 tags.');
  image.tags = merged;
  return {};
}

/** The image build a tagging call names, or ResourceNotFoundException (the sandbox tags images only). */
function taggedImage(ctx: Ctx, arn: string): Image {
  const image = /:image\//.test(arn) ? storeFor(ctx, arn).images.get(arn) : undefined;
  if (image === undefined) throw ibNotFound(arn);
  return image;
}

/**
 * UntagResource (Image Builder API Reference, UntagResource: `DELETE /tags/{resourceArn}?tagKeys=…`, 1–50
 * keys); a key the resource does not carry is no error.
 */
function untagResource(ctx: Ctx, input: { resourceArn?: string; tagKeys?: string[] }) {
  const image = taggedImage(ctx, input.resourceArn ?? '');
  const keys = input.tagKeys ?? [];
  if (keys.length < 1 || keys.length > 50) throw invalid('tagKeys must hold between 1 and 50 keys.');
  image.tags = Object.fromEntries(Object.entries(image.tags ?? {}).filter(([key]) => !keys.includes(key)));
  return {};
}

/** ListTagsForResource (Image Builder API Reference: `GET /tags/{resourceArn}`, answers `{ tags }`). */
function listTagsForResource(ctx: Ctx, input: { resourceArn?: string }) {
  return { tags: { ...(taggedImage(ctx, input.resourceArn ?? '').tags ?? {}) } };
}

const imagebuilder: ServiceDef = {
  name: 'imagebuilder',
  protocol: 'rest-json',
  schemas: schemas as unknown as Record<string, unknown>,
  handlers: {
    CreateDistributionConfiguration: op(withClientToken('CreateDistributionConfiguration', createDistributionConfiguration)),
    UpdateDistributionConfiguration: op(withClientToken('UpdateDistributionConfiguration', updateDistributionConfiguration)),
    GetDistributionConfiguration: op(getDistributionConfiguration),
    TagResource: op(tagResource),
    UntagResource: op(untagResource),
    ListTagsForResource: op(listTagsForResource),
    ListDistributionConfigurations: op(listDistributionConfigurations),
    DeleteDistributionConfiguration: op(deleteDistributionConfiguration),
    CreateImageRecipe: op(withClientToken('CreateImageRecipe', createImageRecipe)),
    GetImageRecipe: op((ctx: Ctx, input: { imageRecipeArn?: string }) => {
      const recipe = storeFor(ctx, input.imageRecipeArn ?? '').recipes.get(input.imageRecipeArn ?? '');
      if (recipe === undefined) throw ibNotFound(input.imageRecipeArn ?? '');
      return { imageRecipe: recipe };
    }),
    CreateInfrastructureConfiguration: op(withClientToken('CreateInfrastructureConfiguration', createInfrastructureConfiguration)),
    CreateImagePipeline: op(withClientToken('CreateImagePipeline', createImagePipeline)),
    UpdateImagePipeline: op(updateImagePipeline),
    GetImagePipeline: op((ctx: Ctx, input: { imagePipelineArn?: string }) => {
      const pipeline = storeFor(ctx, input.imagePipelineArn ?? '').pipelines.get(input.imagePipelineArn ?? '');
      if (pipeline === undefined) throw ibNotFound(input.imagePipelineArn ?? '');
      return { imagePipeline: pipeline };
    }),
    ListImagePipelines: op((ctx: Ctx, input: { maxResults?: number; nextToken?: string }) => {
      const all = [...ctx.env.state.cell(ctx.account, ctx.region).imagebuilder.pipelines.values()];
      const { page, nextToken } = paginate(all, input.maxResults, input.nextToken, { default: 25, max: 25 });
      return { imagePipelineList: page, nextToken };
    }),
    StartImagePipelineExecution: op((ctx: Ctx, input: { imagePipelineArn?: string; clientToken?: string }) => {
      const pipeline = storeFor(ctx, input.imagePipelineArn ?? '').pipelines.get(input.imagePipelineArn ?? '');
      if (pipeline === undefined) throw ibNotFound(input.imagePipelineArn ?? '');
      const arn = idempotent(ctx, input.clientToken, () =>
        startBuild(
          ctx,
          pipeline.imageRecipeArn,
          pipeline.infrastructureConfigurationArn,
          pipeline.distributionConfigurationArn,
          pipeline.arn,
          pipeline,
        ),
      );
      return { clientToken: input.clientToken, imageBuildVersionArn: arn };
    }),
    CreateImage: op((ctx: Ctx, input: CreateImageRequest) => {
      const arn = idempotent(ctx, input.clientToken, () =>
        startBuild(ctx, input.imageRecipeArn, input.infrastructureConfigurationArn, input.distributionConfigurationArn, undefined, {
          workflows: checkWorkflowConfigurations(ctx, input.workflows),
          executionRole: input.executionRole,
        }),
      );
      return { clientToken: input.clientToken, imageBuildVersionArn: arn };
    }),
    GetImage: op(getImage),
    ListImagePipelineImages: op((ctx: Ctx, input: { imagePipelineArn?: string; maxResults?: number; nextToken?: string }) => {
      const arn = input.imagePipelineArn ?? '';
      const store = storeFor(ctx, arn);
      if (!store.pipelines.has(arn)) throw ibNotFound(arn);
      const images = [...store.images.values()].filter((i) => i.sourcePipelineArn === arn);
      const { page, nextToken } = paginate(images, input.maxResults, input.nextToken, { default: 25, max: 25 });
      return { imageSummaryList: page.map(summary), nextToken };
    }),
    ListImageBuildVersions: op((ctx: Ctx, input: { imageVersionArn?: string; maxResults?: number; nextToken?: string }) => {
      const prefix = `${input.imageVersionArn ?? ''}/`;
      const images = [...storeFor(ctx, input.imageVersionArn ?? '').images.values()].filter((i) => i.arn?.startsWith(prefix));
      const { page, nextToken } = paginate(images, input.maxResults, input.nextToken, { default: 25, max: 25 });
      return { imageSummaryList: page.map(summary), nextToken };
    }),
    RetryImage: op(retryImage),
    DistributeImage: op(distributeImage),
    ...workflowHandlers,
  },
};

export { PHASES, imagebuilder };
