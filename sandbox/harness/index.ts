import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyEnvironment } from '../../src/lib/core/config.ts';
import { EVENT_SOURCE, REPORT_DETAIL_TYPE, type ReconcileReport } from '../../src/lib/reconcile/report.ts';
import { NOT_MINE, startEmulator } from '../emulator/index.ts';
import type { SandboxClock } from '../emulator/clock.ts';
import type { Faults } from '../emulator/faults.ts';
import { ControlPage, type RequestRecord, type SandboxServer } from '../emulator/server.ts';
import { renderPage } from '../../src/cli/page/html.ts';
import { pageData } from '../../src/cli/page/model.ts';
import type { PublishedEvent, SandboxState } from '../emulator/state.ts';
import { type Scenario, ScenarioError, applyScenario } from './scenario.ts';
import { partitionOf } from '../emulator/partition.ts';
import { deployedRoleArn, readDeployment } from './wiring/deployment.ts';
import { type Invocation, Wiring } from './wiring/index.ts';

interface SandboxOptions {
  /** Port on 127.0.0.1; 0 picks a free one. Default 4566. */
  port?: number;
  scenario: Scenario;
  /** Simulated seconds per real second (overrides the scenario's). */
  clockSpeed?: number;
  /** Run the reconciler's functions in-process, wired by serverless.yml. Default true. */
  wire?: boolean;
  /** serverless.yml to wire; default: the project's. */
  serverlessYml?: string;
  /** Environment overrides for the wired functions. */
  reconcilerEnvironment?: Record<string, string>;
  /** Regions where infra/region-forwarder.yaml is deployed (events there reach the reconciler). Default none. */
  forwardedRegions?: string[];
  /** The target-account role template; default: the project's infra/target-account-role.yaml. */
  targetRoleTemplate?: string;
  /** Reserved concurrency per wired function, over serverless.yml's (as `aws lambda put-function-concurrency` sets it). */
  reservedConcurrency?: Record<string, number>;
}

interface Sandbox {
  url: string;
  state: SandboxState;
  clock: SandboxClock;
  faults: Faults;
  server: SandboxServer;
  wiring: Wiring | undefined;
  scenario: Scenario;
  /** The reconciler's home: where its functions run and its queues live. */
  home: { account: string; region: string };
  /** Refs of scenario resources: AMI, launch template and pipeline ids by their scenario names. */
  refs: Map<string, string>;
  /** Called for every published event (after the wiring has seen it). */
  onEvent: ((event: PublishedEvent) => void) | undefined;
  onInvocation: ((invocation: Invocation) => void) | undefined;
  onRequest: ((record: RequestRecord) => void) | undefined;
  /** Wait until every running function invocation has finished. */
  idle(): Promise<void>;
  /** Reconcile reports published on the bus for an image build, oldest first. */
  reports(imageArn: string): ReconcileReport[];
  /**
   * Wait for the report that ends the reconcile of an image build (no recheck queued, nothing left running or
   * queued in the deployment), or undefined at timeout.
   */
  finalReport(imageArn: string, timeoutMs: number, after?: number): Promise<ReconcileReport | undefined>;
  stop(): Promise<void>;
}

/** The project root: where serverless.yml and dist/ are, from the source tree or from dist/cli. */
function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i += 1) {
    if (existsSync(join(dir, 'serverless.yml'))) return dir;
    dir = resolve(dir, '..');
  }
  return process.cwd();
}

/**
 * Start the local AWS (the emulator) holding the scenario's accounts, regions and resources, with the
 * reconciler's functions running in-process and wired as serverless.yml says.
 */
