import type { Distribution } from '@aws-sdk/client-imagebuilder';
import type { Scenario } from '../sandbox/harness/scenario.ts';

/**
 * Organization-sized scenarios for the benchmark: one Windows golden image built in the owner account and
 * distributed to `regions × accounts` cells (the owner is one of the accounts), with launch templates, Fast
 * Launch and SSM parameters on a share of the cells, and `removedRegions` more regions that an earlier build
 * reached and today's configuration no longer lists (the cleanup candidates).
 */
interface OrgShape {
  regions: number;
  accounts: number;
  removedRegions: number;
  /** Every n-th cell of a target account gets a launch template, Fast Launch and an SSM parameter (default 10). */
  every?: number;
}

const OWNER = '100000000000';

/** Real region names first, so that scenarios read like an organization's. */
const REGION_NAMES = [
  'us-east-1',
  'us-east-2',
  'us-west-1',
  'us-west-2',
  'ca-central-1',
  'ca-west-1',
  'eu-west-1',
  'eu-west-2',
  'eu-west-3',
  'eu-central-1',
  'eu-central-2',
  'eu-north-1',
  'eu-south-1',
  'eu-south-2',
  'ap-south-1',
  'ap-south-2',
  'ap-southeast-1',
  'ap-southeast-2',
  'ap-southeast-3',
  'ap-southeast-4',
  'ap-southeast-5',
  'ap-northeast-1',
  'ap-northeast-2',
  'ap-northeast-3',
  'ap-east-1',
  'sa-east-1',
  'me-south-1',
  'me-central-1',
  'af-south-1',
  'il-central-1',
  'mx-central-1',
  'ap-southeast-7',
];

/** The shapes the bench runs, by number of cells. */
const SHAPES: Record<number, OrgShape> = {
  10: { regions: 2, accounts: 5, removedRegions: 1 },
  100: { regions: 5, accounts: 20, removedRegions: 3 },
  1000: { regions: 20, accounts: 50, removedRegions: 10 },
  2000: { regions: 20, accounts: 100, removedRegions: 2 },
  5000: { regions: 25, accounts: 200, removedRegions: 7 },
  10000: { regions: 20, accounts: 500, removedRegions: 2 },
  // Image Builder takes at most 1,536 target accounts and 100 launch template configurations per region
  // (the service model's constraints on a Distribution): 32 regions × 1,536 accounts, 49,152 cells
  50000: { regions: 32, accounts: 1536, removedRegions: 0, every: 20 },
};

function accountsOf(shape: OrgShape): string[] {
  return Array.from({ length: shape.accounts }, (_, i) => String(Number(OWNER) + i).padStart(12, '0'));
}

function regionsOf(shape: OrgShape): { current: string[]; removed: string[] } {
  const total = shape.regions + shape.removedRegions;
  if (total > REGION_NAMES.length) throw new Error(`at most ${REGION_NAMES.length} regions, got ${total}`);
  return { current: REGION_NAMES.slice(0, shape.regions), removed: REGION_NAMES.slice(shape.regions, total) };
}

interface OrgScenario {
  scenario: Scenario;
  /** The distribution configuration as the first build used it (current and removed regions). */
  distributionName: string;
  pipelineName: string;
  owner: string;
  cells: number;
  /** Cells with a launch template, Fast Launch and an SSM parameter. */
  extras: number;
  current: string[];
  removed: string[];
  accounts: string[];
}

