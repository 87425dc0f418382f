/** The distribution gate's pure parts (docs/gate.md): the document, the stage's copies, the judgement. */
import type { Distribution, WorkflowStepMetadata } from '@aws-sdk/client-imagebuilder';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { decide, gateScoped } from '../../src/lib/gate/answer.ts';
import { stageCopies } from '../../src/lib/gate/stage.ts';
import { gateDocument, parseStage } from '../../src/lib/gate/workflow.ts';
import { lintGateWorkflow, lintPipelineWorkflows } from '../../src/lib/preflight/lint-workflow.ts';
import type { DesiredImage } from '../../src/lib/core/desired.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';

const OWNER = '111111111111';
const A = '222222222222';
const B = '333333333333';

const DISTRIBUTIONS: Distribution[] = [
  {
    region: 'us-east-1',
    amiDistributionConfiguration: {
      name: 'golden {{imagebuilder:buildDate}}',
      targetAccountIds: [OWNER, A],
      amiTags: { Team: 'platform' },
    },
  },
  { region: 'eu-west-1', amiDistributionConfiguration: { targetAccountIds: [A, B], kmsKeyId: 'alias/golden' } },
];

interface Step {
  name: string;
  action: string;
  inputs?: { distributions?: Record<string, unknown>[] };
  timeoutSeconds?: number;
}

function stepsOf(yaml: string): Step[] {
  return (parse(yaml) as { steps: Step[] }).steps;
}

describe('the gate document', () => {
  it('is one stage over the attached configuration without stages', () => {
    const doc = gateDocument({ stages: [], distributions: undefined, timeoutSeconds: 18_000 });
    expect(doc).toMatch(/^schemaVersion: 1\.0$/m);
    const steps = stepsOf(doc);
    expect(steps.map((s) => `${s.name}:${s.action}`)).toStrictEqual([
      'DistributeStage1:DistributeImage',
      'ShareStage1:ModifyImageAttributes',
      'ConfigureStage1:ApplyImageConfigurations',
      'ReconcilerGate1:WaitForAction',
    ]);
    expect(steps[0]?.inputs).toBeUndefined();
    expect(steps[3]?.timeoutSeconds).toBe(18_000);
  });

  it("repeats each stage's settings, and puts what no stage names in a last stage", () => {
    const steps = stepsOf(
      gateDocument({
        stages: [parseStage(`us-east-1,eu-west-1:${A}`)],
        distributions: DISTRIBUTIONS,
        ownerAccountId: OWNER,
        timeoutSeconds: 3600,
      }),
    );
    const distributes = steps.filter((s) => s.action === 'DistributeImage').map((s) => s.inputs?.distributions);
    expect(distributes).toStrictEqual([
      [
        { region: 'us-east-1', name: 'golden {{imagebuilder:buildDate}}', targetAccountIds: [OWNER, A], amiTags: { Team: 'platform' } },
        { region: 'eu-west-1', targetAccountIds: [A], kmsKeyId: 'alias/golden' },
      ],
      [{ region: 'eu-west-1', targetAccountIds: [B], kmsKeyId: 'alias/golden' }],
    ]);
    expect(steps.filter((s) => s.action === 'WaitForAction').map((s) => s.name)).toStrictEqual(['ReconcilerGate1', 'ReconcilerGate2']);
  });

  it.each([
    [[parseStage('ap-south-1')], /does not distribute to ap-south-1/],
    [[parseStage(`us-east-1:${B}`)], /not a target of the configuration/],
    [[parseStage('us-east-1'), parseStage('us-east-1')], /in an earlier stage already/],
  ])('refuses a stage the configuration cannot have (%#)', (stages, message) => {
    expect(() => gateDocument({ stages, distributions: DISTRIBUTIONS, ownerAccountId: OWNER, timeoutSeconds: 3600 })).toThrow(message);
  });

  it('refuses stages without the configuration, a timeout past 7 days, and malformed --stage values', () => {
    expect(() => gateDocument({ stages: [parseStage('us-east-1')], distributions: undefined, timeoutSeconds: 3600 })).toThrow(
      /need the distribution configuration/,
    );
    expect(() => gateDocument({ stages: [], distributions: undefined, timeoutSeconds: 604_801 })).toThrow(/604800/);
    expect(() => parseStage('us-east-1:123')).toThrow(/not an account id/);
    expect(() => parseStage('Mars')).toThrow(/not a region/);
    expect(() => parseStage(',')).toThrow(/names no region/);
  });
});

const STEP = 'step-0123abcd-0123-4567-89ab-0123456789ab';

