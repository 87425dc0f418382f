import type { FastLaunchStateCode, ImageState } from '@aws-sdk/client-ec2';
import type { ImageStatus, LaunchPermissionConfiguration } from '@aws-sdk/client-imagebuilder';
import type { DesiredCell } from '../core/desired.ts';
import type { Failure } from '../core/errors.ts';

import type { Observed } from '../core/observed.ts';

/** Why a cell is part of the build: a distribution target, the owner, the build region, referenced only, or shared. */
type CellOrigin = DesiredCell['origin'];

/** An AMI as `DescribeImages` shows it in one account and region. */
interface ObservedImage {
  imageId: string;
  ownerId: string;
  /** EC2's state of the AMI; `unknown` when DescribeImages gave none. */
  state: ImageState | 'unknown';
  name: string;
  public: boolean;
  platform: string | undefined;
  creationDate: string | undefined;
  tags: Record<string, string>;
  snapshotIds: string[];
  deregistrationProtection: string | undefined;
  stateReason: string | undefined;
}

interface ObservedSnapshot {
  snapshotId: string;
  encrypted: boolean;
  kmsKeyId: string | undefined;
  volumeSizeGiB: number;
}

interface ObservedLaunchTemplate {
  launchTemplateId: string;
  name: string;
  defaultVersion: number;
  latestVersion: number;
  /** The AMI of the default version (undefined when it sets none); for a `resolve:ssm:` default, what EC2 resolves it to (ResolveAlias). */
  defaultImageId: string | undefined;
  /** The default version's `resolve:ssm:<parameter>[:version|:label]` reference, when it is parameter-driven. */
  defaultImageAlias?: string | undefined;
  /** Version numbers whose `ImageId` is this cell's AMI. */
  versionsWithImage: number[];
  /** The template's tags (the opt-in tag decides whether the reconciler may write it). */
  tags?: Record<string, string>;
}

interface ObservedFastLaunch {
  /** EC2's Fast Launch state; `disabled` (not in the SDK's list) is planned like no Fast Launch; `unknown`: none given. */
  state: FastLaunchStateCode | 'disabled' | 'unknown';
  stateTransitionReason: string | undefined;
  targetResourceCount: number | undefined;
  maxParallelLaunches: number | undefined;
  launchTemplate: { id: string | undefined; name: string | undefined; version: string | undefined } | undefined;
}

/** The launch template a Fast Launch setting names, as found in the cell's account. */
interface ObservedFastLaunchTemplate {
  id: string;
  name: string;
  defaultVersion: number;
  latestVersion: number;
}

/** Everything observed about one (region, account) cell. Read only. */
interface CellObservation {
  key: string;
  /** The cell could not be observed at all (role missing, region disabled). */
  access: Observed<true>;
  /** The recorded AMI: `null` when not visible in the account. */
  image: Observed<ObservedImage | null> | undefined;
  launchPermissions: Observed<LaunchPermissionConfiguration> | undefined;
  snapshots: Observed<ObservedSnapshot[]> | undefined;
  launchTemplates: Record<string, Observed<ObservedLaunchTemplate | null>>;
  fastLaunch: Observed<ObservedFastLaunch | null> | undefined;
  fastLaunchTemplate: Observed<ObservedFastLaunchTemplate | null> | undefined;
  parameters: Record<string, Observed<string | null>>;
  /**
   * The license configuration ARNs License Manager lists for the AMI (`ListLicenseSpecificationsForResource`);
   * undefined when the cell's distribution names none, or the AMI was not seen.
   */
  licenses?: Observed<string[]> | undefined;
  /**
   * Origin `shared`: the region's shared AMIs as the account sees them (its own tags only), by AMI id; an AMI
   * it cannot see (yet) has no entry. Undefined for other cells.
   */
  sharedImages?: Observed<Record<string, ObservedImage>> | undefined;
  /** The region's export to S3 (owner's cell only): undefined when the distribution has none or the AMI was not seen. */
  s3Export?: Observed<ObservedS3Export> | undefined;
}

/** The export task of the cell's AMI to the configured bucket and prefix, and whether its object is there. */
interface ObservedS3Export {
  /** The task (`DescribeExportImageTasks`) to that bucket and prefix: a completed one, else the last; null when none. */
  task: { id: string; status: string; statusMessage: string | undefined; progress: string | undefined } | null;
  /** The object's key, `<S3Prefix>export-ami-….<format>`, once the task completed. */
  key: string | undefined;
  /** Whether `HeadObject` found the object (completed tasks only). */
  object: 'present' | 'missing' | undefined;
}

/** A build of the same pipeline (or image) newer than the one being reconciled, by `compareBuilds` (core/arn.ts). */
interface NewerBuild {
  arn: string;
  status: ImageStatus | 'UNKNOWN';
  /** Image Builder's `dateCreated` of the build: what orders it. */
  dateCreated?: string | undefined;
  /** Its AMIs by cell key. */
  amis: Record<string, string>;
}

/** All observations of one run. */
interface Observation {
  cells: Record<string, CellObservation>;
  /** Newer AVAILABLE builds of the same pipeline (or image version), newest first; empty when none. */
  newerBuilds: Observed<NewerBuild[]>;
}

type ActionKind =
  | 'create-tags'
  | 'add-launch-permission'
  | 'update-launch-template'
  | 'enable-fast-launch'
  | 'put-parameter'
  | 'associate-licenses'
  | 'retry-image';

interface BaseAction {
  /** Stable id within a run, e.g. `us-east-1/111122223333/create-tags`. */
  id: string;
  kind: ActionKind;
  cell: { region: string; accountId: string };
  /** The resource acted on (AMI, template, parameter, image ARN). */
  target: string;
  /** Why: the drift found. */
  reason: string;
}

