import { GetImageCommand, type Image } from '@aws-sdk/client-imagebuilder';
import { type ImageBuildArn, parseImageBuildArn } from '../core/arn.ts';
import type { ClientFactory } from '../aws/clients.ts';
import { type Config, modeWithin } from '../core/config.ts';
import { type DesiredImage, desiredImage } from '../core/desired.ts';
import { AwsCallError, type Failure, toFailure } from '../core/errors.ts';
import pLimit from 'p-limit';
import { publishReport, type RecheckMessage, sendRecheck } from '../aws/outbox.ts';
import { announceOutcome } from '../aws/outcomes.ts';
import { listSharedOrganizations, listedAccounts, organizationsClient, sharedOrganizationArns } from '../aws/organizations.ts';
import { cellKey, parseCellKey } from '../core/cells.ts';
import { apply } from './apply.ts';
import { observe } from './observe.ts';
import { plan } from './plan/index.ts';
import { type ShardSpec, scopeFilter, shardLabel, shardSize, splitShards } from './fan-out.ts';
import { rollForward } from './roll-forward.ts';
import { undoWritesOfRevoked } from '../revoke/revoke.ts';
import { type Decision, decide, gateScoped, sendAnswer } from '../gate/answer.ts';
import type { GateSpec } from '../gate/stage.ts';
import { REPORT_DETAIL_TYPE, type ReconcileReport, type Trigger, buildReport, finalize, hasPending } from './report.ts';

/** What to reconcile: identity only. Real state is always read again (level-triggered). */
interface ReconcileRequest {
  imageBuildVersionArn: string;
  trigger: Trigger;
  /** Overrides the configured mode. */
  mode?: 'apply' | 'plan' | undefined;
  /** 1 for the first run; rechecks count up. */
  attempt?: number | undefined;
  /** When the first run of this request started (ISO 8601); the deadline counts from it. */
  firstSeenAt?: string | undefined;
  fastLaunchRetries?: Record<string, number> | undefined;
  /** Only these cells: one shard of a build split past RECONCILER_SHARD_MAX_CELLS (from a recheck message). */
  shard?: ShardSpec | undefined;
  /**
   * A distribution gate's waiting step (docs/gate.md): only the cells of the copies made so far, rolled out
   * although the image is still DISTRIBUTING, and the step answered RESUME or STOP once they are judged.
   */
  gate?: GateSpec | undefined;
  /** Notes the trigger adds to the report (the gate: a step whose outputs could not be read). */
  notes?: string[] | undefined;
}

/** A minimal structured logger (Powertools' Logger fits). */
interface Log {
  info(message: string, ...extra: Record<string, unknown>[]): void;
  warn(message: string, ...extra: Record<string, unknown>[]): void;
  error(message: string, ...extra: Record<string, unknown>[]): void;
}

/** What every run (reconcile, cleanup) is given. */
interface RunDeps {
  config: Config;
  clients: ClientFactory;
  log: Log;
  now: () => Date;
  newRunId: () => string;
  /** Publish the report (and, for reconcile, requeue); the CLI turns this off unless asked. Default true. */
  publish?: boolean;
}

interface ReconcileDeps extends RunDeps {
  /** Called as cells are observed (the CLI's progress counter). */
  onProgress?: ((done: number, total: number) => void) | undefined;
  /**
   * Split a build of more than RECONCILER_SHARD_MAX_CELLS cells into shards and send shards 2..n to the
   * recheck queue (the Lambda functions). Default false: the whole build in this process (the CLI).
   */
  fanOut?: boolean | undefined;
}

type Loaded = { ok: true; image: Image } | { ok: false; failure: Failure };

async function loadImage(arn: ImageBuildArn, clients: ClientFactory): Promise<Loaded> {
  try {
    const cell = await clients.forCell(arn.accountId, arn.region);
    const out = await cell.imagebuilder.send(new GetImageCommand({ imageBuildVersionArn: arn.arn }));
    if (out.image === undefined)
      return {
        ok: false,
        failure: { kind: 'not-found', code: 'ResourceNotFoundException', message: `GetImage returned no image for ${arn.arn}` },
      };
    return { ok: true, image: out.image };
  } catch (error: unknown) {
    return { ok: false, failure: toFailure(new AwsCallError('GetImage', arn.accountId, arn.region, error)) };
  }
}

