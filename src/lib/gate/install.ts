/**
 * Print or install the gate (docs/gate.md): the workflow document for a pipeline's distribution
 * configuration, created as a DISTRIBUTION workflow and attached to the pipeline with its execution role.
 */
import {
  CreateWorkflowCommand,
  type DistributionConfiguration,
  GetDistributionConfigurationCommand,
  GetImagePipelineCommand,
  type ImagePipeline,
  UpdateImagePipelineCommand,
  type WorkflowConfiguration,
} from '@aws-sdk/client-imagebuilder';
import type { ClientFactory } from '../aws/clients.ts';
import { parseDistributionConfigurationArn, parseImagePipelineArn } from '../core/arn.ts';
import { AwsCallError, InputError } from '../core/errors.ts';
import { type StageSpec, gateDocument } from './workflow.ts';

interface GateSource {
  pipelineArn?: string | undefined;
  distributionConfigurationArn?: string | undefined;
  stages: StageSpec[];
  timeoutSeconds: number;
}

async function readPipeline(arn: string, clients: ClientFactory): Promise<ImagePipeline> {
  const parsed = parseImagePipelineArn(arn);
  try {
    const cell = await clients.forCell(parsed.accountId, parsed.region);
    const out = await cell.imagebuilder.send(new GetImagePipelineCommand({ imagePipelineArn: arn }));
    if (out.imagePipeline === undefined) throw new InputError(`GetImagePipeline returned no pipeline for ${arn}`);
    return out.imagePipeline;
  } catch (error: unknown) {
    if (error instanceof InputError) throw error;
    throw new AwsCallError('GetImagePipeline', parsed.accountId, parsed.region, error);
  }
}

async function readConfiguration(arn: string, clients: ClientFactory): Promise<DistributionConfiguration> {
  const parsed = parseDistributionConfigurationArn(arn);
  try {
    const cell = await clients.forCell(parsed.accountId, parsed.region);
    const out = await cell.imagebuilder.send(new GetDistributionConfigurationCommand({ distributionConfigurationArn: arn }));
    if (out.distributionConfiguration === undefined) throw new InputError(`GetDistributionConfiguration returned nothing for ${arn}`);
    return out.distributionConfiguration;
  } catch (error: unknown) {
    if (error instanceof InputError) throw error;
    throw new AwsCallError('GetDistributionConfiguration', parsed.accountId, parsed.region, error);
  }
}

/** The document for a pipeline (or a distribution configuration): its stages' settings read from AWS when there are stages. */
async function printGate(source: GateSource, clients: ClientFactory): Promise<string> {
  let configArn = source.distributionConfigurationArn;
  let owner: string | undefined;
  if (source.pipelineArn !== undefined) {
    const pipeline = await readPipeline(source.pipelineArn, clients);
    configArn ??= pipeline.distributionConfigurationArn;
    owner = parseImagePipelineArn(source.pipelineArn).accountId;
    if (configArn === undefined) throw new InputError(`pipeline ${source.pipelineArn} has no distribution configuration to gate`);
  }
  const config = source.stages.length === 0 || configArn === undefined ? undefined : await readConfiguration(configArn, clients);
  owner ??= configArn === undefined ? undefined : parseDistributionConfigurationArn(configArn).accountId;
  return gateDocument({
    stages: source.stages,
    distributions: config?.distributions,
    ownerAccountId: owner,
    timeoutSeconds: source.timeoutSeconds,
  });
}

interface InstallRequest extends GateSource {
  pipelineArn: string;
  executionRole: string;
  name: string;
  version: string;
}

interface InstallResult {
  workflowArn: string;
  pipelineArn: string;
  stages: number;
  /** The DISTRIBUTION workflow it replaced on the pipeline, if any. */
  replaced: string | undefined;
}

/**
 * Create the gate's workflow and attach it to the pipeline, keeping the pipeline's other settings and its
 * build and test workflows (UpdateImagePipeline replaces every setting: "You must specify all of the required
 * properties in the update request"). A DISTRIBUTION workflow already attached is replaced.
 */
async function installGate(request: InstallRequest, clients: ClientFactory): Promise<InstallResult> {
  const parsed = parseImagePipelineArn(request.pipelineArn);
  const data = await printGate(request, clients);
  const pipeline = await readPipeline(request.pipelineArn, clients);
  const cell = await clients.forCell(parsed.accountId, parsed.region);
  let workflowArn: string;
  try {
    const out = await cell.imagebuilder.send(
      new CreateWorkflowCommand({
        name: request.name,
        semanticVersion: request.version,
        type: 'DISTRIBUTION',
        description: 'imagebuilder-reconciler distribution gate',
        data,
        clientToken: `gate-${request.name}-${request.version}`.slice(0, 64),
      }),
    );
    workflowArn = out.workflowBuildVersionArn ?? '';
  } catch (error: unknown) {
    throw new AwsCallError('CreateWorkflow', parsed.accountId, parsed.region, error);
  }
  const kept: WorkflowConfiguration[] = (pipeline.workflows ?? []).filter((w) => !/:workflow\/distribution\//.test(w.workflowArn ?? ''));
  const replaced = (pipeline.workflows ?? []).find((w) => /:workflow\/distribution\//.test(w.workflowArn ?? ''))?.workflowArn;
  try {
    await cell.imagebuilder.send(
      new UpdateImagePipelineCommand({
        imagePipelineArn: request.pipelineArn,
        description: pipeline.description,
        imageRecipeArn: pipeline.imageRecipeArn,
        containerRecipeArn: pipeline.containerRecipeArn,
        infrastructureConfigurationArn: pipeline.infrastructureConfigurationArn,
        distributionConfigurationArn: pipeline.distributionConfigurationArn,
        imageTestsConfiguration: pipeline.imageTestsConfiguration,
        enhancedImageMetadataEnabled: pipeline.enhancedImageMetadataEnabled,
        schedule: pipeline.schedule,
        status: pipeline.status,
        imageScanningConfiguration: pipeline.imageScanningConfiguration,
        workflows: [...kept, { workflowArn }],
        executionRole: request.executionRole,
      }),
    );
  } catch (error: unknown) {
    throw new AwsCallError('UpdateImagePipeline', parsed.accountId, parsed.region, error);
  }
  const stages = (data.match(/action: WaitForAction/g) ?? []).length;
  return { workflowArn, pipelineArn: request.pipelineArn, stages, replaced };
}

export { installGate, printGate };
export type { GateSource, InstallRequest, InstallResult };
