/** The doctor's plan (pure): which cells, and which actions on which resources each one is checked for. */
import type { DistributionConfiguration } from '@aws-sdk/client-imagebuilder';
import { describe, expect, it } from 'vitest';
import { parseDistributionConfigurationArn } from '../../src/lib/core/arn.ts';
import { planChecks } from '../../src/lib/preflight/doctor.ts';

const configuration: DistributionConfiguration = {
  name: 'golden',
  timeoutMinutes: 360,
  distributions: [
    {
      region: 'cn-north-1',
      amiDistributionConfiguration: { targetAccountIds: ['222222222222'] },
      launchTemplateConfigurations: [{ launchTemplateId: 'lt-0123456789abcdef0', accountId: '222222222222' }],
      fastLaunchConfigurations: [{ enabled: true, launchTemplate: { launchTemplateName: 'fl' } }],
      ssmParameterConfigurations: [{ parameterName: '/golden/latest', amiAccountId: '333333333333' }],
    },
  ],
};
const arn = parseDistributionConfigurationArn('arn:aws-cn:imagebuilder:cn-north-1:111111111111:distribution-configuration/golden');

describe('planChecks', () => {
  it('checks each cell for what its settings need, in the partition of the configuration', () => {
    const plans = planChecks(configuration, arn, { role: 'repair', fastLaunchInheritForTargets: true });
    expect(plans.map((p) => `${p.region}/${p.accountId}:${p.groups.map((g) => g.name).join(',')}`)).toEqual([
      // the owner builds here; the target gets its copy, its launch template and the owner's Fast Launch (inherited)
      'cn-north-1/111111111111:observe,images,FL,FL-launch,FL-role',
      'cn-north-1/222222222222:observe,images,LT,FL,FL-launch,FL-role',
      // named only by the SSM setting
      'cn-north-1/333333333333:observe,images,SSM',
    ]);
    const target = plans[1];
    expect(target?.groups.find((g) => g.name === 'LT')?.resources).toEqual([
      'arn:aws-cn:ec2:cn-north-1:222222222222:launch-template/lt-0123456789abcdef0',
    ]);
    // a template named, not by id: any template of the account
    expect(target?.groups.find((g) => g.name === 'FL')?.resources).toEqual([
      'arn:aws-cn:ec2:cn-north-1::image/*',
      'arn:aws-cn:ec2:cn-north-1:222222222222:launch-template/*',
    ]);
    expect(target?.groups.find((g) => g.name === 'FL-role')).toMatchObject({
      context: { 'iam:AWSServiceName': 'ec2fastlaunch.amazonaws.com' },
      statement: 'FastLaunchServiceLinkedRole',
    });
    expect(plans[2]?.groups.find((g) => g.name === 'SSM')?.resources).toEqual([
      'arn:aws-cn:ssm:cn-north-1:333333333333:parameter/golden/latest',
    ]);
  });

  it.each([
    ['a bare key id: a key of the account the copy is made in', 'abcd-1234', 'arn:aws-cn:kms:cn-north-1:222222222222:key/abcd-1234'],
    ['a key ARN, as given', 'arn:aws-cn:kms:cn-north-1:999999999999:key/abcd', 'arn:aws-cn:kms:cn-north-1:999999999999:key/abcd'],
    ['an alias: some key of the account', 'alias/golden', 'arn:aws-cn:kms:cn-north-1:222222222222:key/*'],
    [
      'an alias ARN: some key of its account',
      'arn:aws-cn:kms:cn-north-1:999999999999:alias/golden',
      'arn:aws-cn:kms:cn-north-1:999999999999:key/*',
    ],
  ])('an encrypted copy with Fast Launch is checked for the EBS rights on its key: %s', (_, kmsKeyId, key) => {
    const encrypted = structuredClone(configuration);
    const [d] = encrypted.distributions ?? [];
    if (d?.amiDistributionConfiguration !== undefined) d.amiDistributionConfiguration.kmsKeyId = kmsKeyId;
    const [plan] = planChecks(encrypted, arn, { role: 'repair', fastLaunchInheritForTargets: true, accounts: ['222222222222'] });
    expect(plan?.groups.find((g) => g.name === 'FL-kms')).toMatchObject({
      resources: [key],
      context: { 'kms:ViaService': 'ec2.cn-north-1.amazonaws.com', 'kms:CallerAccount': '222222222222' },
    });
    expect(plan?.groups.find((g) => g.name === 'FL-grant')).toMatchObject({
      actions: ['kms:CreateGrant'],
      resources: [key],
      context: { 'kms:GrantIsForAWSResource': true },
    });
  });

  it('the AWS managed key aws/ebs needs no check; Fast Launch without a template needs the VPC it builds', () => {
    const plain = structuredClone(configuration);
    const [d] = plain.distributions ?? [];
    if (d?.amiDistributionConfiguration !== undefined) d.amiDistributionConfiguration.kmsKeyId = 'alias/aws/ebs';
    for (const f of d?.fastLaunchConfigurations ?? []) delete f.launchTemplate;
    const [plan] = planChecks(plain, arn, { role: 'repair', fastLaunchInheritForTargets: true, accounts: ['222222222222'] });
    expect(plan?.groups.map((g) => g.name)).toEqual(['observe', 'images', 'LT', 'FL', 'FL-launch', 'FL-role', 'FL-network']);
    expect(plan?.groups.at(-1)).toMatchObject({
      actions: ['ec2:CreateVpc'],
      resources: ['arn:aws-cn:ec2:cn-north-1:222222222222:vpc/*'],
      context: { 'aws:RequestTag/CreatedBy': 'EC2 Fast Launch', 'aws:CalledVia': 'ec2fastlaunch.amazonaws.com' },
    });
  });

  it('checks the export to S3 where the reconciler checks it, and the license configurations named', () => {
    const exported = structuredClone(configuration);
    const [d] = exported.distributions ?? [];
    if (d === undefined) throw new Error('no distribution');
    d.s3ExportConfiguration = { roleName: 'vmimport', diskImageFormat: 'RAW', s3Bucket: 'exports', s3Prefix: 'golden/' };
    const license = 'arn:aws-cn:license-manager:cn-north-1:111111111111:license-configuration:lic-0123456789abcdef0123456789abcdef';
    d.licenseConfigurationArns = [license];
    const plans = planChecks(exported, arn, { role: 'repair', fastLaunchInheritForTargets: true });
    const owner = plans.find((p) => p.accountId === '111111111111');
    // the owner's cell of the region checks the export (the target's does not)
    expect(owner?.groups.filter((g) => g.name.startsWith('export')).map((g) => [g.name, g.actions, g.resources])).toEqual([
      ['export', ['ec2:DescribeExportImageTasks'], ['*']],
      // only the key VM Export writes, <prefix>export-ami-<id>.<format>: what the role grants
      ['export-file', ['s3:GetObject'], ['arn:aws-cn:s3:::exports/golden/export-ami-*']],
      ['export-list', ['s3:ListBucket'], ['arn:aws-cn:s3:::exports']],
    ]);
    expect(plans.find((p) => p.accountId === '222222222222')?.groups.map((g) => g.name)).not.toContain('export');
    expect(owner?.groups.find((g) => g.name === 'license-add')).toMatchObject({
      actions: ['license-manager:UpdateLicenseSpecificationsForResource'],
      resources: [license],
      statement: 'LicenseAssociate',
    });
  });

  it("without inheritance, a target copy is not checked for the owner's Fast Launch", () => {
    const plans = planChecks(configuration, arn, { role: 'repair', fastLaunchInheritForTargets: false, accounts: ['222222222222'] });
    expect(plans.map((p) => p.groups.map((g) => g.name).join(','))).toEqual(['observe,images,LT']);
  });

  it('--cleanup checks the cleanup groups, with the context their conditions test', () => {
    const plans = planChecks(configuration, arn, {
      role: 'cleanup',
      fastLaunchInheritForTargets: true,
      regions: ['cn-north-1'],
      accounts: ['333333333333'],
    });
    expect(plans).toHaveLength(1);
    expect(plans[0]?.groups.map((g) => [g.name, g.context])).toEqual([
      ['observe', undefined],
      ['consumers', undefined],
      ['stacks', undefined],
      ['batch-emr', undefined],
      ['clusters', undefined],
      ['refs', { 'aws:CalledVia': 'ec2-images.amazonaws.com' }],
      [
        'retire',
        { 'aws:ResourceTag/imagebuilder-reconciler:source-image': `arn:aws-cn:imagebuilder:${arn.region}:${arn.accountId}:image/*` },
      ],
      // cleanup marks an AMI's snapshots, and may delete only snapshots so marked
      ['mark', { 'aws:TagKeys': 'imagebuilder-reconciler:retiring' }],
      ['snapshots', { 'aws:ResourceTag/imagebuilder-reconciler:retiring': 'ami-00000000000000000' }],
    ]);
    // a stack's template is read on the cell account's own stacks, in the partition of the region
    expect(plans[0]?.groups.find((g) => g.name === 'stacks')?.resources).toEqual([
      'arn:aws-cn:cloudformation:cn-north-1:333333333333:stack/*/*',
    ]);
    // and an EMR cluster's reads on the cell account's own clusters
    expect(plans[0]?.groups.find((g) => g.name === 'clusters')?.resources).toEqual([
      'arn:aws-cn:elasticmapreduce:cn-north-1:333333333333:cluster/*',
    ]);
    expect(planChecks(configuration, arn, { role: 'repair', fastLaunchInheritForTargets: true, regions: ['us-east-1'] })).toEqual([]);
  });
});
