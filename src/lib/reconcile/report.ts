import type { DesiredImage } from '../core/desired.ts';
import type { Failure } from '../core/errors.ts';
import {
  type ActionKind,
  type ActionOutcome,
  type ActionOutcomeStatus,
  type CellOrigin,
  type CellPlan,
  type CellStatus,
  type Check,
  type Plan,
  ROLL_FORWARD_UNCHECKED,
} from './types.ts';

/** Event detail-type of the reconcile report on EventBridge. */
const REPORT_DETAIL_TYPE = 'Image Builder Reconcile Report';
/** Event source of every event the reconciler publishes. */
const EVENT_SOURCE = 'imagebuilder-reconciler';

type Trigger = 'eventbridge' | 'sqs' | 'manual' | 'cli' | 'schedule';

interface CellReport {
  region: string;
  accountId: string;
  /**
   * target, owner, build (the build region's AMI), referenced (named only by a setting), or shared (receives
   * a launch permission, no copy: its checks are the shared AMIs' visibility and amiTags in its own tag scope).
   */
  origin: CellOrigin;
  imageId: string | null;
  status: CellStatus;
  /** Why the cell has its status: the checks that were not ok, in short. */
  reasons: string[];
  checks: Check[];
  /**
   * Only on a `failed` cell that also waits on AWS (a pending check, Fast Launch `enabling`, an `aws:ec2:image`
   * put SSM has not confirmed): its failure is final for this run, but a recheck still settles the rest.
   */
  waiting?: true;
}

interface ActionReport {
  id: string;
  kind: ActionKind;
  region: string;
  accountId: string;
  target: string;
  reason: string;
  outcome: ActionOutcomeStatus;
  detail: string | null;
  error: Failure | null;
}

type Outcome = 'converged' | 'repaired' | 'drift' | 'pending' | 'failed';

/** One reconcile run, as published on EventBridge, logged and printed by the CLI (schema in the README). */
interface ReconcileReport {
  schemaVersion: 1;
  kind: 'reconcile';
  runId: string;
  trigger: Trigger;
  mode: 'apply' | 'plan';
  image: {
    arn: string;
    name: string;
    version: string;
    buildNumber: number;
    platform: string | null;
    status: string;
    stateReason: string | null;
    ownerAccountId: string;
    region: string;
    pipelineArn: string | null;
    distributionConfigurationArn: string | null;
    supersededBy: string | null;
    /** Only when the build is revoked: the mark (when and why). Nothing is repaired or pointed at it. */
    revoked?: string;
  };
  outcome: Outcome;
  attempt: number;
  firstSeenAt: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  awsCalls: number;
  counts: {
    cells: Record<CellStatus, number> & { total: number };
    actions: Record<ActionOutcomeStatus, number> & { total: number };
  };
  cells: CellReport[];
  actions: ActionReport[];
  /** Image-level notes (Image Builder recorded AMIs no cell accounts for, …). */
  notes: string[];
  /**
   * Only with RECONCILER_SHARED_ORGANIZATIONS and a distribution that shares with organizations or OUs: each
   * ARN and what listing its accounts gave (`listed` with the accounts, whose cells are of origin `shared`;
   * else why not). A `failed` listing fails the run, a `pending` one (throttled) keeps it pending.
   */
  organizations?: { arn: string; status: 'listed' | 'skipped' | 'failed' | 'pending'; accounts: string[]; reason?: string }[];
  /** Only when the image itself could not be read (GetImage failed): why. No cell was looked at. */
  error?: Failure;
  /**
   * Only when the build was split into shards (RECONCILER_SHARD_MAX_CELLS): which part of it this report
   * covers. Every shard's reports carry the same `runId` (the run that fanned out); `cells` and `counts` are
   * this shard's; `totalCells` is the build's (null when the image could not be read).
   */
  shard?: { runId: string; index: number; count: number; totalCells: number | null };
  /** What happens next: a recheck, or why there is none. */
  next: { recheck: true; attempt: number; delaySeconds: number } | { recheck: false; reason: string; requeueFailed?: boolean };
}

/**
 * The status of a cell from its checks and the outcomes of its actions:
 * failed > pending > drift (plan mode) / repaired (apply mode) > ok, skipped when nothing was checked.
 */
/**
 * Whether something in the cell waits on AWS: a pending check, or an outcome that only a later read settles
 * (Fast Launch `enabling`, an aws:ec2:image put SSM has not confirmed yet). A write skipped as superseded (a
 * newer build is already there) is done for this build, not waiting.
 */
function cellWaits(cell: CellPlan, outcomes: ActionOutcome[]): boolean {
  return (
    cell.checks.some((c) => c.result === 'pending') ||
    outcomes.some(
      (o) =>
        (o.status === 'skipped' && o.resultingState !== 'superseded' && o.resultingState !== 'revoked') ||
        o.resultingState === 'enabling' ||
        o.resultingState === 'validating',
    )
  );
}

