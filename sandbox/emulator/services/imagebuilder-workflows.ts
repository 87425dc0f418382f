/**
 * Image Builder's workflows in the sandbox: workflow resources (CreateWorkflow, GetWorkflow), a build's
 * DISTRIBUTION workflow run step by step (DistributeImage, ModifyImageAttributes, ApplyImageConfigurations,
 * WaitForAction), its step executions (ListWorkflowStepExecutions, GetWorkflowStepExecution,
 * ListWaitingWorkflowSteps, GetWorkflowExecution) and the answer to a waiting step (SendWorkflowStepAction).
 *
 * Sources (docs/gate.md lists them with what each says):
 * - Image Builder User Guide, "Supported step actions for your workflow document" (wfdoc-step-actions): which
 *   actions a distribution stage may use, each action's inputs, outputs, default and maximum timeout;
 *   WaitForAction "pauses the running workflow and waits to receive an external action from the Image Builder
 *   SendWorkflowStepAction API action", publishes `EC2 Image Builder Workflow Step Waiting` to the default bus,
 *   and the workflow "stays paused until … you call SendWorkflowStepAction with RESUME to continue, or STOP to
 *   end the workflow [or] the step reaches its timeout (default 3 days, maximum 7 days), and the workflow fails".
 * - Image Builder User Guide, "Amazon EventBridge integration" (integ-eventbridge): the waiting event's shape
 *   (detail `workflow-execution-id`, `workflow-step-execution-id`, `workflow-step-name`; resources: the image
 *   build ARN and the workflow ARN).
 * - Image Builder API Reference, SendWorkflowStepAction: "RESUME completes the waiting step, and the workflow
 *   continues. STOP fails the step, and the step's onFailure setting determines whether the workflow continues
 *   or aborts. The workflow step must be in a waiting state to accept an action. The request fails if the step
 *   has already timed out or been actioned." Its errors (the model): ResourceNotFoundException,
 *   InvalidRequestException, InvalidParameterValueException, IdempotentParameterMismatchException, ….
 * - The service model (botocore 1.43.11): required members, enums and patterns, checked by validateModel.
 *
 * What the sources leave open is in docs/aws-sources.md ("Distribution workflows"). This module imports
 * nothing from imagebuilder.ts: the build's distribution is handed in as hooks, so the two stay separate.
 */
import { randomUUID } from 'node:crypto';
import type { Distribution, Image, WorkflowConfiguration } from '@aws-sdk/client-imagebuilder';
import { parse as parseYaml } from 'yaml';
import { validateAgainstModel, validationMessage } from '../model/validate.ts';
import { partitionOf } from '../partition.ts';
import { AwsError } from '../protocol/errors.ts';
import { type Ctx, type SandboxEnv, op } from '../server.ts';
import type { SandboxState } from '../state.ts';
import { paginate } from './common.ts';

type StepStatus = 'PENDING' | 'SKIPPED' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED';
type WorkflowStatus =
  | 'PENDING'
  | 'SKIPPED'
  | 'RUNNING'
  | 'COMPLETED'
  | 'FAILED'
  | 'ROLLBACK_IN_PROGRESS'
  | 'ROLLBACK_COMPLETED'
  | 'CANCELLED';

/** One step of a workflow document, as the document names it. */
interface StepDocument {
  name: string;
  action: string;
  description: string | undefined;
  onFailure: 'Abort' | 'Continue';
  timeoutSeconds: number;
  inputs: Record<string, unknown>;
}

interface WorkflowResource {
  arn: string;
  name: string;
  version: string;
  description: string | undefined;
  changeDescription: string | undefined;
  type: 'BUILD' | 'TEST' | 'DISTRIBUTION';
  owner: string;
  data: string;
  dateCreated: string;
  tags: Record<string, string> | undefined;
  steps: StepDocument[];
}

interface StepExecution {
  stepExecutionId: string;
  workflowExecutionId: string;
  workflowBuildVersionArn: string;
  imageBuildVersionArn: string;
  name: string;
  description: string | undefined;
  action: string;
  status: StepStatus;
  message: string | undefined;
  inputs: string;
  outputs: string | undefined;
  startTime: string | undefined;
  endTime: string | undefined;
  onFailure: string;
  timeoutSeconds: number;
  /** A WaitForAction step between its start and its answer (or timeout). */
  waiting: boolean;
}

