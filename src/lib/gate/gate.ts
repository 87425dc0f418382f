/**
 * The distribution gate (docs/gate.md): Image Builder's `EC2 Image Builder Workflow Step Waiting` event for
 * one of the gate's WaitForAction steps → the copies the workflow made so far (ListWorkflowStepExecutions)
 * → a reconcile of those cells, rolled out although the image is still DISTRIBUTING → RESUME when every
 * cell converged, STOP with the failed cells' reasons (reconcile.ts, judgeGate; the rechecks carry the gate).
 */
import { type WorkflowStepMetadata, paginateListWorkflowStepExecutions } from '@aws-sdk/client-imagebuilder';
import { EventBridgeSchema } from '@aws-lambda-powertools/parser/schemas/eventbridge';
import * as z from 'zod';
import { type ImageBuildArn, parseImageBuildArn } from '../core/arn.ts';
import { AwsCallError, InputError, toFailure } from '../core/errors.ts';
import { AccountId, Region, quote } from '../core/input.ts';
import { StepExecutionId, StepName, WorkflowExecutionId, imageBuildArn, isRecord, parseOrReject } from '../reconcile/input.ts';
import { type ReconcileDeps, reconcile } from '../reconcile/reconcile.ts';
import type { ReconcileReport } from '../reconcile/report.ts';
import { GATE_STEP_PREFIX, stageCopies } from './stage.ts';

/** The detail-type of the event a WaitForAction step publishes (User Guide, integ-eventbridge). */
const STEP_WAITING = 'EC2 Image Builder Workflow Step Waiting';

/** The most characters of a workflow ARN (the model's WorkflowBuildVersionArn is an ARN like the image's). */
const ARN_MAX = 1024;

/**
 * The waiting event, as documented: `resources` the image build ARN and the workflow ARN, `detail` the
 * workflow execution id, the step execution id and the step name. Unknown detail fields are tolerated (AWS
 * adds fields over time); the documented ones are checked.
 */
