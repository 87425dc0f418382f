/**
 * The benchmark: organization-sized scenarios on the sandbox with real latency and EC2's token buckets, the
 * reconciler in its own process. Prints a table (or JSON with --json [file]).
 * Usage: npm run bench -- [--sizes 10,100,1000] [--full] [--latency 50] [--json [file]] [--env KEY=VALUE ...] [--cpu-prof DIR] [--no-bundles] [--max-heap MiB] [--bundle FILE] [--param KEY=VALUE]
 *        npm run bench -- --wiring --sizes 10000 [--env RECONCILER_SHARD_MAX_CELLS=1000]: the build through the deployed
 *        wiring (Lambda bundles, queues), sharded; the worst invocation's duration and heap
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import Table from 'cli-table3';
import type { FaultSettings } from '../sandbox/emulator/faults.ts';
import { quietSdkNotices } from '../src/lib/core/config.ts';
import { callsByOperation, criticalPath, throttledCalls } from './analysis.ts';
import type { RunnerInput, RunnerOutput } from './runner.ts';
import { SHAPES } from './scenario.ts';
import { type Org, prepareOrg } from './setup.ts';
import { type WiringRow, measureWiring } from './wiring.ts';

const run = promisify(execFile);

interface Options {
  sizes: number[];
  latencyMs: number;
  json: string | true | undefined;
  environment: Record<string, string>;
  /** Write a V8 CPU profile of each run of the reconciler into this directory. */
  cpuProf: string | undefined;
  /** Time importing the Lambda bundles (default true; --no-bundles skips it). */
  bundles: boolean;
  /** Cap the reconciler process's V8 heap (MiB, --max-old-space-size), as a function's memory setting would. */
  maxHeapMiB: number | undefined;
  /** Run the build through the deployed wiring instead of the CLI-like runs. */
  wiring: boolean;
  /** Overrides of serverless.yml's params for --wiring (`--param k=v`, as `serverless deploy --param` gives them). */
  params: Record<string, string>;
  /** Another reconcile bundle (another build's dist/lambda/reconcile/index.mjs), invoked in a `no-op (--bundle)` run too. */
  bundle: string | undefined;
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    sizes: [10, 100, 1000],
    latencyMs: 50,
    json: undefined,
    environment: {},
    cpuProf: undefined,
    bundles: true,
    maxHeapMiB: undefined,
    wiring: false,
    bundle: undefined,
    params: {},
  };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const next = argv[i + 1];
    if (arg === '--full') options.sizes = [10, 100, 1000, 5000];
    else if (arg === '--no-bundles') options.bundles = false;
    else if (arg === '--wiring') options.wiring = true;
    else if (arg === '--param' && next !== undefined) {
      const at = next.indexOf('=');
      if (at < 1) throw new Error(`--param needs KEY=VALUE, got "${next}"`);
      options.params[next.slice(0, at)] = next.slice(at + 1);
      i += 1;
    } else if (arg === '--bundle' && next !== undefined) {
      options.bundle = next;
      i += 1;
    } else if (arg === '--sizes' && next !== undefined) {
      options.sizes = next.split(',').map(Number);
      i += 1;
    } else if (arg === '--latency' && next !== undefined) {
      options.latencyMs = Number(next);
      i += 1;
    } else if (arg === '--json') {
      if (next !== undefined && !next.startsWith('--')) {
        options.json = next;
        i += 1;
      } else options.json = true;
    } else if (arg === '--max-heap' && next !== undefined) {
      options.maxHeapMiB = Number(next);
      if (!Number.isInteger(options.maxHeapMiB) || options.maxHeapMiB < 16)
        throw new Error(`--max-heap needs a whole number of MiB (16 or more), got "${next}"`);
      i += 1;
    } else if (arg === '--cpu-prof' && next !== undefined) {
      options.cpuProf = next;
      i += 1;
    } else if (arg === '--env' && next !== undefined) {
      const at = next.indexOf('=');
      if (at < 1) throw new Error(`--env needs KEY=VALUE, got "${next}"`);
      options.environment[next.slice(0, at)] = next.slice(at + 1);
      i += 1;
    } else
      throw new Error(
        `unknown argument "${arg ?? ''}" (usage: --sizes 10,100,1000 --full --latency 50 --json [file] --env KEY=VALUE --cpu-prof DIR --no-bundles --max-heap MiB --wiring --param KEY=VALUE --bundle FILE)`,
      );
  }
  for (const size of options.sizes)
    if (SHAPES[size] === undefined) throw new Error(`no scenario for ${size} cells (have ${Object.keys(SHAPES).join(', ')})`);
  if (!Number.isFinite(options.latencyMs) || options.latencyMs < 0) throw new Error('--latency must be a number of milliseconds');
  return options;
}