/** The scenario for a shape; deterministic (same shape, same scenario). */
function orgScenario(shape: OrgShape): OrgScenario {
  const every = shape.every ?? 10;
  const accounts = accountsOf(shape);
  const { current, removed } = regionsOf(shape);
  const launchTemplates: NonNullable<Scenario['launchTemplates']> = [];
  let extras = 0;
  const distributions = [...current, ...removed].map((region, r) => {
    const lts: { launchTemplateId: string; accountId: string; setDefaultVersion: boolean }[] = [];
    const fastLaunch: {
      enabled: boolean;
      accountId: string;
      maxParallelLaunches: number;
      snapshotConfiguration: { targetResourceCount: number };
    }[] = [];
    const parameters: { amiAccountId: string; parameterName: string; dataType: 'aws:ec2:image' }[] = [];
    accounts.forEach((account, a) => {
      // target accounts only: Fast Launch enabled in the owner account would be inherited by every target copy of the region
      if (a === 0 || (r * accounts.length + a) % every !== 0 || r >= current.length) return;
      extras += 1;
      const ref = `lt-${region}-${account}`;
      // no CreatedBy tag: Image Builder's distribution role leaves it alone in target accounts; the reconciler updates
      // it, as the template opted in (imagebuilder-reconciler:managed)
      launchTemplates.push({ ref, account, region, name: 'fleet', tags: { 'imagebuilder-reconciler:managed': 'true' } });
      lts.push({ launchTemplateId: `\${lt:${ref}}`, accountId: account, setDefaultVersion: true });
      fastLaunch.push({ enabled: true, accountId: account, maxParallelLaunches: 6, snapshotConfiguration: { targetResourceCount: 5 } });
      parameters.push({ amiAccountId: account, parameterName: '/golden/windows/latest', dataType: 'aws:ec2:image' as const });
    });
    const distribution: Distribution = {
      region,
      amiDistributionConfiguration: {
        name: 'golden-windows-{{imagebuilder:buildVersion}}-{{imagebuilder:buildDate}}',
        amiTags: { Team: 'platform' },
        targetAccountIds: accounts,
      },
      ...(lts.length === 0 ? {} : { launchTemplateConfigurations: lts }),
      ...(fastLaunch.length === 0 ? {} : { fastLaunchConfigurations: fastLaunch }),
      ...(parameters.length === 0 ? {} : { ssmParameterConfigurations: parameters }),
    };
    return distribution;
  });
  const scenario: Scenario = {
    name: `org-${current.length}x${accounts.length}`,
    description: `${current.length} regions × ${accounts.length} accounts, ${removed.length} removed regions`,
    defaultAccount: OWNER,
    accounts: accounts.slice(1),
    regions: [...current, ...removed],
    reconciler: { account: OWNER, region: current[0] ?? 'us-east-1' },
    // the target roles as a deployment would set them: the parameters under golden/, cleanup allowed, and
    // Fast Launch without a launch template (EC2 Fast Launch builds its own VPC: EC2FastLaunchFullAccess)
    targetRoleParameters: { ParameterNamePattern: 'golden/*', AllowCleanup: 'true', FastLaunchWithoutLaunchTemplate: 'true' },
    deploymentParams: { parameterNamePattern: 'golden/*', fastLaunchWithoutLaunchTemplate: 'true' },
    launchTemplates,
    imagebuilder: {
      recipes: [
        {
          name: 'golden-windows',
          semanticVersion: '1.0.0',
          parentImage: 'arn:aws:imagebuilder:us-east-1:aws:image/windows-server-2022-english-full-base-x86/x.x.x',
          components: [{ componentArn: 'arn:aws:imagebuilder:us-east-1:aws:component/update-windows/x.x.x' }],
        },
      ],
      infrastructure: [{ name: 'golden-windows', instanceProfileName: 'EC2InstanceProfileForImageBuilder' }],
      distributions: [{ name: 'golden-windows', distributions }],
      pipelines: [{ name: 'golden-windows', recipe: 'golden-windows', infrastructure: 'golden-windows', distribution: 'golden-windows' }],
    },
  };
  return {
    scenario,
    distributionName: 'golden-windows',
    pipelineName: 'golden-windows',
    owner: OWNER,
    cells: current.length * accounts.length,
    extras,
    current,
    removed,
    accounts,
  };
}

export { OWNER, SHAPES, orgScenario };
export type { OrgScenario, OrgShape };
