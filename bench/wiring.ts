/**
 * The bench through the deployed wiring: the organization's build reconciled by the Lambda bundles as
 * serverless.yml wires them (the Image State Change event to reconcile, shards and rechecks through the
 * recheck queue to recheck), on the sandbox with latency and EC2's token buckets. It reports each
 * function's invocations and the worst one: its duration and the most heap in use while it ran.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseTemplate } from '../sandbox/emulator/iam/cloudformation.ts';
import type { FaultSettings } from '../sandbox/emulator/faults.ts';
import { Wiring } from '../sandbox/harness/wiring/index.ts';
import { applyEnvironment } from '../src/lib/core/config.ts';
import type { ReconcileReport } from '../src/lib/reconcile/report.ts';
import type { Org } from './setup.ts';

interface InvocationRow {
  function: string;
  /** `i/n` when the invocation reconciled one shard. */
  shard: string | null;
  cells: number;
  attempt: number;
  durationMs: number;
  /** The most heap in use in the process while it ran, over the heap in use when it started (MiB). */
  heapMiB: number;
  error: string | null;
  /** When it ended, from the event's delivery (ms). */
  endMs: number;
}

interface WiringRow {
  cells: number;
  shardMaxCells: number;
  shards: number;
  invocations: number;
  /** From the event's delivery until nothing is left running or queued (real time). */
  wallMs: number;
  converged: boolean;
  /** Cells whose shard's last report is converged or repaired, and cells covered by more than one shard. */
  cellsConverged: number;
  duplicateCells: number;
  worst: InvocationRow | undefined;
  worstHeap: InvocationRow | undefined;
  /** The longest first run of a shard (attempt 1), and the sum of every invocation's duration (ms). */
  longestShardMs: number;
  sumMs: number;
  /** From the event's delivery until every shard's first run had ended (ms, real time). */
  firstPassMs: number;
  /** Most invocations of reconcile and recheck that ran at once, and the recheck function's reserved concurrency. */
  peakConcurrency: number;
  recheckConcurrency: number | undefined;
  /** The function's memory setting and timeout (serverless.yml's provider defaults). */
  memoryMiB: number;
  timeoutS: number;
  peakRssMiB: number;
  rows: InvocationRow[];
}

/** The recheck message an SQS invocation carried (batch size 1). */
function parseBody(event: unknown): { attempt: number; shard?: { runId: string; index: number } } | undefined {
  const records = (event as { Records?: { body?: string }[] } | undefined)?.Records;
  const body = records?.[0]?.body;
  if (body === undefined) return undefined;
  try {
    return JSON.parse(body) as { attempt: number; shard?: { runId: string; index: number } };
  } catch (error: unknown) {
    if (error instanceof SyntaxError) return undefined;
    throw error;
  }
}

/** The functions' memory setting and timeout: serverless.yml's provider defaults. */
function providerLimits(): { memoryMiB: number; timeoutS: number } {
  const doc = parseTemplate(readFileSync(SERVERLESS_YML, 'utf8')) as { provider?: { memorySize?: number; timeout?: number } };
  return { memoryMiB: Number(doc.provider?.memorySize ?? 1024), timeoutS: Number(doc.provider?.timeout ?? 6) };
}

/** serverless.yml of the project: next to bench/ (from the source) or two levels up (from dist/bench). */
const SERVERLESS_YML =
  ['../serverless.yml', '../../serverless.yml']
    .map((rel) => fileURLToPath(new URL(rel, import.meta.url)))
    .find((path) => existsSync(path)) ?? 'serverless.yml';

/** Simulated time run per tick while the deployment waits on delayed rechecks (AWS's own work goes on). */
const TICK_MS = 200;
const SIMULATED_PER_TICK_MS = 30_000;

