import {
  CreateLaunchTemplateVersionCommand,
  CreateTagsCommand,
  DescribeFastLaunchImagesCommand,
  DescribeLaunchTemplateVersionsCommand,
  EnableFastLaunchCommand,
  type LaunchPermission,
  ModifyImageAttributeCommand,
  ModifyLaunchTemplateCommand,
  paginateDescribeLaunchTemplateVersions,
} from '@aws-sdk/client-ec2';
import { GetImageCommand, RetryImageCommand } from '@aws-sdk/client-imagebuilder';
import { LicenseManagerClient, UpdateLicenseSpecificationsForResourceCommand } from '@aws-sdk/client-license-manager';
import { GetParameterCommand, PutParameterCommand, type PutParameterCommandOutput } from '@aws-sdk/client-ssm';
import pLimit from 'p-limit';
import { buildPosition, compareBuilds, isImageBuildArn, parseImageBuildArn } from '../core/arn.ts';
import type { CellClients, ClientFactory } from '../aws/clients.ts';
import { AwsCallError, type Failure, ReconcilerError, deniedAction, toFailure } from '../core/errors.ts';
import type { Action, ActionOutcome, Plan } from './types.ts';
import { BUILD_TAG, SOURCE_IMAGE_TAG } from '../core/tags.ts';
import { revokedMark } from '../core/builds.ts';
import { describeImagesById } from '../aws/images.ts';

interface ApplyOptions {
  mode: 'apply' | 'plan';
  /** When aborted (Lambda about to time out), no further action starts; the report is still written. */
  signal?: AbortSignal | undefined;
  /** The image build ARN, written into launch template version descriptions. */
  imageArn: string;
  /** The build's dateCreated (GetImage), for the fence's build order; read with GetImage when not given. */
  imageCreated?: string | undefined;
}

type Result = Pick<ActionOutcome, 'status' | 'detail' | 'resultingState'>;

/** Actions that move a pointer an instance launch follows: each is fenced by a re-read right before it writes. */
const POINTER_KINDS: ReadonlySet<Action['kind']> = new Set(['update-launch-template', 'put-parameter', 'enable-fast-launch']);

/** SSM data type whose PutParameter answers before the value is validated (and written only if valid). */
const IMAGE_DATA_TYPE = 'aws:ec2:image';
/** The resulting state of a put of an `aws:ec2:image` parameter: written only once SSM has validated it. */
const VALIDATING = 'validating';

/**
 * The `dateCreated` of image builds, read once per build ARN with GetImage (it never changes), for the
 * apply fence. Why not the newer builds of the observation: the fence exists for the build that became
 * AVAILABLE after the observation listed them (its run wrote in between), which that list cannot hold.
 * Seeded with this run's own build, whose GetImage the run already made.
 */
class BuildDates {
  private readonly builds = new Map<string, Promise<BuildFacts | undefined>>();

  constructor(
    private readonly factory: ClientFactory,
    own: { arn: string; dateCreated: string } | undefined,
  ) {
    // the own build's mark is never taken from here: ownMarkNow reads it again before each write
    if (own !== undefined) this.builds.set(own.arn, Promise.resolve({ dateCreated: own.dateCreated, revoked: undefined }));
  }

  /**
   * The build's dateCreated; undefined when the build is gone or not readable by the reconciler (then the
   * fence orders the AMIs by their own creation time). Throttling and other errors throw: the write fails and
   * is retried, never made blind.
   */
  async of(arn: string): Promise<string | undefined> {
    return (await this.facts(arn))?.dateCreated;
  }

  /** The build's revoked mark (core/builds.ts), as read once this run; undefined when not revoked or not readable. */
  async revoked(arn: string): Promise<string | undefined> {
    return (await this.facts(arn))?.revoked;
  }

  /**
   * The revoked mark of the run's own build, read again now (never cached): right before a pointer write, so
   * that a revoke applied while this run was under way is seen and the write is not made.
   */
  async ownMarkNow(arn: string): Promise<string | undefined> {
    return (await this.read(arn))?.revoked;
  }

  private facts(arn: string): Promise<BuildFacts | undefined> {
    let facts = this.builds.get(arn);
    if (facts === undefined) {
      facts = this.read(arn);
      this.builds.set(arn, facts);
      // a failed read is not remembered: the next pointer of the run asks again
      facts.catch(() => this.builds.delete(arn));
    }
    return facts;
  }