function stepWaitingSchema(partition: string) {
  return z
    .strictObject({
      ...EventBridgeSchema.shape,
      version: z.literal('0'),
      id: z.string().min(1).max(128),
      source: z.literal('aws.imagebuilder'),
      'detail-type': z.literal(STEP_WAITING),
      account: AccountId,
      region: Region,
      resources: z
        .array(z.unknown())
        .min(1, 'must hold the image build version ARN (and the workflow ARN)')
        .max(2, 'must hold the image build version ARN and the workflow ARN, nothing else')
        .pipe(
          z.tuple(
            [imageBuildArn(partition)],
            z
              .string()
              .max(ARN_MAX)
              .regex(/^arn:aws[a-z-]*:imagebuilder:[^:]+:\d{12}:workflow\//, 'must be a workflow ARN'),
          ),
        ),
      detail: z.looseObject({
        'workflow-execution-id': WorkflowExecutionId,
        'workflow-step-execution-id': StepExecutionId,
        'workflow-step-name': StepName,
      }),
    })
    .superRefine((event, ctx) => {
      const arn = Array.isArray(event.resources) ? (event.resources[0] as ImageBuildArn | undefined) : undefined;
      if (arn === undefined || typeof arn !== 'object') return;
      if (arn.region !== event.region || arn.accountId !== event.account)
        ctx.addIssue({
          code: 'custom',
          path: ['resources', 0],
          message: `the image build is in ${arn.region}/${arn.accountId}, but the event came from ${event.region}/${event.account}`,
        });
    });
}

/** What the gate function does with an event: judge a step, or ignore one that is not the gate's. */
type GateInput =
  | { kind: 'run'; eventId: string; imageBuildVersionArn: string; workflowExecutionId: string; stepExecutionId: string; stepName: string }
  | { kind: 'ignored'; reason: string };

/** Narrow the waiting event. Throws {@link InputError} naming what is wrong. */
function toGateInput(event: unknown, context: { partition: string }): GateInput {
  if (!isRecord(event))
    throw new InputError(
      `the event must be a JSON object, got ${event === null ? 'null' : Array.isArray(event) ? 'an array' : `a ${typeof event}`}`,
    );
  if (event.source !== 'aws.imagebuilder' || event['detail-type'] !== STEP_WAITING)
    throw new InputError(
      `unsupported event: source ${quote(event.source, 60)}, detail-type ${quote(event['detail-type'], 80)}; expected aws.imagebuilder "${STEP_WAITING}"`,
    );
  const parsed = parseOrReject(event, stepWaitingSchema(context.partition), 'malformed Workflow Step Waiting event');
  const stepName = parsed.detail['workflow-step-name'];
  // the rule matches only the gate's steps; a person's approval step of another workflow is never answered
  if (!stepName.startsWith(GATE_STEP_PREFIX))
    return { kind: 'ignored', reason: `step ${stepName} is not a gate step (${GATE_STEP_PREFIX}<n>): it is left for whoever waits on it` };
  return {
    kind: 'run',
    eventId: parsed.id,
    imageBuildVersionArn: parsed.resources[0].arn,
    workflowExecutionId: parsed.detail['workflow-execution-id'],
    stepExecutionId: parsed.detail['workflow-step-execution-id'],
    stepName,
  };
}

/**
 * Failures that refuse the event for good (an execution or image that does not exist, a malformed id): the
 * event is rejected. Every other failure (throttling, a denied call, an outage) fails the invocation, so
 * Lambda retries it and then sends it to the dead-letter queue, whose alarm fires.
 */
const REFUSALS = new Set(['not-found', 'invalid', 'input']);

/** The steps of a workflow execution, in the image's account and region. Throws {@link AwsCallError}. */
async function listSteps(arn: ImageBuildArn, workflowExecutionId: string, deps: ReconcileDeps): Promise<WorkflowStepMetadata[]> {
  try {
    const cell = await deps.clients.forCell(arn.accountId, arn.region);
    const steps: WorkflowStepMetadata[] = [];
    for await (const page of paginateListWorkflowStepExecutions({ client: cell.imagebuilder }, { workflowExecutionId })) {
      if (page.imageBuildVersionArn !== undefined && page.imageBuildVersionArn !== arn.arn)
        throw new InputError(`workflow execution ${workflowExecutionId} belongs to ${page.imageBuildVersionArn}, not to ${arn.arn}`);
      steps.push(...(page.steps ?? []));
    }
    return steps;
  } catch (error: unknown) {
    if (error instanceof InputError) throw error;
    const wrapped = new AwsCallError('ListWorkflowStepExecutions', arn.accountId, arn.region, error);
    // an execution or image that does not exist will not appear on a retry: refuse it
    if (REFUSALS.has(toFailure(wrapped).kind))
      throw new InputError(`cannot read the steps of workflow execution ${workflowExecutionId}: ${wrapped.message}`, { cause: wrapped });
    throw wrapped;
  }
}

/**
 * Judge a waiting gate step: read the copies made so far, reconcile their cells, answer (now, or from a
 * recheck). Throws {@link AwsCallError} when the steps cannot be read (the event is retried; past its
 * retries the step's own timeout fails the build), and {@link InputError} for a step that is not a gate's.
 */
async function runGate(input: Extract<GateInput, { kind: 'run' }>, deps: ReconcileDeps): Promise<ReconcileReport> {
  const arn = parseImageBuildArn(input.imageBuildVersionArn);
  const steps = await listSteps(arn, input.workflowExecutionId, deps);
  const stage = stageCopies(steps, input.stepExecutionId);
  if (!stage.ok) throw new InputError(`cannot judge step ${input.stepName}: ${stage.reason}`);
  return reconcile(
    {
      imageBuildVersionArn: arn.arn,
      trigger: 'eventbridge',
      notes: stage.notes,
      gate: {
        stepExecutionId: input.stepExecutionId,
        workflowExecutionId: input.workflowExecutionId,
        stepName: input.stepName,
        copies: stage.copies,
      },
    },
    deps,
  );
}

export { STEP_WAITING, runGate, toGateInput };
export type { GateInput };
