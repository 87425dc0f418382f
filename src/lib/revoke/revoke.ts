/**
 * Revoke an image build: the opposite of the forward-only guarantee, on purpose and audited.
 *
 * 1. Mark the build durably: the tag `imagebuilder-reconciler:revoked` (core/tags.ts) on its Image Builder
 *    image, before anything else, so that every ordering (core/builds.ts) and the apply fence of a reconcile
 *    running at the same time see it: the build is never current again.
 * 2. In every cell of the build (the embedded distribution configuration's, including the cells that only
 *    name one of its AMIs), each launch template default (or `$Latest`) and each SSM parameter that names one
 *    of its AMIs moves to the AMI of the current build in that AMI's cell: the newest AVAILABLE build that is
 *    not revoked (normally the one before it). A launch template gets a new version made from the version
 *    that named the AMI with only the image changed, as reconcile does. With no such build, the pointer is
 *    left and the cell says so.
 * 3. The build's AMIs: Fast Launch disabled where the configuration enabled it, then deprecated now, or
 *    disabled (`disable`, launch permissions recorded first, as cleanup's disable does). Never deregistered.
 *
 * Planned by default: in plan mode nothing is written and the report lists every move. `unrevoke` removes
 * the mark and changes nothing else: the next reconcile or sweep decides again.
 */
import {
  CreateLaunchTemplateVersionCommand,
  DescribeFastLaunchImagesCommand,
  DescribeImageAttributeCommand,
  DescribeLaunchTemplateVersionsCommand,
  DisableFastLaunchCommand,
  ModifyLaunchTemplateCommand,
} from '@aws-sdk/client-ec2';
import {
  GetImageCommand,
  type Image,
  type ImageSummary,
  TagResourceCommand,
  UntagResourceCommand,
  paginateListImageBuildVersions,
  paginateListImagePipelineImages,
} from '@aws-sdk/client-imagebuilder';
import { GetParameterCommand, PutParameterCommand } from '@aws-sdk/client-ssm';
import pLimit from 'p-limit';
import type { CellClients, ClientFactory } from '../aws/clients.ts';
import { describeImagesById } from '../aws/images.ts';
import { publishReport } from '../aws/outbox.ts';
import { deprecateNow, deprecationTime, disableRecorded } from '../cleanup/apply.ts';
import { parseImageBuildArn } from '../core/arn.ts';
import { goodBuildsNewestFirst, revokedMark } from '../core/builds.ts';
import { cellKey } from '../core/cells.ts';
import { modeWithin } from '../core/config.ts';
import { type DesiredCell, desiredImage } from '../core/desired.ts';
import { AwsCallError, type Failure, toFailure } from '../core/errors.ts';
import { REVOKED_TAG } from '../core/tags.ts';
import { token } from '../reconcile/plan/common.ts';
import type { RunDeps } from '../reconcile/reconcile.ts';
import type { Trigger } from '../reconcile/report.ts';
import type { ActionOutcome, PutParameterAction, UpdateLaunchTemplateAction } from '../reconcile/types.ts';

/** The detail-type of the revoke (and unrevoke) report event. */
const REVOKE_DETAIL_TYPE = 'Image Builder Revoke Report';

/** The longest tag value Image Builder takes (API Reference, TagResource: tag values are at most 256 characters). */
const TAG_VALUE_MAX = 256;

interface RevokeRequest {
  action: 'revoke' | 'unrevoke';
  imageBuildVersionArn: string;
  /** `apply` acts (within the deployment's mode); default `plan`. */
  mode?: 'apply' | 'plan' | undefined;
  /** Why, and by whom: kept in the mark. */
  reason?: string | undefined;
  /** Disable the AMIs (DisableImage) instead of deprecating them. */
  disable?: boolean | undefined;
  trigger: Trigger;
}

type StepOutcome = 'unchanged' | 'planned' | 'applied' | 'left' | 'failed';