async function startSandbox(options: SandboxOptions): Promise<Sandbox> {
  const scenario = options.scenario;
  let wiring: Wiring | undefined;
  const home = {
    account: scenario.reconciler?.account ?? scenario.defaultAccount,
    region: scenario.reconciler?.region ?? scenario.regions[0] ?? 'us-east-1',
  };

  // assembled at the end; the callbacks below reach it once it exists
  let sandbox: Sandbox | undefined;
  const emulator = await startEmulator({
    port: options.port ?? 4566,
    defaultAccount: scenario.defaultAccount,
    accounts: scenario.accounts,
    regions: scenario.regions,
    // simulated time starts in the past (default 90 days), so that it stays behind the real clock the
    // reconciler's functions use, and AMIs built here are old enough for cleanup's minimum age
    clock: { speed: options.clockSpeed ?? scenario.clockSpeed ?? 1, start: Date.now() - (scenario.clockStartDaysAgo ?? 90) * 86_400_000 },
    onPublish: (event) => {
      wiring?.deliver(event);
      sandbox?.onEvent?.(event);
    },
    control: (method, path, body) => control(method, path, body),
  });
  const { url, state, clock, faults, server, env } = emulator;
  server.onRequest = (record) => sandbox?.onRequest?.(record);

  let refs: Map<string, string>;
  try {
    const deployment = readDeployment(options.serverlessYml ?? join(projectRoot(), 'serverless.yml'));
    const where = { ...home, partition: partitionOf(home.region) };
    refs = applyScenario(env, scenario, home, options.targetRoleTemplate ?? join(projectRoot(), 'infra', 'target-account-role.yaml'), {
      reconcile: deployedRoleArn(deployment, 'ReconcileRole', where),
      cleanup: deployedRoleArn(deployment, 'CleanupRole', where),
    });
    faults.set(scenario.faults ?? {});
  } catch (error: unknown) {
    // a scenario the sandbox refuses (as AWS would refuse its requests) leaves no server behind
    await server.close();
    if (error instanceof ScenarioError) throw error;
    throw new ScenarioError(`scenario ${scenario.name}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }

  if (options.wire !== false) {
    wiring = new Wiring(env, {
      serverlessYml: options.serverlessYml ?? join(projectRoot(), 'serverless.yml'),
      account: home.account,
      region: home.region,
      environment: options.reconcilerEnvironment,
      params: scenario.deploymentParams,
      applyEnvironment,
      forwardedRegions: options.forwardedRegions,
      reservedConcurrency: options.reservedConcurrency,
    });
    await wiring.start();
    wiring.onInvocation = (invocation) => sandbox?.onInvocation?.(invocation);
  }

  /**
   * The report page of every build the reconciler has reported on here, newest first: each build's last
   * report, and its timeline from all of them (the page `report --html` writes, from the bus's events).
   */
  function livePage() {
    const reports = state.events
      .filter((e) => e.source === EVENT_SOURCE && e.detailType === REPORT_DETAIL_TYPE)
      .map((e) => e.detail as ReconcileReport);
    const latest = new Map<string, ReconcileReport>();
    for (const report of reports) latest.set(report.image.arn, report);
    const current = [...latest.values()].sort(
      (a, b) => b.firstSeenAt.localeCompare(a.firstSeenAt) || b.image.buildNumber - a.image.buildNumber,
    );
    const pipelines = [...new Set(current.map((r) => r.image.pipelineArn))];
    return pageData({
      current,
      history: state.events.filter((e) => e.source === EVENT_SOURCE).map((e) => e.detail),
      pipelineArn: pipelines.length === 1 ? (pipelines[0] ?? null) : null,
      source: `live from the sandbox at ${url}: the reports on its bus (reload for the latest)`,
      now: new Date(clock.now()),
    });
  }

  /** The harness's control endpoints: the rest (events, requests, faults, clock, state) are the emulator's. */
  function control(method: string, path: string, body: unknown): unknown {
    const input = (body ?? {}) as Record<string, unknown>;
    switch (`${method} ${path}`) {
      case 'GET /_sandbox/health':
        return { ok: true, url, accounts: [...state.accounts], regions: state.regions, clock: clock.iso(), speed: clock.speed, home };
      case 'GET /_sandbox/invocations':
        return wiring?.invocations ?? [];
      case 'GET /_sandbox/report':
        return new ControlPage('text/html; charset=utf-8', renderPage(livePage()));
      case 'POST /_sandbox/roles/remove': {
        const account = String(input.account ?? '');
        const name = String(input.name ?? scenario.targetRoleName ?? 'ImageBuilderReconcilerTarget');
        return { removed: state.rolesOf(account).delete(name) };
      }
      default:
        return NOT_MINE;
    }
  }

  sandbox = {
    url,
    state,
    clock,
    faults,
    server,
    wiring,
    scenario,
    home,
    refs,
    onEvent: undefined,
    onInvocation: undefined,
    onRequest: undefined,
    idle: async () => {
      await wiring?.idle();
    },
    reports: (imageArn) =>
      state.events
        .filter((e) => e.source === EVENT_SOURCE && e.detailType === REPORT_DETAIL_TYPE)
        .map((e) => e.detail as ReconcileReport)
        .filter((r) => r.image.arn === imageArn),
    finalReport: (imageArn, timeoutMs, after = 0) =>
      new Promise((resolveReport) => {
        const deadline = Date.now() + timeoutMs;
        const poll = setInterval(() => {
          // the end of a run: its last report queues no recheck, and the deployment has nothing left to do
          // (a duplicate delivery may have its own recheck chain still going)
          const last = sandbox?.reports(imageArn).slice(after).at(-1);
          const settled = last !== undefined && !last.next.recheck && wiring?.busy() !== true;
          if (settled || Date.now() > deadline) {
            clearInterval(poll);
            resolveReport(settled ? last : undefined);
          }
        }, 25);
      }),
    stop: async () => {
      wiring?.stop();
      clock.stop();
      await wiring?.idle();
      await server.close();
    },
  };
  return sandbox;
}

export { projectRoot, startSandbox };
export type { Sandbox, SandboxOptions };
