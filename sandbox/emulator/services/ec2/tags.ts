import type { CreateTagsRequest } from '@aws-sdk/client-ec2';
import { AwsError } from '../../protocol/errors.ts';
import type { Ctx } from '../../server.ts';
import type { Ami } from '../../state.ts';
import { validateTags } from '../common.ts';
import { canSee, here } from './access.ts';

type Taggable = { tags: Map<string, string> };

function taggable(ctx: Ctx, id: string): Taggable {
  const store = here(ctx);
  const found: Taggable | undefined =
    store.images.get(id) ??
    store.snapshots.get(id) ??
    store.launchTemplates.get(id) ??
    (store.instances.get(id) === undefined ? undefined : { tags: new Map() });
  if (found === undefined || (found as Ami).state === 'deregistered') {
    if (id.startsWith('ami-')) {
      // An AMI shared with the caller takes the caller's own tags, visible only to the caller (EC2 User Guide,
      // "Share an AMI with specific AWS accounts", Considerations: "User-defined tags that you attach to a
      // shared AMI are available only to your AWS account"). An AMI the caller cannot see does not exist for
      // it: EC2 answers InvalidAMIID.NotFound, as DescribeImages does for an id it cannot see.
      const elsewhere = ctx.env.state.findImage(ctx.region, id);
      if (elsewhere !== undefined && elsewhere.state !== 'deregistered' && canSee(elsewhere, ctx.account, ctx.env.state)) {
        let own = elsewhere.accountTags.get(ctx.account);
        if (own === undefined) {
          own = new Map();
          elsewhere.accountTags.set(ctx.account, own);
        }
        return { tags: own };
      }
      throw new AwsError('InvalidAMIID.NotFound', `The image id '[${id}]' does not exist`);
    }
    if (id.startsWith('snap-')) throw new AwsError('InvalidSnapshot.NotFound', `The snapshot '${id}' does not exist.`);
    if (id.startsWith('lt-')) throw new AwsError('InvalidLaunchTemplateId.NotFound', `The launch template ID '${id}' does not exist`);
    throw new AwsError('InvalidID', `The ID '${id}' is not valid`);
  }
  return found;
}

/** EC2's limit of user-defined tags per resource ("Maximum number of tags per resource – 50"). */
const MAX_TAGS_PER_RESOURCE = 50;

function createTags(ctx: Ctx, input: CreateTagsRequest) {
  const tags = input.Tags ?? [];
  validateTags(tags);
  const ids = input.Resources ?? [];
  const targets = ids.map((id) => taggable(ctx, id));
  // The limit counts the tags a resource already has with those the request adds (a key it already has is
  // overwritten, not added): "Maximum number of tags per resource – 50" (EC2 User Guide, "Tag restrictions",
  // https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions), refused with
  // TagLimitExceeded, "You've reached the limit on the number of tags that you can assign to the specified
  // resource" (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html). Nothing changes
  // on any resource of a refused request.
  targets.forEach((target, i) => {
    const after = new Set([...target.tags.keys(), ...tags.map((t) => t.Key ?? '')]);
    if (after.size > MAX_TAGS_PER_RESOURCE)
      throw new AwsError(
        'TagLimitExceeded',
        `You've reached the limit on the number of tags that you can assign to the specified resource: ${ids[i] ?? ''} would have ${after.size} tags (at most ${MAX_TAGS_PER_RESOURCE})`,
      );
  });
  for (const target of targets) for (const tag of tags) target.tags.set(tag.Key ?? '', tag.Value ?? '');
  return {};
}

function deleteTags(ctx: Ctx, input: { Resources?: string[]; Tags?: { Key?: string; Value?: string }[] }) {
  for (const id of input.Resources ?? []) {
    const target = taggable(ctx, id);
    for (const tag of input.Tags ?? [])
      if (tag.Value === undefined || target.tags.get(tag.Key ?? '') === tag.Value) target.tags.delete(tag.Key ?? '');
  }
  return {};
}

export { createTags, deleteTags };