  private async read(arn: string): Promise<BuildFacts | undefined> {
    const build = parseImageBuildArn(arn);
    try {
      const clients = await this.factory.forCell(build.accountId, build.region);
      const image = (await clients.imagebuilder.send(new GetImageCommand({ imageBuildVersionArn: arn }))).image;
      return image === undefined ? undefined : { dateCreated: image.dateCreated, revoked: revokedMark(image.tags) };
    } catch (error: unknown) {
      const failure = toFailure(error);
      if (failure.kind === 'not-found' || failure.kind === 'access-denied') return undefined;
      throw new AwsCallError('GetImage (build order of the AMI a pointer names)', build.accountId, build.region, error);
    }
  }
}

/** What the fence needs of a build: its place in build order and whether it is revoked. */
interface BuildFacts {
  dateCreated: string | undefined;
  revoked: string | undefined;
}

/** An AMI's place in build order: the build its tag names, and the AMI's own creation time. */
interface AmiOrder {
  build: string | undefined;
  created: number | undefined;
}

async function amiOrders(clients: CellClients, imageIds: string[]): Promise<Map<string, AmiOrder>> {
  const orders = new Map<string, AmiOrder>();
  for (const image of (await describeImagesById(clients.ec2, imageIds)).values()) {
    if (image.ImageId === undefined) continue;
    // Image Builder's tag on its own copies; on a target account's copy, the source tag the reconciler writes
    const tag = image.Tags?.find((t) => t.Key === BUILD_TAG)?.Value ?? image.Tags?.find((t) => t.Key === SOURCE_IMAGE_TAG)?.Value;
    const created = image.CreationDate === undefined ? Number.NaN : Date.parse(image.CreationDate);
    orders.set(image.ImageId, { build: isImageBuildArn(tag) ? tag : undefined, created: Number.isNaN(created) ? undefined : created });
  }
  return orders;
}

/**
 * Whether `current`, the AMI a pointer names right now, belongs to a newer build than `ours`: in build order
 * (`compareBuilds`, core/arn.ts: the builds' dateCreated, then version and build number) when both carry
 * Image Builder's build tag and both builds' dateCreated can be read, else by the AMIs' creation time (AWS's
 * clock too). An AMI that cannot be seen, or cannot be ordered, is not newer (the write goes ahead).
 */
async function newerThanOurs(
  clients: CellClients,
  dates: BuildDates,
  current: string | undefined,
  ours: string,
): Promise<string | undefined> {
  if (current === undefined || current === ours || !current.startsWith('ami-')) return undefined;
  const orders = await amiOrders(clients, [current, ours]);
  const theirs = orders.get(current);
  const mine = orders.get(ours);
  if (theirs === undefined || mine === undefined) return undefined;
  // a revoked build's AMI is never newer: a pointer that names it is overwritten (core/builds.ts)
  if (theirs.build !== undefined && theirs.build !== mine.build && (await dates.revoked(theirs.build)) !== undefined) return undefined;
  if (theirs.build !== undefined && mine.build !== undefined && theirs.build !== mine.build) {
    const [theirDate, myDate] = await Promise.all([dates.of(theirs.build), dates.of(mine.build)]);
    const theirBuild = buildPosition(theirs.build, theirDate);
    const myBuild = buildPosition(mine.build, myDate);
    if (theirBuild !== undefined && myBuild !== undefined && theirDate !== undefined && myDate !== undefined) {
      return compareBuilds(theirBuild, myBuild) > 0 ? `${current} of newer build ${theirs.build}` : undefined;
    }
  }
  if (theirs.created !== undefined && mine.created !== undefined && theirs.created > mine.created)
    return `${current}, created after ${ours}`;
  return undefined;
}

/** A pointer write skipped because a newer build is already there. */
function superseded(what: string, by: string): Result {
  return { status: 'skipped', detail: `superseded: ${what} already names ${by}; not rolled back`, resultingState: 'superseded' };
}

/** The resulting state of a pointer write not made because the run's own build was revoked meanwhile. */
const REVOKED = 'revoked';

/** A pointer write skipped because the run's build was revoked since the run began (the revoke's mark, read now). */
function revokedMeanwhile(what: string, mark: string): Result {
  return {
    status: 'skipped',
    detail: `revoked: this build was revoked while the run was under way (${mark}); ${what} not written`,
    resultingState: REVOKED,
  };
}