/**
 * Latency on every call, and the token buckets AWS documents per (account, region): EC2's shared bucket for
 * non-mutating (Describe*) actions, 100 tokens refilled at 20 per second, and for mutating actions, 200
 * refilled at 5 per second (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/throttling.html); SSM's
 * default throughput of 40 GetParameter calls per second (https://docs.aws.amazon.com/general/latest/gr/ssm.html).
 */
function awsLikeFaults(latencyMs: number): FaultSettings {
  return {
    latency: latencyMs > 0 ? [{ ms: latencyMs }] : [],
    throttles: [
      { service: 'ec2', operationPrefix: 'Describe', bucket: 'non-mutating', burst: 100, ratePerSecond: 20 },
      {
        service: 'ec2',
        bucket: 'mutating',
        operations: [
          'CreateTags',
          'ModifyImageAttribute',
          'CreateLaunchTemplateVersion',
          'ModifyLaunchTemplate',
          'EnableFastLaunch',
          'DeregisterImage',
          'DisableImage',
          'EnableImageDeprecation',
        ],
        burst: 200,
        ratePerSecond: 5,
      },
      { service: 'ssm', operations: ['GetParameter', 'GetParameters'], bucket: 'get-parameter', burst: 40, ratePerSecond: 40 },
    ],
  };
}

interface Row {
  cells: number;
  run: 'first run' | 'no-op' | 'no-op (bundle)' | 'no-op (--bundle)' | 'cleanup plan';
  /** Reconciler CPU per AWS call (ms). */
  cpuPerCallMs: number;
  wallMs: number;
  /** CPU of the reconciler's process during the run, and of the sandbox (ms). */
  cpuMs: number;
  sandboxCpuMs: number;
  lowerBoundMs: number;
  ratio: number;
  sequentialMs: number;
  calls: number;
  callsPerCell: number;
  peakConcurrency: number;
  connections: number;
  peakRssMiB: number;
  memoryPerCellKiB: number;
  /** The most heap in use during the run over the heap in use before it, per cell (sampled every 5 ms). */
  heapPerCellKiB: number;
  /** What the run keeps per cell: the heap after a full collection with the report held, over the heap before it. */
  retainedPerCellKiB: number;
  throttledCalls: number;
  cellsFailedByThrottling: number;
  candidates: number;
  outcome: string;
  callsByOperation: Record<string, number>;
}

const RUNNER = fileURLToPath(new URL('./runner.mjs', import.meta.url));