/** A report for a run that could not get as far as planning (image unknown, role missing, throttled). */
function earlyReport(
  arn: ImageBuildArn,
  failure: Failure,
  base: Omit<Parameters<typeof buildReport>[0], 'desired' | 'plan' | 'outcomes'>,
): ReconcileReport {
  const desired: DesiredImage = {
    arn,
    ownerAccountId: arn.accountId,
    buildRegion: arn.region,
    platform: undefined,
    type: undefined,
    status: 'UNKNOWN',
    stateReason: undefined,
    dateCreated: undefined,
    pipelineArn: undefined,
    distributionConfigurationArn: undefined,
    cells: [],
    unexpectedAmis: [],
  };
  const report = buildReport({ ...base, desired, plan: { cells: [], imageActions: [], supersededBy: undefined }, outcomes: [] });
  const retryable = failure.kind === 'throttled' || failure.kind === 'error' || failure.kind === 'unavailable';
  return { ...report, outcome: retryable ? 'pending' : 'failed', notes: [`cannot read the image: ${failure.message}`], error: failure };
}

/**
 * Reconcile one image build: GetImage → desired cells → observe → plan → apply → report → requeue.
 *
 * Level-triggered and idempotent: the request names only the image; every run reads real state again, and
 * running it twice changes nothing the second time. Never throws for a problem in AWS: every failure is in
 * the report. Throws {@link InputError} only for a request that is malformed (an ARN of the wrong shape).
 */