async function measureWiring(
  org: Org,
  faults: FaultSettings,
  environment: Record<string, string>,
  params: Record<string, string>,
): Promise<WiringRow> {
  const { box } = org;
  const env = { state: box.state, clock: box.clock, faults: box.faults, url: () => box.url, publish: () => undefined };
  const wiring = new Wiring(env, {
    serverlessYml: SERVERLESS_YML,
    account: box.home.account,
    region: box.home.region,
    environment,
    params: { ...(org.org.scenario.deploymentParams ?? {}), ...params },
    applyEnvironment,
  });
  await wiring.start();
  wiring.onInvocation = (i) =>
    process.stderr.write(
      `bench:   ${i.function} (${i.trigger}) ${(i.durationMs / 1000).toFixed(1)} s${i.error === undefined ? '' : `: ${i.error}`}\n`,
    );
  const shardMaxCells = Number(environment.RECONCILER_SHARD_MAX_CELLS ?? wiring.deployment.params.shardMaxCells ?? 1000);
  box.faults.set(faults);
  box.server.requests.length = 0;
  const reportsBefore = box.reports(org.imageArn).length;

  // the heap, sampled: each invocation's peak is read from the samples of its span
  const samples: { at: number; heap: number }[] = [];
  const heapBefore = process.memoryUsage().heapUsed;
  const sampler = setInterval(() => samples.push({ at: Date.now(), heap: process.memoryUsage().heapUsed }), 10);
  const event = box.state.events.find(
    (e) =>
      e.source === 'aws.imagebuilder' &&
      e.detailType === 'EC2 Image Builder Image State Change' &&
      e.resources.includes(org.imageArn) &&
      (e.detail as { state?: { status?: string } }).state?.status === 'AVAILABLE',
  );
  if (event === undefined) throw new Error(`bench: no AVAILABLE Image State Change event for ${org.imageArn}`);
  const started = Date.now();
  wiring.deliver(event);
  // until nothing runs or waits in a queue; delayed rechecks come due as simulated time goes on
  while (wiring.busy()) {
    await new Promise((resolve) => setTimeout(resolve, TICK_MS));
    // simulated time jumps only while nothing runs: a jump during a run would pass the queue's visibility
    // timeout (1,800 s, six times the function timeout) in seconds of real time and deliver a running shard again
    if (wiring.running() === 0) box.clock.advance(SIMULATED_PER_TICK_MS);
    // the sandbox's request log is not used here: let it not grow the heap the invocations are measured by
    box.server.requests.length = 0;
  }
  await wiring.idle();
  const wallMs = Date.now() - started;
  clearInterval(sampler);
  wiring.stop();

  const reports = box.reports(org.imageArn).slice(reportsBefore);
  const byRun = new Map<string, ReconcileReport>();
  for (const r of reports) byRun.set(r.runId, r);
  const rows: InvocationRow[] = wiring.invocations
    .filter((i) => i.function === 'reconcile' || i.function === 'recheck')
    .map((i) => {
      const from = Date.parse(i.startedAt);
      const to = from + i.durationMs;
      // the heap when it started (the last sample before it), and the most while it ran
      const atStart = samples.filter((s) => s.at <= from).at(-1)?.heap ?? heapBefore;
      const peak = samples.filter((s) => s.at >= from && s.at <= to).reduce((max, s) => Math.max(max, s.heap), atStart);
      // the report the invocation published: a recheck's names the shard and attempt of its message
      const body = i.function === 'recheck' ? parseBody(i.event) : undefined;
      const report =
        body === undefined
          ? reports.find((r) => r.trigger !== 'sqs' && Date.parse(r.startedAt) >= from - 5 && Date.parse(r.finishedAt) <= to + 5)
          : reports.find(
              (r) =>
                r.trigger === 'sqs' &&
                r.attempt === body.attempt &&
                r.shard?.runId === body.shard?.runId &&
                r.shard?.index === body.shard?.index &&
                Date.parse(r.startedAt) >= from - 5,
            );
      return {
        function: i.function,
        shard: report?.shard === undefined ? null : `${report.shard.index}/${report.shard.count}`,
        cells: report?.cells.length ?? 0,
        attempt: report?.attempt ?? 0,
        durationMs: i.durationMs,
        heapMiB: Math.max(0, peak - atStart) / 1048576,
        error: i.error ?? null,
        endMs: to - started,
      };
    });
  // each shard's last report, by run id of the split (or the unsplit run)
  const last = new Map<string, ReconcileReport>();
  for (const r of reports) last.set(r.shard === undefined ? 'whole' : `${r.shard.runId}/${r.shard.index}`, r);
  const seen = new Map<string, number>();
  let cellsConverged = 0;
  for (const r of last.values()) {
    for (const c of r.cells) seen.set(`${c.region}/${c.accountId}`, (seen.get(`${c.region}/${c.accountId}`) ?? 0) + 1);
    if (r.outcome === 'converged' || r.outcome === 'repaired') cellsConverged += r.cells.length;
  }
  const shards = Math.max(1, ...reports.map((r) => r.shard?.count ?? 1));
  const firstRuns = rows.filter((r) => r.attempt === 1);
  const ends = firstRuns.map((r) => r.endMs);
  const overlap = (() => {
    const spans = wiring.invocations
      .filter((i) => i.function === 'reconcile' || i.function === 'recheck')
      .flatMap((i) => [
        { at: Date.parse(i.startedAt), d: 1 },
        { at: Date.parse(i.startedAt) + i.durationMs, d: -1 },
      ])
      .sort((a, b) => a.at - b.at || a.d - b.d);
    let now = 0;
    let peak = 0;
    for (const s of spans) {
      now += s.d;
      peak = Math.max(peak, now);
    }
    return peak;
  })();
  const worst = [...rows].sort((a, b) => b.durationMs - a.durationMs)[0];
  const worstHeap = [...rows].sort((a, b) => b.heapMiB - a.heapMiB)[0];
  return {
    cells: org.org.cells,
    shardMaxCells,
    shards,
    invocations: rows.length,
    wallMs,
    converged: cellsConverged === org.org.cells && seen.size === org.org.cells,
    cellsConverged,
    duplicateCells: [...seen.values()].filter((n) => n > 1).length,
    worst,
    worstHeap,
    longestShardMs: Math.max(0, ...firstRuns.map((r) => r.durationMs)),
    sumMs: rows.reduce((sum, r) => sum + r.durationMs, 0),
    firstPassMs: Math.max(0, ...ends),
    peakConcurrency: overlap,
    recheckConcurrency: wiring.concurrencyLimit('recheck'),
    ...providerLimits(),
    peakRssMiB: (process.resourceUsage().maxRSS * 1024) / 1048576,
    rows,
  };
}

export { measureWiring };
export type { InvocationRow, WiringRow };
