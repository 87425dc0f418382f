import { describe, expect, it } from 'vitest';
import { buildPosition, compareBuilds, parseImageBuildArn } from '../../src/lib/core/arn.ts';
import { desiredImage, namePatternRegExp } from '../../src/lib/core/desired.ts';
import { InputError } from '../../src/lib/core/errors.ts';
import { TARGET_A, TARGET_B, TARGET_LT, windowsImage } from '../helpers/factories.ts';
import { OWN } from '../helpers/world.ts';

describe('desired cells from the configuration embedded in the image', () => {
  it('expects the owner where no targets are listed, and each target account where they are', () => {
    const desired = desiredImage(windowsImage(), { fastLaunchInheritForTargets: true });
    expect(desired.cells.map((c) => [c.key, c.origin])).toStrictEqual([
      [`eu-west-1/${TARGET_A}`, 'target'],
      [`eu-west-1/${TARGET_B}`, 'target'],
      [`us-east-1/${OWN}`, 'owner'],
    ]);
  });

  it('applies a launch template configuration to the account it names', () => {
    const desired = desiredImage(windowsImage(), { fastLaunchInheritForTargets: true });
    expect(desired.cells.find((c) => c.accountId === TARGET_A)?.launchTemplates).toStrictEqual([
      { launchTemplateId: TARGET_LT, setDefaultVersion: true },
    ]);
    expect(desired.cells.find((c) => c.accountId === TARGET_B)?.launchTemplates).toStrictEqual([]);
  });

  it('lets target-account copies inherit the owner Fast Launch setting by template name, or not, as configured', () => {
    const inherit = desiredImage(windowsImage(), { fastLaunchInheritForTargets: true });
    expect(inherit.cells.find((c) => c.accountId === TARGET_B)?.fastLaunch).toMatchObject({
      source: 'inherited',
      launchTemplate: { id: undefined, name: 'fast-launch', version: '$Latest' },
    });
    const no = desiredImage(windowsImage(), { fastLaunchInheritForTargets: false });
    expect(no.cells.find((c) => c.accountId === TARGET_B)?.fastLaunch).toBeUndefined();
  });

  it('always expects the build AMI in the owner account of the build region', () => {
    const image = windowsImage();
    const first = image.distributionConfiguration?.distributions?.[0];
    if (first?.amiDistributionConfiguration !== undefined) first.amiDistributionConfiguration.targetAccountIds = [TARGET_A];
    const desired = desiredImage(image, { fastLaunchInheritForTargets: true });
    expect(desired.cells.find((c) => c.key === `us-east-1/${OWN}`)?.origin).toBe('build');
  });

  it('rejects a configuration that names a region twice', () => {
    const image = windowsImage();
    const distributions = image.distributionConfiguration?.distributions ?? [];
    distributions.push({ ...distributions[0], region: 'us-east-1' });
    expect(() => desiredImage(image, { fastLaunchInheritForTargets: true })).toThrow(InputError);
  });

  it('carries amiTags and the source tag into every cell', () => {
    const desired = desiredImage(windowsImage(), { fastLaunchInheritForTargets: true });
    for (const cell of desired.cells)
      expect(cell.tags).toStrictEqual({ Team: 'platform', 'imagebuilder-reconciler:source-image': desired.arn.arn });
  });
});