interface WorkflowExecution {
  workflowExecutionId: string;
  workflowBuildVersionArn: string;
  imageBuildVersionArn: string;
  type: 'DISTRIBUTION';
  status: WorkflowStatus;
  message: string | undefined;
  startTime: string;
  endTime: string | undefined;
  steps: StepExecution[];
}

interface WorkflowStore {
  workflows: Map<string, WorkflowResource>;
  executions: Map<string, WorkflowExecution>;
  steps: Map<string, StepExecution>;
  /** SendWorkflowStepAction's client tokens: token → the request it was used with and the answer. */
  actionTokens: Map<string, { request: string; response: Record<string, unknown> }>;
  /** CreateWorkflow's client tokens: token → the request and the workflow's ARN. */
  createTokens: Map<string, { request: string; arn: string }>;
}

const stores = new WeakMap<SandboxState, Map<string, WorkflowStore>>();

/** The workflows of an account in a region (kept beside the sandbox's state, keyed by it). */
function workflowStore(state: SandboxState, account: string, region: string): WorkflowStore {
  let byCell = stores.get(state);
  if (byCell === undefined) {
    byCell = new Map();
    stores.set(state, byCell);
  }
  const key = `${account}/${region}`;
  let store = byCell.get(key);
  if (store === undefined) {
    store = { workflows: new Map(), executions: new Map(), steps: new Map(), actionTokens: new Map(), createTokens: new Map() };
    byCell.set(key, store);
  }
  return store;
}

/**
 * The step actions a distribution stage may use, and each action's default and maximum timeout in seconds
 * (User Guide, wfdoc-step-actions). Only these are run by the sandbox; a distribution workflow naming another
 * action (LaunchInstance, RunCommand, ExecuteStateMachine, …) is refused as not modelled.
 */
const DISTRIBUTION_ACTIONS: Record<string, { default: number; max: number }> = {
  DistributeImage: { default: 360 * 60, max: 720 * 60 },
  ModifyImageAttributes: { default: 120 * 60, max: 180 * 60 },
  ApplyImageConfigurations: { default: 360 * 60, max: 720 * 60 },
  WaitForAction: { default: 3 * 24 * 3600, max: 7 * 24 * 3600 },
};

/** Actions restricted to the distribution stage (User Guide, wfdoc-step-actions: "Restricted to the distribution stage"). */
const DISTRIBUTION_ONLY = new Set(['DistributeImage', 'ModifyImageAttributes', 'ApplyImageConfigurations', 'DistributeContainerImage']);

/** Step names: the model's WorkflowStepName pattern. */
const STEP_NAME = /^[A-Za-z][A-Za-z0-9-_]{1,99}$/;

const STEP_ID = /^step-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const EXECUTION_ID = /^wf-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

function invalidRequest(message: string): AwsError {
  return new AwsError('InvalidRequestException', message, 400);
}

function notFound(what: string): AwsError {
  return new AwsError('ResourceNotFoundException', `The resource ${what} does not exist.`, 404);
}

