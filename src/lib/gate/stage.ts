/**
 * The cells a gate judges (docs/gate.md): every copy the build's distribution workflow made before the
 * waiting step, read from the DistributeImage steps' documented `distributedImages` outputs (region,
 * accountId, amiId). Pure: no I/O.
 */
import type { WorkflowStepMetadata } from '@aws-sdk/client-imagebuilder';

/**
 * Every WaitForAction step of the gate starts with this; the EventBridge rule matches only these steps (here,
 * not in workflow.ts, so that the functions' bundles need no YAML writer).
 */
const GATE_STEP_PREFIX = 'ReconcilerGate';

/** A copy a DistributeImage step reported. */
interface StageCopy {
  region: string;
  accountId: string;
  amiId: string;
}

/** What the gate is about to judge: the step, and the copies made so far (every stage up to this one). */
interface GateSpec {
  stepExecutionId: string;
  workflowExecutionId: string;
  stepName: string;
  /** The copies made before this step; empty when they could not be read (then Image Builder's recorded AMIs count). */
  copies: StageCopy[];
}

type StageResult = { ok: true; copies: StageCopy[]; notes: string[] } | { ok: false; reason: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One DistributeImage step's copies, from its outputs (a JSON string); undefined when they cannot be read. */
function copiesOf(step: WorkflowStepMetadata): StageCopy[] | undefined {
  if (step.outputs === undefined || step.outputs === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(step.outputs);
  } catch {
    return undefined;
  }
  if (!isRecord(parsed) || !Array.isArray(parsed.distributedImages)) return undefined;
  const copies: StageCopy[] = [];
  for (const item of parsed.distributedImages) {
    if (!isRecord(item)) return undefined;
    const { region, accountId, amiId, status } = item;
    if (typeof region !== 'string' || typeof accountId !== 'string' || typeof amiId !== 'string') return undefined;
    // a copy the step reports as not completed is still judged: its cell fails or waits on its own
    if (status !== undefined && typeof status !== 'string') return undefined;
    if (!/^\d{12}$/.test(accountId) || !/^ami-[0-9a-f]{8,17}$/.test(amiId)) return undefined;
    copies.push({ region, accountId, amiId });
  }
  return copies;
}

/**
 * The copies the steps before the waiting one made. Refuses (ok false) when the waiting step is not in the
 * execution, or is not a WaitForAction step; a DistributeImage step whose outputs cannot be read leaves the
 * copies empty with a note (the gate then judges the AMIs Image Builder recorded).
 */
function stageCopies(steps: readonly WorkflowStepMetadata[], stepExecutionId: string): StageResult {
  const index = steps.findIndex((s) => s.stepExecutionId === stepExecutionId);
  if (index < 0) return { ok: false, reason: `the workflow execution has no step ${stepExecutionId}` };
  const waiting = steps[index];
  if (waiting?.action !== 'WaitForAction')
    return {
      ok: false,
      reason: `step ${waiting?.name ?? stepExecutionId} is a ${waiting?.action ?? 'step of no action'}, not a WaitForAction step`,
    };
  const notes: string[] = [];
  const byCell = new Map<string, StageCopy>();
  for (const step of steps.slice(0, index)) {
    if (step.action !== 'DistributeImage') continue;
    const copies = copiesOf(step);
    if (copies === undefined) {
      notes.push(`the outputs of step ${step.name ?? '?'} could not be read: the AMIs Image Builder recorded are judged instead`);
      return { ok: true, copies: [], notes };
    }
    for (const copy of copies) byCell.set(`${copy.accountId}/${copy.region}`, copy);
  }
  return { ok: true, copies: [...byCell.values()], notes };
}

export { GATE_STEP_PREFIX, stageCopies };
export type { GateSpec, StageCopy, StageResult };