function distributeStep(name: string, copies: unknown): WorkflowStepMetadata {
  return { name, action: 'DistributeImage', status: 'COMPLETED', outputs: JSON.stringify({ distributedImages: copies }) };
}

describe("a stage's copies", () => {
  const copy = (accountId: string, region: string, amiId: string) => ({ accountId, region, amiId, status: 'Completed' });

  it('are every copy the DistributeImage steps before the waiting one made', () => {
    const steps: WorkflowStepMetadata[] = [
      distributeStep('DistributeStage1', [copy(OWNER, 'us-east-1', 'ami-0000000000000000a')]),
      { name: 'ReconcilerGate1', action: 'WaitForAction', stepExecutionId: 'step-1' },
      distributeStep('DistributeStage2', [copy(A, 'eu-west-1', 'ami-0000000000000000b')]),
      { name: 'ReconcilerGate2', action: 'WaitForAction', stepExecutionId: STEP },
      distributeStep('DistributeStage3', [copy(B, 'eu-west-1', 'ami-0000000000000000c')]),
    ];
    expect(stageCopies(steps, STEP)).toStrictEqual({
      ok: true,
      notes: [],
      copies: [
        { accountId: OWNER, region: 'us-east-1', amiId: 'ami-0000000000000000a' },
        { accountId: A, region: 'eu-west-1', amiId: 'ami-0000000000000000b' },
      ],
    });
  });

  it('fall back to the recorded AMIs, with a note, when an output cannot be read', () => {
    const steps: WorkflowStepMetadata[] = [
      { name: 'DistributeStage1', action: 'DistributeImage', outputs: 'distributed.log' },
      { name: 'ReconcilerGate1', action: 'WaitForAction', stepExecutionId: STEP },
    ];
    const result = stageCopies(steps, STEP);
    expect(result).toMatchObject({
      ok: true,
      copies: [],
      notes: [expect.stringMatching(/outputs of step DistributeStage1 could not be read/)],
    });
    // a copy with an AMI id that is not one is unreadable too
    expect(
      stageCopies([distributeStep('D', [copy(OWNER, 'us-east-1', 'ami-x; rm')]), steps[1] as WorkflowStepMetadata], STEP),
    ).toMatchObject({ copies: [] });
  });

  it('refuse a step that is not in the execution or is no WaitForAction', () => {
    expect(stageCopies([], STEP)).toStrictEqual({ ok: false, reason: `the workflow execution has no step ${STEP}` });
    expect(stageCopies([{ name: 'D', action: 'DistributeImage', stepExecutionId: STEP }], STEP)).toMatchObject({
      ok: false,
      reason: /not a WaitForAction step/,
    });
  });
});

function report(
  cells: { status: string; reasons?: string[]; accountId?: string }[],
  extra: Partial<ReconcileReport> = {},
): ReconcileReport {
  const counts = { ok: 0, repaired: 0, pending: 0, failed: 0, drift: 0, skipped: 0 } as Record<string, number>;
  for (const c of cells) counts[c.status] = (counts[c.status] ?? 0) + 1;
  return {
    mode: 'apply',
    cells: cells.map((c, i) => ({
      region: 'us-east-1',
      accountId: c.accountId ?? String(100000000000 + i),
      origin: 'target',
      imageId: null,
      status: c.status,
      reasons: c.reasons ?? [],
      checks: [],
    })),
    counts: { cells: counts },
    outcome: 'converged',
    next: { recheck: false, reason: 'nothing pending' },
    ...extra,
  } as unknown as ReconcileReport;
}

describe('the judgement', () => {
  it('resumes when every cell converged', () => {
    expect(decide(report([{ status: 'ok' }, { status: 'repaired' }, { status: 'skipped' }]), false)).toStrictEqual({
      action: 'RESUME',
      reason: 'all 3 cell(s) converged (1 ok, 1 repaired)',
    });
  });

  it('stops at once when a cell failed, with its reasons, even while others are pending', () => {
    const judged = decide(
      report([{ status: 'pending' }, { status: 'failed', accountId: A, reasons: ['access: cannot assume the role'] }]),
      false,
    );
    expect(judged).toStrictEqual({ action: 'STOP', reason: `1 of 2 cell(s) failed: ${A}/us-east-1: access: cannot assume the role` });
  });

  it('waits while cells are pending, and stops when the chain gave up on them', () => {
    expect(decide(report([{ status: 'pending' }]), false).action).toBe('wait');
    expect(decide(report([{ status: 'pending' }], { next: { recheck: true, attempt: 2, delaySeconds: 300 } }), true).action).toBe('wait');
  });

  it('stops when there is nothing to judge, and answers nothing in plan mode', () => {
    expect(decide(report([]), false)).toMatchObject({ action: 'STOP', reason: /no distributed copy to judge/ });
    expect(decide(report([{ status: 'drift' }], { mode: 'plan' }), false).action).toBe('none');
  });

  it('keeps the reason within the 1,024 characters SendWorkflowStepAction takes', () => {
    const many = Array.from({ length: 200 }, (_, i) => ({ status: 'failed', reasons: [`launch-template lt-${i}: failed: denied`] }));
    const judged = decide(report(many), false);
    expect(judged.reason.length).toBeLessThanOrEqual(1024);
  });
});