function cellStatus(cell: CellPlan, outcomes: ActionOutcome[]): CellStatus {
  const results = cell.checks.map((c) => c.result);
  if (results.includes('failed') || outcomes.some((o) => o.status === 'failed')) return 'failed';
  if (cellWaits(cell, outcomes)) return 'pending';
  if (outcomes.some((o) => o.status === 'planned')) return 'drift';
  if (outcomes.some((o) => o.status === 'applied' || o.status === 'already-done')) return 'repaired';
  if (results.length > 0 && results.every((r) => r === 'skipped')) return 'skipped';
  return 'ok';
}

function cellReasons(cell: CellPlan, outcomes: ActionOutcome[]): string[] {
  const reasons = cell.checks
    .filter((c) => c.result !== 'ok')
    .map((c) => `${c.check}${c.subject === cell.imageId || c.subject === cell.accountId ? '' : ` ${c.subject}`}: ${c.result}: ${c.reason}`);
  for (const o of outcomes) {
    if (o.status === 'failed') reasons.push(`${o.action.kind} ${o.action.target}: failed: ${o.error?.message ?? 'unknown error'}`);
    if (o.resultingState === 'superseded' || o.resultingState === 'revoked')
      reasons.push(`${o.action.kind} ${o.action.target}: skipped: ${o.detail ?? o.resultingState}`);
    if (o.resultingState === 'enabling') reasons.push(`fast-launch: pending: enabling (requested by this run)`);
    if (o.resultingState === ROLL_FORWARD_UNCHECKED)
      reasons.push(`${o.action.kind} ${o.action.target}: pending: ${o.detail ?? 'roll forward not checked'}`);
    if (o.resultingState === 'validating') {
      reasons.push(
        `ssm-parameter ${o.action.target}: pending: ${o.detail ?? 'SSM validates aws:ec2:image values after PutParameter'}; an invalid value is never written, so only a later read confirms it`,
      );
    }
  }
  return reasons;
}

function countBy<K extends string>(keys: readonly K[], values: K[]): Record<K, number> & { total: number } {
  const counts = Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
  for (const v of values) counts[v] += 1;
  return { ...counts, total: values.length };
}

const CELL_STATUSES: readonly CellStatus[] = ['ok', 'repaired', 'drift', 'pending', 'failed', 'skipped'];
const ACTION_STATUSES: readonly ActionOutcomeStatus[] = ['planned', 'applied', 'already-done', 'failed', 'skipped'];

interface ReportInput {
  runId: string;
  trigger: Trigger;
  mode: 'apply' | 'plan';
  desired: DesiredImage;
  plan: Plan;
  outcomes: ActionOutcome[];
  attempt: number;
  firstSeenAt: string;
  startedAt: Date;
  finishedAt: Date;
  awsCalls: number;
}