/** The AMIs of a launch template's default and latest versions, read right before a write. */
async function templatePointers(
  clients: CellClients,
  launchTemplateId: string,
): Promise<{ defaultImage: string | undefined; latestImage: string | undefined; latestVersion: number | undefined }> {
  const out = await clients.ec2.send(
    new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: launchTemplateId, Versions: ['$Default', '$Latest'] }),
  );
  const versions = out.LaunchTemplateVersions ?? [];
  const latest = versions.reduce<(typeof versions)[number] | undefined>(
    (max, v) => ((v.VersionNumber ?? 0) > (max?.VersionNumber ?? 0) ? v : max),
    undefined,
  );
  return {
    defaultImage: versions.find((v) => v.DefaultVersion === true)?.LaunchTemplateData?.ImageId,
    latestImage: latest?.LaunchTemplateData?.ImageId,
    latestVersion: latest?.VersionNumber,
  };
}

/** The highest version of a launch template whose AMI is `imageId`, or undefined when none has it. */
async function newestVersionWith(clients: CellClients, launchTemplateId: string, imageId: string): Promise<number | undefined> {
  let newest = 0;
  const pages = paginateDescribeLaunchTemplateVersions(
    { client: clients.ec2 },
    { LaunchTemplateId: launchTemplateId, Filters: [{ Name: 'image-id', Values: [imageId] }] },
  );
  for await (const page of pages) {
    for (const v of page.LaunchTemplateVersions ?? [])
      if (v.LaunchTemplateData?.ImageId === imageId) newest = Math.max(newest, v.VersionNumber ?? 0);
  }
  return newest === 0 ? undefined : newest;
}

/** The first of a launch template's default and latest AMIs that belongs to a newer build. */
async function templateSupersededBy(
  clients: CellClients,
  dates: BuildDates,
  launchTemplateId: string,
  ours: string,
): Promise<string | undefined> {
  const now = await templatePointers(clients, launchTemplateId);
  return (
    (await newerThanOurs(clients, dates, now.defaultImage, ours)) ??
    (now.latestImage === now.defaultImage ? undefined : await newerThanOurs(clients, dates, now.latestImage, ours))
  );
}

function permissionsToAdd(add: Extract<Action, { kind: 'add-launch-permission' }>['add']): LaunchPermission[] {
  return [
    ...add.userIds.map((UserId) => ({ UserId })),
    ...add.userGroups.map((group) => ({ Group: group as LaunchPermission['Group'] })),
    ...add.organizationArns.map((OrganizationArn) => ({ OrganizationArn })),
    ...add.organizationalUnitArns.map((OrganizationalUnitArn) => ({ OrganizationalUnitArn })),
  ];
}

async function readParameter(clients: CellClients, name: string): Promise<string | undefined> {
  try {
    return (await clients.ssm.send(new GetParameterCommand({ Name: name }))).Parameter?.Value;
  } catch (error: unknown) {
    if (toFailure(error).code === 'ParameterNotFound') return undefined;
    throw error;
  }
}

/**
 * The Fast Launch state of an AMI as read now (undefined when none is listed), after EnableFastLaunch answered
 * `enableError`. When this read fails too, the state is unknown: the error says so with the read's own code
 * (a throttled read is throttled, retried by the next pass), never EnableFastLaunch's answer alone.
 */
async function fastLaunchStateAfter(clients: CellClients, imageId: string, enableError: unknown): Promise<string | undefined> {
  try {
    return (await clients.ec2.send(new DescribeFastLaunchImagesCommand({ ImageIds: [imageId] }))).FastLaunchImages?.[0]?.State;
  } catch (readError: unknown) {
    const read = toFailure(readError);
    const enable = toFailure(enableError);
    throw new ReconcilerError(
      `EnableFastLaunch answered ${enable.code} (${enable.message}), and the state could not be read again to tell whether it is already enabling: DescribeFastLaunchImages: ${read.code}: ${read.message}`,
      { kind: read.kind, code: read.code, cause: readError },
    );
  }
}

