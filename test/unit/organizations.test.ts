/** Listing the accounts of the organizations and OUs an AMI is shared with (AWS Organizations behind aws-sdk-client-mock). */
import type { Image } from '@aws-sdk/client-imagebuilder';
import {
  type Account,
  type AccountState,
  DescribeOrganizationCommand,
  ListAccountsCommand,
  ListAccountsForParentCommand,
  ListOrganizationalUnitsForParentCommand,
  OrganizationsClient,
  TooManyRequestsException,
  AWSOrganizationsNotInUseException,
} from '@aws-sdk/client-organizations';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { desiredImage } from '../../src/lib/core/desired.ts';
import { listSharedOrganizations } from '../../src/lib/aws/organizations.ts';
import { buildReport, finalize } from '../../src/lib/reconcile/report.ts';

const ORG = 'o-a1b2c3d4e5';
const ORG_ARN = `arn:aws:organizations::111111111111:organization/${ORG}`;
const UNIT = 'ou-a1b2-11111111';
const UNIT_ARN = `arn:aws:organizations::111111111111:ou/${ORG}/${UNIT}`;

function image(launchPermission: object, amiTags: Record<string, string> = { Team: 'platform' }): Image {
  return {
    arn: 'arn:aws:imagebuilder:us-east-1:111111111111:image/golden/1.0.0/1',
    state: { status: 'AVAILABLE' },
    outputResources: { amis: [{ region: 'eu-west-1', accountId: '222222222222', image: 'ami-0123456789abcdef0' }] },
    distributionConfiguration: {
      name: 'golden',
      timeoutMinutes: 360,
      distributions: [
        { region: 'eu-west-1', amiDistributionConfiguration: { targetAccountIds: ['222222222222'], amiTags, launchPermission } },
      ],
    },
  };
}

const account = (Id: string, State: AccountState = 'ACTIVE'): Account => ({ Id, State });