/** Assemble the report of a run. Pure. `next` is filled in by the requeue decision. */
function buildReport(input: ReportInput): ReconcileReport {
  const { desired, plan: p, outcomes } = input;
  const cells: CellReport[] = p.cells.map((cell) => {
    // a roll-forward after apply (roll-forward.ts, `<action id>/roll-forward`) belongs to the cell of its action
    const ids = new Set(cell.actions.map((a) => a.id));
    const own = outcomes.filter((o) => ids.has(o.action.id) || ids.has(o.action.id.replace(/\/roll-forward$/, '')));
    const status = cellStatus(cell, own);
    return {
      region: cell.region,
      accountId: cell.accountId,
      origin: cell.origin,
      imageId: cell.imageId ?? null,
      status,
      reasons: cellReasons(cell, own),
      checks: cell.checks,
      ...(status === 'failed' && cellWaits(cell, own) ? { waiting: true as const } : {}),
    };
  });
  const actions: ActionReport[] = outcomes.map((o) => ({
    id: o.action.id,
    kind: o.action.kind,
    region: o.action.cell.region,
    accountId: o.action.cell.accountId,
    target: o.action.target,
    reason: o.action.reason,
    outcome: o.status,
    detail: o.detail ?? null,
    error: o.error ?? null,
  }));
  const cellCounts = countBy(
    CELL_STATUSES,
    cells.map((c) => c.status),
  );
  const actionCounts = countBy(
    ACTION_STATUSES,
    actions.map((a) => a.outcome),
  );
  const imageActionFailed = outcomes.some((o) => o.action.kind === 'retry-image' && o.status === 'failed');
  const listings = desired.organizations ?? [];
  const outcome: Outcome =
    cellCounts.failed > 0 || imageActionFailed || listings.some((o) => o.status === 'failed')
      ? 'failed'
      : cellCounts.pending > 0 || listings.some((o) => o.status === 'pending')
        ? 'pending'
        : cellCounts.drift > 0
          ? 'drift'
          : cellCounts.repaired > 0 || actionCounts.applied > 0
            ? 'repaired'
            : 'converged';
  const notes = desired.unexpectedAmis.map(
    (ami) => `Image Builder recorded ${ami.imageId} in ${ami.region}/${ami.accountId}, a cell the embedded configuration does not name`,
  );
  notes.push(...(desired.notes ?? []));
  if (desired.type === 'DOCKER') notes.push('a container image: it is distributed to ECR, not as AMIs; nothing to reconcile');
  // container distribution is never checked: said so per region, never a silent converged
  for (const region of desired.containerRegions ?? [])
    notes.push(`containerDistributionConfiguration of ${region}: not checked (the reconciler does not read ECR)`);
  const unchecked = outcomes.find((o) => o.resultingState === ROLL_FORWARD_UNCHECKED);
  if (unchecked !== undefined) {
    notes.push(
      `roll forward not checked: the newer builds could not be listed after this run's pointer writes (${unchecked.error?.message ?? 'unknown error'}); pending until the recheck lists them`,
    );
  }
  if (desired.revoked !== undefined)
    notes.push(
      `the build is revoked (${desired.revoked}): it is never current again; nothing is repaired or pointed at it (unrevoke lifts the mark)`,
    );
  for (const o of listings)
    if (o.status !== 'listed') notes.push(`accounts of ${o.arn} not tagged (${o.status}): ${o.reason ?? 'not listed'}`);
  return {
    schemaVersion: 1,
    kind: 'reconcile',
    runId: input.runId,
    trigger: input.trigger,
    mode: input.mode,
    image: {
      arn: desired.arn.arn,
      name: desired.arn.imageName,
      version: desired.arn.version,
      buildNumber: desired.arn.buildNumber,
      platform: desired.platform ?? null,
      status: desired.status,
      stateReason: desired.stateReason ?? null,
      ownerAccountId: desired.ownerAccountId,
      region: desired.buildRegion,
      pipelineArn: desired.pipelineArn ?? null,
      distributionConfigurationArn: desired.distributionConfigurationArn ?? null,
      supersededBy: p.supersededBy ?? null,
      ...(desired.revoked === undefined ? {} : { revoked: desired.revoked }),
    },
    outcome,
    attempt: input.attempt,
    firstSeenAt: input.firstSeenAt,
    startedAt: input.startedAt.toISOString(),
    finishedAt: input.finishedAt.toISOString(),
    durationMs: input.finishedAt.getTime() - input.startedAt.getTime(),
    awsCalls: input.awsCalls,
    counts: { cells: cellCounts, actions: actionCounts },
    cells,
    actions,
    notes,
    ...(listings.length === 0 ? {} : { organizations: listings }),
    next: { recheck: false, reason: 'nothing pending' },
  };
}

/**
 * Turn the pending cells of a run that will not be rechecked into failures, so that the final report says
 * plainly what did not converge and why.
 */
function finalize(report: ReconcileReport, why: string): ReconcileReport {
  const cells = report.cells.map((cell): CellReport => {
    if (cell.status !== 'pending' && cell.waiting !== true) return cell;
    const { waiting: _settled, ...rest } = cell;
    return { ...rest, status: 'failed', reasons: [...cell.reasons, `gave up: ${why}`] };
  });
  const counts = {
    ...report.counts,
    cells: countBy(
      CELL_STATUSES,
      cells.map((c) => c.status),
    ),
  };
  // a listing still throttled is given up like a pending cell
  const organizations = report.organizations?.map((o) =>
    o.status === 'pending' ? { ...o, status: 'failed' as const, reason: `${o.reason ?? 'not listed'}; gave up: ${why}` } : o,
  );
  const failed = counts.cells.failed > 0 || (organizations ?? []).some((o) => o.status === 'failed');
  return {
    ...report,
    cells,
    counts,
    ...(organizations === undefined ? {} : { organizations }),
    outcome: failed ? 'failed' : report.outcome,
    next: { recheck: false, reason: why },
  };
}

/**
 * Whether anything in the run waits on AWS (a recheck may settle it), even when other cells failed for good,
 * and even in a cell that failed for another reason (`waiting`).
 */
function hasPending(report: ReconcileReport): boolean {
  return report.outcome === 'pending' || report.counts.cells.pending > 0 || report.cells.some((c) => c.waiting === true);
}

export { EVENT_SOURCE, REPORT_DETAIL_TYPE, buildReport, finalize, hasPending };
export type { ActionReport, CellReport, Outcome, ReconcileReport, Trigger };