describe('the cells a gate judges', () => {
  const cell = (accountId: string, region: string, origin: string, recorded?: string) => ({
    key: `${region}/${accountId}`,
    region,
    accountId,
    origin,
    recorded:
      recorded === undefined ? undefined : { region, accountId, imageId: recorded, name: undefined, status: undefined, reason: undefined },
    sharedImages: [],
  });
  const whole = {
    cells: [
      cell(OWNER, 'us-east-1', 'owner'),
      cell(A, 'us-east-1', 'target'),
      cell(B, 'us-east-1', 'shared'),
      cell(A, 'eu-west-1', 'target'),
      cell(B, 'eu-west-1', 'shared'),
    ],
    unexpectedAmis: [],
  } as unknown as DesiredImage;

  it('are the copies made, with their AMI, and the shared cells of regions whose every copy is made', () => {
    const scoped = gateScoped(whole, {
      stepExecutionId: STEP,
      workflowExecutionId: 'wf-0123abcd-0123-4567-89ab-0123456789ab',
      stepName: 'ReconcilerGate1',
      copies: [
        { region: 'us-east-1', accountId: OWNER, amiId: 'ami-0000000000000000a' },
        { region: 'us-east-1', accountId: A, amiId: 'ami-0000000000000000b' },
      ],
    });
    expect(scoped.cells.map((c) => c.key)).toStrictEqual([`us-east-1/${OWNER}`, `us-east-1/${A}`, `us-east-1/${B}`]);
    expect(scoped.cells[1]?.recorded?.imageId).toBe('ami-0000000000000000b');
    expect(scoped.cells[2]?.sharedImages?.map((s) => s.imageId)).toStrictEqual(['ami-0000000000000000a', 'ami-0000000000000000b']);
  });
});

describe("lint of a pipeline's distribution workflow", () => {
  const gated = gateDocument({ stages: [], distributions: undefined, timeoutSeconds: 18_000 });

  it('passes the gate document, and warns of a pipeline with no distribution workflow', () => {
    expect(lintGateWorkflow(gated, { deadlineMinutes: 240 })).toStrictEqual([]);
    expect(lintPipelineWorkflows({}).map((f) => [f.severity, f.rule])).toStrictEqual([['warning', 'ungated-pipeline']]);
    expect(
      lintPipelineWorkflows({
        workflows: [{ workflowArn: 'arn:aws:imagebuilder:us-east-1:111111111111:workflow/distribution/g/1.0.0/1' }],
      }),
    ).toMatchObject([{ severity: 'error', rule: 'workflow-without-execution-role' }]);
  });

  it('finds a gate that fails open, waits too short, or leaves a stage unjudged', () => {
    const doc = [
      'schemaVersion: 1.0',
      'steps:',
      '  - { name: DistributeStage1, action: DistributeImage }',
      '  - { name: ReconcilerGate1, action: WaitForAction, onFailure: Continue, timeoutSeconds: 600 }',
      '  - { name: DistributeStage2, action: DistributeImage }',
      '  - { name: DistributeStage3, action: DistributeImage }',
    ].join('\n');
    expect(lintGateWorkflow(doc, { deadlineMinutes: 240 }).map((f) => f.rule)).toStrictEqual([
      'gate-fails-open',
      'gate-timeout-within-deadline',
      'ungated-stage',
      'ungated-stage',
    ]);
    expect(
      lintGateWorkflow('schemaVersion: 1.0\nsteps:\n  - { name: Approve, action: WaitForAction }\n', { deadlineMinutes: 240 }).map(
        (f) => f.rule,
      ),
    ).toStrictEqual(['no-gate-step']);
    expect(lintGateWorkflow('steps: [', { deadlineMinutes: 240 }).map((f) => f.rule)).toStrictEqual(['workflow-not-yaml']);
  });
});