async function reconcile(request: ReconcileRequest, deps: ReconcileDeps, signal?: AbortSignal): Promise<ReconcileReport> {
  const arn = parseImageBuildArn(request.imageBuildVersionArn);
  const { config, clients, log } = deps;
  const startedAt = deps.now();
  const callsBefore = clients.callCount();
  const { mode, refused } = modeWithin(config.mode, request.mode);
  if (refused !== undefined) log.warn('mode raise refused', { requested: request.mode, deployment: config.mode });
  const attempt = request.attempt ?? 1;
  const firstSeenAt = request.firstSeenAt ?? startedAt.toISOString();
  const base = { runId: deps.newRunId(), trigger: request.trigger, mode, attempt, firstSeenAt, startedAt };

  const loaded = await loadImage(arn, clients);
  const fastLaunchRetries = { ...(request.fastLaunchRetries ?? {}) };
  let shard = request.shard;
  let notQueued: NotQueued[] = [];
  let report: ReconcileReport;
  if (!loaded.ok) {
    report = earlyReport(arn, loaded.failure, { ...base, finishedAt: deps.now(), awsCalls: clients.callCount() - callsBefore });
    if (shard !== undefined)
      report = { ...report, shard: { runId: shard.runId, index: shard.index, count: shard.count, totalCells: null } };
  } else {
    // the accounts of the organizations and OUs shared with, when asked for (a shard's run lists them again)
    const organizations =
      config.sharedAccounts !== 'off' && config.sharedOrganizations
        ? await listSharedOrganizations(loaded.image, organizationsClient(clients), {
            required: config.sharedAccounts === 'require',
            accountId: await clients.ownAccountId(),
          })
        : [];
    const whole: DesiredImage = {
      ...desiredImage(loaded.image, {
        fastLaunchInheritForTargets: config.fastLaunchInheritForTargets,
        sharedAccounts: config.sharedAccounts !== 'off',
        organizationAccounts: listedAccounts(organizations),
      }),
      ...(organizations.length === 0 ? {} : { organizations }),
    };
    // shared with organizations or OUs whose accounts are not listed: they get the AMIs, not their tags
    const unlisted = config.sharedAccounts !== 'off' && config.sharedOrganizations ? [] : sharedOrganizationArns(loaded.image);
    if (unlisted.length > 0)
      whole.notes = [
        ...(whole.notes ?? []),
        ...unlisted.map(
          (o) =>
            `launchPermission shares with ${o}: its accounts can launch the AMIs but get none of the amiTags, which are per account (RECONCILER_SHARED_ORGANIZATIONS=true, the sharedOrganizations param, lists them and tags them${config.sharedAccounts === 'off' ? '; RECONCILER_SHARED_ACCOUNTS is off too' : ''})`,
        ),
      ];
    const size = shardSize(whole.cells.length, config.shardMaxCells, config.shardConcurrency);
    // a gate judges its stage's cells in one run (a stage is one step's copies): never split
    if (request.gate === undefined && shard === undefined && fansOut(whole.cells.length, size, deps)) {
      const shards = splitShards(whole.cells, size).map(
        (scope, i, all): ShardSpec => ({ runId: base.runId, index: i + 1, count: all.length, ...scope }),
      );
      if (shards.length > 1) {
        shard = shards[0];
        log.info('build split into shards', {
          runId: base.runId,
          shards: shards.length,
          cells: whole.cells.length,
          maxCells: size,
        });
        // the other shards are queued before this one is worked on: a shard that cannot be queued fails the run
        notQueued = await queueShards(
          shards.slice(1),
          { imageBuildVersionArn: arn.arn, attempt, firstSeenAt, mode, fastLaunchRetries },
          deps,
        );
      }
    }
    const desired = request.gate !== undefined ? gateScoped(whole, request.gate) : shard === undefined ? whole : scoped(whole, shard);
    const observation = await observe(desired, clients, deps.onProgress);
    const thePlan = plan(desired, observation, {
      fastLaunchRetries: request.fastLaunchRetries ?? {},
      fastLaunchMaxRetries: config.fastLaunchMaxRetries,
      retryFailedImages: config.retryFailedImages,
      sharedRoleRequired: config.sharedAccounts === 'require',
      rollOut: request.gate !== undefined,
      shard:
        shard === undefined
          ? undefined
          : { imageLevel: shard.index === 1, missingElsewhere: shard.index === 1 ? missingElsewhere(whole, desired) : [] },
    });
    const outcomes = await apply(thePlan, clients, { mode, signal, imageArn: arn.arn, imageCreated: desired.dateCreated });
    // close the window between apply's last re-read and its write (see sweep.ts)
    if (mode === 'apply') outcomes.push(...(await rollForward(desired, outcomes, clients)));
    // and the window between the fence's last read of this build's revoked mark and the write (revoke.ts)
    if (mode === 'apply') outcomes.push(...(await undoWritesOfRevoked(arn.arn, outcomes, clients)));
    for (const o of outcomes) {
      if (o.action.kind === 'enable-fast-launch' && o.action.isRetry && o.status === 'applied') {
        const key = cellKey(o.action.cell.region, o.action.cell.accountId);
        fastLaunchRetries[key] = (fastLaunchRetries[key] ?? 0) + 1;
      }
    }
    report = buildReport({
      ...base,
      desired,
      plan: thePlan,
      outcomes,
      finishedAt: deps.now(),
      awsCalls: clients.callCount() - callsBefore,
    });
    if (shard !== undefined)
      report = { ...report, shard: { runId: shard.runId, index: shard.index, count: shard.count, totalCells: whole.cells.length } };
  }

  if (refused !== undefined) report = { ...report, notes: [refused, ...report.notes] };
  if (request.notes !== undefined && request.notes.length > 0) report = { ...report, notes: [...request.notes, ...report.notes] };
  if (notQueued.length > 0) {
    const which = notQueued.map((n) => shardLabel(n.shard)).join(', ');
    const why = `could not queue shard(s) ${which} of this build: ${notQueued[0]?.failure.message ?? 'unknown error'}`;
    log.error('could not queue shards', {
      runId: base.runId,
      notQueued: notQueued.map((n) => ({ shard: shardLabel(n.shard), failure: n.failure })),
    });
    // no recheck of this shard either: the trigger's retry runs the whole build again, every shard with it
    report = { ...report, notes: [...report.notes, why], next: { recheck: false, reason: why, requeueFailed: true } };
  } else if (request.gate !== undefined) {
    report = await judgeGate(report, request.gate, fastLaunchRetries, deps);
  } else {
    report = await decideNext(report, fastLaunchRetries, shard, deps);
  }
  if (deps.publish !== false && config.eventBusName !== '') {
    const failure = await publishReport(
      clients.home(),
      config.eventBusName,
      REPORT_DETAIL_TYPE,
      report,
      [arn.arn],
      [
        // first drop the per-check detail, keeping every cell's status and reasons
        () => ({ cells: report.cells.map((cell) => ({ ...cell, checks: [] })) }),
        // then the actions that went well (a first run of a large shard has one or more per cell); counts keep them
        () => ({ actions: report.actions.filter((a) => a.outcome === 'failed' || a.outcome === 'planned') }),
        // then the reasons of the cells that are done (ok, repaired); every cell keeps its status
        () => ({
          cells: report.cells.map((cell) => ({
            ...cell,
            checks: [],
            reasons: cell.status === 'ok' || cell.status === 'repaired' ? [] : cell.reasons,
          })),
        }),
      ],
    );
    if (failure !== undefined) log.error('could not publish the report', { failure, bus: config.eventBusName });
    // the build's outcome is announced when it changes (failed, recovered), not at every report
    const announced = await announceOutcome(clients, { table: config.idempotencyTable, busName: config.eventBusName }, report, deps.now());
    if (announced.failure !== undefined)
      log.error('could not announce the outcome change', { failure: announced.failure, table: config.idempotencyTable });
    else if (announced.change !== undefined) log.info('outcome change announced', { change: announced.change, image: arn.arn });
  }
  return { ...report, awsCalls: clients.callCount() - callsBefore };
}

