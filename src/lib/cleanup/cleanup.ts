import pLimit from 'p-limit';
import { publishReport } from '../aws/outbox.ts';
import { parseDistributionConfigurationArn } from '../core/arn.ts';
import { parseCellKey } from '../core/cells.ts';
import { AwsCallError, briefFailure, toFailure } from '../core/errors.ts';
import type { RunDeps } from '../reconcile/reconcile.ts';
import { act, recheck, recordCleanedUp, verify } from './apply.ts';
import { takeInventory } from './inventory.ts';
import { groupByCell, observeCell } from './observe.ts';
import { type AmiObservation, type CandidatePlan, type InventoryAmi, amiKey, planCleanup } from './plan.ts';
import { CLEANUP_DETAIL_TYPE, type CandidateReport, type CleanupReport, buildReport, candidateReport } from './report.ts';
import { type CleanupRequest, type CleanupScope, effectiveSettings } from './request.ts';

/** Run dependencies; `sleep` waits between usage report polls (tests pass one that does not wait). */
type CleanupDeps = RunDeps & { sleep?: (ms: number) => Promise<void> };

function inScope(ami: InventoryAmi, only: CleanupScope | undefined): boolean {
  if (only === undefined) return true;
  return (
    (only.regions?.includes(ami.region) ?? true) &&
    (only.accounts?.includes(ami.accountId) ?? true) &&
    (only.imageIds?.includes(ami.imageId) ?? true)
  );
}

/**
 * Clean up AMIs left in cells removed from a distribution configuration: inventory → observe → plan (pure,
 * guards) → for each AMI to act on, re-read what its guards depend on (today's configuration, the image,
 * its references) and act only if the decision still stands → observe again → report. Plan is the default
 * everywhere; at most `maxPerRun` AMIs are acted on per run. Throws {@link InputError} for an override
 * that would loosen a deployment guard (before any AWS call) and for an unreadable configuration;
 * everything else is in the report.
 */
