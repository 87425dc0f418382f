/**
 * EC2 as AWS documents it, where the sandbox used to be more lenient or stricter (issue 26, items 2, 3, 7
 * and 9), through the AWS CLI where it can send the request and the SDK otherwise:
 * - CreateTags counts the tags a resource already has: "Maximum number of tags per resource – 50" (EC2 User
 *   Guide, "Tag restrictions", https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions),
 *   `TagLimitExceeded` (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html).
 * - DescribeImages: "Recently deregistered images appear in the returned results for a short interval and then
 *   return empty results" (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeImages.html); the
 *   model has no parameter asking for them (no IncludeDeregistered), so a plain describe shows them.
 * - A disabled AMI cannot be shared (EC2 User Guide, "Disable an Amazon EC2 AMI").
 * - Launch permissions name organizations and OUs by their ARNs (EC2 API Reference, LaunchPermission).
 * - EnableImageDeprecation: "You can't specify a date in the past. The upper limit for DeprecateAt is 10 years
 *   from now" (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EnableImageDeprecation.html).
 * - Block public access for AMIs: GetImageBlockPublicAccessState, EnableImageBlockPublicAccess
 *   (`block-new-sharing`: "Any attempt to publicly share your AMIs in the specified Region is blocked"),
 *   DisableImageBlockPublicAccess (`unblocked`).
 * - CreateLaunchTemplateVersion with a reused ClientToken and other parameters: `IdempotentParameterMismatch`
 *   ("The request uses the same client token as a previous, but non-identical request", Error codes).
 * - DescribeImageReferences: IncludeAllResourceTypes with ResourceTypes is allowed ("If you also specify
 *   ResourceTypes with ResourceTypeOptions, your specified values override the default values"); MaxResults has
 *   a minimum of 5 and no maximum in the model (DescribeImageReferencesMaxResults).
 */
import {
  CreateLaunchTemplateCommand,
  CreateLaunchTemplateVersionCommand,
  CreateTagsCommand,
  DescribeImageReferencesCommand,
  DescribeImagesCommand,
  DisableImageBlockPublicAccessCommand,
  DisableImageCommand,
  EnableImageBlockPublicAccessCommand,
  GetImageBlockPublicAccessStateCommand,
  ModifyImageAttributeCommand,
} from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { DEREGISTERED_VISIBLE_MS } from '../../sandbox/emulator/services/ec2/access.ts';
import { registerImage } from '../../sandbox/emulator/services/ec2/index.ts';
import { lintDistributionConfiguration } from '../../src/lib/preflight/lint.ts';
import { HAS_AWS_CLI, awsCli, failure, useEmulator } from '../helpers/fidelity.ts';
import { clients } from '../helpers/sandbox.ts';

const OWNER = '111111111111';
const REGION = 'us-east-1';

function tags(n: number, prefix = 'k'): { Key: string; Value: string }[] {
  return Array.from({ length: n }, (_, i) => ({ Key: `${prefix}${i}`, Value: 'v' }));
}

