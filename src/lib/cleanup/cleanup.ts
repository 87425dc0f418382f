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
import { FUNCTION_ENVIRONMENT, type GuardsSource } from './deployment.ts';
import { type Lease, acquireLease, releaseLease, renewLease } from './lease.ts';
import { clockRefusal, localNow } from '../core/clock.ts';

/**
 * Run dependencies. `sleep` waits between usage report polls (tests pass one that does not wait). `guards`:
 * where the deployment's settings in `config` came from (default: a function's environment); a source that
 * refuses apply makes the run plan only, saying why. `now` stamps the report; ages are measured on AWS's
 * clock (the machine's clock, src/lib/core/clock.ts, corrected by the Date headers of AWS's responses).
 */
type CleanupDeps = RunDeps & { sleep?: (ms: number) => Promise<void>; guards?: GuardsSource };

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
 * everywhere; at most `maxPerRun` AMIs are acted on per run, and only by the run holding the configuration's
 * apply lease. Ages are measured on AWS's clock; apply is refused (the run plans, saying why) when the local
 * clock differs from it by more than five minutes, when the guards are not the deployment's, or when the
 * lease is held by another run. Throws {@link InputError} for an override that would loosen a deployment
 * guard (before any call to act) and for an unreadable configuration; everything else is in the report.
 */
async function cleanup(request: CleanupRequest, deps: CleanupDeps): Promise<CleanupReport> {
  const arn = parseDistributionConfigurationArn(request.distributionConfigurationArn);
  const settings = effectiveSettings(deps.config, request);
  const guards = deps.guards ?? FUNCTION_ENVIRONMENT;
  const started = deps.now();
  const callsBefore = deps.clients.callCount();
  const wait = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const inventory = await takeInventory(arn, request.imageBuildArns ?? [], deps.clients);
  // AWS's clock, from the Date headers of the inventory's responses: every age is measured on it
  const serviceClock = deps.clients.serviceClock();
  // against the machine's clock the offset was measured on (the sandbox's, where it runs in-process)
  const awsNow = (): Date => new Date(localNow() + (serviceClock.offsetMs() ?? 0));
  const clockCheck = clockRefusal(serviceClock.offsetMs());
  const clock: CleanupReport['clock'] = {
    localTime: new Date(localNow()).toISOString(),
    awsTime: awsNow().toISOString(),
    offsetMs: serviceClock.offsetMs() ?? null,
    note:
      clockCheck === undefined
        ? "ages measured on AWS's clock (the Date header of its responses)"
        : `${clockCheck}; ages measured on AWS's clock${serviceClock.offsetMs() === undefined ? ' (unknown: the local clock was used)' : ''}`,
  };

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
  const plans = planCleanup(inventory.amis, observations, settings, awsNow()).map((plan): CandidatePlan => {
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

  // apply only with the deployment's guards, a local clock that agrees with AWS's, and the apply lease
  const runId = deps.newRunId();
  let applyRefused: string | undefined;
  let lease: Lease | undefined;
  const toAct = plans.some((p) => p.decision.action !== 'skip');
  if (request.mode === 'apply') {
    applyRefused = guards.refusal ?? clockCheck;
    if (applyRefused === undefined && toAct && deps.config.idempotencyTable !== '') {
      const taken = await acquireLease(deps.clients, deps.config.idempotencyTable, arn.arn, runId, awsNow());
      if ('refusal' in taken) applyRefused = taken.refusal;
      else lease = taken.lease;
    } else if (applyRefused === undefined && toAct) {
      inventory.problems.push(
        'no apply lease: no table is configured (RECONCILER_IDEMPOTENCY_TABLE), so the cap holds for this run only, not across concurrent runs',
      );
    }
  }

  const candidates: CandidateReport[] = [];
  let acted = 0;
  try {
    for (const plan of plans) {
      const obs = observations[amiKey(plan.ami)];
      const base = candidateReport(plan, obs);
      // the snapshots as observed, with their sizes: DeregisterImage reports the deleted ones without
      const planned = base.snapshots;
      candidates.push(base);
      if (request.mode !== 'apply' || plan.decision.action === 'skip') continue;
      if (applyRefused !== undefined) {
        base.reason = `${plan.decision.reason}; not done: apply refused: ${applyRefused}`;
        continue;
      }
      if (acted >= settings.maxPerRun) {
        base.reason = `${plan.decision.reason}; not done in this run: the cap of ${settings.maxPerRun} per run (RECONCILER_CLEANUP_MAX_PER_RUN) is reached`;
        continue;
      }
      if (lease !== undefined) {
        const lost = await renewLease(deps.clients, lease, awsNow());
        if (lost !== undefined) {
          applyRefused = lost;
          base.reason = `${plan.decision.reason}; not done: ${lost}`;
          continue;
        }
      }
      // check again at the moment of acting: today's configuration, the image, its tags, protection, references
      const again = await recheck(plan, arn, settings, { clients: deps.clients, now: awsNow }, inventory.problems, wait);
      if (again.decision.action !== plan.decision.action) {
        base.decision = 'skip';
        base.guard = 'changed';
        base.reason = `changed since the plan: ${again.decision.reason}`;
        base.outcome = 'skipped';
        continue;
      }
      acted += 1;
      const home = await deps.clients.forCell(arn.accountId, arn.region);
      const record = async (phase: 'deregistering' | 'deregistered'): Promise<void> => {
        try {
          await recordCleanedUp(home, plan.ami.buildArn, plan.ami, awsNow(), inventory.configuration.name, phase);
        } catch (error: unknown) {
          inventory.problems.push(
            `could not record the cleanup (${phase}) of ${plan.ami.imageId} on ${plan.ami.buildArn} (${briefFailure(toFailure(error))}): a reconcile of that build will report the cell as missing`,
          );
        }
      };
      // the intent first: an interruption between DeregisterImage and the record still reads as cleaned up
      if (plan.decision.action === 'deregister') await record('deregistering');
      try {
        const done = await act(plan, again, deps.clients, awsNow());
        base.outcome = done.outcome;
        base.error = done.error;
        base.launchPermissions = done.launchPermissions;
        if (done.snapshots.length > 0)
          base.snapshots = done.snapshots.map((s) => ({ ...s, sizeGiB: planned.find((x) => x.snapshotId === s.snapshotId)?.sizeGiB ?? 0 }));
      } catch (error: unknown) {
        base.outcome = 'failed';
        base.error = toFailure(new AwsCallError(plan.decision.action, plan.ami.accountId, plan.ami.region, error));
        continue;
      }
      if (plan.decision.action === 'deregister') await record('deregistered');
    }
  } finally {
    if (lease !== undefined) {
      const problem = await releaseLease(deps.clients, lease);
      if (problem !== undefined) inventory.problems.push(problem);
    }
  }

  if (request.mode === 'apply')
    await verify(
      candidates.filter((c) => c.outcome === 'done'),
      deps.clients,
    );

  const finished = deps.now();
  const report: CleanupReport = buildReport({
    runId,
    guardsSource: { from: guards.from, detail: guards.detail },
    clock,
    applyRefused: request.mode === 'apply' ? (applyRefused ?? null) : null,
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