interface CreateTagsAction extends BaseAction {
  kind: 'create-tags';
  tags: Record<string, string>;
}

interface AddLaunchPermissionAction extends BaseAction {
  kind: 'add-launch-permission';
  add: { userIds: string[]; userGroups: string[]; organizationArns: string[]; organizationalUnitArns: string[] };
}

interface UpdateLaunchTemplateAction extends BaseAction {
  kind: 'update-launch-template';
  launchTemplateId: string;
  imageId: string;
  /** Create a version from this source version, or use an existing version that already has the AMI. */
  create: { sourceVersion: number; clientToken: string } | undefined;
  existingVersion: number | undefined;
  setDefault: boolean;
  /**
   * A roll-forward to a newer build's AMI: use the newest version that already has it (the newer build's run
   * made one) when there is one at apply time, and create one from `create` only when there is none.
   */
  reuseVersion?: boolean | undefined;
}

interface EnableFastLaunchAction extends BaseAction {
  kind: 'enable-fast-launch';
  imageId: string;
  targetResourceCount: number | undefined;
  maxParallelLaunches: number | undefined;
  launchTemplate: { id: string; version: string } | undefined;
  /** Re-enabling after `enabling-failed`/`enabled-failed` (counted against the retry bound). */
  isRetry: boolean;
}

interface PutParameterAction extends BaseAction {
  kind: 'put-parameter';
  name: string;
  value: string;
  dataType: string | undefined;
}

/** Associate license configurations with the AMI (`UpdateLicenseSpecificationsForResource`, add only). */
interface AssociateLicensesAction extends BaseAction {
  kind: 'associate-licenses';
  /** The AMI's ARN as License Manager names it (`arn:aws:ec2:<region>::image/<ami>`). */
  resourceArn: string;
  licenseConfigurationArns: string[];
}

interface RetryImageAction extends BaseAction {
  kind: 'retry-image';
  clientToken: string;
}

type Action =
  | CreateTagsAction
  | AddLaunchPermissionAction
  | UpdateLaunchTemplateAction
  | EnableFastLaunchAction
  | PutParameterAction
  | AssociateLicensesAction
  | RetryImageAction;

/**
 * Every check the planner makes of a cell, in the order a cell's checks are made. A table that must cover
 * every check is a `Record<CheckName, …>`, so a new check cannot be left out of it.
 */
const CHECK_NAMES = [
  'access',
  'ami',
  's3-export',
  'name',
  'tags',
  'launch-permission',
  'encryption',
  'license-configuration',
  'launch-template',
  'fast-launch',
  'ssm-parameter',
] as const;

type CheckName = (typeof CHECK_NAMES)[number];

/** The result of one check of one cell. */
interface Check {
  check: CheckName;
  /** What was checked (AMI, template id, parameter name). */
  subject: string;
  /**
   * ok: as desired; drift: differs, an action repairs it; pending: AWS is still working;
   * failed: wrong and not repairable here; skipped: deliberately not checked; warning: differs, report only.
   */
  result: 'ok' | 'drift' | 'pending' | 'failed' | 'skipped' | 'warning';
  reason: string;
  /** Ids of actions that repair this drift. */
  actionIds?: string[];
}

type CellStatus = 'ok' | 'repaired' | 'drift' | 'pending' | 'failed' | 'skipped';

/** The plan of one cell: its checks and the actions that repair its drift. */
interface CellPlan {
  key: string;
  region: string;
  accountId: string;
  origin: CellOrigin;
  imageId: string | undefined;
  checks: Check[];
  actions: Action[];
}

/** The output of the pure planner. */
interface Plan {
  cells: CellPlan[];
  /** Image-level actions (RetryImage). */
  imageActions: Action[];
  /** Set when a newer build of the same pipeline exists. */
  supersededBy: string | undefined;
}

type ActionOutcomeStatus = 'planned' | 'applied' | 'already-done' | 'failed' | 'skipped';

interface ActionOutcome {
  action: Action;
  status: ActionOutcomeStatus;
  detail: string | undefined;
  error: Failure | undefined;
  /** The state AWS reported after the action, when it matters (Fast Launch `enabling`). */
  resultingState: string | undefined;
}

/** How a launch template names a Systems Manager parameter instead of an AMI (EC2 User Guide, "Use a Systems Manager parameter instead of an AMI ID"). */
const SSM_ALIAS = 'resolve:ssm:';

/**
 * The resulting state of a roll-forward check that could not be made (the newer builds could not be listed
 * after the run's pointer writes, roll-forward.ts): the cell waits (pending), and its recheck's plan rolls the
 * pointer forward from a fresh listing.
 */
const ROLL_FORWARD_UNCHECKED = 'roll-forward-unchecked';

export { CHECK_NAMES, ROLL_FORWARD_UNCHECKED, SSM_ALIAS };
export type {
  ObservedS3Export,
  Action,
  ActionKind,
  ActionOutcome,
  ActionOutcomeStatus,
  AddLaunchPermissionAction,
  AssociateLicensesAction,
  CellObservation,
  CellOrigin,
  CellPlan,
  CellStatus,
  Check,
  CheckName,
  CreateTagsAction,
  EnableFastLaunchAction,
  NewerBuild,
  Observation,
  Observed,
  ObservedFastLaunch,
  ObservedFastLaunchTemplate,
  ObservedImage,
  ObservedLaunchTemplate,
  ObservedSnapshot,
  Plan,
  PutParameterAction,
  RetryImageAction,
  UpdateLaunchTemplateAction,
};