async function measure(
  org: Org,
  latencyMs: number,
  runKind: Row['run'],
  environment: Record<string, string>,
  cpuProf: string | undefined,
  maxHeapMiB?: number,
  bundle?: string,
): Promise<Row> {
  const { box } = org;
  box.server.requests.length = 0;
  box.server.resetPeak();
  const connectionsBefore = box.server.connections;
  const input: RunnerInput = {
    kind: runKind === 'cleanup plan' ? 'cleanup' : runKind.startsWith('no-op (') ? 'bundle' : 'reconcile',
    bundle: runKind === 'no-op (--bundle)' && bundle !== undefined ? bundle : join(LAMBDA_DIR, 'reconcile', 'index.mjs'),
    arn: runKind === 'cleanup plan' ? org.distributionArn : org.imageArn,
    endpoint: box.url,
    mode: runKind === 'cleanup plan' ? 'plan' : 'apply',
    account: org.org.owner,
    environment: { AWS_REGION: box.home.region, ...environment },
  };
  const sandboxCpu = process.cpuUsage();
  const profile = cpuProf === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${cpuProf}`];
  const { stdout } = await run(
    process.execPath,
    ['--expose-gc', ...(maxHeapMiB === undefined ? [] : [`--max-old-space-size=${maxHeapMiB}`]), ...profile, RUNNER, JSON.stringify(input)],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  const sandboxUsed = process.cpuUsage(sandboxCpu);
  const out = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as RunnerOutput;
  const records = [...box.server.requests];
  const chain = criticalPath(input.kind === 'cleanup' ? 'cleanup' : 'reconcile', records, org.org.owner);
  const lowerBoundMs = chain * latencyMs;
  const cells = runKind === 'cleanup plan' ? Math.max(1, out.cells) : org.org.cells;
  return {
    cells: org.org.cells,
    run: runKind,
    wallMs: out.wallMs,
    cpuMs: out.cpuMs,
    cpuPerCallMs: records.length === 0 ? 0 : out.cpuMs / records.length,
    sandboxCpuMs: (sandboxUsed.user + sandboxUsed.system) / 1000,
    lowerBoundMs,
    ratio: lowerBoundMs === 0 ? 0 : out.wallMs / lowerBoundMs,
    sequentialMs: records.length * latencyMs,
    calls: records.length,
    callsPerCell: records.length / cells,
    peakConcurrency: box.server.peakInFlight,
    connections: box.server.connections - connectionsBefore,
    peakRssMiB: out.peakRss / 1048576,
    memoryPerCellKiB: Math.max(0, out.peakRss - out.rssBefore) / 1024 / cells,
    heapPerCellKiB: Math.max(0, out.peakHeap - out.heapBefore) / 1024 / cells,
    retainedPerCellKiB: Math.max(0, out.retainedHeap - out.heapBefore) / 1024 / cells,
    throttledCalls: throttledCalls(records),
    cellsFailedByThrottling: out.cellsFailedByThrottling,
    candidates: out.candidates,
    outcome: out.outcome,
    callsByOperation: callsByOperation(records),
  };
}

interface BundleRow {
  name: string;
  bytes: number;
  /** Median time to import the bundle in a fresh process, and to import an empty module (ms). */
  importMs: number;
  emptyMs: number;
}

const LAMBDA_DIR = fileURLToPath(new URL('../lambda/', import.meta.url));

async function importMs(url: string): Promise<number> {
  const code = `const t = performance.now(); await import(${JSON.stringify(url)}); process.stdout.write(String(performance.now() - t));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code]);
  return Number(stdout.trim());
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** Each Lambda bundle's size and import time against an empty module (5 fresh processes each, median). */
async function measureBundles(): Promise<BundleRow[]> {
  if (!existsSync(LAMBDA_DIR)) return [];
  const rows: BundleRow[] = [];
  const empty = 'data:text/javascript,export {};';
  for (const name of readdirSync(LAMBDA_DIR).sort()) {
    const file = join(LAMBDA_DIR, name, 'index.mjs');
    if (!existsSync(file)) continue;
    const imports: number[] = [];
    const empties: number[] = [];
    for (let i = 0; i < 5; i += 1) {
      empties.push(await importMs(empty));
      imports.push(await importMs(pathToFileURL(file).href));
    }
    rows.push({ name, bytes: statSync(file).size, importMs: median(imports), emptyMs: median(empties) });
  }
  return rows;
}

function printBundles(rows: BundleRow[]): void {
  if (rows.length === 0) return;
  const table = new Table({
    head: ['Lambda bundle', 'size KiB', 'import ms (median of 5)', 'empty module ms', 'difference ms'],
    style: { head: [], border: [] },
  });
  for (const r of rows)
    table.push([r.name, (r.bytes / 1024).toFixed(0), r.importMs.toFixed(0), r.emptyMs.toFixed(1), (r.importMs - r.emptyMs).toFixed(0)]);
  console.log(table.toString());
}

function print(rows: Row[], latencyMs: number): void {
  const table = new Table({
    head: [
      'cells',
      'run',
      'wall s',
      'cpu s',
      'cpu ms/call',
      'sandbox cpu s',
      'lower bound s',
      'ratio',
      'sequential s',
      'calls/cell',
      'peak conc.',
      'conns',
      'peak MiB',
      'KiB/cell',
      'heap KiB/cell',
      'kept KiB/cell',
      'throttled',
      'failed (thr.)',
      'outcome',
    ],
    style: { head: [], border: [] },
  });
  for (const r of rows) {
    table.push([
      r.cells,
      r.run + (r.run === 'cleanup plan' ? ` (${r.candidates})` : ''),
      (r.wallMs / 1000).toFixed(2),
      (r.cpuMs / 1000).toFixed(2),
      r.cpuPerCallMs.toFixed(3),
      (r.sandboxCpuMs / 1000).toFixed(2),
      (r.lowerBoundMs / 1000).toFixed(2),
      `${r.ratio.toFixed(1)}×`,
      (r.sequentialMs / 1000).toFixed(1),
      r.callsPerCell.toFixed(2),
      r.peakConcurrency,
      r.connections,
      r.peakRssMiB.toFixed(0),
      r.memoryPerCellKiB.toFixed(1),
      r.heapPerCellKiB.toFixed(1),
      r.retainedPerCellKiB.toFixed(1),
      r.throttledCalls,
      r.cellsFailedByThrottling,
      r.outcome,
    ]);
  }
  console.log(`latency ${latencyMs} ms per call; EC2 token buckets per (account, region); reconciler in its own process`);
  console.log(table.toString());
  console.log('cleanup plan: calls/cell and KiB/cell per removed cell; (n) = candidates in removed cells');
}