/** One launch template or SSM parameter of a cell, before and after. */
interface PointerReport {
  kind: 'launch-template' | 'ssm-parameter';
  /** The launch template id, or the parameter name. */
  subject: string;
  /** Launch templates: the version that named the AMI (`$Default` or `$Latest`) and its number. */
  version: string | null;
  before: string | null;
  /** What it names after the run (planned: would name). */
  after: string | null;
  /** The build whose AMI it moves to. */
  replacementBuild: string | null;
  outcome: StepOutcome;
  detail: string;
}

/** One AMI of the revoked build: its Fast Launch and its retirement (deprecate or disable). */
interface AmiReport {
  imageId: string;
  fastLaunch: { before: string | null; outcome: StepOutcome | 'not-configured'; detail: string };
  retire: { action: 'deprecate' | 'disable'; before: string | null; outcome: StepOutcome; detail: string };
}

type RevokeCellStatus = 'ok' | 'planned' | 'changed' | 'left' | 'failed';

interface RevokeCellReport {
  key: string;
  region: string;
  accountId: string;
  origin: DesiredCell['origin'];
  status: RevokeCellStatus;
  pointers: PointerReport[];
  amis: AmiReport[];
  reasons: string[];
}

type RevokeOutcome = 'converged' | 'repaired' | 'drift' | 'failed';

interface RevokeReport {
  schemaVersion: 1;
  kind: 'revoke' | 'unrevoke';
  runId: string;
  trigger: Trigger;
  mode: 'apply' | 'plan';
  image: { arn: string; status: string | null; pipelineArn: string | null };
  /** The revoked mark on the build's image before the run and after it (planned: would be). */
  mark: { key: string; before: string | null; after: string | null; outcome: StepOutcome };
  /** What the build's AMIs get: `deprecate` (default) or `disable`. */
  retire: 'deprecate' | 'disable';
  outcome: RevokeOutcome;
  startedAt: string;
  finishedAt: string;
  awsCalls: number;
  counts: Record<RevokeCellStatus, number> & { cells: number; pointersMoved: number; pointersLeft: number };
  cells: RevokeCellReport[];
  notes: string[];
  error?: Failure;
}

/** The revoked build's AMIs (any cell), and the AMI a pointer naming one of them moves to. */
interface Replacements {
  /** Revoked AMI id → the cell key of its own (region, account). */
  revoked: Map<string, string>;
  /** Cell key → the current build's AMI there, or undefined when no good build has one. */
  target(cell: string): { ami: string; build: string } | undefined;
}

function replacementsOf(image: Image, good: (ImageSummary & { arn: string })[]): Replacements {
  const owner = parseImageBuildArn(image.arn).accountId;
  const revoked = new Map<string, string>();
  for (const ami of image.outputResources?.amis ?? [])
    if (ami.image !== undefined && ami.region !== undefined) revoked.set(ami.image, cellKey(ami.region, ami.accountId ?? owner));
  const targets = new Map<string, { ami: string; build: string }>();
  // newest first: the first good build with an AMI in a cell is the cell's current build
  for (const build of good) {
    for (const ami of build.outputResources?.amis ?? []) {
      if (ami.image === undefined || ami.region === undefined) continue;
      const key = cellKey(ami.region, ami.accountId ?? owner);
      if (!targets.has(key) && !revoked.has(ami.image)) targets.set(key, { ami: ami.image, build: build.arn });
    }
  }
  return { revoked, target: (cell) => targets.get(cell) };
}

/** Every build of the revoked build's pipeline, or of its image version when no pipeline made it. */
async function listBuilds(image: Image, factory: ClientFactory): Promise<ImageSummary[]> {
  const arn = parseImageBuildArn(image.arn);
  const clients = await factory.forCell(arn.accountId, arn.region);
  const summaries: ImageSummary[] = [];
  try {
    if (image.sourcePipelineArn !== undefined) {
      for await (const page of paginateListImagePipelineImages(
        { client: clients.imagebuilder },
        { imagePipelineArn: image.sourcePipelineArn },
      ))
        summaries.push(...(page.imageSummaryList ?? []));
    } else {
      const versionArn = arn.arn.replace(/\/\d+$/, '');
      for await (const page of paginateListImageBuildVersions({ client: clients.imagebuilder }, { imageVersionArn: versionArn }))
        summaries.push(...(page.imageSummaryList ?? []));
    }
  } catch (error: unknown) {
    throw new AwsCallError(
      image.sourcePipelineArn === undefined ? 'ListImageBuildVersions' : 'ListImagePipelineImages',
      arn.accountId,
      arn.region,
      error,
    );
  }
  return summaries;
}