/** Run one action. Every action is idempotent: running it again changes nothing more. */
async function run(action: Action, clients: CellClients, options: ApplyOptions, dates: BuildDates): Promise<Result> {
  switch (action.kind) {
    case 'create-tags': {
      const send = (tags: [string, string][]) =>
        clients.ec2.send(new CreateTagsCommand({ Resources: [action.target], Tags: tags.map(([Key, Value]) => ({ Key, Value })) }));
      try {
        await send(Object.entries(action.tags));
      } catch (error: unknown) {
        // the roles may set the source tag only where none is (TagSourceOnce): a concurrent run of the same build
        // that set it first makes the same request refused. Read the AMI again: when its source tag is ours, the
        // rest of the tags are set without it; otherwise the refusal stands
        const source = action.tags[SOURCE_IMAGE_TAG];
        if (source === undefined || toFailure(error).kind !== 'access-denied') throw error;
        const image = (await describeImagesById(clients.ec2, [action.target])).get(action.target);
        const current = new Map((image?.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
        if (current.get(SOURCE_IMAGE_TAG) !== source) throw error;
        const rest = Object.entries(action.tags).filter(([key, value]) => key !== SOURCE_IMAGE_TAG && current.get(key) !== value);
        if (rest.length === 0) return { status: 'already-done', detail: 'tagged by a concurrent run', resultingState: undefined };
        await send(rest);
        return {
          status: 'applied',
          detail: `tagged ${rest.map(([key]) => key).join(', ')} (the source tag was already set)`,
          resultingState: undefined,
        };
      }
      return { status: 'applied', detail: `tagged ${Object.keys(action.tags).join(', ')}`, resultingState: undefined };
    }
    case 'add-launch-permission': {
      await clients.ec2.send(
        new ModifyImageAttributeCommand({ ImageId: action.target, LaunchPermission: { Add: permissionsToAdd(action.add) } }),
      );
      return { status: 'applied', detail: 'grants added', resultingState: undefined };
    }
    case 'update-launch-template': {
      let version = action.existingVersion;
      const notes: string[] = [];
      const before = await templateSupersededBy(clients, dates, action.launchTemplateId, action.imageId);
      if (before !== undefined) return superseded(`launch template ${action.launchTemplateId}`, before);
      const markBefore = await dates.ownMarkNow(options.imageArn);
      if (markBefore !== undefined) return revokedMeanwhile(`launch template ${action.launchTemplateId}`, markBefore);
      if (action.reuseVersion === true) {
        version = await newestVersionWith(clients, action.launchTemplateId, action.imageId);
        if (version !== undefined) notes.push(`version ${version} already uses ${action.imageId}`);
      }
      let created = false;
      if (action.create !== undefined && version === undefined) {
        created = true;
        const out = await clients.ec2.send(
          new CreateLaunchTemplateVersionCommand({
            LaunchTemplateId: action.launchTemplateId,
            SourceVersion: String(action.create.sourceVersion),
            LaunchTemplateData: { ImageId: action.imageId },
            VersionDescription: `imagebuilder-reconciler: ${options.imageArn}`.slice(0, 255),
            ClientToken: action.create.clientToken,
          }),
        );
        version = out.LaunchTemplateVersion?.VersionNumber;
        if (version === undefined) throw new Error('CreateLaunchTemplateVersion returned no version number');
        notes.push(`created version ${version} from version ${action.create.sourceVersion}`);
        for (const warning of out.Warning?.Errors ?? []) notes.push(`warning ${warning.Code ?? ''}: ${warning.Message ?? ''}`);
      }
      if (action.setDefault && version !== undefined) {
        // read again right before the write: a newer build's run may have moved the default meanwhile
        const now = await templatePointers(clients, action.launchTemplateId);
        const newer = await newerThanOurs(clients, dates, now.defaultImage, action.imageId);
        const mark = newer === undefined ? await dates.ownMarkNow(options.imageArn) : undefined;
        if (newer !== undefined || mark !== undefined) {
          const what = `the default of launch template ${action.launchTemplateId}`;
          const detail = newer !== undefined ? superseded(what, newer) : revokedMeanwhile(what, mark ?? '');
          // the version this run created must not stay $Latest over the newer default: copy the default on top
          if (action.create !== undefined && created && now.latestVersion === version && now.defaultImage !== undefined) {
            await clients.ec2.send(
              new CreateLaunchTemplateVersionCommand({
                LaunchTemplateId: action.launchTemplateId,
                SourceVersion: '$Default',
                LaunchTemplateData: { ImageId: now.defaultImage },
                VersionDescription:
                  `imagebuilder-reconciler: $Latest restored to the default after ${options.imageArn} was ${newer !== undefined ? 'superseded' : 'revoked'}`.slice(
                    0,
                    255,
                  ),
                ClientToken: `${action.create.clientToken}-restore`.slice(0, 128),
              }),
            );
            return {
              ...detail,
              detail: `${detail.detail ?? ''}; version ${version} was created first, so $Latest was set back to a copy of the default`,
            };
          }
          return detail;
        }
        await clients.ec2.send(
          new ModifyLaunchTemplateCommand({
            LaunchTemplateId: action.launchTemplateId,
            DefaultVersion: String(version),
            ClientToken: `${action.create?.clientToken ?? action.id}-default-${version}`.slice(0, 128),
          }),
        );
        notes.push(`set default version ${version}`);
      }
      return { status: 'applied', detail: notes.join('; '), resultingState: undefined };
    }
    case 'enable-fast-launch': {
      if (action.launchTemplate !== undefined) {
        const newer = await templateSupersededBy(clients, dates, action.launchTemplate.id, action.imageId);
        if (newer !== undefined) return superseded(`Fast Launch's launch template ${action.launchTemplate.id}`, newer);
      }
      const mark = await dates.ownMarkNow(options.imageArn);
      if (mark !== undefined) return revokedMeanwhile(`Fast Launch of ${action.imageId}`, mark);
      const input = {
        ImageId: action.imageId,
        ResourceType: 'snapshot' as const,
        ...(action.targetResourceCount === undefined ? {} : { SnapshotConfiguration: { TargetResourceCount: action.targetResourceCount } }),
        ...(action.maxParallelLaunches === undefined ? {} : { MaxParallelLaunches: action.maxParallelLaunches }),
        ...(action.launchTemplate === undefined
          ? {}
          : { LaunchTemplate: { LaunchTemplateId: action.launchTemplate.id, Version: action.launchTemplate.version } }),
      };
      try {
        const out = await clients.ec2.send(new EnableFastLaunchCommand(input));
        return { status: 'applied', detail: `Fast Launch ${out.State ?? 'requested'}`, resultingState: out.State };
      } catch (error: unknown) {
        // EC2 documents no error code for "already enabling" (another run, a duplicate event, may have enabled it a
        // moment ago), so after any error the state is read again before deciding: enabling or enabled is in
        // progress or done, anything else (or a failed read) is the EC2 error itself
        const state = await fastLaunchStateAfter(clients, action.imageId, error);
        if (state !== 'enabling' && state !== 'enabled') throw error;
        return {
          status: 'already-done',
          detail: `Fast Launch already ${state} (EnableFastLaunch answered ${toFailure(error).code})`,
          resultingState: state,
        };
      }
    }
    case 'put-parameter': {
      // read again right before the write (SSM has no conditional PutParameter): never overwrite a newer build's AMI
      const current = await readParameter(clients, action.name);
      if (current === action.value) return { status: 'already-done', detail: `already holds ${action.value}`, resultingState: undefined };
      const newer = await newerThanOurs(clients, dates, current, action.value);
      if (newer !== undefined) return superseded(`parameter ${action.name}`, newer);
      const mark = await dates.ownMarkNow(options.imageArn);
      if (mark !== undefined) return revokedMeanwhile(`parameter ${action.name}`, mark);
      const asynchronous = action.dataType === IMAGE_DATA_TYPE;
      let out: PutParameterCommandOutput;
      try {
        out = await clients.ssm.send(
          new PutParameterCommand({
            Name: action.name,
            Value: action.value,
            Type: 'String',
            DataType: action.dataType ?? 'text',
            Overwrite: true,
          }),
        );
      } catch (error: unknown) {
        // a put of another run (a duplicate event, a newer build) is still being validated: read it on the recheck
        if (!asynchronous || toFailure(error).code !== 'TooManyUpdates') throw error;
        return {
          status: 'skipped',
          detail: `another PutParameter of ${action.name} is still being validated by SSM (${toFailure(error).message}); the recheck reads it again`,
          resultingState: VALIDATING,
        };
      }
      // SSM validates aws:ec2:image values after answering 200 and never writes an invalid one: not repaired
      // until a later read (the recheck) sees the value (SSM API reference, PutParameter, DataType)
      if (asynchronous)
        return {
          status: 'applied',
          detail: `version ${out.Version ?? '?'} requested; SSM validates aws:ec2:image values after the call, the recheck confirms`,
          resultingState: VALIDATING,
        };
      return { status: 'applied', detail: `version ${out.Version ?? '?'}`, resultingState: undefined };
    }
    case 'associate-licenses': {
      // add only: an association the configuration does not name is never removed (it may count licences)
      await clients.client(LicenseManagerClient).send(
        new UpdateLicenseSpecificationsForResourceCommand({
          ResourceArn: action.resourceArn,
          AddLicenseSpecifications: action.licenseConfigurationArns.map((LicenseConfigurationArn) => ({ LicenseConfigurationArn })),
        }),
      );
      return { status: 'applied', detail: `associated ${action.licenseConfigurationArns.join(', ')}`, resultingState: undefined };
    }
    case 'retry-image': {
      await clients.imagebuilder.send(new RetryImageCommand({ imageBuildVersionArn: action.target, clientToken: action.clientToken }));
      return { status: 'applied', detail: 'distribution retried', resultingState: undefined };
    }
  }
}

/**
 * Apply a plan. In `plan` mode nothing is called and every action is `planned`. Actions of one cell run in
 * order; cells run concurrently (bounded). A failed action is recorded and never stops other cells.
 */
async function apply(plan: Plan, factory: ClientFactory, options: ApplyOptions): Promise<ActionOutcome[]> {
  const groups = [...plan.cells.map((cell) => cell.actions), plan.imageActions].filter((actions) => actions.length > 0);
  if (options.mode === 'plan') {
    return groups.flat().map((action) => ({ action, status: 'planned', detail: undefined, error: undefined, resultingState: undefined }));
  }
  // cells at once: as many as the factory's global limit of calls can serve (calls are bounded there)
  const limit = pLimit(factory.cellConcurrency());
  const dates = new BuildDates(
    factory,
    options.imageCreated === undefined ? undefined : { arn: options.imageArn, dateCreated: options.imageCreated },
  );
  const results = await Promise.all(
    groups.map((actions) =>
      limit(async () => {
        const outcomes: ActionOutcome[] = [];
        let blocked: { detail: string; state: string } | undefined;
        for (const action of actions) {
          if (blocked !== undefined && POINTER_KINDS.has(action.kind)) {
            // a newer build owns this cell's pointers, or this build was revoked: leave the rest of them
            outcomes.push({ action, status: 'skipped', detail: blocked.detail, error: undefined, resultingState: blocked.state });
            continue;
          }
          if (options.signal?.aborted === true) {
            outcomes.push({
              action,
              status: 'skipped',
              detail: 'stopped before the function timed out',
              error: undefined,
              resultingState: undefined,
            });
            continue;
          }
          try {
            const clients = await factory.forCell(action.cell.accountId, action.cell.region);
            const result = await run(action, clients, options, dates);
            if (result.resultingState === 'superseded' || result.resultingState === REVOKED)
              blocked = { detail: result.detail ?? result.resultingState, state: result.resultingState };
            outcomes.push({ action, error: undefined, ...result });
          } catch (error: unknown) {
            const failure = toFailure(new AwsCallError(action.kind, action.cell.accountId, action.cell.region, error));
            const hint = permissionHint(action, failure);
            outcomes.push({
              action,
              status: 'failed',
              detail: undefined,
              error: hint === undefined ? failure : { ...failure, message: `${failure.message} (${hint})` },
              resultingState: undefined,
            });
          }
        }
        return outcomes;
      }),
    ),
  );
  return results.flat();
}

export { REVOKED, VALIDATING, apply };

/**
 * What to change when IAM refused a dependent permission that the refusal alone does not explain: the rights
 * EnableFastLaunch checks beyond its own action (see the README, "Permissions").
 */
function permissionHint(action: Action, failure: Failure): string | undefined {
  // an explicit Deny is someone's decision: the refusal names it, and no grant would help
  if (action.kind !== 'enable-fast-launch' || failure.kind !== 'access-denied' || failure.message.includes('explicit deny'))
    return undefined;
  const denied = deniedAction(failure.message);
  if (denied === 'ec2:CreateVpc') {
    return "without a launch template EC2 Fast Launch builds its own VPC with the caller's rights: deploy infra/target-account-role.yaml with FastLaunchWithoutLaunchTemplate=true (in the reconciler's own account: fastLaunchWithoutLaunchTemplate=true), or name a launch template in the Fast Launch setting";
  }
  if (denied?.startsWith('kms:') === true) {
    return "the AMI's snapshots are encrypted: launching from it uses their KMS key through EC2; the templates grant keys of the role's own account, a key of another account also needs its key policy to allow the role";
  }
  return undefined;
}

export type { ApplyOptions };
