import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type Finding, lintDistributionConfiguration } from '../../src/lib/lint.ts';

function fixture(name: string): unknown {
  return JSON.parse(readFileSync(new URL(`../fixtures/lint/${name}.json`, import.meta.url), 'utf8'));
}

/** A valid configuration with one distribution, changed by each case. */
function config(distribution: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return { name: 'golden', distributions: [{ region: 'us-east-1', amiDistributionConfiguration: { name: 'golden-{{imagebuilder:buildDate}}' }, ...distribution }], ...extra };
}

function rules(findings: Finding[]): string[] {
  return findings.map((f) => `${f.severity} ${f.rule} ${f.path}`);
}

describe('lint rules (table-driven)', () => {
  it.each([
    {
      reason: 'launchPermissions (as in AWS\'s guide) is not a field; the SDK drops it and nothing is shared',
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
      want: 'error fast-launch-count distributions[0].fastLaunchConfigurations[0].snapshotConfiguration.targetResourceCount',
    },
    {
      reason: '$Latest lets template editors pass roles to Fast Launch instances: pin a number',
      input: config({ fastLaunchConfigurations: [{ enabled: true, launchTemplate: { launchTemplateName: 'fl', launchTemplateVersion: '$Latest' } }] }),
      want: 'warning fast-launch-version distributions[0].fastLaunchConfigurations[0].launchTemplate.launchTemplateVersion',
    },
    {
      reason: 'both a template id and a name',
      input: config({ fastLaunchConfigurations: [{ enabled: true, launchTemplate: { launchTemplateId: 'lt-0123456789abcdef0', launchTemplateName: 'fl', launchTemplateVersion: '1' } }] }),
      want: 'error fast-launch-template distributions[0].fastLaunchConfigurations[0].launchTemplate',
    },
    {
      reason: 'Fast Launch for a target account: Image Builder will not apply it (the reconciler will)',
      input: config({ amiDistributionConfiguration: { targetAccountIds: ['222222222222'] }, fastLaunchConfigurations: [{ enabled: true, accountId: '222222222222' }] }),
      want: 'warning fast-launch-cross-account distributions[0].fastLaunchConfigurations[0].accountId',
    },
    {
      reason: 'more than five launch template configurations in a region',
      input: config({ launchTemplateConfigurations: Array.from({ length: 6 }, (_, i) => ({ launchTemplateId: `lt-0123456789abcdef${i}` })) }),
      want: 'warning too-many-launch-templates distributions[0].launchTemplateConfigurations',
    },
    {
      reason: 'an SSM parameter account that is not a target account of the region',
      input: config({ amiDistributionConfiguration: { targetAccountIds: ['222222222222'] }, ssmParameterConfigurations: [{ parameterName: '/x', amiAccountId: '333333333333' }] }),
      want: 'error ssm-account distributions[0].ssmParameterConfigurations[0].amiAccountId',
    },
    {
      reason: 'public sharing',
      input: config({ amiDistributionConfiguration: { launchPermission: { userGroups: ['all'] } } }),
      want: 'warning public-sharing distributions[0].amiDistributionConfiguration.launchPermission.userGroups',
    },
    {
      reason: 'duplicate regions',
      input: { name: 'x', distributions: [{ region: 'us-east-1', amiDistributionConfiguration: {} }, { region: 'us-east-1', amiDistributionConfiguration: {} }] },
      want: 'error duplicate-region distributions[1].region',
    },
    {
      reason: 'an AMI name that breaks the service pattern',
      input: config({ amiDistributionConfiguration: { name: 'golden/windows {{imagebuilder:buildDate}}' } }),
      want: 'error ami-name-pattern distributions[0].amiDistributionConfiguration.name',
    },
    {
      reason: 'an AMI name longer than 127 characters',
      input: config({ amiDistributionConfiguration: { name: `g${'x'.repeat(130)}` } }),
      want: 'error ami-name-length distributions[0].amiDistributionConfiguration.name',
    },
    {
      reason: 'a launch template given by name where an id is needed',
      input: config({ launchTemplateConfigurations: [{ launchTemplateId: 'web-fleet' }] }),
      want: 'error launch-template-id distributions[0].launchTemplateConfigurations[0].launchTemplateId',
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
  ])('$reason', ({ input, want, fix }) => {
    const findings = lintDistributionConfiguration(input);
    expect(rules(findings)).toContain(want);
    const finding = findings.find((f) => `${f.severity} ${f.rule} ${f.path}` === want);
    expect(finding?.fix.length).toBeGreaterThan(0);
    if (fix !== undefined) expect(finding?.fix).toBe(fix);
  });

  it('finds nothing wrong in a sound configuration', () => {
    expect(lintDistributionConfiguration(fixture('good'))).toStrictEqual([]);
  });

  it('catches the misspelled fields of the update example in AWS\'s Image Builder guide', () => {
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
      'error s3-export-format distributions[1].s3ExportConfiguration.diskImageFormat',
      'warning ami-name-reference distributions[1].amiDistributionConfiguration.name',
    ]);
  });
});