/** The good builds other than the revoked one, newest first (core/builds.ts). */
async function goodBuilds(image: Image, factory: ClientFactory): Promise<(ImageSummary & { arn: string })[]> {
  return goodBuildsNewestFirst(await listBuilds(image, factory)).filter((b) => b.arn !== image.arn);
}

function failed(error: unknown, operation: string, cell: { accountId: string; region: string }): string {
  return toFailure(new AwsCallError(operation, cell.accountId, cell.region, error)).message;
}

/**
 * Move one launch template off the revoked AMIs: the version that names one (`$Default`, else `$Latest`)
 * is copied with only the image changed, and made the default when it was the default.
 */
async function moveTemplate(
  clients: CellClients,
  cell: { accountId: string; region: string },
  launchTemplateId: string,
  replacements: Replacements,
  context: { mode: 'apply' | 'plan'; arn: string },
): Promise<PointerReport> {
  const base = { kind: 'launch-template' as const, subject: launchTemplateId };
  let versions: { number: number; image: string | undefined; isDefault: boolean }[];
  try {
    const out = await clients.ec2.send(
      new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: launchTemplateId, Versions: ['$Default', '$Latest'] }),
    );
    versions = (out.LaunchTemplateVersions ?? []).map((v) => ({
      number: v.VersionNumber ?? 0,
      image: v.LaunchTemplateData?.ImageId,
      isDefault: v.DefaultVersion === true,
    }));
  } catch (error: unknown) {
    const detail = failed(error, 'DescribeLaunchTemplateVersions', cell);
    return { ...base, version: null, before: null, after: null, replacementBuild: null, outcome: 'failed', detail };
  }
  const byDefault = versions.find((v) => v.isDefault);
  const latest = versions.reduce<(typeof versions)[number] | undefined>((max, v) => (v.number > (max?.number ?? 0) ? v : max), undefined);
  const named =
    byDefault?.image !== undefined && replacements.revoked.has(byDefault.image)
      ? { ...byDefault, label: '$Default' }
      : latest?.image !== undefined && replacements.revoked.has(latest.image)
        ? { ...latest, label: '$Latest' }
        : undefined;
  if (named === undefined) {
    const image = byDefault?.image ?? null;
    return {
      ...base,
      version: byDefault === undefined ? null : `$Default (${byDefault.number})`,
      before: image,
      after: image,
      replacementBuild: null,
      outcome: 'unchanged',
      detail: `names ${image ?? 'no AMI'}, not an AMI of the revoked build`,
    };
  }
  const revokedAmi = named.image ?? '';
  const version = `${named.label} (${named.number})`;
  const target = replacements.target(replacements.revoked.get(revokedAmi) ?? '');
  if (target === undefined) {
    return {
      ...base,
      version,
      before: revokedAmi,
      after: revokedAmi,
      replacementBuild: null,
      outcome: 'left',
      detail: `left on ${revokedAmi}: no earlier good build (AVAILABLE, not revoked) has an AMI in ${replacements.revoked.get(revokedAmi) ?? 'its cell'}`,
    };
  }
  const move = { ...base, version, before: revokedAmi, replacementBuild: target.build };
  const what = `version ${named.number} copied with ${target.ami} of ${target.build}${named.isDefault ? ' and made the default' : ''}`;
  if (context.mode === 'plan') return { ...move, after: target.ami, outcome: 'planned', detail: `would be: ${what}` };
  try {
    const out = await clients.ec2.send(
      new CreateLaunchTemplateVersionCommand({
        LaunchTemplateId: launchTemplateId,
        SourceVersion: String(named.number),
        LaunchTemplateData: { ImageId: target.ami },
        VersionDescription: `imagebuilder-reconciler: revoke of ${context.arn}`.slice(0, 255),
        ClientToken: token(context.arn, 'revoke', launchTemplateId, target.ami, String(named.number)),
      }),
    );
    const created = out.LaunchTemplateVersion?.VersionNumber;
    if (created === undefined) throw new Error('CreateLaunchTemplateVersion returned no version number');
    if (named.isDefault)
      await clients.ec2.send(new ModifyLaunchTemplateCommand({ LaunchTemplateId: launchTemplateId, DefaultVersion: String(created) }));
    return {
      ...move,
      after: target.ami,
      outcome: 'applied',
      detail: `version ${created} created from version ${named.number} with ${target.ami} of ${target.build}${named.isDefault ? `; default version ${created}` : ''}`,
    };
  } catch (error: unknown) {
    return { ...move, after: revokedAmi, outcome: 'failed', detail: failed(error, 'update-launch-template (revoke)', cell) };
  }
}