async function cleanup(request: CleanupRequest, deps: CleanupDeps): Promise<CleanupReport> {
  const arn = parseDistributionConfigurationArn(request.distributionConfigurationArn);
  const settings = effectiveSettings(deps.config, request);
  const started = deps.now();
  const callsBefore = deps.clients.callCount();
  const wait = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const inventory = await takeInventory(arn, request.imageBuildArns ?? [], deps.clients);

  const observeAll = async (amis: InventoryAmi[]): Promise<Record<string, AmiObservation>> => {
    const observations: Record<string, AmiObservation> = {};
    // cells at once: as many as the client factory's global limit of calls can serve (calls are bounded there)
    const limit = pLimit(deps.clients.cellConcurrency());
    await Promise.all(
      [...groupByCell(amis)].map(([key, group]) =>
        limit(async () => {
          const { region, accountId } = parseCellKey(key);
          Object.assign(observations, await observeCell(accountId, region, group, deps.clients, settings, inventory.problems, wait));
        }),
      ),
    );
    return observations;
  };
  // only AMIs outside today's cells need observing; the rest are kept by the first guard
  const observations = await observeAll(inventory.amis.filter((a) => !a.currentCell && a.recordedImageId === a.imageId));
  const plans = planCleanup(inventory.amis, observations, settings, deps.now()).map((plan): CandidatePlan => {
    if (plan.decision.action === 'skip') return plan;
    if (!inScope(plan.ami, request.only))
      return {
        ...plan,
        decision: { action: 'skip', guard: 'not-selected', reason: 'outside the regions, accounts or AMIs the request selected' },
      };
    if (request.plan !== undefined) {
      const reviewed = request.plan.find(
        (p) => p.imageId === plan.ami.imageId && p.region === plan.ami.region && p.accountId === plan.ami.accountId,
      );
      if (reviewed === undefined)
        return { ...plan, decision: { action: 'skip', guard: 'not-in-plan', reason: 'not a candidate of the reviewed plan' } };
      if (reviewed.decision !== plan.decision.action)
        return {
          ...plan,
          decision: {
            action: 'skip',
            guard: 'changed',
            reason: `the reviewed plan said ${reviewed.decision}; now: ${plan.decision.action}`,
          },
        };
    }
    return plan;
  });

  const candidates: CandidateReport[] = [];
  let acted = 0;
  for (const plan of plans) {
    const obs = observations[amiKey(plan.ami)];
    const base = candidateReport(plan, obs);
    // the snapshots as observed, with their sizes: DeregisterImage reports the deleted ones without
    const planned = base.snapshots;
    candidates.push(base);
    if (request.mode !== 'apply' || plan.decision.action === 'skip') continue;
    if (acted >= settings.maxPerRun) {
      base.reason = `${plan.decision.reason}; not done in this run: the cap of ${settings.maxPerRun} per run (RECONCILER_CLEANUP_MAX_PER_RUN) is reached`;
      continue;
    }
    // check again at the moment of acting: today's configuration, the image, its tags, protection, references
    const again = await recheck(plan, arn, settings, deps, inventory.problems, wait);
    if (again.decision.action !== plan.decision.action) {
      base.decision = 'skip';
      base.guard = 'changed';
      base.reason = `changed since the plan: ${again.decision.reason}`;
      base.outcome = 'skipped';
      continue;
    }
    acted += 1;
    try {
      const done = await act(plan, again.sharedWith, deps.clients, deps.now());
      base.outcome = done.outcome;
      base.error = done.error;
      base.launchPermissions = again.sharedWith;
      if (done.snapshots.length > 0)
        base.snapshots = done.snapshots.map((s) => ({ ...s, sizeGiB: planned.find((x) => x.snapshotId === s.snapshotId)?.sizeGiB ?? 0 }));
    } catch (error: unknown) {
      base.outcome = 'failed';
      base.error = toFailure(new AwsCallError(plan.decision.action, plan.ami.accountId, plan.ami.region, error));
      continue;
    }
    if (plan.decision.action === 'deregister') {
      try {
        await recordCleanedUp(
          await deps.clients.forCell(arn.accountId, arn.region),
          plan.ami.buildArn,
          plan.ami,
          deps.now(),
          inventory.configuration.name,
        );
      } catch (error: unknown) {
        inventory.problems.push(
          `could not record the cleanup of ${plan.ami.imageId} on ${plan.ami.buildArn} (${briefFailure(toFailure(error))}): a reconcile of that build will report the cell as missing`,
        );
      }
    }
  }

  if (request.mode === 'apply')
    await verify(
      candidates.filter((c) => c.outcome === 'done'),
      deps.clients,
    );

  const finished = deps.now();
  const report: CleanupReport = buildReport({
    runId: deps.newRunId(),
    request,
    settings,
    inventory,
    candidates,
    snapshotPricePerGbMonth: deps.config.snapshotPricePerGbMonth,
    started,
    finished,
    awsCalls: deps.clients.callCount() - callsBefore,
  });
  if (deps.publish !== false && deps.config.eventBusName !== '') {
    const failure = await publishReport(deps.clients.home(), deps.config.eventBusName, CLEANUP_DETAIL_TYPE, report, [arn.arn], () => ({
      // keep what was acted on and why; drop the long list of kept AMIs in current cells
      candidates: report.candidates.filter((c) => c.guard !== 'current-cell'),
    }));
    if (failure !== undefined) {
      // the caller (the function's result, the command line) still gets the report: say that nobody else did
      deps.log.error('could not publish the cleanup report', { failure, bus: deps.config.eventBusName });
      report.problems.push(
        `the report could not be published on the event bus ${deps.config.eventBusName}: ${failure.code}: ${failure.message}`,
      );
    }
  }
  return report;
}

export { cleanup };
// the report is what cleanup() returns: its callers name its type from here
export type { CleanupDeps, CleanupReport, CleanupRequest };
