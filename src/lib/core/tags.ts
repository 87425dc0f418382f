/**
 * The tag keys the reconciler writes and reads: its own (prefixed `imagebuilder-reconciler:`) and the ones
 * Image Builder puts on the AMIs it creates. One place, so that cleanup's guards, the repairs and the IAM
 * conditions that name them cannot drift apart.
 */

/** Prefix of every tag the reconciler itself writes. */
const TAG_PREFIX = 'imagebuilder-reconciler:';

/** On every copy the reconciler tags: the image build it came from. Cleanup relies on it. */
const SOURCE_IMAGE_TAG = `${TAG_PREFIX}source-image`;

/**
 * Prefix on an Image Builder image: cleanup records there each cell whose AMI it deregistered
 * (`imagebuilder-reconciler:cleaned-up:<region>:<account>` = when, which AMI, why), so that a later
 * reconcile of that build reports the cell as cleaned up instead of waiting for an AMI that is gone.
 */
const CLEANED_UP_TAG_PREFIX = `${TAG_PREFIX}cleaned-up:`;

/** On an AMI cleanup disables: when, so that a later run knows when the grace period started. */
const DISABLED_AT_TAG = `${TAG_PREFIX}disabled-at`;

/** On an AMI cleanup disables: the launch permissions DisableImage removes, to restore them. */
const LAUNCH_PERMISSIONS_TAG = `${TAG_PREFIX}launch-permissions`;

/**
 * On an Image Builder image: the build is revoked (`imagebuilder-reconciler revoke`), its value when and why.
 * Every ordering of builds reads it (core/builds.ts): a revoked build is never current again, never newer
 * than another, and its reconcile moves no pointer. `unrevoke` removes it.
 */
const REVOKED_TAG = `${TAG_PREFIX}revoked`;

/** The default keep tag: an AMI carrying it is never cleaned up (RECONCILER_CLEANUP_KEEP_TAG changes it). */
const DEFAULT_KEEP_TAG = `${TAG_PREFIX}keep`;

/** Image Builder's tag on the AMIs it creates: the image build version ARN (user guide, "Tag resources"). */
const BUILD_TAG = 'Ec2ImageBuilderArn';

/** Image Builder's other tag on its AMIs (and the value its cross-account launch templates need). */
const CREATED_BY_TAG = 'CreatedBy';
const CREATED_BY_IMAGE_BUILDER = 'EC2 Image Builder';

function cleanedUpTagKey(region: string, accountId: string): string {
  return `${CLEANED_UP_TAG_PREFIX}${region}:${accountId}`;
}

export {
  BUILD_TAG,
  CLEANED_UP_TAG_PREFIX,
  CREATED_BY_IMAGE_BUILDER,
  CREATED_BY_TAG,
  DEFAULT_KEEP_TAG,
  DISABLED_AT_TAG,
  LAUNCH_PERMISSIONS_TAG,
  REVOKED_TAG,
  SOURCE_IMAGE_TAG,
  TAG_PREFIX,
  cleanedUpTagKey,
};