/** Move one SSM parameter off the revoked AMIs, keeping its data type. */
async function moveParameter(
  clients: CellClients,
  cell: { accountId: string; region: string },
  name: string,
  replacements: Replacements,
  mode: 'apply' | 'plan',
): Promise<PointerReport> {
  const base = { kind: 'ssm-parameter' as const, subject: name, version: null };
  let value: string | undefined;
  let dataType: string | undefined;
  try {
    const out = await clients.ssm.send(new GetParameterCommand({ Name: name }));
    value = out.Parameter?.Value;
    dataType = out.Parameter?.DataType;
  } catch (error: unknown) {
    if (toFailure(error).code === 'ParameterNotFound')
      return { ...base, before: null, after: null, replacementBuild: null, outcome: 'unchanged', detail: 'the parameter does not exist' };
    return { ...base, before: null, after: null, replacementBuild: null, outcome: 'failed', detail: failed(error, 'GetParameter', cell) };
  }
  if (value === undefined || !replacements.revoked.has(value)) {
    return {
      ...base,
      before: value ?? null,
      after: value ?? null,
      replacementBuild: null,
      outcome: 'unchanged',
      detail: `holds ${value ?? 'nothing'}, not an AMI of the revoked build`,
    };
  }
  const target = replacements.target(replacements.revoked.get(value) ?? '');
  if (target === undefined) {
    return {
      ...base,
      before: value,
      after: value,
      replacementBuild: null,
      outcome: 'left',
      detail: `left on ${value}: no earlier good build (AVAILABLE, not revoked) has an AMI in ${replacements.revoked.get(value) ?? 'its cell'}`,
    };
  }
  const move = { ...base, before: value, replacementBuild: target.build };
  if (mode === 'plan') return { ...move, after: target.ami, outcome: 'planned', detail: `would hold ${target.ami} of ${target.build}` };
  try {
    const out = await clients.ssm.send(
      new PutParameterCommand({ Name: name, Value: target.ami, Type: 'String', DataType: dataType ?? 'text', Overwrite: true }),
    );
    const validated = dataType === 'aws:ec2:image' ? '; SSM validates aws:ec2:image values after the call' : '';
    return {
      ...move,
      after: target.ami,
      outcome: 'applied',
      detail: `version ${out.Version ?? '?'} holds ${target.ami} of ${target.build}${validated}`,
    };
  } catch (error: unknown) {
    return { ...move, after: value, outcome: 'failed', detail: failed(error, 'put-parameter (revoke)', cell) };
  }
}

/** Fast Launch states that are on (or on their way, or failed on): DisableFastLaunch turns each off. */
const FAST_LAUNCH_ON = new Set(['enabling', 'enabling-failed', 'enabled', 'enabled-failed']);

