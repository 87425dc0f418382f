/**
 * Which build of a pipeline is current: the newest AVAILABLE build that is not revoked. One definition for
 * every job that asks (the sweep's latest build, the reconcile's newer builds, revoke's replacement, the
 * distribution gate): builds are ordered by `compareBuilds` (arn.ts: Image Builder's dateCreated, then
 * version and build number), and a build whose Image Builder image carries the revoked tag (tags.ts,
 * `imagebuilder-reconciler:revoked`) is never current, never newer than another build, and never a
 * replacement.
 */
import type { ImageSummary } from '@aws-sdk/client-imagebuilder';
import { type BuildPosition, buildPosition, compareBuilds } from './arn.ts';
import { REVOKED_TAG } from './tags.ts';

/** The revoked mark of a build (when and why), from its Image Builder tags; undefined when it is not revoked. */
function revokedMark(tags: Record<string, string> | undefined): string | undefined {
  const mark = tags?.[REVOKED_TAG];
  return mark === undefined ? undefined : mark === '' ? 'revoked' : mark;
}

/** Whether a build (an ImageSummary or an Image: both carry `state` and `tags`) may be current: AVAILABLE and not revoked. */
function isGoodBuild(build: Pick<ImageSummary, 'state' | 'tags'>): boolean {
  return build.state?.status === 'AVAILABLE' && revokedMark(build.tags) === undefined;
}

/** The good builds among `summaries` (AVAILABLE, not revoked), newest first in build order. */
function goodBuildsNewestFirst(summaries: ImageSummary[]): (ImageSummary & { arn: string; position: BuildPosition })[] {
  const builds: (ImageSummary & { arn: string; position: BuildPosition })[] = [];
  for (const summary of summaries) {
    if (!isGoodBuild(summary)) continue;
    const position = buildPosition(summary.arn, summary.dateCreated);
    if (position !== undefined) builds.push({ ...summary, arn: position.arn, position });
  }
  return builds.sort((a, b) => compareBuilds(b.position, a.position));
}

/** THE current build among a pipeline's (or an image version's) builds: the newest AVAILABLE one not revoked. */
function currentBuild(summaries: ImageSummary[]): string | undefined {
  return goodBuildsNewestFirst(summaries)[0]?.arn;
}

export { currentBuild, goodBuildsNewestFirst, isGoodBuild, revokedMark };