describe('names and ARNs', () => {
  it.each([
    ['golden-{{imagebuilder:buildVersion}}-{{imagebuilder:buildDate}}', 'golden-3-2026-11-29T17-00-00.123Z', true],
    ['golden-{{imagebuilder:buildVersion}}-{{imagebuilder:buildDate}}', 'golden-4-2026-11-29T17-00-00', false],
    ['Name {{imagebuilder:buildDate}}', 'Name 2026-11-29T17:00:00Z', true],
    ['plain-name', 'plain-name 2026-11-29T17-00-00', true],
    ['plain-name', 'other-name', false],
  ])('pattern %s matches %s: %s', (pattern, name, expected) => {
    expect(namePatternRegExp(pattern, 3).test(name)).toBe(expected);
  });

  describe('the order of builds (compareBuilds, used by every comparison)', () => {
    const at = (version: string, buildNumber: number, dateCreated: string | undefined) => ({ version, buildNumber, dateCreated });
    const sorted = (builds: ReturnType<typeof at>[]) => [...builds].sort(compareBuilds).map((b) => `${b.version}/${b.buildNumber}`);

    it('orders by dateCreated first: a pipeline pointed back at recipe 1.0.0 builds a newer image than 2.0.0/1', () => {
      const broken = at('2.0.0', 1, '2026-11-29T10:00:00.000Z');
      const fixed = at('1.0.0', 2, '2026-11-29T11:00:00.000Z');
      expect(compareBuilds(fixed, broken)).toBeGreaterThan(0);
      expect(compareBuilds(broken, fixed)).toBeLessThan(0);
      // a build number does not outrank the clock either
      expect(compareBuilds(at('1.0.0', 9, '2026-11-29T10:00:00.000Z'), at('1.0.0', 10, '2026-11-29T09:59:59.999Z'))).toBeGreaterThan(0);
    });

    it('breaks a tie of dateCreated by semantic version (numerically), then build number; the same build is 0', () => {
      const same = '2026-11-29T10:00:00.000Z';
      expect(compareBuilds(at('1.2.0', 9, same), at('1.10.0', 1, same))).toBeLessThan(0);
      expect(compareBuilds(at('1.10.0', 2, same), at('1.10.0', 1, same))).toBeGreaterThan(0);
      expect(compareBuilds(at('1.10.0', 1, same), at('1.10.0', 1, '2026-11-29T10:00:00Z'))).toBe(0);
    });

    it('puts a build without a (readable) dateCreated before every dated one, ordering the undated by version', () => {
      const dated = at('1.0.0', 1, '2026-11-29T10:00:00.000Z');
      expect(compareBuilds(at('9.0.0', 1, undefined), dated)).toBeLessThan(0);
      expect(compareBuilds(dated, at('9.0.0', 1, 'yesterday'))).toBeGreaterThan(0);
      expect(compareBuilds(at('2.0.0', 1, undefined), at('1.0.0', 5, undefined))).toBeGreaterThan(0);
      // a total order: sorting any mix gives one answer whatever the input order
      const mix = [
        dated,
        at('9.0.0', 1, undefined),
        at('1.0.0', 2, '2026-11-29T09:00:00.000Z'),
        at('2.0.0', 1, undefined),
        at('0.1.0', 1, '2026-11-30T00:00:00.000Z'),
      ];
      const expected = ['2.0.0/1', '9.0.0/1', '1.0.0/2', '1.0.0/1', '0.1.0/1'];
      expect(sorted(mix)).toStrictEqual(expected);
      expect(sorted([...mix].reverse())).toStrictEqual(expected);
    });

    it('places a build ARN with its dateCreated, and nothing else', () => {
      expect(buildPosition('arn:aws:imagebuilder:us-east-1:111122223333:image/x/1.10.0/1', '2026-11-29T10:00:00.000Z')).toStrictEqual({
        arn: 'arn:aws:imagebuilder:us-east-1:111122223333:image/x/1.10.0/1',
        version: '1.10.0',
        buildNumber: 1,
        dateCreated: '2026-11-29T10:00:00.000Z',
      });
      expect(buildPosition('arn:aws:imagebuilder:us-east-1:111122223333:image/x/1.10.0', undefined)).toBeUndefined();
      expect(buildPosition(undefined, undefined)).toBeUndefined();
    });
  });

  it.each(['', 'arn:aws:ec2:us-east-1::image/ami-1', 'arn:aws:imagebuilder:us-east-1:1111:image/x/1.0.0/1'])(
    'rejects %j as an image build ARN',
    (value) => {
      expect(() => parseImageBuildArn(value)).toThrow(InputError);
    },
  );
});