describe('EC2 as AWS documents it', () => {
  const emulator = useEmulator({ accounts: [OWNER, '222222222222'], regions: [REGION] });
  const ec2 = () => clients(emulator.get().url, OWNER).ec2;
  const image = (name: string, extra: Record<string, string> = {}) =>
    registerImage(emulator.get().state, emulator.get().clock, { account: OWNER, region: REGION, name, tags: extra }).imageId;
  const cli = (...args: string[]) => awsCli(emulator.get().url, OWNER, REGION, args);

  describe('CreateTags counts the tags already on the resource (at most 50)', () => {
    it('refuses a 51st tag with TagLimitExceeded and changes nothing; overwriting a key it has is no new tag (SDK)', async () => {
      const id = image('tagged', Object.fromEntries(tags(48).map((t) => [t.Key, t.Value])));
      const error = await failure(ec2().send(new CreateTagsCommand({ Resources: [id], Tags: tags(3, 'new') })));
      expect(error?.name).toBe('TagLimitExceeded');
      expect(emulator.get().state.findImage(REGION, id)?.tags.size).toBe(48);
      await ec2().send(new CreateTagsCommand({ Resources: [id], Tags: [...tags(2, 'new'), { Key: 'k0', Value: 'changed' }] }));
      expect(emulator.get().state.findImage(REGION, id)?.tags.size).toBe(50);
    });

    it.runIf(HAS_AWS_CLI)('the same through the AWS CLI', async () => {
      const id = image('tagged-cli', Object.fromEntries(tags(50).map((t) => [t.Key, t.Value])));
      const answer = await cli('ec2', 'create-tags', '--resources', id, '--tags', 'Key=one-more,Value=x');
      expect(answer.error).toBe('TagLimitExceeded');
    });

    it("lint refuses amiTags that leave no room for Image Builder's two tags and the reconciler's source tag", () => {
      const config = (n: number) => ({
        name: 'golden',
        distributions: [
          {
            region: REGION,
            amiDistributionConfiguration: {
              name: 'golden-{{imagebuilder:buildDate}}',
              amiTags: Object.fromEntries(tags(n).map((t) => [t.Key, t.Value])),
            },
          },
        ],
      });
      const limit = (n: number) => lintDistributionConfiguration(config(n)).filter((f) => f.rule === 'ami-tag-limit');
      expect(limit(47)).toStrictEqual([]);
      expect(limit(48)).toMatchObject([
        {
          severity: 'error',
          path: 'distributions[0].amiDistributionConfiguration.amiTags',
          message: expect.stringMatching(/48 amiTags, .* make 51 tags on the AMI; EC2 allows 50 per resource \(TagLimitExceeded\)/),
        },
      ]);
    });
  });

  it.runIf(HAS_AWS_CLI)('a deregistered AMI stays visible as deregistered for a short interval, then is gone (AWS CLI)', async () => {
    const id = image('deregistered-soon');
    await cli('ec2', 'deregister-image', '--image-id', id);
    const seen = (await cli('ec2', 'describe-images', '--owners', 'self', '--filters', `Name=image-id,Values=${id}`)).json as {
      Images: { ImageId: string; State: string }[];
    };
    expect(seen.Images.map((i) => [i.ImageId, i.State])).toStrictEqual([[id, 'deregistered']]);
    emulator.get().clock.advance(DEREGISTERED_VISIBLE_MS);
    const later = await ec2().send(new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'image-id', Values: [id] }] }));
    expect(later.Images).toStrictEqual([]);
  });

  it('a disabled AMI cannot be shared; a malformed organization or OU ARN is refused (SDK)', async () => {
    const id = image('shared');
    const share = (entry: Record<string, string>) =>
      failure(ec2().send(new ModifyImageAttributeCommand({ ImageId: id, LaunchPermission: { Add: [entry] } })));
    expect((await share({ OrganizationArn: 'arn:aws:organizations::111111111111:organization/o-bad' }))?.name).toBe(
      'InvalidAMIAttributeItemValue',
    );
    expect((await share({ OrganizationalUnitArn: 'ou-abcd-12345678' }))?.name).toBe('InvalidAMIAttributeItemValue');
    expect(await share({ OrganizationArn: 'arn:aws:organizations::111111111111:organization/o-a1b2c3d4e5' })).toBeUndefined();
    await ec2().send(new DisableImageCommand({ ImageId: id }));
    expect((await share({ UserId: '222222222222' }))?.name).toBe('OperationNotPermitted');
  });

  it.runIf(HAS_AWS_CLI)('deprecation dates in the past or more than 10 years ahead are refused (AWS CLI)', async () => {
    const id = image('deprecated');
    const day = 86_400_000;
    const now = emulator.get().clock.now();
    const at = (ms: number) => new Date(now + ms).toISOString();
    const [past, far, fine] = await Promise.all([
      cli('ec2', 'enable-image-deprecation', '--image-id', id, '--deprecate-at', at(-day)),
      cli('ec2', 'enable-image-deprecation', '--image-id', id, '--deprecate-at', at(11 * 365 * day)),
      cli('ec2', 'enable-image-deprecation', '--image-id', id, '--deprecate-at', at(30 * day)),
    ]);
    expect([past.error, far.error, fine.code]).toStrictEqual(['InvalidParameterValue', 'InvalidParameterValue', 0]);
  });

  // the AWS CLI 2.9 predates block public access for AMIs (2023) and DescribeImageReferences (2024): the SDK sends them
  it('block public access for AMIs: its state, and public sharing refused while it blocks (SDK)', async () => {
    const id = image('public');
    expect(await ec2().send(new GetImageBlockPublicAccessStateCommand({}))).toMatchObject({ ImageBlockPublicAccessState: 'unblocked' });
    expect(await ec2().send(new EnableImageBlockPublicAccessCommand({ ImageBlockPublicAccessState: 'block-new-sharing' }))).toMatchObject({
      ImageBlockPublicAccessState: 'block-new-sharing',
    });
    const share = () => ec2().send(new ModifyImageAttributeCommand({ ImageId: id, LaunchPermission: { Add: [{ Group: 'all' }] } }));
    expect((await failure(share()))?.name).toBe('OperationNotPermitted');
    expect(await ec2().send(new DisableImageBlockPublicAccessCommand({}))).toMatchObject({ ImageBlockPublicAccessState: 'unblocked' });
    expect(await failure(share())).toBeUndefined();
  });

  it('a ClientToken reused with other parameters: IdempotentParameterMismatch; with the same, the first version (SDK)', async () => {
    const id = image('template-image');
    await ec2().send(new CreateLaunchTemplateCommand({ LaunchTemplateName: 'fidelity', LaunchTemplateData: { InstanceType: 't3.micro' } }));
    const first = await ec2().send(
      new CreateLaunchTemplateVersionCommand({
        LaunchTemplateName: 'fidelity',
        ClientToken: 'token-1',
        LaunchTemplateData: { ImageId: id },
      }),
    );
    const again = await ec2().send(
      new CreateLaunchTemplateVersionCommand({
        LaunchTemplateName: 'fidelity',
        ClientToken: 'token-1',
        LaunchTemplateData: { ImageId: id },
      }),
    );
    expect(again.LaunchTemplateVersion?.VersionNumber).toBe(first.LaunchTemplateVersion?.VersionNumber);
    const other = await failure(
      ec2().send(
        new CreateLaunchTemplateVersionCommand({
          LaunchTemplateName: 'fidelity',
          ClientToken: 'token-1',
          LaunchTemplateData: { ImageId: id, InstanceType: 'm5.large' },
        }),
      ),
    );
    expect(other?.name).toBe('IdempotentParameterMismatch');
  });

  it('DescribeImageReferences takes IncludeAllResourceTypes with ResourceTypes, and MaxResults above 1000 (SDK)', async () => {
    const id = image('referenced');
    const out = await ec2().send(
      new DescribeImageReferencesCommand({
        ImageIds: [id],
        IncludeAllResourceTypes: true,
        ResourceTypes: [
          { ResourceType: 'ec2:LaunchTemplate', ResourceTypeOptions: [{ OptionName: 'version-depth', OptionValues: ['20'] }] },
        ],
        MaxResults: 5000,
      }),
    );
    expect(out.ImageReferences).toStrictEqual([]);
    // below the model's minimum of 5: refused
    const small = await failure(
      ec2().send(new DescribeImageReferencesCommand({ ImageIds: [id], IncludeAllResourceTypes: true, MaxResults: 4 })),
    );
    expect(small?.name).toBe('InvalidParameterValue');
  });
});
