/**
 * `lint` of a pipeline's distribution workflow (docs/gate.md): is the build gated, and would the gate hold? A
 * pipeline with no distribution workflow is released before the reconciler checks it; a stage whose copies no
 * gate step follows is released unjudged; a gate step with `onFailure: Continue` lets a STOP through (the build
 * would continue: the gate fails open); a gate step that waits no longer than the reconciler's deadline times
 * out before the gate can stop it with its cells' reasons. Pure: no I/O.
 */
import { parse } from 'yaml';
import { GATE_STEP_PREFIX } from '../gate/stage.ts';
import type { Finding } from './lint.ts';

interface WorkflowLintOptions {
  /** RECONCILER_DEADLINE_MINUTES: a gate step must wait longer. */
  deadlineMinutes: number;
}

/** WaitForAction's default timeout (User Guide, wfdoc-step-actions: "Default Timeout: 3 days"). */
const WAIT_DEFAULT_SECONDS = 3 * 24 * 3600;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Findings of a pipeline that has no distribution workflow, or no execution role for it. */
function lintPipelineWorkflows(pipeline: { workflows?: { workflowArn?: string }[]; executionRole?: string }): Finding[] {
  const distribution = (pipeline.workflows ?? []).filter((w) => /:workflow\/distribution\//.test(w.workflowArn ?? ''));
  if (distribution.length === 0)
    return [
      {
        severity: 'warning',
        rule: 'ungated-pipeline',
        path: 'workflows',
        message: 'the pipeline has no distribution workflow: a build becomes AVAILABLE before the reconciler has checked a single cell',
        fix: 'attach the distribution gate: imagebuilder-reconciler gate install --pipeline <arn> --execution-role <arn>',
      },
    ];
  if (pipeline.executionRole === undefined || pipeline.executionRole === '')
    return [
      {
        severity: 'error',
        rule: 'workflow-without-execution-role',
        path: 'executionRole',
        message: 'the pipeline runs a distribution workflow but names no execution role for Image Builder to run it with',
        fix: 'set the pipeline executionRole (gate install --execution-role)',
      },
    ];
  return [];
}

/** Findings of a distribution workflow document (YAML). */
function lintGateWorkflow(data: string, options: WorkflowLintOptions): Finding[] {
  let doc: unknown;
  try {
    doc = parse(data);
  } catch (error: unknown) {
    return [
      {
        severity: 'error',
        rule: 'workflow-not-yaml',
        path: '',
        message: `the workflow document is not YAML: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`,
        fix: 'print a valid one with imagebuilder-reconciler gate print',
      },
    ];
  }
  const steps = isRecord(doc) && Array.isArray(doc.steps) ? doc.steps.filter(isRecord) : [];
  const findings: Finding[] = [];
  const gates = steps.filter((s) => s.action === 'WaitForAction' && String(s.name ?? '').startsWith(GATE_STEP_PREFIX));
  if (gates.length === 0) {
    findings.push({
      severity: 'warning',
      rule: 'no-gate-step',
      path: 'steps',
      message: `no WaitForAction step named ${GATE_STEP_PREFIX}<n>: the reconciler judges nothing before the build is released`,
      fix: 'use the gate document: imagebuilder-reconciler gate print',
    });
    return findings;
  }
  let ungated: string | undefined;
  for (const [i, step] of steps.entries()) {
    const path = `steps[${i}]`;
    if (step.action === 'DistributeImage') {
      if (ungated !== undefined)
        findings.push({
          severity: 'warning',
          rule: 'ungated-stage',
          path,
          message: `step ${ungated} distributes, and no ${GATE_STEP_PREFIX} step judges its copies before ${String(step.name)} distributes more`,
          fix: `add a WaitForAction step named ${GATE_STEP_PREFIX}<n> after each stage`,
        });
      ungated = String(step.name ?? path);
    }
    if (!gates.includes(step)) continue;
    ungated = undefined;
    if (step.onFailure === 'Continue')
      findings.push({
        severity: 'error',
        rule: 'gate-fails-open',
        path: `${path}.onFailure`,
        message: `${String(step.name)} continues when it fails: a STOP from the reconciler, or the step's timeout, would not stop the build`,
        fix: 'onFailure: Abort',
      });
    const timeout = typeof step.timeoutSeconds === 'number' ? step.timeoutSeconds : WAIT_DEFAULT_SECONDS;
    if (timeout <= options.deadlineMinutes * 60)
      findings.push({
        severity: 'warning',
        rule: 'gate-timeout-within-deadline',
        path: `${path}.timeoutSeconds`,
        message: `${String(step.name)} waits ${timeout} s, no longer than the reconciler's deadline (${options.deadlineMinutes} minutes): a stage that does not converge is stopped by the timeout, without its cells' reasons`,
        fix: `timeoutSeconds above ${options.deadlineMinutes * 60} (gate print --timeout-minutes)`,
      });
  }
  if (ungated !== undefined)
    findings.push({
      severity: 'warning',
      rule: 'ungated-stage',
      path: 'steps',
      message: `step ${ungated} distributes after the last ${GATE_STEP_PREFIX} step: its copies are released unjudged`,
      fix: `end the workflow with a ${GATE_STEP_PREFIX}<n> step`,
    });
  return findings;
}

export { lintGateWorkflow, lintPipelineWorkflows };
export type { WorkflowLintOptions };