/**
 * A gate's stage: STOP at once when a cell failed, else recheck while cells are pending (the recheck carries
 * the gate), else RESUME; a chain that gives up (attempts, deadline) stops with the cells' reasons.
 */
async function judgeGate(
  report: ReconcileReport,
  gate: GateSpec,
  fastLaunchRetries: Record<string, number>,
  deps: ReconcileDeps,
): Promise<ReconcileReport> {
  const first = decide(report, false);
  let judged = report;
  let decision = first;
  if (first.action === 'wait') {
    judged = await decideNext(report, fastLaunchRetries, undefined, deps, gate);
    if (judged.next.recheck) return { ...judged, gate: { ...gateBase(report, gate), answer: null, reason: first.reason } };
    // not requeued: gave up (attempts, deadline), or the recheck could not be queued (then the trigger retries)
    if (judged.next.requeueFailed === true)
      return { ...judged, gate: { ...gateBase(report, gate), answer: null, reason: judged.next.reason } };
    decision = decide(judged, true);
  }
  if (!isAnswer(decision)) return { ...judged, gate: { ...gateBase(report, gate), answer: null, reason: decision.reason } };
  if (deps.publish === false) {
    return { ...judged, gate: { ...gateBase(report, gate), answer: null, reason: `would answer ${decision.action}: ${decision.reason}` } };
  }
  const answered = await sendAnswer(judged, gate, decision, deps.clients);
  if (answered.error !== undefined) deps.log.error('could not answer the gate', { failure: answered.error, step: gate.stepExecutionId });
  const next = judged.next.recheck
    ? judged.next
    : { recheck: false as const, reason: `gate answered ${decision.action}: ${decision.reason}` };
  return { ...judged, next: answered.error === undefined ? next : judged.next, gate: answered };
}

function isAnswer(decision: Decision): decision is { action: 'RESUME' | 'STOP'; reason: string } {
  return decision.action === 'RESUME' || decision.action === 'STOP';
}

function gateBase(report: ReconcileReport, gate: GateSpec) {
  return {
    stepExecutionId: gate.stepExecutionId,
    stepName: gate.stepName,
    workflowExecutionId: gate.workflowExecutionId,
    cells: report.cells.length,
  };
}

/** Whether a build of this many cells is split (into shards of `size`): where shards can be queued (Lambda). */
function fansOut(cells: number, size: number, deps: ReconcileDeps): boolean {
  return deps.fanOut === true && deps.publish !== false && deps.config.recheckQueueUrl !== '' && cells > size;
}

/** The build as one shard sees it: its cells only; the image-level notes only in shard 1. */
function scoped(whole: DesiredImage, shard: ShardSpec): DesiredImage {
  const keep = scopeFilter(shard);
  const first = shard.index === 1;
  return {
    ...whole,
    cells: whole.cells.filter(keep),
    unexpectedAmis: first ? whole.unexpectedAmis : [],
    containerRegions: first ? whole.containerRegions : [],
    organizations: first ? whole.organizations : undefined,
    notes: first ? whole.notes : undefined,
  };
}