function printWiring(rows: WiringRow[], latencyMs: number): void {
  const table = new Table({
    head: [
      'cells',
      'shard max',
      'shards',
      'invocations',
      'wall s',
      'converged',
      'dup. cells',
      'longest shard s',
      'sum s',
      'first pass s',
      'peak conc. (reserved)',
      'worst invocation s',
      'worst (fn, shard, cells)',
      'worst heap MiB',
      'heap (fn, shard, cells)',
      'memory / timeout',
      'process peak RSS MiB',
    ],
    style: { head: [], border: [] },
  });
  const who = (r: WiringRow['worst']) => (r === undefined ? '-' : `${r.function} ${r.shard ?? 'whole'} ${r.cells}`);
  for (const r of rows) {
    table.push([
      r.cells,
      r.shardMaxCells,
      r.shards,
      r.invocations,
      (r.wallMs / 1000).toFixed(1),
      r.converged ? 'yes' : `no (${r.cellsConverged})`,
      r.duplicateCells,
      (r.longestShardMs / 1000).toFixed(1),
      (r.sumMs / 1000).toFixed(1),
      (r.firstPassMs / 1000).toFixed(1),
      `${r.peakConcurrency} (${r.recheckConcurrency ?? 'none'})`,
      ((r.worst?.durationMs ?? 0) / 1000).toFixed(1),
      who(r.worst),
      (r.worstHeap?.heapMiB ?? 0).toFixed(0),
      who(r.worstHeap),
      `${r.memoryMiB} MiB / ${r.timeoutS} s`,
      r.peakRssMiB.toFixed(0),
    ]);
  }
  console.log(
    `through the deployed wiring (serverless.yml's functions and queues, in the sandbox's process); latency ${latencyMs} ms per call; EC2 token buckets per (account, region)`,
  );
  console.log(table.toString());
  console.log(
    'worst heap: the most heap in use in the process while that invocation ran, over the heap in use when it started (any invocation running at the same time included)',
  );
}

/** Prepare the sandbox organization of each size in turn, run `run` on it, and always stop its sandbox. */
async function forEachOrg(sizes: number[], run: (org: Org, size: number) => Promise<void>): Promise<void> {
  for (const size of sizes) {
    const shape = SHAPES[size];
    if (shape === undefined) continue;
    process.stderr.write(`bench: ${size} cells: preparing the sandbox\n`);
    const org = await prepareOrg(shape);
    try {
      await run(org, size);
    } finally {
      await org.box.stop();
    }
  }
}

/** Print the table, or write the JSON to stdout (`--json`) or to a file (`--json FILE`, then also the table). */
function emit(json: Options['json'], data: object, show: () => void): void {
  if (json === undefined) {
    show();
    return;
  }
  const text = `${JSON.stringify(data, null, 2)}\n`;
  if (json === true) process.stdout.write(text);
  else {
    writeFileSync(json, text);
    show();
  }
}

async function mainWiring(options: Options): Promise<void> {
  const rows: WiringRow[] = [];
  await forEachOrg(options.sizes, async (org, size) => {
    process.stderr.write(`bench: ${size} cells: through the wiring\n`);
    rows.push(await measureWiring(org, awsLikeFaults(options.latencyMs), options.environment, options.params));
  });
  emit(options.json, { latencyMs: options.latencyMs, wiring: rows }, () => printWiring(rows, options.latencyMs));
}

async function main(): Promise<void> {
  quietSdkNotices();
  const options = parseArgs(process.argv.slice(2));
  if (options.wiring) {
    await mainWiring(options);
    return;
  }
  const rows: Row[] = [];
  if (options.bundles) process.stderr.write('bench: importing the Lambda bundles\n');
  const bundles = options.bundles ? await measureBundles() : [];
  await forEachOrg(options.sizes, async (org, size) => {
    org.box.faults.set(awsLikeFaults(options.latencyMs));
    const kinds: Row['run'][] = options.bundles
      ? ['first run', 'no-op', 'no-op (bundle)', ...(options.bundle === undefined ? [] : (['no-op (--bundle)'] as const)), 'cleanup plan']
      : ['first run', 'no-op', 'cleanup plan'];
    for (const runKind of kinds) {
      process.stderr.write(`bench: ${size} cells: ${runKind}\n`);
      rows.push(await measure(org, options.latencyMs, runKind, options.environment, options.cpuProf, options.maxHeapMiB, options.bundle));
      // let AWS finish its own work between runs (AMI copies, Fast Launch) as time would
      org.box.clock.advance(3_600_000);
    }
  });
  emit(options.json, { latencyMs: options.latencyMs, rows, bundles }, () => {
    print(rows, options.latencyMs);
    printBundles(bundles);
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