describe('listSharedOrganizations', () => {
  const mock = mockClient(OrganizationsClient);
  const client = new OrganizationsClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, maxAttempts: 1 });
  const options = { required: false, accountId: '111111111111' };
  beforeEach(() => {
    mock.reset();
    mock.on(DescribeOrganizationCommand).resolves({ Organization: { Id: ORG } });
  });

  it('lists every page of an organization and the OUs below an OU, active accounts only', async () => {
    mock
      .on(ListAccountsCommand)
      .resolvesOnce({ Accounts: [account('333333333333'), account('444444444444', 'SUSPENDED')], NextToken: 't' })
      .resolves({ Accounts: [account('555555555555')] });
    mock.on(ListAccountsForParentCommand, { ParentId: UNIT }).resolves({ Accounts: [account('666666666666')] });
    mock.on(ListOrganizationalUnitsForParentCommand, { ParentId: UNIT }).resolves({ OrganizationalUnits: [{ Id: 'ou-a1b2-22222222' }] });
    mock
      .on(ListAccountsForParentCommand, { ParentId: 'ou-a1b2-22222222' })
      .resolves({ Accounts: [account('777777777777'), account('888888888888', 'PENDING_CLOSURE')] });
    mock.on(ListOrganizationalUnitsForParentCommand, { ParentId: 'ou-a1b2-22222222' }).resolves({ OrganizationalUnits: [] });
    const listed = await listSharedOrganizations(
      image({ organizationArns: [ORG_ARN], organizationalUnitArns: [UNIT_ARN] }),
      client,
      options,
    );
    expect(listed).toEqual([
      { arn: ORG_ARN, status: 'listed', accounts: ['333333333333', '555555555555'] },
      { arn: UNIT_ARN, status: 'listed', accounts: ['666666666666', '777777777777'] },
    ]);
  });

  it('calls nothing for a distribution without amiTags (nothing to tag) or without organizations', async () => {
    expect(await listSharedOrganizations(image({ organizationArns: [ORG_ARN] }, {}), client, options)).toEqual([]);
    expect(await listSharedOrganizations(image({ userIds: ['333333333333'] }), client, options)).toEqual([]);
    expect(mock.calls()).toHaveLength(0);
  });

  it('skips, with why, an account in no organization and an ARN of another organization; require makes them failed', async () => {
    mock
      .on(DescribeOrganizationCommand)
      .rejects(new AWSOrganizationsNotInUseException({ message: 'Your account is not a member of an organization.', $metadata: {} }));
    const none = await listSharedOrganizations(image({ organizationArns: [ORG_ARN] }), client, options);
    expect(none).toEqual([
      {
        arn: ORG_ARN,
        status: 'skipped',
        accounts: [],
        reason: expect.stringMatching(
          /DescribeOrganization: AWSOrganizationsNotInUseException\): the reconciler's account must be the organization's management account/,
        ),
      },
    ]);
    mock.on(DescribeOrganizationCommand).resolves({ Organization: { Id: 'o-ffffffffff' } });
    const other = await listSharedOrganizations(image({ organizationArns: [ORG_ARN] }), client, { ...options, required: true });
    expect(other).toEqual([
      {
        arn: ORG_ARN,
        status: 'failed',
        accounts: [],
        reason: expect.stringMatching(/is of organization o-a1b2c3d4e5; the reconciler's account is in o-ffffffffff/),
      },
    ]);
  });

  it('leaves a throttled listing pending (a recheck lists again), and gives it up as failed with the run', async () => {
    mock.on(ListAccountsCommand).rejects(
      new TooManyRequestsException({
        message: "AWS Organizations can't complete your request because another request is already in progress.",
        $metadata: {},
      }),
    );
    const listed = await listSharedOrganizations(image({ organizationArns: [ORG_ARN] }), client, options);
    expect(listed).toEqual([
      { arn: ORG_ARN, status: 'pending', accounts: [], reason: expect.stringContaining('ListAccounts: TooManyRequestsException') },
    ]);
    const desired = {
      ...desiredImage(image({ organizationArns: [ORG_ARN] }), { fastLaunchInheritForTargets: true, sharedAccounts: true }),
      organizations: listed,
    };
    const report = buildReport({
      runId: 'r',
      trigger: 'manual',
      mode: 'apply',
      attempt: 1,
      firstSeenAt: '2026-01-01T00:00:00.000Z',
      startedAt: new Date(0),
      finishedAt: new Date(0),
      awsCalls: 0,
      desired,
      plan: { cells: [], imageActions: [], supersededBy: undefined },
      outcomes: [],
    });
    expect(report.outcome).toBe('pending');
    const given = finalize(report, 'still pending after 12 attempt(s)');
    expect(given.outcome).toBe('failed');
    expect(given.organizations?.[0]).toMatchObject({ status: 'failed', reason: expect.stringMatching(/gave up: still pending after 12/) });
  });
});

describe('desiredImage with organization accounts', () => {
  it('makes a shared cell for each listed account not already a cell, once, after userIds', () => {
    const shared = image({ userIds: ['333333333333'], organizationArns: [ORG_ARN], organizationalUnitArns: [UNIT_ARN] });
    const accounts = new Map([
      [ORG_ARN, ['222222222222', '333333333333', '444444444444']],
      [UNIT_ARN, ['444444444444', '555555555555']],
    ]);
    const cells = desiredImage(shared, { fastLaunchInheritForTargets: true, sharedAccounts: true, organizationAccounts: accounts }).cells;
    // 222222222222 holds a copy (a target): it is no shared cell
    expect(cells.map((c) => `${c.key}:${c.origin}`)).toEqual([
      'eu-west-1/222222222222:target',
      'eu-west-1/333333333333:shared',
      'eu-west-1/444444444444:shared',
      'eu-west-1/555555555555:shared',
      'us-east-1/111111111111:build',
    ]);
  });
});