/** The other shards' cells that Image Builder recorded no AMI for (what a RetryImage in shard 1 is for). */
function missingElsewhere(whole: DesiredImage, desired: DesiredImage): string[] {
  const own = new Set(desired.cells.map((cell) => cell.key));
  // a shared cell holds no copy of its own (no recorded AMI by design): it is never a missing one
  return whole.cells
    .filter((cell) => !own.has(cell.key) && cell.origin !== 'shared' && cell.recorded === undefined)
    .map((cell) => cell.key);
}

interface NotQueued {
  shard: ShardSpec;
  failure: Failure;
}

/** Shards sent at once, at most (each a SendMessage; the SDK retries a throttled one). */
const SHARD_SENDS = 10;

/**
 * Send each shard as a recheck message without delay, its Fast Launch retry counts with it. Returns the
 * shards that could not be sent, with why; never throws.
 */
async function queueShards(shards: ShardSpec[], message: Omit<RecheckMessage, 'shard'>, deps: ReconcileDeps): Promise<NotQueued[]> {
  const limit = pLimit(SHARD_SENDS);
  const results = await Promise.all(
    shards.map((shard) =>
      limit(async (): Promise<NotQueued | undefined> => {
        const keep = scopeFilter(shard);
        const retries = Object.fromEntries(
          Object.entries(message.fastLaunchRetries).filter(([key]) => {
            const { region, accountId } = parseCellKey(key);
            return keep({ region, accountId });
          }),
        );
        try {
          await sendRecheck(deps.clients.home(), deps.config.recheckQueueUrl, { ...message, fastLaunchRetries: retries, shard }, 0);
          return undefined;
        } catch (error: unknown) {
          return { shard, failure: toFailure(error) };
        }
      }),
    ),
  );
  return results.filter((r): r is NotQueued => r !== undefined);
}

/** Requeue a pending run with a delayed message, or end it with a final report. */
async function decideNext(
  report: ReconcileReport,
  fastLaunchRetries: Record<string, number>,
  shard: ShardSpec | undefined,
  deps: ReconcileDeps,
  gate?: GateSpec,
): Promise<ReconcileReport> {
  const { config } = deps;
  // one account failing for good must not stop the rechecks that the other, pending cells need
  if (!hasPending(report)) return report;
  if (report.mode === 'plan') return { ...report, next: { recheck: false, reason: 'plan mode does not recheck' } };
  if (report.attempt >= config.maxAttempts)
    return finalize(report, `still pending after ${report.attempt} attempt(s) (RECONCILER_MAX_ATTEMPTS)`);
  const deadline = Date.parse(report.firstSeenAt) + config.deadlineMinutes * 60_000;
  if (deps.now().getTime() >= deadline)
    return finalize(report, `still pending ${config.deadlineMinutes} minute(s) after the first run (RECONCILER_DEADLINE_MINUTES)`);
  if (deps.publish === false || config.recheckQueueUrl === '') {
    return { ...report, next: { recheck: false, reason: 'no recheck queue configured; run again later' } };
  }
  try {
    await sendRecheck(
      deps.clients.home(),
      config.recheckQueueUrl,
      // a shard rechecks its own cells only
      {
        imageBuildVersionArn: report.image.arn,
        attempt: report.attempt + 1,
        firstSeenAt: report.firstSeenAt,
        mode: report.mode,
        fastLaunchRetries,
        ...(shard === undefined ? {} : { shard }),
        ...(gate === undefined ? {} : { gate }),
      },
      config.recheckDelaySeconds,
    );
    return { ...report, next: { recheck: true, attempt: report.attempt + 1, delaySeconds: config.recheckDelaySeconds } };
  } catch (error: unknown) {
    const failure = toFailure(error);
    deps.log.error('could not queue the recheck', { failure });
    return { ...report, next: { recheck: false, reason: `could not queue the recheck: ${failure.message}`, requeueFailed: true } };
  }
}

export { reconcile };
export type { Log, ReconcileDeps, ReconcileRequest, RunDeps };
