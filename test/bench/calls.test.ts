/**
 * The bench's figures on a fixed, small organization, deterministically: how many AWS calls a reconcile
 * makes per cell (first run and no-op) and what the request log says about the longest chain of dependent
 * calls. Counts, never times.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { criticalPath } from '../../bench/analysis.ts';
import { type Org, prepareOrg } from '../../bench/setup.ts';
import type { RequestRecord } from '../../sandbox/emulator/server.ts';
import { createClientFactory } from '../../src/lib/aws/clients.ts';
import { loadConfig } from '../../src/lib/core/config.ts';
import { cleanup } from '../../src/lib/cleanup/cleanup.ts';
import { reconcile } from '../../src/lib/reconcile/reconcile.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';

const log = { info: () => undefined, warn: () => undefined, error: () => undefined };

async function run(org: Org): Promise<{ report: ReconcileReport; records: RequestRecord[] }> {
  const { box } = org;
  box.server.requests.length = 0;
  const config = loadConfig({ AWS_REGION: box.home.region, RECONCILER_ACCOUNT_ID: org.org.owner });
  const clients = createClientFactory({
    ...config,
    endpoint: box.url,
    credentials: { accessKeyId: org.org.owner, secretAccessKey: 'sandbox' },
  });
  const report = await reconcile(
    { imageBuildVersionArn: org.imageArn, trigger: 'cli' },
    { config, clients, log, now: () => new Date(), newRunId: randomUUID, publish: false },
  );
  return { report, records: [...box.server.requests] };
}

async function cleanupPlan(org: Org) {
  const { box } = org;
  box.server.requests.length = 0;
  const loaded = loadConfig({ AWS_REGION: box.home.region, RECONCILER_ACCOUNT_ID: org.org.owner });
  // cleanup assumes the cleanup role in target accounts, as the deployed cleanup functions do
  const config = { ...loaded, targetRoleName: loaded.cleanupRoleName };
  const clients = createClientFactory({
    ...config,
    endpoint: box.url,
    credentials: { accessKeyId: org.org.owner, secretAccessKey: 'sandbox' },
  });
  const report = await cleanup(
    { distributionConfigurationArn: org.distributionArn, mode: 'plan', trigger: 'cli' },
    { config, clients, log, now: () => new Date(), newRunId: randomUUID, publish: false },
  );
  return { report, records: [...box.server.requests] };
}

function byOperation(records: RequestRecord[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of records) counts[r.operation] = (counts[r.operation] ?? 0) + 1;
  return counts;
}

describe('bench: calls per cell on a fixed organization (3 regions × 4 accounts, extras on every 3rd cell)', () => {
  let org: Org;

  beforeAll(async () => {
    org = await prepareOrg({ regions: 3, accounts: 4, removedRegions: 1, every: 3 });
  });
  afterAll(async () => {
    await org.box.stop();
  });

  it('makes the expected calls on the first run and fewer on the no-op, with the chain the log shows', async () => {
    expect(org.org.cells).toBe(12);
    expect(org.org.extras).toBe(3);

    const first = await run(org);
    expect(first.report.cells).toHaveLength(12);
    expect(first.report.counts.cells.failed).toBe(0);
    // every target copy lacks the amiTags (CreateTags); templates without Image Builder's tag get a new
    // default version; Fast Launch is enabled from each destination account
    expect(byOperation(first.records)).toEqual({
      // the build; then its revoked mark again right before each of the 9 pointer writes and once after them
      // (a revoke applied while the run was under way: docs/architecture.md, which build is current)
      GetImage: 11,
      // the newer-builds listing, and once more after writing pointers (a newer build's run may have raced ours)
      ListImagePipelineImages: 2,
      AssumeRole: 3,
      DescribeImages: 12,
      DescribeLaunchTemplates: 3,
      // the versions with the new AMI (none yet) and the default version's AMI; then, right before each of the
      // two pointer writes, the template's current $Default/$Latest again (never roll back)
      DescribeLaunchTemplateVersions: 12,
      DescribeFastLaunchImages: 3,
      GetParameter: 3,
      CreateTags: 12,
      CreateLaunchTemplateVersion: 3,
      ModifyLaunchTemplate: 3,
      EnableFastLaunch: 3,
    });
    expect(first.records.length / 12).toBeCloseTo(70 / 12);

    // AMI copies finish and Fast Launch is enabled before the second run
    org.box.clock.advance(3_600_000);
    const noop = await run(org);
    expect(noop.report.outcome).toBe('converged');
    expect(noop.report.counts.actions.total).toBe(0);
    // reads only, one per thing checked: the default version holds the AMI, so it is not read apart
    expect(byOperation(noop.records)).toEqual({
      GetImage: 1,
      ListImagePipelineImages: 1,
      AssumeRole: 3,
      DescribeImages: 12,
      DescribeLaunchTemplates: 3,
      DescribeLaunchTemplateVersions: 3,
      DescribeFastLaunchImages: 3,
      GetParameter: 3,
    });
    expect(noop.records.length / 12).toBeCloseTo(29 / 12);
    // GetImage → AssumeRole → DescribeLaunchTemplates → the default version → CreateLaunchTemplateVersion → ModifyLaunchTemplate
    expect(criticalPath('reconcile', first.records, org.org.owner)).toBe(6);
    // GetImage → AssumeRole → every read of the cell at once
    expect(criticalPath('reconcile', noop.records, org.org.owner)).toBe(3);
  });

  it('plans the cleanup of the removed region with one search and one observation per removed cell', async () => {
    const { report, records } = await cleanupPlan(org);
    const removed = report.candidates.filter((c) => c.region === org.org.removed[0]);
    expect(removed).toHaveLength(4);
    expect(removed.map((c) => `${c.decision} ${c.guard ?? ''} ${c.reason}`).filter((d) => !d.startsWith('deregister'))).toStrictEqual([]);
    expect(removed.every((c) => c.outcome === 'planned' && c.decision === 'deregister')).toBe(true);
    expect(report.problems).toEqual([]);
    expect(byOperation(records)).toEqual({
      GetDistributionConfiguration: 1,
      ListImagePipelines: 1,
      ListImagePipelineImages: 1,
      GetImage: 2,
      AssumeRole: 3,
      // per removed cell: the tag search, then the candidates
      DescribeImages: 8,
      DescribeSnapshots: 4,
      DescribeImageReferences: 4,
      DescribeImageAttribute: 4,
      // what DescribeImageReferences does not cover, and Fast Launch
      DescribeAutoScalingGroups: 4,
      DescribeLaunchConfigurations: 4,
      DescribeSpotFleetRequests: 4,
      DescribeFleets: 4,
      DescribeSpotInstanceRequests: 4,
      DescribeStacks: 4,
      DescribeComputeEnvironments: 4,
      ListClusters: 4,
      DescribeFastLaunchImages: 4,
    });
    expect(criticalPath('cleanup', records, org.org.owner)).toBe(8);
  });
});

describe('bench: the longest chain of dependent calls', () => {
  const record = (operation: string, account: string, region = 'us-east-1', service = 'ec2'): RequestRecord => ({
    time: '',
    service,
    operation,
    account,
    region,
    status: 200,
    errorCode: undefined,
    principal: undefined,
    authorizations: [],
  });

  it('is GetImage, AssumeRole for a target account, the deepest read and the deepest write of the worst cell', () => {
    const log = [
      record('GetImage', '111111111111', 'us-east-1', 'imagebuilder'),
      record('DescribeImages', '111111111111'),
      record('DescribeImages', '222222222222'),
      record('DescribeImageAttribute', '222222222222'),
      record('CreateLaunchTemplateVersion', '222222222222'),
      record('ModifyLaunchTemplate', '222222222222'),
      record('DescribeImages', '333333333333', 'eu-west-1'),
    ];
    expect(criticalPath('reconcile', log, '111111111111')).toBe(6);
    expect(criticalPath('reconcile', log.slice(0, 2), '111111111111')).toBe(2);
  });

  it('for cleanup: the inventory prefix, then each DescribeImages of a removed cell and the reads after it', () => {
    const log = [
      record('GetDistributionConfiguration', '111111111111', 'us-east-1', 'imagebuilder'),
      record('ListImagePipelines', '111111111111', 'us-east-1', 'imagebuilder'),
      record('ListImagePipelineImages', '111111111111', 'us-east-1', 'imagebuilder'),
      record('GetImage', '111111111111', 'us-east-1', 'imagebuilder'),
      record('DescribeImages', '222222222222', 'eu-west-2'),
      record('DescribeImages', '222222222222', 'eu-west-2'),
      record('DescribeImageReferences', '222222222222', 'eu-west-2'),
    ];
    expect(criticalPath('cleanup', log, '111111111111')).toBe(8);
  });
});
