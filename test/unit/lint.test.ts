import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type Finding, lintDistributionConfiguration } from '../../src/lib/preflight/lint.ts';

function fixture(name: string): unknown {
  return JSON.parse(readFileSync(new URL(`../fixtures/lint/${name}.json`, import.meta.url), 'utf8'));
}

/** A valid configuration with one distribution, changed by each case. */
function config(distribution: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    name: 'golden',
    distributions: [{ region: 'us-east-1', amiDistributionConfiguration: { name: 'golden-{{imagebuilder:buildDate}}' }, ...distribution }],
    ...extra,
  };
}

function rules(findings: Finding[]): string[] {
  return findings.map((f) => `${f.severity} ${f.rule} ${f.path}`);
}

describe('lint rules (table-driven)', () => {
  it.each([
    {
      reason: "launchPermissions (as in AWS's guide) is not a field; the SDK drops it and nothing is shared",
      input: config({ amiDistributionConfiguration: { launchPermissions: { userIds: ['123456789012'] } } }),
      want: 'error unknown-field distributions[0].amiDistributionConfiguration.launchPermissions',
      fix: 'rename it to "launchPermission"',
    },
    {
      reason: 'tags inside amiDistributionConfiguration is not a field; amiTags is',
      input: config({ amiDistributionConfiguration: { tags: { Team: 'x' } } }),
      want: 'error unknown-field distributions[0].amiDistributionConfiguration.tags',
      fix: 'rename it to "amiTags"',
    },
    {
      reason: 'a misspelling gets the closest field name',
      input: config({ amiDistributionConfiguration: { targetAcountIds: ['123456789012'] } }),
      want: 'error unknown-field distributions[0].amiDistributionConfiguration.targetAcountIds',
      fix: 'rename it to "targetAccountIds"',
    },
    {
      reason: 'maxParallelLaunches below 6 is rejected by EC2',
      input: config({ fastLaunchConfigurations: [{ enabled: true, maxParallelLaunches: 4 }] }),
      want: 'error fast-launch-parallel distributions[0].fastLaunchConfigurations[0].maxParallelLaunches',
    },
    {
      reason: 'targetResourceCount out of range',
      input: config({ fastLaunchConfigurations: [{ enabled: true, snapshotConfiguration: { targetResourceCount: 0 } }] }),
      want: 'error model-range distributions[0].fastLaunchConfigurations[0].snapshotConfiguration.targetResourceCount',
    },
    {
      reason: '$Latest lets template editors pass roles to Fast Launch instances: pin a number',
      input: config({
        fastLaunchConfigurations: [{ enabled: true, launchTemplate: { launchTemplateName: 'fl', launchTemplateVersion: '$Latest' } }],
      }),
      want: 'warning fast-launch-version distributions[0].fastLaunchConfigurations[0].launchTemplate.launchTemplateVersion',
    },
    {
      reason: 'both a template id and a name',
      input: config({
        fastLaunchConfigurations: [
          {
            enabled: true,
            launchTemplate: { launchTemplateId: 'lt-0123456789abcdef0', launchTemplateName: 'fl', launchTemplateVersion: '1' },
          },
        ],
      }),
      want: 'error fast-launch-template distributions[0].fastLaunchConfigurations[0].launchTemplate',
    },
    {
      reason: 'Fast Launch for a target account: Image Builder will not apply it (the reconciler will)',
      input: config({
        amiDistributionConfiguration: { targetAccountIds: ['222222222222'] },
        fastLaunchConfigurations: [{ enabled: true, accountId: '222222222222' }],
      }),
      want: 'warning fast-launch-cross-account distributions[0].fastLaunchConfigurations[0].accountId',
    },
    {
      reason: 'more than five launch template configurations in a region',
      input: config({
        launchTemplateConfigurations: Array.from({ length: 6 }, (_, i) => ({ launchTemplateId: `lt-0123456789abcdef${i}` })),
      }),
      want: 'warning too-many-launch-templates distributions[0].launchTemplateConfigurations',
    },
    {
      reason: 'an SSM parameter account that is not a target account of the region',
      input: config({
        amiDistributionConfiguration: { targetAccountIds: ['222222222222'] },
        ssmParameterConfigurations: [{ parameterName: '/x', amiAccountId: '333333333333' }],
      }),
      want: 'error ssm-account distributions[0].ssmParameterConfigurations[0].amiAccountId',
    },
    {
      reason: 'public sharing',
      input: config({ amiDistributionConfiguration: { launchPermission: { userGroups: ['all'] } } }),
      want: 'warning public-sharing distributions[0].amiDistributionConfiguration.launchPermission.userGroups',
    },
    {
      reason: "48 amiTags: with Image Builder's two tags and the source tag, 51 on the AMI (EC2 allows 50)",
      input: config({
        amiDistributionConfiguration: { amiTags: Object.fromEntries(Array.from({ length: 48 }, (_, i) => [`k${i}`, 'v'])) },
      }),
      want: 'error ami-tag-limit distributions[0].amiDistributionConfiguration.amiTags',
    },
    {
      reason: 'duplicate regions',
      input: {
        name: 'x',
        distributions: [
          { region: 'us-east-1', amiDistributionConfiguration: {} },
          { region: 'us-east-1', amiDistributionConfiguration: {} },
        ],
      },
      want: 'error duplicate-region distributions[1].region',
    },
    {
      reason: 'an AMI name that breaks the service pattern',
      input: config({ amiDistributionConfiguration: { name: 'golden/windows {{imagebuilder:buildDate}}' } }),
      want: 'error model-pattern distributions[0].amiDistributionConfiguration.name',
    },
    {
      reason: 'an AMI name longer than 127 characters',
      input: config({ amiDistributionConfiguration: { name: `g${'x'.repeat(130)}` } }),
      want: 'error model-length distributions[0].amiDistributionConfiguration.name',
    },
    {
      reason: 'a launch template given by name where an id is needed',
      input: config({ launchTemplateConfigurations: [{ launchTemplateId: 'web-fleet' }] }),
      want: 'error model-pattern distributions[0].launchTemplateConfigurations[0].launchTemplateId',
      fix: 'use the template ID (lt- and 17 characters), not its name',
    },
    {
      reason: 'a region without outputs',
      input: { name: 'x', distributions: [{ region: 'us-east-1' }] },
      want: 'error no-output distributions[0]',
    },
    {
      reason: 'a number where a string is expected',
      input: config({ amiDistributionConfiguration: { targetAccountIds: [123456789012] } }),
      want: 'error wrong-type distributions[0].amiDistributionConfiguration.targetAccountIds[0]',
    },
    // the cases of issue 12: what the service model rejects and lint used to miss
    {
      reason: 'a disk image format the model does not list',
      input: config({ s3ExportConfiguration: { roleName: 'export', diskImageFormat: 'QCOW2', s3Bucket: 'b' } }),
      want: 'error model-enum distributions[0].s3ExportConfiguration.diskImageFormat',
      fix: 'use one of VMDK, RAW, VHD',
    },
    {
      reason: 'a malformed organization ARN',
      input: config({
        amiDistributionConfiguration: {
          launchPermission: { organizationArns: ['arn:aws:organizations::123456789012:organization/o-short'] },
        },
      }),
      want: 'error model-pattern distributions[0].amiDistributionConfiguration.launchPermission.organizationArns[0]',
    },
    {
      reason: 'a malformed OU ARN',
      input: config({ amiDistributionConfiguration: { launchPermission: { organizationalUnitArns: ['ou-ab12-cdefgh34'] } } }),
      want: 'error model-pattern distributions[0].amiDistributionConfiguration.launchPermission.organizationalUnitArns[0]',
    },
    {
      reason: 'an aws: tag key',
      input: config({ amiDistributionConfiguration: { amiTags: { 'aws:team': 'x' } } }),
      want: 'error model-pattern distributions[0].amiDistributionConfiguration.amiTags.aws:team',
      fix: 'rename the tag key: keys starting with aws: are reserved for AWS',
    },
    {
      reason: 'a bad license configuration ARN',
      input: config({ licenseConfigurationArns: ['arn:aws:license-manager:us-east-1:123456789012:license-configuration/lic-1'] }),
      want: 'error model-pattern distributions[0].licenseConfigurationArns[0]',
    },
    {
      reason: 'a Fast Launch setting without enabled',
      input: config({ fastLaunchConfigurations: [{ maxParallelLaunches: 6 }] }),
      want: 'error model-required distributions[0].fastLaunchConfigurations[0].enabled',
      fix: 'add "enabled": true (false turns Fast Launch off)',
    },
    {
      reason: 'an S3 export without s3Bucket',
      input: config({ s3ExportConfiguration: { roleName: 'export', diskImageFormat: 'VMDK' } }),
      want: 'error model-required distributions[0].s3ExportConfiguration.s3Bucket',
    },
    {
      reason: 'a container distribution without targetRepository',
      input: config({ containerDistributionConfiguration: { containerTags: ['latest'] } }),
      want: 'error model-required distributions[0].containerDistributionConfiguration.targetRepository',
    },
    {
      reason: 'an empty description',
      input: config({}, { description: '' }),
      want: 'error model-length description',
      fix: 'remove the field, or give it a value: the service rejects it empty',
    },
    {
      reason: 'a user ID that is not 12 digits',
      input: config({ amiDistributionConfiguration: { launchPermission: { userIds: ['12345'] } } }),
      want: 'error model-pattern distributions[0].amiDistributionConfiguration.launchPermission.userIds[0]',
      fix: 'write the account ID as 12 digits, in quotes',
    },
    {
      reason: 'a configuration ARN that names the file, not the configuration',
      input: {
        distributionConfigurationArn: 'arn:aws:imagebuilder:us-east-1:111111111111:distribution-configuration/golden.json',
        distributions: [{ region: 'us-east-1', amiDistributionConfiguration: {} }],
      },
      want: 'error model-pattern distributionConfigurationArn',
    },
    {
      reason: 'targetOrganizationArns next to targetAccountIds: organizations are shared through launchPermission',
      input: config({
        amiDistributionConfiguration: { targetOrganizationArns: ['arn:aws:organizations::123456789012:organization/o-abcdefghij'] },
      }),
      want: 'error unknown-field distributions[0].amiDistributionConfiguration.targetOrganizationArns',
      fix: 'move it to distributions[0].amiDistributionConfiguration.launchPermission.organizationArns',
    },
    {
      reason: 'a Distribution-level field written inside amiDistributionConfiguration',
      input: config({ amiDistributionConfiguration: { fastLaunchConfigurations: [{ enabled: true }] } }),
      want: 'error unknown-field distributions[0].amiDistributionConfiguration.fastLaunchConfigurations',
      fix: 'move it up to distributions[0].fastLaunchConfigurations',
    },
    {
      reason: 'a missing region',
      input: { name: 'x', distributions: [{ amiDistributionConfiguration: {} }] },
      want: 'error model-required distributions[0].region',
    },
  ])('$reason', ({ input, want, fix }) => {
    const findings = lintDistributionConfiguration(input);
    expect(rules(findings)).toContain(want);
    const finding = findings.find((f) => `${f.severity} ${f.rule} ${f.path}` === want);
    expect(finding?.fix.length).toBeGreaterThan(0);
    if (fix !== undefined) expect(finding?.fix).toBe(fix);
  });

  it('does not ask for clientToken, which the AWS CLI and the SDK fill in', () => {
    expect(rules(lintDistributionConfiguration(config({})))).toStrictEqual([]);
  });

  it('accepts a Fast Launch accountId when no target accounts are listed and the owner is not known (it can only be the owner)', () => {
    const input = config({ fastLaunchConfigurations: [{ enabled: true, accountId: '111111111111' }] });
    expect(rules(lintDistributionConfiguration(input))).toStrictEqual([]);
    // with the owner known, another account still gets the error
    expect(rules(lintDistributionConfiguration(input, { owner: '999999999999' }))).toContain(
      'error fast-launch-account distributions[0].fastLaunchConfigurations[0].accountId',
    );
    expect(rules(lintDistributionConfiguration(input, { owner: '111111111111' }))).toStrictEqual([]);
  });

  it('finds nothing wrong in a sound configuration', () => {
    expect(lintDistributionConfiguration(fixture('good'))).toStrictEqual([]);
  });

  it("catches the misspelled fields of the update example in AWS's Image Builder guide", () => {
    expect(rules(lintDistributionConfiguration(fixture('aws-guide-update')))).toStrictEqual([
      'error unknown-field distributions[0].amiDistributionConfiguration.launchPermissions',
      'error unknown-field distributions[1].amiDistributionConfiguration.tags',
      'error unknown-field distributions[1].amiDistributionConfiguration.launchPermissions',
    ]);
  });

  it('catches the misspelled fields, the unresolved name reference and the disk format of the export example', () => {
    expect(rules(lintDistributionConfiguration(fixture('aws-guide-export')))).toStrictEqual([
      'error unknown-field distributions[0].amiDistributionConfiguration.tags',
      'error unknown-field distributions[0].amiDistributionConfiguration.launchPermissions',
      'error unknown-field distributions[1].amiDistributionConfiguration.tags',
      'error unknown-field distributions[1].amiDistributionConfiguration.launchPermissions',
      'error model-enum distributions[1].s3ExportConfiguration.diskImageFormat',
      'warning ami-name-reference distributions[1].amiDistributionConfiguration.name',
    ]);
  });
});
