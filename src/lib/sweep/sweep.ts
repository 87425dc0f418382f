/**
 * The drift sweep: for every image pipeline of the reconciler's account and region (or the ones named),
 * reconcile the latest AVAILABLE build. It makes up for events that were dropped or never sent, and repairs
 * what changed later (a tag deleted, a launch template default changed by hand): the reconcile is
 * level-triggered, so a sweep of a converged build changes nothing.
 */
import { type ImageSummary, paginateListImagePipelineImages, paginateListImagePipelines } from '@aws-sdk/client-imagebuilder';
import { parseImagePipelineArn } from '../core/arn.ts';
import { currentBuild, goodBuildsNewestFirst } from '../core/builds.ts';
import { AwsCallError, type Failure, toFailure } from '../core/errors.ts';
import type { ClientFactory } from '../aws/clients.ts';
import { modeWithin } from '../core/config.ts';
import { type ReconcileDeps, reconcile } from '../reconcile/reconcile.ts';
import type { Outcome, ReconcileReport, Trigger } from '../reconcile/report.ts';

interface SweepRequest {
  /** Only these pipelines (ARNs); default: every pipeline of the own account in the reconciler's region. */
  pipelineArns?: string[] | undefined;
  /** Overrides the configured mode. */
  mode?: 'apply' | 'plan' | undefined;
  trigger: Trigger;
}

interface SweepEntry {
  pipelineArn: string;
  /** The latest AVAILABLE build, or null when the pipeline has none (or could not be listed). */
  imageBuildVersionArn: string | null;
  /** The reconcile's outcome; `none` when there was nothing to reconcile. */
  outcome: Outcome | 'none';
  /** Why there was nothing to reconcile, or what went wrong listing the pipeline's builds. */
  note: string | null;
  error: Failure | null;
}

interface SweepReport {
  kind: 'sweep';
  mode: 'apply' | 'plan';
  trigger: Trigger;
  pipelines: SweepEntry[];
  counts: Record<Outcome | 'none', number> & { pipelines: number; awsCalls: number };
  /** The reconcile reports, in pipeline order (each also published like any reconcile report). */
  reports: ReconcileReport[];
}

/**
 * The latest AVAILABLE build of a pipeline that is not revoked, or undefined: the current build (`currentBuild`,
 * core/builds.ts: the last in build order, Image Builder's dateCreated, then version and build number), so a
 * pipeline pointed back at a lower recipe version has its newest build swept, not the highest version, and a
 * revoked build is never swept again.
 */
function latestAvailable(summaries: ImageSummary[]): string | undefined {
  return currentBuild(summaries);
}

async function pipelinesOf(clients: ClientFactory, region: string): Promise<string[]> {
  const own = await clients.ownAccountId();
  const cell = await clients.forCell(own, region);
  const arns: string[] = [];
  try {
    for await (const page of paginateListImagePipelines({ client: cell.imagebuilder }, {})) {
      for (const pipeline of page.imagePipelineList ?? []) if (pipeline.arn !== undefined) arns.push(pipeline.arn);
    }
  } catch (error: unknown) {
    throw new AwsCallError('ListImagePipelines', own, region, error);
  }
  return arns.sort();
}

/** The latest AVAILABLE build of a pipeline that is not revoked, or undefined when it has none. */
async function latestBuildOf(clients: ClientFactory, pipelineArn: string): Promise<string | undefined> {
  return latestAvailable(await pipelineBuilds(clients, pipelineArn));
}

/** The last `count` AVAILABLE builds of a pipeline that are not revoked, newest first (the report page's side by side). */
async function latestBuildsOf(clients: ClientFactory, pipelineArn: string, count: number): Promise<string[]> {
  return goodBuildsNewestFirst(await pipelineBuilds(clients, pipelineArn))
    .slice(0, count)
    .map((b) => b.arn);
}

/** Every build of a pipeline, as Image Builder lists them. */
async function pipelineBuilds(clients: ClientFactory, pipelineArn: string): Promise<ImageSummary[]> {
  const pipeline = parseImagePipelineArn(pipelineArn);
  const cell = await clients.forCell(pipeline.accountId, pipeline.region);
  const summaries: ImageSummary[] = [];
  try {
    for await (const page of paginateListImagePipelineImages({ client: cell.imagebuilder }, { imagePipelineArn: pipeline.arn }))
      summaries.push(...(page.imageSummaryList ?? []));
  } catch (error: unknown) {
    throw new AwsCallError('ListImagePipelineImages', pipeline.accountId, pipeline.region, error);
  }
  return summaries;
}

/**
 * Sweep: reconcile the latest AVAILABLE build of each pipeline, one pipeline after the other (each reconcile
 * already works on its cells in parallel). A pipeline whose builds cannot be listed is recorded and the others
 * go on. Throws {@link InputError} for a malformed pipeline ARN, and an {@link AwsCallError} when the
 * pipelines themselves cannot be listed.
 */
async function sweep(request: SweepRequest, deps: ReconcileDeps): Promise<SweepReport> {
  const named = request.pipelineArns?.filter((arn) => arn.trim() !== '');
  for (const arn of named ?? []) parseImagePipelineArn(arn);
  const callsBefore = deps.clients.callCount();
  const pipelines =
    named !== undefined && named.length > 0 ? named.map((arn) => arn.trim()) : await pipelinesOf(deps.clients, deps.config.region);
  const { mode } = modeWithin(deps.config.mode, request.mode);
  const entries: SweepEntry[] = [];
  const reports: ReconcileReport[] = [];
  for (const pipelineArn of pipelines) {
    let latest: string | undefined;
    try {
      latest = await latestBuildOf(deps.clients, pipelineArn);
    } catch (error: unknown) {
      const failure = toFailure(error);
      entries.push({
        pipelineArn,
        imageBuildVersionArn: null,
        outcome: 'failed',
        note: `cannot list its builds: ${failure.message}`,
        error: failure,
      });
      continue;
    }
    if (latest === undefined) {
      entries.push({ pipelineArn, imageBuildVersionArn: null, outcome: 'none', note: 'no AVAILABLE build', error: null });
      continue;
    }
    const report = await reconcile({ imageBuildVersionArn: latest, trigger: request.trigger, mode }, deps);
    reports.push(report);
    entries.push({ pipelineArn, imageBuildVersionArn: latest, outcome: report.outcome, note: null, error: report.error ?? null });
  }
  const counts = {
    converged: 0,
    repaired: 0,
    drift: 0,
    pending: 0,
    failed: 0,
    none: 0,
    pipelines: entries.length,
    awsCalls: deps.clients.callCount() - callsBefore,
  };
  for (const entry of entries) counts[entry.outcome] += 1;
  return { kind: 'sweep', mode, trigger: request.trigger, pipelines: entries, counts, reports };
}

export { latestAvailable, latestBuildOf, latestBuildsOf, sweep };
export type { SweepEntry, SweepReport, SweepRequest };
