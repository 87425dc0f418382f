import { cellKey } from '../core/cells.ts';
import type { Failure } from '../core/errors.ts';
import type { Inventory, InventoryBuild } from './inventory.ts';
import type { AmiObservation, CandidatePlan, CleanupSettings, Guard } from './plan.ts';
import type { CleanupRequest } from './request.ts';

/** Event detail-type of the cleanup report on EventBridge. */
const CLEANUP_DETAIL_TYPE = 'Image Builder Cleanup Report';

interface CandidateReport {
  imageId: string;
  region: string;
  accountId: string;
  buildArn: string;
  foundBy: 'recorded' | 'tag';
  /** What the plan decided: an action, or `skip` with the guard that kept it. */
  decision: 'deregister' | 'disable' | 'deprecate' | 'skip';
  guard: Guard | null;
  reason: string;
  /** What happened: planned (plan mode), done, failed, or skipped. */
  outcome: 'planned' | 'done' | 'failed' | 'skipped';
  error: Failure | null;
  snapshots: { snapshotId: string; sizeGiB: number; result: string }[];
  /** Launch permissions the AMI had when observed (recorded before `disable`, which removes them all). */
  launchPermissions: string[];
  /** After acting: observed again. `gone`, `disabled`, `deprecated`, or `still-present`. */
  verified: string | null;
}

/** One cleanup run (documented in the README: "Cleanup report"). */
interface CleanupReport {
  schemaVersion: 1;
  kind: 'cleanup';
  runId: string;
  trigger: CleanupRequest['trigger'];
  mode: 'plan' | 'apply';
  settings: CleanupSettings;
  /** Where the base guards came from: the deployment's settings, or settings assumed because those could not be read. */
  guardsSource: { from: 'deployment' | 'assumed'; detail: string };
  /** The local clock against AWS's (the Date header of its responses): ages are measured on AWS's. */
  clock: { localTime: string; awsTime: string; offsetMs: number | null; note: string };
  /** Apply mode: why nothing was acted on (guards not the deployment's, the local clock skewed, the lease held); else null. */
  applyRefused: string | null;
  configuration: Inventory['configuration'];
  builds: InventoryBuild[];
  candidates: CandidateReport[];
  counts: {
    amis: number;
    candidates: number;
    planned: number;
    deregistered: number;
    disabled: number;
    deprecated: number;
    skipped: number;
    failed: number;
  };
  snapshotsDeleted: number;
  gibFreed: number;
  /** Upper bound: EBS bills snapshots by changed blocks; this counts full volume sizes at the configured price. */
  estimatedMonthlySavingUsd: number;
  problems: string[];
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  awsCalls: number;
}

/** A candidate as planned, before anything is done: its decision, snapshots and launch permissions as observed. */
function candidateReport(plan: CandidatePlan, obs: AmiObservation | undefined): CandidateReport {
  const sizes = obs?.image.ok === true && obs.image.value !== null ? obs.image.value.snapshots : [];
  return {
    imageId: plan.ami.imageId,
    region: plan.ami.region,
    accountId: plan.ami.accountId,
    buildArn: plan.ami.buildArn,
    foundBy: plan.ami.foundBy,
    decision: plan.decision.action,
    guard: plan.decision.action === 'skip' ? plan.decision.guard : null,
    reason: plan.decision.reason,
    outcome: plan.decision.action === 'skip' ? 'skipped' : 'planned',
    error: null,
    snapshots: sizes.map((s) => ({ ...s, result: plan.decision.action === 'deregister' ? 'planned' : 'kept' })),
    launchPermissions: obs?.sharedWith?.ok === true ? obs.sharedWith.value : [],
    verified: null,
  };
}

interface ReportInput {
  runId: string;
  guardsSource: CleanupReport['guardsSource'];
  clock: CleanupReport['clock'];
  applyRefused: string | null;
  request: Pick<CleanupRequest, 'trigger' | 'mode'>;
  settings: CleanupSettings;
  inventory: Inventory;
  candidates: CandidateReport[];
  /** Price of a GiB-month of snapshot storage, for the saving estimate. */
  snapshotPricePerGbMonth: number;
  started: Date;
  finished: Date;
  awsCalls: number;
}

/** The report of a run: its candidates, counted, and what deleting their snapshots freed. */
function buildReport(input: ReportInput): CleanupReport {
  const { candidates, inventory, started, finished } = input;
  const removedCandidates = candidates.filter((c) => !inventory.configuration.currentCells.includes(cellKey(c.region, c.accountId)));
  const deleted = candidates.flatMap((c) => c.snapshots.filter((s) => s.result === 'success'));
  const gibFreed = deleted.reduce((sum, s) => sum + s.sizeGiB, 0);
  return {
    schemaVersion: 1,
    kind: 'cleanup',
    runId: input.runId,
    trigger: input.request.trigger,
    mode: input.request.mode,
    settings: input.settings,
    guardsSource: input.guardsSource,
    clock: input.clock,
    applyRefused: input.applyRefused,
    configuration: inventory.configuration,
    builds: inventory.builds,
    candidates,
    counts: {
      amis: candidates.length,
      candidates: removedCandidates.length,
      planned: candidates.filter((c) => c.outcome === 'planned').length,
      deregistered: candidates.filter((c) => c.outcome === 'done' && c.decision === 'deregister').length,
      disabled: candidates.filter((c) => c.outcome === 'done' && c.decision === 'disable').length,
      deprecated: candidates.filter((c) => c.outcome === 'done' && c.decision === 'deprecate').length,
      skipped: candidates.filter((c) => c.outcome === 'skipped').length,
      failed: candidates.filter((c) => c.outcome === 'failed' || c.error !== null || c.verified === 'still-present').length,
    },
    snapshotsDeleted: deleted.length,
    gibFreed,
    estimatedMonthlySavingUsd: Math.round(gibFreed * input.snapshotPricePerGbMonth * 100) / 100,
    problems: inventory.problems,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - started.getTime(),
    awsCalls: input.awsCalls,
  };
}

export { CLEANUP_DETAIL_TYPE, buildReport, candidateReport };
export type { CandidateReport, CleanupReport };