/** Take one of the revoked AMIs out of circulation: Fast Launch off where configured, then deprecate or disable. */
async function retireAmi(
  clients: CellClients,
  cell: DesiredCell,
  imageId: string,
  options: { mode: 'apply' | 'plan'; disable: boolean; now: Date },
): Promise<AmiReport> {
  const apply = options.mode === 'apply';
  let fastLaunch: AmiReport['fastLaunch'] = {
    before: null,
    outcome: 'not-configured',
    detail: 'the configuration enables no Fast Launch here',
  };
  if (cell.fastLaunch !== undefined) {
    try {
      const out = await clients.ec2.send(new DescribeFastLaunchImagesCommand({ ImageIds: [imageId] }));
      const state = out.FastLaunchImages?.find((f) => f.ImageId === imageId)?.State;
      if (state === undefined || !FAST_LAUNCH_ON.has(state)) {
        fastLaunch = { before: state ?? null, outcome: 'unchanged', detail: `Fast Launch is ${state ?? 'not enabled'}` };
      } else if (!apply) {
        fastLaunch = { before: state, outcome: 'planned', detail: `Fast Launch is ${state}: would be disabled` };
      } else {
        const disabled = await clients.ec2.send(new DisableFastLaunchCommand({ ImageId: imageId }));
        fastLaunch = { before: state, outcome: 'applied', detail: `Fast Launch ${disabled.State ?? 'disabling'}` };
      }
    } catch (error: unknown) {
      fastLaunch = { before: null, outcome: 'failed', detail: failed(error, 'DisableFastLaunch (revoke)', cell) };
    }
  }
  const action = options.disable ? 'disable' : 'deprecate';
  let retire: AmiReport['retire'];
  try {
    const image = (await describeImagesById(clients.ec2, [imageId])).get(imageId);
    if (image === undefined || image.State === 'deregistered') {
      retire = { action, before: null, outcome: 'unchanged', detail: `${imageId} is not in the account (deregistered or never copied)` };
    } else if (options.disable) {
      if (image.State === 'disabled') retire = { action, before: 'disabled', outcome: 'unchanged', detail: 'already disabled' };
      else if (!apply)
        retire = {
          action,
          before: image.State ?? null,
          outcome: 'planned',
          detail: 'would be disabled (launch permissions recorded first)',
        };
      else {
        const attribute = await clients.ec2.send(new DescribeImageAttributeCommand({ ImageId: imageId, Attribute: 'launchPermission' }));
        const sharedWith = (attribute.LaunchPermissions ?? []).map(
          (p) => p.UserId ?? p.Group ?? p.OrganizationArn ?? p.OrganizationalUnitArn ?? '?',
        );
        const tags = Object.fromEntries((image.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
        await disableRecorded(clients, imageId, { sharedWith, tags }, options.now);
        retire = {
          action,
          before: image.State ?? null,
          outcome: 'applied',
          detail: `disabled; launch permissions recorded on the AMI: ${sharedWith.join(', ') || 'none'}`,
        };
      }
    } else {
      const at = image.DeprecationTime === undefined ? Number.NaN : Date.parse(image.DeprecationTime);
      const soon = deprecationTime(options.now).getTime();
      if (!Number.isNaN(at) && at <= soon)
        retire = {
          action,
          before: image.DeprecationTime ?? null,
          outcome: 'unchanged',
          detail: `already deprecated at ${image.DeprecationTime ?? ''}`,
        };
      else if (!apply)
        retire = {
          action,
          before: image.DeprecationTime ?? null,
          outcome: 'planned',
          detail: `would be deprecated at ${deprecationTime(options.now).toISOString()}`,
        };
      else {
        await deprecateNow(clients, imageId, options.now);
        retire = {
          action,
          before: image.DeprecationTime ?? null,
          outcome: 'applied',
          detail: `deprecated at ${deprecationTime(options.now).toISOString()}`,
        };
      }
    }
  } catch (error: unknown) {
    retire = {
      action,
      before: null,
      outcome: 'failed',
      detail: failed(error, options.disable ? 'DisableImage (revoke)' : 'EnableImageDeprecation (revoke)', cell),
    };
  }
  return { imageId, fastLaunch, retire };
}

function cellStatus(pointers: PointerReport[], amis: AmiReport[]): RevokeCellStatus {
  const outcomes = [...pointers.map((p) => p.outcome), ...amis.flatMap((a) => [a.fastLaunch.outcome, a.retire.outcome])];
  if (outcomes.includes('failed')) return 'failed';
  if (outcomes.includes('left')) return 'left';
  if (outcomes.includes('applied')) return 'changed';
  if (outcomes.includes('planned')) return 'planned';
  return 'ok';
}

async function revokeCell(
  cell: DesiredCell,
  replacements: Replacements,
  factory: ClientFactory,
  options: { mode: 'apply' | 'plan'; disable: boolean; now: Date; arn: string },
): Promise<RevokeCellReport> {
  const base = { key: cell.key, region: cell.region, accountId: cell.accountId, origin: cell.origin };
  let clients: CellClients;
  try {
    clients = await factory.forCell(cell.accountId, cell.region);
  } catch (error: unknown) {
    return { ...base, status: 'failed', pointers: [], amis: [], reasons: [`access: ${toFailure(error).message}`] };
  }
  // pointers first: no new instance launches the revoked AMI, then the AMI itself is retired
  const pointers = [
    ...(await Promise.all(cell.launchTemplates.map((lt) => moveTemplate(clients, cell, lt.launchTemplateId, replacements, options)))),
    ...(await Promise.all(cell.parameters.map((p) => moveParameter(clients, cell, p.name, replacements, options.mode)))),
  ];
  const own = cell.origin === 'shared' ? undefined : cell.recorded?.imageId;
  // EC2 checks a deprecation time against its own clock: AWS's time, from the responses so far (core/clock.ts)
  const amis = own === undefined ? [] : [await retireAmi(clients, cell, own, { ...options, now: factory.serviceClock().now() })];
  const reasons = [
    ...pointers.filter((p) => p.outcome !== 'unchanged').map((p) => `${p.kind} ${p.subject}: ${p.outcome}: ${p.detail}`),
    ...amis.flatMap((a) => [
      ...(a.fastLaunch.outcome === 'not-configured' || a.fastLaunch.outcome === 'unchanged'
        ? []
        : [`fast-launch ${a.imageId}: ${a.fastLaunch.outcome}: ${a.fastLaunch.detail}`]),
      ...(a.retire.outcome === 'unchanged' ? [] : [`${a.retire.action} ${a.imageId}: ${a.retire.outcome}: ${a.retire.detail}`]),
    ]),
  ];
  return { ...base, status: cellStatus(pointers, amis), pointers, amis, reasons };
}

async function loadImage(arn: string, factory: ClientFactory): Promise<Image> {
  const parsed = parseImageBuildArn(arn);
  try {
    const clients = await factory.forCell(parsed.accountId, parsed.region);
    const image = (await clients.imagebuilder.send(new GetImageCommand({ imageBuildVersionArn: parsed.arn }))).image;
    if (image === undefined) throw new Error(`GetImage returned no image for ${parsed.arn}`);
    return image;
  } catch (error: unknown) {
    throw new AwsCallError('GetImage', parsed.accountId, parsed.region, error);
  }
}

/** The mark's value: when, and why when given; at most 256 characters. */
function markValue(now: Date, reason: string | undefined): string {
  const text = reason === undefined || reason.trim() === '' ? now.toISOString() : `${now.toISOString()} ${reason.trim()}`;
  return text.length <= TAG_VALUE_MAX ? text : `${text.slice(0, TAG_VALUE_MAX - 1)}…`;
}

function emptyCounts(): RevokeReport['counts'] {
  return { ok: 0, planned: 0, changed: 0, left: 0, failed: 0, cells: 0, pointersMoved: 0, pointersLeft: 0 };
}

/**
 * Revoke or unrevoke an image build (see the module's comment). Never throws for a problem in AWS: every
 * failure is in the report. Throws {@link InputError} only for a malformed ARN.
 */
async function revoke(request: RevokeRequest, deps: RunDeps): Promise<RevokeReport> {
  const arn = parseImageBuildArn(request.imageBuildVersionArn);
  const { config, clients: factory } = deps;
  const startedAt = deps.now();
  const callsBefore = factory.callCount();
  const { mode, refused } = modeWithin(config.mode, request.mode ?? 'plan');
  const notes: string[] = refused === undefined ? [] : [refused];
  const retire = request.disable === true ? 'disable' : 'deprecate';
  let report: RevokeReport = {
    schemaVersion: 1,
    kind: request.action,
    runId: deps.newRunId(),
    trigger: request.trigger,
    mode,
    image: { arn: arn.arn, status: null, pipelineArn: null },
    mark: { key: REVOKED_TAG, before: null, after: null, outcome: 'unchanged' },
    retire,
    outcome: 'converged',
    startedAt: startedAt.toISOString(),
    finishedAt: startedAt.toISOString(),
    awsCalls: 0,
    counts: emptyCounts(),
    cells: [],
    notes,
  };
  try {
    report = await run(request, report, deps);
  } catch (error: unknown) {
    const failure = toFailure(error);
    report = { ...report, outcome: 'failed', error: failure, notes: [...report.notes, `stopped: ${failure.message}`] };
  }
  report = { ...report, finishedAt: deps.now().toISOString(), awsCalls: factory.callCount() - callsBefore };
  if (deps.publish !== false && config.eventBusName !== '') {
    const failure = await publishReport(
      factory.home(),
      config.eventBusName,
      REVOKE_DETAIL_TYPE,
      report,
      [arn.arn],
      [
        () => ({ cells: report.cells.map((c) => ({ ...c, amis: [], pointers: c.pointers.filter((p) => p.outcome !== 'unchanged') })) }),
        () => ({ cells: report.cells.map((c) => ({ ...c, amis: [], pointers: [], reasons: c.status === 'ok' ? [] : c.reasons })) }),
      ],
    );
    if (failure !== undefined) deps.log.error('could not publish the revoke report', { failure, bus: config.eventBusName });
  }
  return report;
}

async function run(request: RevokeRequest, report: RevokeReport, deps: RunDeps): Promise<RevokeReport> {
  const { clients: factory, config } = deps;
  const arn = parseImageBuildArn(request.imageBuildVersionArn);
  const image = await loadImage(arn.arn, factory);
  const before = revokedMark(image.tags) ?? null;
  const home = await factory.forCell(arn.accountId, arn.region);
  const at = { ...report, image: { arn: arn.arn, status: image.state?.status ?? null, pipelineArn: image.sourcePipelineArn ?? null } };
  const apply = at.mode === 'apply';

  if (request.action === 'unrevoke') {
    if (before === null)
      return {
        ...at,
        mark: { key: REVOKED_TAG, before, after: null, outcome: 'unchanged' },
        notes: [...at.notes, 'the build is not revoked'],
      };
    if (!apply)
      return {
        ...at,
        outcome: 'drift',
        mark: { key: REVOKED_TAG, before, after: null, outcome: 'planned' },
        notes: [...at.notes, 'would lift the mark'],
      };
    await home.imagebuilder.send(new UntagResourceCommand({ resourceArn: arn.arn, tagKeys: [REVOKED_TAG] }));
    return {
      ...at,
      outcome: 'repaired',
      mark: { key: REVOKED_TAG, before, after: null, outcome: 'applied' },
      notes: [
        ...at.notes,
        'mark lifted: the next reconcile or sweep orders this build again; pointers, Fast Launch and deprecation are left as they are',
      ],
    };
  }

  const desired = desiredImage(image, {
    fastLaunchInheritForTargets: config.fastLaunchInheritForTargets,
    sharedAccounts: config.sharedAccounts !== 'off',
  });
  // read only first: a listing that fails stops the run before anything is changed
  const replacements = replacementsOf(image, await goodBuilds(image, factory));
  // the mark before any pointer moves: from here on every ordering, and the fence of a reconcile under way, sees it
  let mark: RevokeReport['mark'];
  if (before !== null) mark = { key: REVOKED_TAG, before, after: before, outcome: 'unchanged' };
  else if (!apply) mark = { key: REVOKED_TAG, before, after: markValue(deps.now(), request.reason), outcome: 'planned' };
  else {
    const value = markValue(deps.now(), request.reason);
    await home.imagebuilder.send(new TagResourceCommand({ resourceArn: arn.arn, tags: { [REVOKED_TAG]: value } }));
    mark = { key: REVOKED_TAG, before, after: value, outcome: 'applied' };
  }
  const limit = pLimit(factory.cellConcurrency());
  const now = deps.now();
  const cells = await Promise.all(
    desired.cells.map((cell) =>
      limit(() => revokeCell(cell, replacements, factory, { mode: at.mode, disable: request.disable === true, now, arn: arn.arn })),
    ),
  );
  const counts = emptyCounts();
  for (const cell of cells) {
    counts[cell.status] += 1;
    counts.cells += 1;
    counts.pointersMoved += cell.pointers.filter((p) => p.outcome === 'applied' || p.outcome === 'planned').length;
    counts.pointersLeft += cell.pointers.filter((p) => p.outcome === 'left').length;
  }
  const outcome: RevokeOutcome =
    counts.failed > 0
      ? 'failed'
      : counts.planned > 0 || mark.outcome === 'planned'
        ? 'drift'
        : counts.changed > 0 || mark.outcome === 'applied'
          ? 'repaired'
          : 'converged';
  const notes = [...at.notes];
  if (counts.pointersLeft > 0)
    notes.push(
      `${counts.pointersLeft} pointer(s) left on the revoked build: no earlier good build has an AMI in their cell (see the cells)`,
    );
  for (const ami of desired.unexpectedAmis)
    notes.push(
      `Image Builder recorded ${ami.imageId} in ${ami.region}/${ami.accountId}, a cell the embedded configuration does not name: not retired`,
    );
  return { ...at, mark, outcome, counts, cells, notes };
}

type Written = ActionOutcome & { action: PutParameterAction | UpdateLaunchTemplateAction };

/**
 * The fence's last step for a reconcile run that wrote pointers: when its own build was revoked while it ran
 * (the mark read again now), a write of it may have landed after the revoke moved the pointer: move each
 * pointer the run wrote that names one of the build's AMIs to the current build's AMI again, as revoke does.
 * One GetImage per run that wrote a pointer; nothing more when the build is not revoked.
 */
async function undoWritesOfRevoked(buildArn: string, outcomes: ActionOutcome[], factory: ClientFactory): Promise<ActionOutcome[]> {
  const wrote = outcomes.filter(
    (o): o is Written =>
      o.status === 'applied' && (o.action.kind === 'put-parameter' || (o.action.kind === 'update-launch-template' && o.action.setDefault)),
  );
  if (wrote.length === 0) return [];
  let image: Image;
  let replacements: Replacements;
  try {
    image = await loadImage(buildArn, factory);
    if (revokedMark(image.tags) === undefined) return [];
    replacements = replacementsOf(image, await goodBuilds(image, factory));
  } catch (error: unknown) {
    const failure = toFailure(error);
    return wrote.map((o) => ({
      action: { ...o.action, id: `${o.action.id}/revoked`, reason: 'the build may have been revoked meanwhile' },
      status: 'failed',
      detail: undefined,
      error: { ...failure, message: `cannot tell whether the build was revoked while this run wrote: ${failure.message}` },
      resultingState: undefined,
    }));
  }
  const mark = revokedMark(image.tags) ?? 'revoked';
  const out: ActionOutcome[] = [];
  for (const o of wrote) {
    const clients = await factory.forCell(o.action.cell.accountId, o.action.cell.region);
    const moved =
      o.action.kind === 'put-parameter'
        ? await moveParameter(clients, o.action.cell, o.action.name, replacements, 'apply')
        : await moveTemplate(clients, o.action.cell, o.action.launchTemplateId, replacements, { mode: 'apply', arn: buildArn });
    if (moved.outcome === 'unchanged') continue;
    out.push({
      action: { ...o.action, id: `${o.action.id}/revoked`, reason: `the build was revoked while this run wrote (${mark})` },
      status: moved.outcome === 'failed' ? 'failed' : moved.outcome === 'left' ? 'skipped' : 'applied',
      detail: `revoked meanwhile: ${moved.detail}`,
      error: moved.outcome === 'failed' ? { kind: 'error', code: 'RevokeRestoreFailed', message: moved.detail } : undefined,
      resultingState: 'revoked',
    });
  }
  return out;
}

export { REVOKE_DETAIL_TYPE, goodBuilds, replacementsOf, revoke, undoWritesOfRevoked };
export type { AmiReport, PointerReport, RevokeCellReport, RevokeReport, RevokeRequest };