/** The service model's constraints, with the service's ValidationException (as imagebuilder.ts checks them). */
function validateModel(input: unknown, shape: string): void {
  const violations = validateAgainstModel(input, shape, { tokensFilled: true });
  if (violations.length > 0) throw new AwsError('ValidationException', validationMessage(violations), 400);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parse and check a workflow document (User Guide, "Create a YAML workflow document": `schemaVersion` 1.0
 * required, `steps` a list of steps with `name`, `action`, `onFailure`, `timeoutSeconds`, `inputs`). A
 * document the service would not run is refused with InvalidRequestException naming what is wrong (the
 * service's exact words for these are not documented: docs/aws-sources.md).
 */
function parseDocument(data: string, type: WorkflowResource['type']): StepDocument[] {
  let doc: unknown;
  try {
    doc = parseYaml(data);
  } catch (error: unknown) {
    throw invalidRequest(`The workflow document is not valid YAML: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (!isRecord(doc)) throw invalidRequest('The workflow document must be a YAML mapping.');
  if (String(doc.schemaVersion) !== '1' && String(doc.schemaVersion) !== '1.0')
    throw invalidRequest(`The workflow document's schemaVersion must be 1.0, got ${JSON.stringify(doc.schemaVersion)}.`);
  if (!Array.isArray(doc.steps) || doc.steps.length === 0) throw invalidRequest('The workflow document must list at least one step.');
  const names = new Set<string>();
  return doc.steps.map((raw: unknown, i: number): StepDocument => {
    if (!isRecord(raw)) throw invalidRequest(`steps[${i}] must be a mapping.`);
    const name = typeof raw.name === 'string' ? raw.name : '';
    if (!STEP_NAME.test(name)) throw invalidRequest(`steps[${i}].name ${JSON.stringify(raw.name)} is not a valid step name.`);
    if (names.has(name)) throw invalidRequest(`The step name ${name} is used more than once.`);
    names.add(name);
    const action = typeof raw.action === 'string' ? raw.action : '';
    if (type === 'DISTRIBUTION' && DISTRIBUTION_ACTIONS[action] === undefined)
      throw invalidRequest(
        `Step ${name}: the action ${JSON.stringify(raw.action)} is not one this sandbox runs in a distribution workflow (${Object.keys(DISTRIBUTION_ACTIONS).join(', ')}).`,
      );
    if (type !== 'DISTRIBUTION' && DISTRIBUTION_ONLY.has(action))
      throw invalidRequest(`Step ${name}: the action ${action} is restricted to the distribution stage.`);
    if (raw.if !== undefined) throw invalidRequest(`Step ${name}: conditions (if) are not modelled by this sandbox.`);
    const onFailure = raw.onFailure ?? 'Abort';
    if (onFailure !== 'Abort' && onFailure !== 'Continue')
      throw invalidRequest(`Step ${name}: onFailure must be Abort or Continue, got ${JSON.stringify(onFailure)}.`);
    const limits = DISTRIBUTION_ACTIONS[action] ?? { default: 3600, max: 43200 };
    const timeout = raw.timeoutSeconds ?? limits.default;
    // "You can override the default with timeoutSeconds, up to the maximum shown. A value above the maximum fails validation."
    if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 1 || timeout > limits.max)
      throw invalidRequest(
        `Step ${name}: timeoutSeconds must be an integer from 1 to ${limits.max} for ${action}, got ${JSON.stringify(timeout)}.`,
      );
    const inputs = raw.inputs ?? {};
    if (!isRecord(inputs)) throw invalidRequest(`Step ${name}: inputs must be a mapping.`);
    return {
      name,
      action,
      description: typeof raw.description === 'string' ? raw.description : undefined,
      onFailure,
      timeoutSeconds: timeout,
      inputs,
    };
  });
}

function workflowArn(ctx: Ctx, type: string, name: string, version: string): string {
  return `arn:${partitionOf(ctx.region)}:imagebuilder:${ctx.region}:${ctx.account}:workflow/${type.toLowerCase()}/${name.toLowerCase()}/${version}/1`;
}

interface CreateWorkflowInput {
  name?: string;
  semanticVersion?: string;
  description?: string;
  changeDescription?: string;
  data?: string;
  uri?: string;
  kmsKeyId?: string;
  tags?: Record<string, string>;
  clientToken?: string;
  type?: string;
  dryRun?: boolean;
}

/** CreateWorkflow (API Reference): inline `data` (the sandbox has no S3 document `uri`); a build version /1. */
function createWorkflow(ctx: Ctx, input: CreateWorkflowInput) {
  validateModel(input, 'CreateWorkflowRequest');
  const store = workflowStore(ctx.env.state, ctx.account, ctx.region);
  const request = JSON.stringify(input);
  if (input.clientToken !== undefined) {
    const seen = store.createTokens.get(input.clientToken);
    if (seen !== undefined) {
      if (seen.request !== request)
        throw new AwsError(
          'IdempotentParameterMismatchException',
          `The client token ${input.clientToken} was already used with other parameters.`,
          400,
        );
      return { clientToken: input.clientToken, workflowBuildVersionArn: seen.arn };
    }
  }
  if (input.data === undefined && input.uri === undefined) throw invalidRequest('Specify the workflow document as data or uri.');
  if (input.data !== undefined && input.uri !== undefined) throw invalidRequest('Specify either data or uri, not both.');
  if (input.uri !== undefined) throw invalidRequest('Workflow documents in S3 (uri) are not modelled by this sandbox: pass data.');
  const type = input.type as WorkflowResource['type'];
  const name = input.name ?? '';
  const version = input.semanticVersion ?? '';
  const steps = parseDocument(input.data ?? '', type);
  const arn = workflowArn(ctx, type, name, version);
  if (store.workflows.has(arn)) throw new AwsError('ResourceAlreadyExistsException', `The resource ${arn} already exists.`, 400);
  if (input.dryRun === true) throw new AwsError('DryRunOperationException', 'The request would have succeeded, but dryRun was set.', 412);
  store.workflows.set(arn, {
    arn,
    name,
    version,
    description: input.description,
    changeDescription: input.changeDescription,
    type,
    owner: ctx.account,
    data: input.data ?? '',
    dateCreated: ctx.env.clock.iso(),
    tags: input.tags,
    steps,
  });
  if (input.clientToken !== undefined) store.createTokens.set(input.clientToken, { request, arn });
  return { clientToken: input.clientToken, workflowBuildVersionArn: arn };
}

/** A workflow by its build version ARN, or by its version ARN (x.y.z: the latest build of it). */
function findWorkflow(env: SandboxEnv, arn: string): WorkflowResource | undefined {
  const match =
    /^arn:aws[a-z-]*:imagebuilder:([a-z0-9-]+):(\d{12}):workflow\/(build|test|distribution)\/[^/]+\/\d+\.\d+\.\d+(\/\d+)?$/.exec(arn);
  if (match === null) return undefined;
  const store = workflowStore(env.state, match[2] ?? '', match[1] ?? '');
  return store.workflows.get(arn) ?? store.workflows.get(`${arn}/1`);
}

function getWorkflow(ctx: Ctx, input: { workflowBuildVersionArn?: string }) {
  const arn = input.workflowBuildVersionArn ?? '';
  const found = findWorkflow(ctx.env, arn);
  if (found === undefined || found.owner !== ctx.account) throw notFound(arn);
  return {
    workflow: {
      arn: found.arn,
      name: found.name,
      version: found.version,
      description: found.description,
      changeDescription: found.changeDescription,
      type: found.type,
      state: { status: 'ACTIVE' },
      owner: found.owner,
      data: found.data,
      dateCreated: found.dateCreated,
      tags: found.tags,
      parameters: [],
    },
  };
}

/**
 * The workflows of a pipeline or a CreateImage request, checked as the service checks them: each against the
 * model's WorkflowConfiguration, each naming a workflow that exists. Returns them unchanged.
 */
function checkWorkflowConfigurations(ctx: Ctx, workflows: WorkflowConfiguration[] | undefined): WorkflowConfiguration[] | undefined {
  if (workflows === undefined) return undefined;
  for (const w of workflows) {
    validateModel(w, 'WorkflowConfiguration');
    if (findWorkflow(ctx.env, w.workflowArn ?? '') === undefined) throw notFound(w.workflowArn ?? '');
  }
  return workflows;
}

/** The DISTRIBUTION workflow of a build, if one is attached (at most one runs: the first). */
function distributionWorkflowOf(env: SandboxEnv, image: Image): WorkflowResource | undefined {
  for (const w of image.workflows ?? []) {
    const found = findWorkflow(env, w.workflowArn ?? '');
    if (found?.type === 'DISTRIBUTION') return found;
  }
  return undefined;
}

/** A copy as DistributeImage's `distributedImages` output names it (User Guide, DistributeImage outputs). */
interface DistributedImage {
  region: string;
  name: string | undefined;
  amiId: string;
  accountId: string;
  dateStarted: string;
  dateStopped: string;
  status: 'Completed' | 'Failed';
  step: 'Completed' | 'CopyAmiRunning';
  errorMessage?: string;
}

/** What the build (imagebuilder.ts) does for each distribution step action: its distribution, split up. */
interface DistributionHooks {
  /** Copy to these cells (`account/region`), with these distributions when the step gives its own (they replace the configuration's). */
  distribute(cells: Set<string>, distributions: Distribution[] | undefined): { copies: DistributedImage[]; failures: string[] };
  /** Apply launch permissions to these copies: the step's attributes, else the configuration's. */
  modify(copies: DistributedImage[], attributes: Distribution[] | undefined): void;
  /** Apply launch templates, Fast Launch, licences, S3 export and SSM parameters for these copies. */
  configure(copies: DistributedImage[]): void;
  /** The workflow ended: the image becomes AVAILABLE, or FAILED with this reason. */
  finish(outcome: { status: 'AVAILABLE' } | { status: 'FAILED'; reason: string }): void;
}

/** The owner and target accounts a step's distributions (or the configuration's) copy to, as `account/region` keys. */
function cellsOf(image: Image, owner: string, buildRegion: string, distributions: Distribution[]): Set<string> {
  const cells = new Set<string>();
  for (const d of distributions) {
    const region = d.region ?? '';
    const targets = d.amiDistributionConfiguration?.targetAccountIds?.length ? d.amiDistributionConfiguration.targetAccountIds : [owner];
    for (const account of targets) cells.add(`${account}/${region}`);
    if (region === buildRegion) cells.add(`${owner}/${region}`);
  }
  void image;
  return cells;
}

/**
 * DistributeImage's `distributions` input as Distribution objects: each item's region, name, description,
 * targetAccountIds, amiTags and kmsKeyId (User Guide, DistributeImage inputs); "If you provide it, Image
 * Builder uses your workflow inputs and ignores the attached distribution configuration."
 */
function stepDistributions(step: StepDocument): Distribution[] | undefined {
  const raw = step.inputs.distributions;
  if (raw === undefined) return undefined;
  if (!Array.isArray(raw)) throw new Error(`Step ${step.name}: distributions must be a list`);
  return raw.map((item: unknown, i: number): Distribution => {
    if (!isRecord(item) || typeof item.region !== 'string' || item.region === '')
      throw new Error(`Step ${step.name}: distributions[${i}].region is required`);
    const strings = (v: unknown) => (Array.isArray(v) ? v.map(String) : undefined);
    return {
      region: item.region,
      amiDistributionConfiguration: {
        name: typeof item.name === 'string' ? item.name : undefined,
        description: typeof item.description === 'string' ? item.description : undefined,
        targetAccountIds: strings(item.targetAccountIds),
        amiTags: isRecord(item.amiTags) ? Object.fromEntries(Object.entries(item.amiTags).map(([k, v]) => [k, String(v)])) : undefined,
        kmsKeyId: typeof item.kmsKeyId === 'string' ? item.kmsKeyId : undefined,
      },
    };
  });
}

/** ModifyImageAttributes' `attributes` input: each item's region and launchPermission (User Guide). */
function stepAttributes(step: StepDocument): Distribution[] | undefined {
  const raw = step.inputs.attributes;
  if (!Array.isArray(raw)) return undefined;
  return raw.filter(isRecord).map((item) => ({
    region: String(item.region ?? ''),
    amiDistributionConfiguration: { launchPermission: isRecord(item.launchPermission) ? (item.launchPermission as never) : undefined },
  }));
}

/** The copies a step refers to with `distributedImages.$: $.stepOutputs.<Step>.distributedImages`. */
function referencedCopies(execution: WorkflowExecution, step: StepDocument): DistributedImage[] {
  const ref = step.inputs['distributedImages.$'];
  const match = typeof ref === 'string' ? /^\$\.stepOutputs\.([A-Za-z][A-Za-z0-9-_]*)\.distributedImages$/.exec(ref) : null;
  if (match === null) throw new Error(`Step ${step.name}: distributedImages.$ must reference $.stepOutputs.<step>.distributedImages`);
  const source = execution.steps.find((s) => s.name === match[1]);
  if (source === undefined) throw new Error(`Step ${step.name}: no step ${match[1] ?? ''} before it`);
  const outputs = source.outputs === undefined ? {} : (JSON.parse(source.outputs) as { distributedImages?: DistributedImage[] });
  return outputs.distributedImages ?? [];
}

/** Simulated durations of the steps (the copies themselves take COPY_MS, handed in by the build). */
const STEP_MS = { modify: 10_000, configure: 60_000 };

/**
 * Run a build's DISTRIBUTION workflow: one step after the other, each PENDING → RUNNING → COMPLETED or
 * FAILED; a failed step with onFailure Abort fails the workflow and the image (later steps CANCELLED), with
 * Continue the next step runs. The image stays DISTRIBUTING throughout; when the last step completes it
 * becomes AVAILABLE (the workflow's ApplyImageConfigurations is the integration).
 */
function runDistributionWorkflow(
  env: SandboxEnv,
  image: Image,
  workflow: WorkflowResource,
  hooks: DistributionHooks,
  copyMs: number,
): void {
  const [, , , region = '', owner = ''] = (image.arn ?? '').split(':');
  const store = workflowStore(env.state, owner, region);
  const execution: WorkflowExecution = {
    workflowExecutionId: `wf-${randomUUID()}`,
    workflowBuildVersionArn: workflow.arn,
    imageBuildVersionArn: image.arn ?? '',
    type: 'DISTRIBUTION',
    status: 'RUNNING',
    message: undefined,
    startTime: env.clock.iso(),
    endTime: undefined,
    steps: [],
  };
  execution.steps = workflow.steps.map((step) => ({
    stepExecutionId: `step-${randomUUID()}`,
    workflowExecutionId: execution.workflowExecutionId,
    workflowBuildVersionArn: workflow.arn,
    imageBuildVersionArn: image.arn ?? '',
    name: step.name,
    description: step.description,
    action: step.action,
    status: 'PENDING',
    message: undefined,
    inputs: JSON.stringify(step.inputs),
    outputs: undefined,
    startTime: undefined,
    endTime: undefined,
    onFailure: step.onFailure,
    timeoutSeconds: step.timeoutSeconds,
    waiting: false,
  }));
  store.executions.set(execution.workflowExecutionId, execution);
  for (const s of execution.steps) store.steps.set(s.stepExecutionId, s);

  const end = (status: 'COMPLETED' | 'FAILED', message?: string) => {
    execution.status = status;
    execution.message = message;
    execution.endTime = env.clock.iso();
    for (const s of execution.steps) if (s.status === 'PENDING') s.status = 'CANCELLED';
    hooks.finish(status === 'COMPLETED' ? { status: 'AVAILABLE' } : { status: 'FAILED', reason: message ?? 'the workflow failed' });
  };

  const run = (index: number): void => {
    const stepExec = execution.steps[index];
    const step = workflow.steps[index];
    if (stepExec === undefined || step === undefined) {
      end('COMPLETED');
      return;
    }
    stepExec.status = 'RUNNING';
    stepExec.startTime = env.clock.iso();
    const done = (outputs: Record<string, unknown>) => {
      stepExec.status = 'COMPLETED';
      stepExec.outputs = JSON.stringify(outputs);
      stepExec.endTime = env.clock.iso();
      run(index + 1);
    };
    const fail = (message: string, outputs?: Record<string, unknown>) => {
      stepExec.status = 'FAILED';
      stepExec.waiting = false;
      stepWaiting.delete(stepExec.stepExecutionId);
      stepExec.message = message.slice(0, 500);
      if (outputs !== undefined) stepExec.outputs = JSON.stringify(outputs);
      stepExec.endTime = env.clock.iso();
      if (step.onFailure === 'Continue') run(index + 1);
      else end('FAILED', `Workflow ${workflow.name} (${execution.workflowExecutionId}) failed at step ${step.name}: ${message}`);
    };
    // the step's own timeout (timeoutSeconds, else the action's default)
    env.clock.after(step.timeoutSeconds * 1000, () => {
      if (stepExec.status === 'RUNNING') fail(`Step timed out after ${step.timeoutSeconds} seconds.`);
    });
    try {
      switch (step.action) {
        case 'DistributeImage': {
          const own = stepDistributions(step);
          const cells = cellsOf(image, owner, region, own ?? image.distributionConfiguration?.distributions ?? []);
          const { copies, failures } = hooks.distribute(cells, own);
          env.clock.after(copyMs + 30_000, () => {
            if (stepExec.status !== 'RUNNING') return;
            if (failures.length > 0) fail(failures.join(' '), { distributedImages: copies });
            else done({ distributedImages: copies });
          });
          break;
        }
        case 'ModifyImageAttributes': {
          const copies = referencedCopies(execution, step);
          hooks.modify(copies, stepAttributes(step));
          env.clock.after(STEP_MS.modify, () => {
            if (stepExec.status === 'RUNNING') done({ modifiedImages: copies.map((c) => ({ ...c, step: 'Completed' })) });
          });
          break;
        }
        case 'ApplyImageConfigurations': {
          const copies = referencedCopies(execution, step);
          env.clock.after(STEP_MS.configure, () => {
            if (stepExec.status !== 'RUNNING') return;
            hooks.configure(copies);
            done({ configuredImages: copies.map((c) => ({ ...c, step: 'Completed' })) });
          });
          break;
        }
        case 'WaitForAction': {
          stepExec.waiting = true;
          stepWaiting.set(stepExec.stepExecutionId, {
            resume: (reason) => done({ action: 'RESUME', reason }),
            stop: (reason) => fail(reason, { action: 'STOP', reason }),
          });
          // "This step publishes an EventBridge event to your default EventBridge event bus with detail type
          // EC2 Image Builder Workflow Step Waiting" (integ-eventbridge: its detail and resources)
          env.publish({
            account: owner,
            region,
            bus: 'default',
            source: 'aws.imagebuilder',
            detailType: 'EC2 Image Builder Workflow Step Waiting',
            resources: [image.arn ?? '', workflow.arn],
            detail: {
              'workflow-execution-id': execution.workflowExecutionId,
              'workflow-step-execution-id': stepExec.stepExecutionId,
              'workflow-step-name': stepExec.name,
            },
          });
          break;
        }
        default:
          fail(`The action ${step.action} is not modelled by this sandbox.`);
      }
    } catch (error: unknown) {
      fail(error instanceof Error ? error.message : String(error));
    }
  };
  run(0);
}

/** How a waiting step continues: set while it waits, removed when it is answered or times out. */
const stepWaiting = new Map<string, { resume: (reason: string | undefined) => void; stop: (reason: string) => void }>();

interface SendWorkflowStepActionInput {
  stepExecutionId?: string;
  imageBuildVersionArn?: string;
  action?: string;
  reason?: string;
  clientToken?: string;
}

/** SendWorkflowStepAction: RESUME completes the waiting step, STOP fails it (its onFailure decides what follows). */
function sendWorkflowStepAction(ctx: Ctx, input: SendWorkflowStepActionInput) {
  validateModel(input, 'SendWorkflowStepActionRequest');
  const store = workflowStore(ctx.env.state, ctx.account, ctx.region);
  const request = JSON.stringify({ ...input, clientToken: undefined });
  if (input.clientToken !== undefined) {
    // "If you retry a request with the same client token, Image Builder returns the original response without running the operation again"
    const seen = store.actionTokens.get(input.clientToken);
    if (seen !== undefined) {
      if (seen.request !== request)
        throw new AwsError(
          'IdempotentParameterMismatchException',
          `The client token ${input.clientToken} was already used with other parameters.`,
          400,
        );
      return seen.response;
    }
  }
  const stepId = input.stepExecutionId ?? '';
  const step = store.steps.get(stepId);
  if (step === undefined) throw notFound(stepId);
  if (step.imageBuildVersionArn !== input.imageBuildVersionArn)
    throw invalidRequest(`The workflow step ${stepId} does not belong to the image ${input.imageBuildVersionArn ?? ''}.`);
  const waiter = stepWaiting.get(stepId);
  // "The workflow step must be in a waiting state to accept an action. The request fails if the step has already timed out or been actioned."
  if (!step.waiting || waiter === undefined)
    throw invalidRequest(`The workflow step ${stepId} is not waiting for an action (status ${step.status}).`);
  stepWaiting.delete(stepId);
  step.waiting = false;
  const response = { stepExecutionId: stepId, imageBuildVersionArn: step.imageBuildVersionArn, clientToken: input.clientToken };
  if (input.clientToken !== undefined) store.actionTokens.set(input.clientToken, { request, response });
  if (input.action === 'RESUME') waiter.resume(input.reason);
  else waiter.stop(input.reason ?? 'Stopped by SendWorkflowStepAction.');
  return response;
}

function stepMetadata(s: StepExecution) {
  return {
    stepExecutionId: s.stepExecutionId,
    name: s.name,
    description: s.description,
    action: s.action,
    status: s.status,
    message: s.message,
    inputs: s.inputs,
    outputs: s.outputs,
    startTime: s.startTime,
    endTime: s.endTime,
  };
}

/**
 * ListWorkflowStepExecutions: the steps of one workflow execution in document order, 25 at most per page (the
 * model's RestrictedInteger, 1–25). Its model lists no ResourceNotFoundException: an unknown execution is an
 * InvalidRequestException here (docs/aws-sources.md).
 */
function listWorkflowStepExecutions(ctx: Ctx, input: { workflowExecutionId?: string; maxResults?: number; nextToken?: string }) {
  validateModel(input, 'ListWorkflowStepExecutionsRequest');
  const execution = workflowStore(ctx.env.state, ctx.account, ctx.region).executions.get(input.workflowExecutionId ?? '');
  if (execution === undefined) throw invalidRequest(`The workflow execution ${input.workflowExecutionId ?? ''} does not exist.`);
  const { page, nextToken } = pageOf(execution.steps, input);
  return {
    requestId: ctx.requestId,
    steps: page.map(stepMetadata),
    workflowBuildVersionArn: execution.workflowBuildVersionArn,
    workflowExecutionId: execution.workflowExecutionId,
    imageBuildVersionArn: execution.imageBuildVersionArn,
    message: execution.message,
    nextToken,
  };
}

/** Pagination with Image Builder's error for a token it did not give (InvalidPaginationTokenException). */
function pageOf<T>(items: T[], input: { maxResults?: number; nextToken?: string }) {
  try {
    return paginate(items, input.maxResults, input.nextToken, { default: 25, max: 25 });
  } catch (error: unknown) {
    if (error instanceof AwsError && error.code === 'InvalidNextToken')
      throw new AwsError('InvalidPaginationTokenException', 'The pagination token is not valid.', 400);
    throw error;
  }
}

function getWorkflowStepExecution(ctx: Ctx, input: { stepExecutionId?: string }) {
  validateModel(input, 'GetWorkflowStepExecutionRequest');
  const s = workflowStore(ctx.env.state, ctx.account, ctx.region).steps.get(input.stepExecutionId ?? '');
  if (s === undefined) throw invalidRequest(`The workflow step execution ${input.stepExecutionId ?? ''} does not exist.`);
  return {
    requestId: ctx.requestId,
    ...stepMetadata(s),
    workflowBuildVersionArn: s.workflowBuildVersionArn,
    workflowExecutionId: s.workflowExecutionId,
    imageBuildVersionArn: s.imageBuildVersionArn,
    onFailure: s.onFailure,
    timeoutSeconds: s.timeoutSeconds,
  };
}

/** ListWaitingWorkflowSteps: the account's steps waiting for an action, in the region called. */
function listWaitingWorkflowSteps(ctx: Ctx, input: { maxResults?: number; nextToken?: string }) {
  validateModel(input, 'ListWaitingWorkflowStepsRequest');
  const waiting = [...workflowStore(ctx.env.state, ctx.account, ctx.region).steps.values()].filter((s) => s.waiting);
  const { page, nextToken } = pageOf(waiting, input);
  return {
    steps: page.map((s) => ({
      stepExecutionId: s.stepExecutionId,
      imageBuildVersionArn: s.imageBuildVersionArn,
      workflowExecutionId: s.workflowExecutionId,
      workflowBuildVersionArn: s.workflowBuildVersionArn,
      name: s.name,
      action: s.action,
      startTime: s.startTime,
    })),
    nextToken,
  };
}

function getWorkflowExecution(ctx: Ctx, input: { workflowExecutionId?: string }) {
  const id = input.workflowExecutionId ?? '';
  if (!EXECUTION_ID.test(id))
    throw new AwsError(
      'ValidationException',
      `1 validation error detected: Value '${id}' at 'workflowExecutionId' failed to satisfy constraint: Member must satisfy regular expression pattern: ${EXECUTION_ID.source}`,
      400,
    );
  const e = workflowStore(ctx.env.state, ctx.account, ctx.region).executions.get(id);
  if (e === undefined) throw invalidRequest(`The workflow execution ${id} does not exist.`);
  return {
    requestId: ctx.requestId,
    workflowBuildVersionArn: e.workflowBuildVersionArn,
    workflowExecutionId: e.workflowExecutionId,
    imageBuildVersionArn: e.imageBuildVersionArn,
    type: e.type,
    status: e.status,
    message: e.message,
    totalStepCount: e.steps.length,
    totalStepsSucceeded: e.steps.filter((s) => s.status === 'COMPLETED').length,
    totalStepsFailed: e.steps.filter((s) => s.status === 'FAILED').length,
    totalStepsSkipped: e.steps.filter((s) => s.status === 'SKIPPED').length,
    startTime: e.startTime,
    endTime: e.endTime,
  };
}

/** The operations of this module, merged into the imagebuilder service's handlers. */
const workflowHandlers = {
  CreateWorkflow: op(createWorkflow),
  GetWorkflow: op(getWorkflow),
  SendWorkflowStepAction: op(sendWorkflowStepAction),
  ListWorkflowStepExecutions: op(listWorkflowStepExecutions),
  GetWorkflowStepExecution: op(getWorkflowStepExecution),
  ListWaitingWorkflowSteps: op(listWaitingWorkflowSteps),
  GetWorkflowExecution: op(getWorkflowExecution),
};

export { STEP_ID, checkWorkflowConfigurations, distributionWorkflowOf, runDistributionWorkflow, workflowHandlers };
export type { DistributedImage, DistributionHooks };
