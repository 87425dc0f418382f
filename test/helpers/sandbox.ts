import { readFileSync } from 'node:fs';
import { afterAll, afterEach } from 'vitest';
import { EC2Client } from '@aws-sdk/client-ec2';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { IAMClient } from '@aws-sdk/client-iam';
import { ImagebuilderClient, StartImagePipelineExecutionCommand } from '@aws-sdk/client-imagebuilder';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SSMClient } from '@aws-sdk/client-ssm';
import { STSClient } from '@aws-sdk/client-sts';
import { type Sandbox, type SandboxOptions, startSandbox } from '../../sandbox/harness/index.ts';
import type { Scenario } from '../../sandbox/harness/scenario.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';

/** The built-in demo scenario (a fresh copy). */
function demoScenario(): Scenario {
  return JSON.parse(readFileSync(new URL('../../sandbox/harness/scenarios/demo.json', import.meta.url), 'utf8')) as Scenario;
}

/** A small scenario: three accounts, two regions, nothing else. */
function smallScenario(): Scenario {
  return {
    name: 'small',
    defaultAccount: '111111111111',
    accounts: ['222222222222', '333333333333'],
    regions: ['us-east-1', 'eu-west-1'],
    clockSpeed: 1,
  };
}

async function sandbox(options: Partial<SandboxOptions> = {}): Promise<Sandbox> {
  return startSandbox({ port: 0, wire: false, scenario: smallScenario(), ...options });
}

/**
 * Sandboxes for the tests of the enclosing describe (or file), each stopped after all of them (`'all'`) or
 * after the test that started it (`'each'`). Call it where the tests are declared; `start` in a hook or a test.
 */
function useSandbox(scope: 'all' | 'each' = 'all'): { start: (options?: Partial<SandboxOptions>) => Promise<Sandbox> } {
  const running: Sandbox[] = [];
  (scope === 'each' ? afterEach : afterAll)(async () => {
    await Promise.all(running.splice(0).map((box) => box.stop()));
  });
  return {
    start: async (options) => {
      const box = await sandbox(options);
      // a test may stop its sandbox itself (to start another): stopping it again is a no-op
      const stop = box.stop.bind(box);
      let stopped: Promise<void> | undefined;
      box.stop = () => (stopped ??= stop());
      running.push(box);
      return box;
    },
  };
}

/** Real SDK clients acting as an account (12-digit access key ids act as that account) in a region. */
function clients(url: string, account: string, region = 'us-east-1') {
  const config = { endpoint: url, region, credentials: { accessKeyId: account, secretAccessKey: 'sandbox' }, maxAttempts: 1 };
  return {
    ec2: new EC2Client(config),
    imagebuilder: new ImagebuilderClient(config),
    sts: new STSClient(config),
    iam: new IAMClient(config),
    ssm: new SSMClient(config),
    sqs: new SQSClient(config),
    events: new EventBridgeClient(config),
  };
}

/** serverless.yml's defaults of the cleanup guards, as its CleanupSettingsParameter holds them. */
const DEFAULT_CLEANUP_SETTINGS: Record<string, string> = {
  RECONCILER_CLEANUP_STRATEGY: 'deregister',
  RECONCILER_CLEANUP_KEEP_TAG: 'imagebuilder-reconciler:keep',
  RECONCILER_CLEANUP_MIN_AGE_DAYS: '7',
  RECONCILER_CLEANUP_LAUNCHED_WITHIN_DAYS: '30',
  RECONCILER_CLEANUP_SHARED: 'skip',
  RECONCILER_CLEANUP_DISABLE_GRACE_DAYS: '14',
  RECONCILER_CLEANUP_MAX_PER_RUN: '20',
  RECONCILER_IDEMPOTENCY_TABLE: '',
};

/**
 * A deployment's cleanup guards where no functions are wired (`wire: false`): the parameter the stack
 * writes (serverless.yml, CleanupSettingsParameter, stage `sandbox`), written as a stack update would, with
 * serverless.yml's defaults and `settings` over them. The CLI's cleanup reads it.
 */
async function deployCleanupSettings(box: Sandbox, settings: Record<string, string> = {}): Promise<void> {
  const { PutParameterCommand } = await import('@aws-sdk/client-ssm');
  await clients(box.url, box.home.account, box.home.region).ssm.send(
    new PutParameterCommand({
      Name: '/imagebuilder-reconciler/sandbox/cleanup-settings',
      Type: 'String',
      Overwrite: true,
      Value: JSON.stringify({ ...DEFAULT_CLEANUP_SETTINGS, ...settings }),
    }),
  );
}

/** The demo's owner account, whose pipeline builds golden-windows. */
const DEMO_OWNER = '111111111111';

/** Start a build of a pipeline (the demo's golden-windows by default) as its owner; returns the build's ARN. */
async function startBuild(
  box: Sandbox,
  token: string,
  pipelineArn = box.refs.get('pipeline:golden-windows'),
  owner = DEMO_OWNER,
): Promise<string> {
  const out = await clients(box.url, owner).imagebuilder.send(
    new StartImagePipelineExecutionCommand({ imagePipelineArn: pipelineArn, clientToken: token }),
  );
  if (out.imageBuildVersionArn === undefined)
    throw new Error(`StartImagePipelineExecution of ${pipelineArn ?? 'no pipeline'} returned no build ARN`);
  return out.imageBuildVersionArn;
}

/** The final report of a build's reconcile runs (rechecks included), once the sandbox is idle. */
async function finished(box: Sandbox, arn: string, timeoutMs = 30_000): Promise<ReconcileReport> {
  const report = await box.finalReport(arn, timeoutMs);
  await box.idle();
  if (report === undefined)
    throw new Error(`no final report for ${arn}; reports: ${JSON.stringify(box.reports(arn).map((r) => r.outcome))}`);
  return report;
}

export { DEMO_OWNER, clients, demoScenario, deployCleanupSettings, finished, sandbox, smallScenario, startBuild, useSandbox };
