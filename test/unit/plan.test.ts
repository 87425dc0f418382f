import { describe, expect, it } from 'vitest';
import type { Image } from '@aws-sdk/client-imagebuilder';
import { type DesiredCell, type DesiredImage, desiredImage } from '../../src/lib/core/desired.ts';
import { cleanedUpTagKey } from '../../src/lib/core/tags.ts';
import { type PlanContext, plan } from '../../src/lib/reconcile/plan/index.ts';
import { buildReport } from '../../src/lib/reconcile/report.ts';
import type { CellObservation, Observation, ObservedFastLaunch, ObservedImage } from '../../src/lib/reconcile/types.ts';
import { AMI, IMAGE_ARN, NEWER_ARN, OWNER_LT, SHARE_WITH, TARGET_A, TARGET_B, windowsImage } from '../helpers/factories.ts';
import { OWN } from '../helpers/world.ts';

const KEY = `us-east-1/${OWN}`;
const context: PlanContext = { fastLaunchRetries: {}, fastLaunchMaxRetries: 2, retryFailedImages: false };

function image(overrides: Partial<ObservedImage> = {}): ObservedImage {
  return {
    imageId: AMI.owner,
    ownerId: OWN,
    state: 'available',
    name: 'golden-3-2026-11-29T17-00-00',
    public: false,
    platform: 'Windows',
    creationDate: '2026-11-29T17:30:00.000Z',
    tags: { Team: 'platform', 'imagebuilder-reconciler:source-image': IMAGE_ARN },
    snapshotIds: ['snap-1'],
    deregistrationProtection: undefined,
    stateReason: undefined,
    ...overrides,
  };
}

const enabled: ObservedFastLaunch = {
  state: 'enabled',
  stateTransitionReason: undefined,
  targetResourceCount: 5,
  maxParallelLaunches: 6,
  launchTemplate: { id: 'lt-0cccccccccccccccc', name: 'fast-launch', version: '2' },
};

/** An owner cell in us-east-1 that is fully converged. */
function converged(): CellObservation {
  return {
    key: KEY,
    access: { ok: true, value: true },
    image: { ok: true, value: image() },
    launchPermissions: undefined,
    snapshots: undefined,
    launchTemplates: {
      [OWNER_LT]: {
        ok: true,
        value: {
          launchTemplateId: OWNER_LT,
          name: 'web',
          defaultVersion: 2,
          latestVersion: 2,
          defaultImageId: AMI.owner,
          versionsWithImage: [2],
          tags: { 'imagebuilder-reconciler:managed': 'true' },
        },
      },
    },
    fastLaunch: { ok: true, value: enabled },
    fastLaunchTemplate: { ok: true, value: { id: 'lt-0cccccccccccccccc', name: 'fast-launch', defaultVersion: 1, latestVersion: 2 } },
    parameters: { '/golden/windows/latest': { ok: true, value: AMI.owner } },
  };
}

/** The standard image (with `build` overrides) with only its us-east-1 owner cell. */
function ownerOnly(change: (cell: DesiredCell) => void = () => undefined, build: Partial<Image> = {}): DesiredImage {
  const desired = desiredImage(windowsImage(build), { fastLaunchInheritForTargets: true });
  const cell = desired.cells.find((c) => c.key === KEY);
  if (cell === undefined) throw new Error('no owner cell');
  change(cell);
  return { ...desired, cells: [cell] };
}

interface Case {
  reason: string;
  desired?: DesiredImage;
  observe: (cell: CellObservation) => void;
  /** The cell was not observed at all (no entry in the observation). */
  unobserved?: true;
  newer?: Observation['newerBuilds'];
  context?: Partial<PlanContext>;
  /** Checks the cell must report; every other check it reports must be `ok`. */
  want: { check: string; result: string; reason?: RegExp }[];
  /** Checks the cell must not report at all. */
  absent?: string[];
  actions: string[];
  /** Fields of the first planned action. */
  action?: Record<string, unknown>;
  imageActions?: string[];
}

const cases: Case[] = [
  {
    reason: 'a converged cell has nothing to do',
    observe: () => undefined,
    want: [
      { check: 'ami', result: 'ok' },
      { check: 'name', result: 'ok' },
      { check: 'tags', result: 'ok' },
      { check: 'launch-template', result: 'ok' },
      { check: 'fast-launch', result: 'ok' },
      { check: 'ssm-parameter', result: 'ok' },
    ],
    actions: [],
  },
  {
    reason: 'the role could not be assumed: the cell fails with the reason and nothing else is checked',
    observe: (c) => {
      c.access = { ok: false, error: { kind: 'access-denied', code: 'AccessDenied', message: 'cannot assume role' } };
    },
    want: [{ check: 'access', result: 'failed', reason: /cannot assume role/ }],
    actions: [],
  },
  {
    reason: 'an AMI not visible yet (eventual consistency) is pending, not failed',
    observe: (c) => {
      c.image = { ok: true, value: null };
    },
    want: [{ check: 'ami', result: 'pending', reason: /not visible/ }],
    actions: [],
  },
  {
    reason: 'an AMI owned by another account is a failure: the cell does not hold its own copy',
    observe: (c) => {
      c.image = { ok: true, value: image({ ownerId: '999999999999' }) };
    },
    want: [{ check: 'ami', result: 'failed', reason: /owned by 999999999999/ }],
    actions: [],
  },
  {
    reason: 'a failed AMI fails the cell with EC2 reason',
    observe: (c) => {
      c.image = { ok: true, value: image({ state: 'failed', stateReason: 'Copy failed' }) };
    },
    want: [{ check: 'ami', result: 'failed', reason: /failed: Copy failed/ }],
    actions: [],
  },
  {
    reason: 'a name that does not match the pattern is reported only (AMI names cannot change)',
    observe: (c) => {
      c.image = { ok: true, value: image({ name: 'something-else' }) };
    },
    want: [{ check: 'name', result: 'warning', reason: /does not match/ }],
    actions: [],
  },
  {
    reason: 'missing amiTags are repaired with CreateTags',
    observe: (c) => {
      c.image = { ok: true, value: image({ tags: {} }) };
    },
    want: [{ check: 'tags', result: 'drift', reason: /Team, imagebuilder-reconciler:source-image/ }],
    actions: ['create-tags'],
  },
  {
    reason: 'a template with no version for this AMI gets a new version and, with setDefaultVersion, the default',
    observe: (c) => {
      c.launchTemplates[OWNER_LT] = {
        ok: true,
        value: {
          launchTemplateId: OWNER_LT,
          name: 'web',
          defaultVersion: 1,
          latestVersion: 1,
          defaultImageId: 'ami-old',
          versionsWithImage: [],
          tags: { 'imagebuilder-reconciler:managed': 'true' },
        },
      };
    },
    want: [{ check: 'launch-template', result: 'drift', reason: /no version uses/ }],
    actions: ['update-launch-template'],
  },
  {
    reason: 'a template without the opt-in tag (nor CreatedBy: EC2 Image Builder) fails, naming the tag; nothing is written',
    observe: (c) => {
      c.launchTemplates[OWNER_LT] = {
        ok: true,
        value: {
          launchTemplateId: OWNER_LT,
          name: 'web',
          defaultVersion: 1,
          latestVersion: 1,
          defaultImageId: 'ami-old',
          versionsWithImage: [],
          tags: { team: 'web' },
        },
      };
    },
    want: [
      {
        check: 'launch-template',
        result: 'failed',
        reason: /has not opted in: tag it imagebuilder-reconciler:managed=true \(or CreatedBy=EC2 Image Builder\)/,
      },
    ],
    actions: [],
  },
  {
    reason: "a template tagged CreatedBy: EC2 Image Builder is Image Builder's to update, and the reconciler's too",
    observe: (c) => {
      c.launchTemplates[OWNER_LT] = {
        ok: true,
        value: {
          launchTemplateId: OWNER_LT,
          name: 'web',
          defaultVersion: 1,
          latestVersion: 1,
          defaultImageId: 'ami-old',
          versionsWithImage: [],
          tags: { CreatedBy: 'EC2 Image Builder' },
        },
      };
    },
    want: [{ check: 'launch-template', result: 'drift', reason: /no version uses/ }],
    actions: ['update-launch-template'],
  },
  {
    reason: 'a template whose version exists but is not the default only needs the default set (a half-done earlier run)',
    observe: (c) => {
      c.launchTemplates[OWNER_LT] = {
        ok: true,
        value: {
          launchTemplateId: OWNER_LT,
          name: 'web',
          defaultVersion: 1,
          latestVersion: 2,
          defaultImageId: 'ami-old',
          versionsWithImage: [2],
          tags: { 'imagebuilder-reconciler:managed': 'true' },
        },
      };
    },
    want: [{ check: 'launch-template', result: 'drift', reason: /version 2 uses .* but the default is version 1/ }],
    actions: ['update-launch-template'],
  },
  {
    reason: 'a resolve:ssm: template whose parameter already resolves to the AMI is converged and stays parameter-driven',
    observe: (c) => {
      c.launchTemplates[OWNER_LT] = {
        ok: true,
        value: {
          launchTemplateId: OWNER_LT,
          name: 'web',
          defaultVersion: 1,
          latestVersion: 1,
          versionsWithImage: [],
          tags: { 'imagebuilder-reconciler:managed': 'true' },
          defaultImageId: AMI.owner,
          defaultImageAlias: 'resolve:ssm:/golden/windows/latest',
        },
      };
    },
    want: [{ check: 'launch-template', result: 'ok', reason: /resolves to .*; left parameter-driven/ }],
    actions: [],
  },
  {
    reason: 'a resolve:ssm: template on a parameter this distribution writes waits for the parameter repair, never pinned',
    observe: (c) => {
      c.launchTemplates[OWNER_LT] = {
        ok: true,
        value: {
          launchTemplateId: OWNER_LT,
          name: 'web',
          defaultVersion: 1,
          latestVersion: 1,
          versionsWithImage: [],
          tags: { 'imagebuilder-reconciler:managed': 'true' },
          defaultImageId: 'ami-old',
          defaultImageAlias: 'resolve:ssm:/golden/windows/latest',
        },
      };
      c.parameters['/golden/windows/latest'] = { ok: true, value: 'ami-old' };
    },
    want: [
      { check: 'launch-template', result: 'pending', reason: /this distribution sets \/golden\/windows\/latest .*not pinned/ },
      { check: 'ssm-parameter', result: 'drift', reason: /holds ami-old/ },
    ],
    actions: ['put-parameter'],
  },
  {
    reason: 'a resolve:ssm: template on a parameter nobody here writes is reported with what to do, and left parameter-driven',
    observe: (c) => {
      c.launchTemplates[OWNER_LT] = {
        ok: true,
        value: {
          launchTemplateId: OWNER_LT,
          name: 'web',
          defaultVersion: 1,
          latestVersion: 1,
          versionsWithImage: [],
          tags: { 'imagebuilder-reconciler:managed': 'true' },
          defaultImageId: 'ami-old',
          defaultImageAlias: 'resolve:ssm:/other/ami',
        },
      };
    },
    want: [{ check: 'launch-template', result: 'failed', reason: /left parameter-driven rather than pinned.*point that parameter at/ }],
    actions: [],
  },
  {
    reason: 'a resolve:ssm: template pinned to a parameter version does not follow the put: reported, not pinned',
    observe: (c) => {
      c.launchTemplates[OWNER_LT] = {
        ok: true,
        value: {
          launchTemplateId: OWNER_LT,
          name: 'web',
          defaultVersion: 1,
          latestVersion: 1,
          versionsWithImage: [],
          tags: { 'imagebuilder-reconciler:managed': 'true' },
          defaultImageId: 'ami-old',
          defaultImageAlias: 'resolve:ssm:/golden/windows/latest:3',
        },
      };
      c.parameters['/golden/windows/latest'] = { ok: true, value: 'ami-old' };
    },
    want: [
      { check: 'launch-template', result: 'failed', reason: /rather than pinned/ },
      { check: 'ssm-parameter', result: 'drift', reason: /holds ami-old/ },
    ],
    actions: ['put-parameter'],
  },
  {
    reason: "a resolve:ssm: reference by the ARN of the cell's own parameter follows the put like its name does",
    observe: (c) => {
      c.launchTemplates[OWNER_LT] = {
        ok: true,
        value: {
          launchTemplateId: OWNER_LT,
          name: 'web',
          defaultVersion: 1,
          latestVersion: 1,
          versionsWithImage: [],
          tags: { 'imagebuilder-reconciler:managed': 'true' },
          defaultImageId: 'ami-old',
          defaultImageAlias: `resolve:ssm:arn:aws:ssm:us-east-1:${OWN}:parameter/golden/windows/latest`,
        },
      };
      c.parameters['/golden/windows/latest'] = { ok: true, value: 'ami-old' };
    },
    want: [
      { check: 'launch-template', result: 'pending', reason: /this distribution sets \/golden\/windows\/latest .*not pinned/ },
      { check: 'ssm-parameter', result: 'drift', reason: /holds ami-old/ },
    ],
    actions: ['put-parameter'],
  },
  {
    reason: "a resolve:ssm: ARN of another account's parameter of the same name never follows this account's put",
    observe: (c) => {
      c.launchTemplates[OWNER_LT] = {
        ok: true,
        value: {
          launchTemplateId: OWNER_LT,
          name: 'web',
          defaultVersion: 1,
          latestVersion: 1,
          versionsWithImage: [],
          tags: { 'imagebuilder-reconciler:managed': 'true' },
          defaultImageId: 'ami-old',
          defaultImageAlias: 'resolve:ssm:arn:aws:ssm:us-east-1:999999999999:parameter/golden/windows/latest',
        },
      };
      c.parameters['/golden/windows/latest'] = { ok: true, value: 'ami-old' };
    },
    want: [
      { check: 'launch-template', result: 'failed', reason: /rather than pinned/ },
      { check: 'ssm-parameter', result: 'drift', reason: /holds ami-old/ },
    ],
    actions: ['put-parameter'],
  },
  {
    reason: "a resolve:ssm: ARN of the same account in another region never follows this region's put",
    observe: (c) => {
      c.launchTemplates[OWNER_LT] = {
        ok: true,
        value: {
          launchTemplateId: OWNER_LT,
          name: 'web',
          defaultVersion: 1,
          latestVersion: 1,
          versionsWithImage: [],
          tags: { 'imagebuilder-reconciler:managed': 'true' },
          defaultImageId: 'ami-old',
          defaultImageAlias: `resolve:ssm:arn:aws:ssm:eu-west-1:${OWN}:parameter/golden/windows/latest`,
        },
      };
      c.parameters['/golden/windows/latest'] = { ok: true, value: 'ami-old' };
    },
    want: [
      { check: 'launch-template', result: 'failed', reason: /rather than pinned/ },
      { check: 'ssm-parameter', result: 'drift', reason: /holds ami-old/ },
    ],
    actions: ['put-parameter'],
  },
  {
    reason: 'a resolve:ssm: template whose parameter resolves to a newer build is superseded, not pending',
    observe: (c) => {
      c.launchTemplates[OWNER_LT] = {
        ok: true,
        value: {
          launchTemplateId: OWNER_LT,
          name: 'web',
          defaultVersion: 1,
          latestVersion: 1,
          versionsWithImage: [],
          tags: { 'imagebuilder-reconciler:managed': 'true' },
          defaultImageId: 'ami-newer',
          defaultImageAlias: 'resolve:ssm:/golden/windows/latest',
        },
      };
      c.parameters['/golden/windows/latest'] = { ok: true, value: 'ami-newer' };
    },
    newer: { ok: true, value: [{ arn: NEWER_ARN, status: 'AVAILABLE', amis: { 'eu-west-1/444455556666': 'ami-newer' } }] },
    want: [
      { check: 'launch-template', result: 'skipped', reason: /superseded/ },
      { check: 'ssm-parameter', result: 'skipped', reason: /superseded/ },
    ],
    actions: [],
  },
  {
    reason: 'a missing launch template fails the check with the account named',
    observe: (c) => {
      c.launchTemplates[OWNER_LT] = { ok: true, value: null };
    },
    want: [{ check: 'launch-template', result: 'failed', reason: /does not exist in account 111122223333/ }],
    actions: [],
  },
  {
    reason: 'a template whose default already uses a newer build is superseded: no rollback',
    observe: (c) => {
      c.launchTemplates[OWNER_LT] = {
        ok: true,
        value: {
          launchTemplateId: OWNER_LT,
          name: 'web',
          defaultVersion: 3,
          latestVersion: 3,
          defaultImageId: 'ami-newer',
          versionsWithImage: [],
          tags: { 'imagebuilder-reconciler:managed': 'true' },
        },
      };
    },
    newer: { ok: true, value: [{ arn: NEWER_ARN, status: 'AVAILABLE', amis: { 'eu-west-1/444455556666': 'ami-newer' } }] },
    want: [{ check: 'launch-template', result: 'skipped', reason: /superseded/ }],
    actions: [],
  },
  {
    reason: 'when it is unknown whether a newer build exists, nothing that could roll back is changed',
    observe: (c) => {
      c.parameters['/golden/windows/latest'] = { ok: true, value: 'ami-other' };
    },
    newer: { ok: false, error: { kind: 'throttled', code: 'ThrottlingException', message: 'Rate exceeded' } },
    want: [{ check: 'ssm-parameter', result: 'pending', reason: /cannot tell whether a newer build exists/ }],
    actions: [],
  },
  {
    reason: "a parameter that holds this build's AMI over a newer build's (an aws:ec2:image put validated late) is rolled forward",
    observe: (c) => {
      // the newer build's run already moved the template
      c.launchTemplates[OWNER_LT] = {
        ok: true,
        value: {
          launchTemplateId: OWNER_LT,
          name: 'web',
          defaultVersion: 3,
          latestVersion: 3,
          defaultImageId: 'ami-newer',
          versionsWithImage: [2],
          tags: { 'imagebuilder-reconciler:managed': 'true' },
        },
      };
    },
    newer: { ok: true, value: [{ arn: NEWER_ARN, status: 'AVAILABLE', amis: { [KEY]: 'ami-newer' } }] },
    want: [
      { check: 'launch-template', result: 'skipped', reason: /superseded/ },
      { check: 'ssm-parameter', result: 'drift', reason: /of this build, but newer build .* has ami-newer here: .*rolled forward/ },
    ],
    actions: ['put-parameter'],
    action: { value: 'ami-newer', name: '/golden/windows/latest', dataType: 'aws:ec2:image' },
  },
  {
    reason: "a launch template default that holds this build's AMI over a newer build's (this run's write landed last) is rolled forward",
    observe: (c) => {
      // the newer build's run already moved the parameter
      c.parameters['/golden/windows/latest'] = { ok: true, value: 'ami-newer' };
    },
    newer: { ok: true, value: [{ arn: NEWER_ARN, status: 'AVAILABLE', amis: { [KEY]: 'ami-newer' } }] },
    want: [
      {
        check: 'launch-template',
        result: 'drift',
        reason: /default version 2 uses .* of this build, but newer build .* has ami-newer here: .*rolled forward/,
      },
      { check: 'ssm-parameter', result: 'skipped', reason: /superseded/ },
    ],
    actions: ['update-launch-template'],
    // a version the newer build's run made is used when there is one at apply time, else one is made from the default
    action: { imageId: 'ami-newer', setDefault: true, reuseVersion: true, existingVersion: undefined, create: { sourceVersion: 2 } },
  },
  {
    reason: 'a revoked build moves no pointer, enables no Fast Launch and repairs nothing, whatever drifted',
    desired: ownerOnly(undefined, { tags: { 'imagebuilder-reconciler:revoked': '2026-12-04T19:00:00.000Z CVE (alice)' } }),
    observe: (c) => {
      c.parameters['/golden/windows/latest'] = { ok: true, value: 'ami-other' };
      c.fastLaunch = { ok: true, value: null };
      c.image = { ok: true, value: image({ tags: {} }) };
    },
    want: [
      { check: 'ami', result: 'skipped', reason: /revoked \(2026-12-04T19:00:00.000Z CVE \(alice\)\): it is never current again/ },
      { check: 'launch-template', result: 'skipped', reason: /revoked/ },
      { check: 'fast-launch', result: 'skipped', reason: /revoked/ },
      { check: 'ssm-parameter', result: 'skipped', reason: /revoked/ },
    ],
    absent: ['tags', 'launch-permission'],
    actions: [],
  },
  {
    reason: 'a missing SSM parameter is created with PutParameter',
    observe: (c) => {
      c.parameters['/golden/windows/latest'] = { ok: true, value: null };
    },
    want: [{ check: 'ssm-parameter', result: 'drift', reason: /does not exist/ }],
    actions: ['put-parameter'],
  },
  {
    reason: 'Fast Launch enabling is pending',
    observe: (c) => {
      c.fastLaunch = { ok: true, value: { ...enabled, state: 'enabling' } };
    },
    want: [{ check: 'fast-launch', result: 'pending', reason: /enabling/ }],
    actions: [],
  },
  {
    reason: 'Fast Launch enabled with other settings is enabled again with the configured ones',
    observe: (c) => {
      c.fastLaunch = { ok: true, value: { ...enabled, maxParallelLaunches: 10 } };
    },
    want: [{ check: 'fast-launch', result: 'drift', reason: /maxParallelLaunches 10 ≠ 6/ }],
    actions: ['enable-fast-launch'],
  },
  {
    reason: 'Fast Launch pinned to an older template version is drift ($Latest resolves to a number)',
    observe: (c) => {
      c.fastLaunch = { ok: true, value: { ...enabled, launchTemplate: { id: 'lt-0cccccccccccccccc', name: 'fast-launch', version: '1' } } };
    },
    want: [{ check: 'fast-launch', result: 'drift', reason: /version 1 ≠ 2/ }],
    actions: ['enable-fast-launch'],
  },
  {
    reason: 'enabling-failed is retried while retries remain',
    observe: (c) => {
      c.fastLaunch = { ok: true, value: { ...enabled, state: 'enabling-failed', stateTransitionReason: 'Client.InternalError' } };
    },
    context: { fastLaunchRetries: { [KEY]: 1 } },
    want: [{ check: 'fast-launch', result: 'drift', reason: /enabling-failed: Client.InternalError; retry 2 of 2/ }],
    actions: ['enable-fast-launch'],
  },
  {
    reason: 'enabled-failed past the retry bound fails with EC2 reason',
    observe: (c) => {
      c.fastLaunch = { ok: true, value: { ...enabled, state: 'enabled-failed', stateTransitionReason: 'Client.LaunchTemplateInvalid' } };
    },
    context: { fastLaunchRetries: { [KEY]: 2 } },
    want: [{ check: 'fast-launch', result: 'failed', reason: /enabled-failed after 2 retries: Client.LaunchTemplateInvalid/ }],
    actions: [],
  },
  {
    reason: 'the Fast Launch template missing in the account fails the check, naming it',
    observe: (c) => {
      c.fastLaunch = { ok: true, value: null };
      c.fastLaunchTemplate = { ok: true, value: null };
    },
    want: [{ check: 'fast-launch', result: 'failed', reason: /launch template fast-launch for Fast Launch does not exist/ }],
    actions: [],
  },
  {
    reason: 'Fast Launch is skipped for a Linux image',
    desired: { ...ownerOnly(), platform: 'Linux' },
    observe: (c) => {
      c.fastLaunch = { ok: true, value: null };
    },
    want: [{ check: 'fast-launch', result: 'skipped', reason: /Windows AMIs only/ }],
    actions: [],
  },
  {
    reason: 'a missing configured grant is added; an extra grant is reported, never removed',
    desired: ownerOnly((cell) => {
      cell.launchPermission = { userIds: ['123456789012'] };
    }),
    observe: (c) => {
      c.launchPermissions = {
        ok: true,
        value: { userIds: ['210987654321'], userGroups: [], organizationArns: [], organizationalUnitArns: [] },
      };
    },
    want: [
      { check: 'launch-permission', result: 'drift', reason: /userIds:123456789012/ },
      { check: 'launch-permission', result: 'warning', reason: /never removed.*userIds:210987654321/ },
    ],
    actions: ['add-launch-permission'],
  },
  {
    reason: 'a public AMI whose configuration does not share publicly is reported, and not made private or public',
    observe: (c) => {
      c.image = { ok: true, value: image({ public: true }) };
    },
    want: [{ check: 'launch-permission', result: 'warning', reason: /public/ }],
    actions: [],
  },
  {
    reason: 'snapshots encrypted with another key fail the encryption check (report only)',
    desired: ownerOnly((cell) => {
      cell.kmsKeyId = 'arn:aws:kms:us-east-1:111122223333:key/wanted';
    }),
    observe: (c) => {
      c.snapshots = {
        ok: true,
        value: [{ snapshotId: 'snap-1', encrypted: true, kmsKeyId: 'arn:aws:kms:us-east-1:111122223333:key/other', volumeSizeGiB: 30 }],
      };
    },
    want: [{ check: 'encryption', result: 'failed', reason: /snap-1/ }],
    actions: [],
  },
  // ---- the AMI of the cell ----
  {
    reason: 'a cell that was not observed at all is pending, and nothing else is checked',
    observe: () => undefined,
    unobserved: true,
    want: [{ check: 'access', result: 'pending', reason: /^not observed$/ }],
    absent: ['ami'],
    actions: [],
  },
  {
    reason: 'a cell only named by another setting (not a distribution target) holds no copy: failed, saying so',
    desired: ownerOnly((cell) => {
      cell.origin = 'referenced';
      cell.recorded = undefined;
    }),
    observe: () => undefined,
    want: [{ check: 'ami', result: 'failed', reason: /not a distribution target of the region/ }],
    actions: [],
  },
  {
    reason: 'an AVAILABLE image that recorded no AMI for a target cell fails it',
    desired: ownerOnly(() => undefined, { outputResources: { amis: [] } }),
    observe: () => undefined,
    want: [{ check: 'ami', result: 'failed', reason: /^Image Builder recorded no AMI for this cell$/ }],
    absent: ['tags', 'launch-template', 'fast-launch', 'ssm-parameter'],
    actions: [],
  },
  {
    reason: 'a build still distributing has no AMI yet: pending, not failed',
    desired: ownerOnly(() => undefined, { state: { status: 'DISTRIBUTING' }, outputResources: { amis: [] } }),
    observe: () => undefined,
    want: [{ check: 'ami', result: 'pending', reason: /^the image is DISTRIBUTING; distribution has not finished$/ }],
    actions: [],
  },
  {
    reason: 'a FAILED build that never distributed here fails the cell with Image Builder reason, and plans no retry unless asked',
    desired: ownerOnly(() => undefined, { state: { status: 'FAILED', reason: 'Distribution timed out' }, outputResources: { amis: [] } }),
    observe: () => undefined,
    want: [{ check: 'ami', result: 'failed', reason: /^not distributed \(image FAILED: Distribution timed out\)$/ }],
    actions: [],
  },
  {
    reason: 'a FAILED build with a cell not distributed gets one RetryImage when retries are on',
    desired: ownerOnly(() => undefined, { state: { status: 'FAILED' }, outputResources: { amis: [] } }),
    observe: () => undefined,
    context: { retryFailedImages: true },
    want: [{ check: 'ami', result: 'failed', reason: /^not distributed \(image FAILED\)$/ }],
    actions: [],
    imageActions: ['retry-image'],
  },
  {
    reason: 'a CANCELLED build that never distributed here fails the cell',
    desired: ownerOnly(() => undefined, { state: { status: 'CANCELLED' }, outputResources: { amis: [] } }),
    observe: () => undefined,
    want: [{ check: 'ami', result: 'failed', reason: /^not distributed \(image CANCELLED\)$/ }],
    actions: [],
  },
  {
    reason: 'a FAILED build whose every cell got its AMI is not retried (nothing is missing)',
    desired: ownerOnly(() => undefined, { state: { status: 'FAILED' } }),
    observe: () => undefined,
    context: { retryFailedImages: true },
    want: [
      { check: 'launch-template', result: 'skipped', reason: /the image is FAILED/ },
      { check: 'fast-launch', result: 'skipped', reason: /the image is FAILED/ },
      { check: 'ssm-parameter', result: 'skipped', reason: /the image is FAILED/ },
    ],
    actions: [],
  },
  {
    reason: 'a build still distributing does not roll out: launch templates, Fast Launch and parameters are skipped',
    desired: ownerOnly(() => undefined, { state: { status: 'DISTRIBUTING' } }),
    observe: () => undefined,
    want: [
      { check: 'launch-template', result: 'skipped', reason: /the image is DISTRIBUTING; .*set only for AVAILABLE images/ },
      { check: 'fast-launch', result: 'skipped', reason: /the image is DISTRIBUTING/ },
      { check: 'ssm-parameter', result: 'skipped', reason: /the image is DISTRIBUTING/ },
    ],
    actions: [],
  },
  {
    reason: "a distribution gate's stage rolls out while the build is DISTRIBUTING (docs/gate.md)",
    desired: ownerOnly(() => undefined, { state: { status: 'DISTRIBUTING' } }),
    observe: () => undefined,
    context: { rollOut: true },
    want: [
      { check: 'launch-template', result: 'ok' },
      { check: 'ssm-parameter', result: 'ok' },
    ],
    actions: [],
  },
  {
    reason: 'the gate rolls out only a DISTRIBUTING build: a FAILED one still does not',
    desired: ownerOnly(() => undefined, { state: { status: 'FAILED' } }),
    observe: () => undefined,
    context: { rollOut: true },
    want: [
      { check: 'launch-template', result: 'skipped', reason: /the image is FAILED/ },
      { check: 'fast-launch', result: 'skipped', reason: /the image is FAILED/ },
      { check: 'ssm-parameter', result: 'skipped', reason: /the image is FAILED/ },
    ],
    actions: [],
  },
  {
    reason: 'a FAILED build never rolls out, and reports no Fast Launch check for a cell that configures none',
    desired: ownerOnly(
      (cell) => {
        cell.fastLaunch = undefined;
      },
      { state: { status: 'FAILED' } },
    ),
    observe: () => undefined,
    want: [
      { check: 'launch-template', result: 'skipped', reason: /set only for AVAILABLE images/ },
      { check: 'ssm-parameter', result: 'skipped', reason: /set only for AVAILABLE images/ },
    ],
    absent: ['fast-launch'],
    actions: [],
  },
  {
    reason: 'an AMI read that never happened is pending "not observed", not a crash or a pass',
    observe: (c) => {
      c.image = undefined;
    },
    want: [{ check: 'ami', result: 'pending', reason: /^not observed$/ }],
    absent: ['tags'],
    actions: [],
  },
  {
    reason: 'an AMI that cleanup removed (tagged on the image) is skipped as cleaned up, not pending',
    desired: ownerOnly(() => undefined, { tags: { [cleanedUpTagKey('us-east-1', OWN)]: '2026-11-30T10:00:00Z region removed' } }),
    observe: (c) => {
      c.image = { ok: true, value: null };
    },
    want: [{ check: 'ami', result: 'skipped', reason: /^cleaned up by imagebuilder-reconciler: 2026-11-30T10:00:00Z region removed$/ }],
    absent: ['tags', 'launch-template'],
    actions: [],
  },
  {
    reason: 'a deregistered AMI that cleanup removed is skipped as cleaned up',
    desired: ownerOnly(() => undefined, { tags: { [cleanedUpTagKey('us-east-1', OWN)]: '2026-11-30T10:00:00Z region removed' } }),
    observe: (c) => {
      c.image = { ok: true, value: image({ state: 'deregistered' }) };
    },
    want: [{ check: 'ami', result: 'skipped', reason: /^cleaned up by imagebuilder-reconciler: / }],
    actions: [],
  },
  {
    reason: 'a deregistered AMI that cleanup did not remove is a failure',
    observe: (c) => {
      c.image = { ok: true, value: image({ state: 'deregistered' }) };
    },
    want: [{ check: 'ami', result: 'failed', reason: /^the AMI is deregistered$/ }],
    actions: [],
  },
  {
    reason: 'an AMI still pending is pending, and nothing is repaired on it yet',
    observe: (c) => {
      c.image = { ok: true, value: image({ state: 'pending', tags: {} }) };
    },
    want: [{ check: 'ami', result: 'pending', reason: /^the AMI is still pending$/ }],
    absent: ['tags'],
    actions: [],
  },
  {
    reason: 'a throttled AMI read is pending with the error',
    observe: (c) => {
      c.image = { ok: false, error: { kind: 'throttled', code: 'RequestLimitExceeded', message: 'Request limit exceeded' } };
    },
    want: [{ check: 'ami', result: 'pending', reason: /^Request limit exceeded$/ }],
    actions: [],
  },
  {
    reason: 'without a configured name pattern the name is not checked',
    desired: ownerOnly((cell) => {
      cell.namePattern = undefined;
    }),
    observe: () => undefined,
    want: [{ check: 'ami', result: 'ok' }],
    absent: ['name'],
    actions: [],
  },
  // ---- launch permission ----
  {
    reason: 'every configured grant present and nothing extra: ok, no warning, nothing planned',
    desired: ownerOnly((cell) => {
      cell.launchPermission = { userIds: ['123456789012'] };
    }),
    observe: (c) => {
      c.launchPermissions = {
        ok: true,
        value: { userIds: ['123456789012'], userGroups: [], organizationArns: [], organizationalUnitArns: [] },
      };
    },
    want: [{ check: 'launch-permission', result: 'ok', reason: /every configured grant is present/ }],
    actions: [],
  },
  {
    reason: 'a failed launch permission read is reported with its error and plans no grant',
    desired: ownerOnly((cell) => {
      cell.launchPermission = { userIds: ['123456789012'] };
    }),
    observe: (c) => {
      c.launchPermissions = {
        ok: false,
        error: { kind: 'access-denied', code: 'UnauthorizedOperation', message: 'not allowed to DescribeImageAttribute' },
      };
    },
    want: [{ check: 'launch-permission', result: 'failed', reason: /^not allowed to DescribeImageAttribute$/ }],
    actions: [],
  },
  {
    reason: 'configured launch permissions that were not read are pending, never silently fine, and plan no grant',
    desired: ownerOnly((cell) => {
      cell.launchPermission = { userIds: ['123456789012'] };
    }),
    observe: (c) => {
      c.launchPermissions = undefined;
    },
    want: [{ check: 'launch-permission', result: 'pending', reason: /^launch permissions not read yet$/ }],
    actions: [],
  },
  // ---- encryption ----
  {
    reason: 'snapshots encrypted with the configured key (by key ARN) pass',
    desired: ownerOnly((cell) => {
      cell.kmsKeyId = 'arn:aws:kms:us-east-1:111122223333:key/wanted';
    }),
    observe: (c) => {
      c.snapshots = {
        ok: true,
        value: [{ snapshotId: 'snap-1', encrypted: true, kmsKeyId: 'arn:aws:kms:us-east-1:111122223333:key/wanted', volumeSizeGiB: 30 }],
      };
    },
    want: [
      { check: 'encryption', result: 'ok', reason: /^1 snapshot\(s\) encrypted with arn:aws:kms:us-east-1:111122223333:key\/wanted$/ },
    ],
    actions: [],
  },
  {
    reason: 'a key configured by bare id matches the key ARN EC2 reports',
    desired: ownerOnly((cell) => {
      cell.kmsKeyId = 'wanted';
    }),
    observe: (c) => {
      c.snapshots = {
        ok: true,
        value: [{ snapshotId: 'snap-1', encrypted: true, kmsKeyId: 'arn:aws:kms:us-east-1:111122223333:key/wanted', volumeSizeGiB: 30 }],
      };
    },
    want: [{ check: 'encryption', result: 'ok' }],
    actions: [],
  },
  {
    reason: 'a snapshot reporting exactly the configured alias ARN passes without a KMS lookup',
    desired: ownerOnly((cell) => {
      cell.kmsKeyId = 'arn:aws:kms:us-east-1:111122223333:alias/golden';
    }),
    observe: (c) => {
      c.snapshots = {
        ok: true,
        value: [{ snapshotId: 'snap-1', encrypted: true, kmsKeyId: 'arn:aws:kms:us-east-1:111122223333:alias/golden', volumeSizeGiB: 30 }],
      };
    },
    want: [{ check: 'encryption', result: 'ok' }],
    actions: [],
  },
  {
    reason: 'a key configured by alias cannot be confirmed without KMS: a warning, not a failure',
    desired: ownerOnly((cell) => {
      cell.kmsKeyId = 'alias/golden';
    }),
    observe: (c) => {
      c.snapshots = {
        ok: true,
        value: [{ snapshotId: 'snap-1', encrypted: true, kmsKeyId: 'arn:aws:kms:us-east-1:111122223333:key/abc', volumeSizeGiB: 30 }],
      };
    },
    want: [{ check: 'encryption', result: 'warning', reason: /^alias\/golden is an alias; cannot confirm the key of snap-1 without KMS$/ }],
    actions: [],
  },
  {
    reason: 'an unencrypted snapshot fails the check even when the key is configured by alias',
    desired: ownerOnly((cell) => {
      cell.kmsKeyId = 'arn:aws:kms:us-east-1:111122223333:alias/golden';
    }),
    observe: (c) => {
      c.snapshots = {
        ok: true,
        value: [
          { snapshotId: 'snap-1', encrypted: false, kmsKeyId: undefined, volumeSizeGiB: 30 },
          { snapshotId: 'snap-2', encrypted: true, kmsKeyId: 'arn:aws:kms:us-east-1:111122223333:key/abc', volumeSizeGiB: 30 },
        ],
      };
    },
    want: [{ check: 'encryption', result: 'failed', reason: /: snap-1 \(unencrypted\) \(report only\)$/ }],
    actions: [],
  },
  {
    reason: 'an encrypted snapshot whose key EC2 does not report fails the check',
    desired: ownerOnly((cell) => {
      cell.kmsKeyId = 'arn:aws:kms:us-east-1:111122223333:key/wanted';
    }),
    observe: (c) => {
      c.snapshots = { ok: true, value: [{ snapshotId: 'snap-1', encrypted: true, kmsKeyId: undefined, volumeSizeGiB: 30 }] };
    },
    want: [{ check: 'encryption', result: 'failed', reason: /snap-1 \(unknown key\)/ }],
    actions: [],
  },
  {
    reason: 'an AMI with no EBS snapshots to check is a warning',
    desired: ownerOnly((cell) => {
      cell.kmsKeyId = 'arn:aws:kms:us-east-1:111122223333:key/wanted';
    }),
    observe: (c) => {
      c.snapshots = undefined;
    },
    want: [{ check: 'encryption', result: 'warning', reason: /^the AMI has no EBS snapshots to check$/ }],
    actions: [],
  },
  {
    reason: 'a failed snapshot read is reported with its error, not as encrypted',
    desired: ownerOnly((cell) => {
      cell.kmsKeyId = 'arn:aws:kms:us-east-1:111122223333:key/wanted';
    }),
    observe: (c) => {
      c.snapshots = {
        ok: false,
        error: { kind: 'access-denied', code: 'UnauthorizedOperation', message: 'not allowed to DescribeSnapshots' },
      };
    },
    want: [{ check: 'encryption', result: 'failed', reason: /^not allowed to DescribeSnapshots$/ }],
    actions: [],
  },
  // ---- launch templates ----
  {
    reason: 'a launch template that was not read is pending "not observed"',
    observe: (c) => {
      c.launchTemplates = {};
    },
    want: [{ check: 'launch-template', result: 'pending', reason: /^not observed$/ }],
    actions: [],
  },
  {
    reason: 'a throttled launch template read is pending with the error and changes nothing',
    observe: (c) => {
      c.launchTemplates[OWNER_LT] = {
        ok: false,
        error: { kind: 'throttled', code: 'RequestLimitExceeded', message: 'Request limit exceeded' },
      };
    },
    want: [{ check: 'launch-template', result: 'pending', reason: /^Request limit exceeded$/ }],
    actions: [],
  },
  {
    reason: 'a newer build that touches neither this cell nor its values does not block the update',
    observe: (c) => {
      c.launchTemplates[OWNER_LT] = {
        ok: true,
        value: {
          launchTemplateId: OWNER_LT,
          name: 'web',
          defaultVersion: 1,
          latestVersion: 1,
          defaultImageId: 'ami-old',
          versionsWithImage: [],
          tags: { 'imagebuilder-reconciler:managed': 'true' },
        },
      };
    },
    newer: { ok: true, value: [{ arn: NEWER_ARN, status: 'AVAILABLE', amis: { 'eu-west-1/444455556666': 'ami-newer' } }] },
    want: [{ check: 'launch-template', result: 'drift', reason: /no version uses/ }],
    actions: ['update-launch-template'],
  },
  // ---- Fast Launch ----
  {
    reason: 'a cell that configures no Fast Launch reports no Fast Launch check',
    desired: ownerOnly((cell) => {
      cell.fastLaunch = undefined;
    }),
    observe: (c) => {
      c.fastLaunch = undefined;
    },
    want: [{ check: 'ami', result: 'ok' }],
    absent: ['fast-launch'],
    actions: [],
  },
  {
    reason: 'Fast Launch without a launch template is ok when enabled with the configured settings',
    desired: ownerOnly((cell) => {
      cell.fastLaunch = { source: 'configured', targetResourceCount: 5, maxParallelLaunches: 6, launchTemplate: undefined };
    }),
    observe: (c) => {
      c.fastLaunchTemplate = undefined;
    },
    want: [{ check: 'fast-launch', result: 'ok', reason: /^enabled$/ }],
    actions: [],
  },
  {
    reason: 'a Fast Launch state that was not read is pending "not observed"',
    observe: (c) => {
      c.fastLaunch = undefined;
    },
    want: [{ check: 'fast-launch', result: 'pending', reason: /^not observed$/ }],
    actions: [],
  },
  {
    reason: 'a failed Fast Launch read is reported with its error and enables nothing',
    observe: (c) => {
      c.fastLaunch = {
        ok: false,
        error: { kind: 'access-denied', code: 'UnauthorizedOperation', message: 'not allowed to DescribeFastLaunchImages' },
      };
    },
    want: [{ check: 'fast-launch', result: 'failed', reason: /^not allowed to DescribeFastLaunchImages$/ }],
    actions: [],
  },
  {
    reason: 'Fast Launch disabling is pending: it is enabled once EC2 has finished',
    observe: (c) => {
      c.fastLaunch = { ok: true, value: { ...enabled, state: 'disabling' } };
    },
    want: [{ check: 'fast-launch', result: 'pending', reason: /^disabling; it will be enabled once EC2 has finished$/ }],
    actions: [],
  },
  {
    reason: 'Fast Launch disabling-failed fails with EC2 reason and is not retried',
    observe: (c) => {
      c.fastLaunch = { ok: true, value: { ...enabled, state: 'disabling-failed', stateTransitionReason: 'Client.InternalError' } };
    },
    want: [{ check: 'fast-launch', result: 'failed', reason: /^disabling-failed: Client.InternalError$/ }],
    actions: [],
  },
  {
    reason: 'Fast Launch with another target resource count is enabled again with the configured one',
    observe: (c) => {
      c.fastLaunch = { ok: true, value: { ...enabled, targetResourceCount: 3 } };
    },
    want: [{ check: 'fast-launch', result: 'drift', reason: /^enabled with other settings: targetResourceCount 3 ≠ 5$/ }],
    actions: ['enable-fast-launch'],
    action: {
      targetResourceCount: 5,
      maxParallelLaunches: 6,
      launchTemplate: { id: 'lt-0cccccccccccccccc', version: '2' },
      isRetry: false,
    },
  },
  {
    reason: 'Fast Launch using another launch template is enabled again with the configured one',
    observe: (c) => {
      c.fastLaunch = { ok: true, value: { ...enabled, launchTemplate: { id: 'lt-0dddddddddddddddd', name: 'other', version: '2' } } };
    },
    want: [
      {
        check: 'fast-launch',
        result: 'drift',
        reason: /^enabled with other settings: launch template lt-0dddddddddddddddd ≠ lt-0cccccccccccccccc$/,
      },
    ],
    actions: ['enable-fast-launch'],
  },
  {
    reason: 'a Fast Launch template that was not read is pending',
    observe: (c) => {
      c.fastLaunchTemplate = undefined;
    },
    want: [{ check: 'fast-launch', result: 'pending', reason: /^launch template not observed$/ }],
    actions: [],
  },
  {
    reason: 'a throttled Fast Launch template read is pending with the error',
    observe: (c) => {
      c.fastLaunchTemplate = { ok: false, error: { kind: 'throttled', code: 'RequestLimitExceeded', message: 'Request limit exceeded' } };
    },
    want: [{ check: 'fast-launch', result: 'pending', reason: /^Request limit exceeded$/ }],
    actions: [],
  },
  // ---- SSM parameters ----
  {
    reason: 'an SSM parameter that was not read is pending "not observed"',
    observe: (c) => {
      c.parameters = {};
    },
    want: [{ check: 'ssm-parameter', result: 'pending', reason: /^not observed$/ }],
    actions: [],
  },
  {
    reason: 'a denied SSM parameter read fails with the error and puts nothing',
    observe: (c) => {
      c.parameters['/golden/windows/latest'] = {
        ok: false,
        error: { kind: 'access-denied', code: 'AccessDeniedException', message: 'not allowed to GetParameter' },
      };
    },
    want: [{ check: 'ssm-parameter', result: 'failed', reason: /^not allowed to GetParameter$/ }],
    actions: [],
  },
];

describe('plan (pure)', () => {
  it.each(cases)('$reason', (c) => {
    // Prepare
    const desired = c.desired ?? ownerOnly();
    const observed = converged();
    c.observe(observed);
    const observation: Observation = { cells: c.unobserved ? {} : { [KEY]: observed }, newerBuilds: c.newer ?? { ok: true, value: [] } };

    // Act
    const result = plan(desired, observation, { ...context, ...c.context });

    // Assess
    const cell = result.cells[0];
    const checks = cell?.checks ?? [];
    const matches = (want: Case['want'][number], check: (typeof checks)[number]): boolean =>
      check.check === want.check && check.result === want.result && (want.reason === undefined || want.reason.test(check.reason));
    for (const want of c.want) {
      expect(checks, `${want.check} ${want.result} ${want.reason ?? ''}`).toContainEqual(
        expect.objectContaining({
          check: want.check,
          result: want.result,
          ...(want.reason === undefined ? {} : { reason: expect.stringMatching(want.reason) }),
        }),
      );
    }
    // nothing else is reported as a problem
    expect(checks.filter((check) => check.result !== 'ok' && !c.want.some((want) => matches(want, check)))).toStrictEqual([]);
    expect(checks.filter((check) => c.absent?.includes(check.check) === true)).toStrictEqual([]);
    expect(cell?.actions.map((a) => a.kind)).toStrictEqual(c.actions);
    if (c.action !== undefined) expect(cell?.actions[0]).toMatchObject(c.action);
    expect(result.imageActions.map((a) => a.kind)).toStrictEqual(c.imageActions ?? []);
  });

  it('is deterministic: the same inputs give the same actions and client tokens', () => {
    const desired = ownerOnly();
    const observed = converged();
    observed.launchTemplates[OWNER_LT] = {
      ok: true,
      value: {
        launchTemplateId: OWNER_LT,
        name: 'web',
        defaultVersion: 1,
        latestVersion: 1,
        defaultImageId: 'ami-old',
        versionsWithImage: [],
        tags: { 'imagebuilder-reconciler:managed': 'true' },
      },
    };
    const observation: Observation = { cells: { [KEY]: observed }, newerBuilds: { ok: true, value: [] } };
    expect(plan(desired, observation, context)).toStrictEqual(plan(desired, observation, context));
  });

  it('never plans a grant the configuration does not name', () => {
    const desired = ownerOnly((cell) => {
      cell.launchPermission = { userIds: ['123456789012'], organizationArns: ['arn:aws:organizations::111122223333:organization/o-abc'] };
    });
    const observed = converged();
    observed.launchPermissions = { ok: true, value: { userIds: [], userGroups: [], organizationArns: [], organizationalUnitArns: [] } };
    const result = plan(desired, { cells: { [KEY]: observed }, newerBuilds: { ok: true, value: [] } }, context);
    const action = result.cells[0]?.actions.find((a) => a.kind === 'add-launch-permission');
    expect(action).toMatchObject({
      add: {
        userIds: ['123456789012'],
        userGroups: [],
        organizationArns: ['arn:aws:organizations::111122223333:organization/o-abc'],
        organizationalUnitArns: [],
      },
    });
  });

  it('checks license configurations and the S3 export, never reports them as silently converged (issue 12, item 6)', () => {
    const LICENSE = 'arn:aws:license-manager:us-east-1:111111111111:license-configuration:lic-0123456789abcdef0123456789abcdef';
    const built = windowsImage();
    const [first, second] = built.distributionConfiguration?.distributions ?? [];
    if (first === undefined || second === undefined) throw new Error('the factory has two distributions');
    first.licenseConfigurationArns = [LICENSE];
    first.s3ExportConfiguration = { roleName: 'export', diskImageFormat: 'VMDK', s3Bucket: 'exports', s3Prefix: 'golden/' };
    second.s3ExportConfiguration = { roleName: 'export', diskImageFormat: 'RAW', s3Bucket: 'exports-eu', s3Prefix: undefined };
    const desired = desiredImage(built, { fastLaunchInheritForTargets: true });
    // the export is one per region: on the owner's cell, else on the region's first cell
    expect(desired.cells.filter((c) => c.s3Export !== undefined).map((c) => c.key)).toStrictEqual([
      `eu-west-1/${desired.cells.find((c) => c.region === 'eu-west-1')?.accountId ?? ''}`,
      KEY,
    ]);
    const result = plan(
      { ...desired, cells: desired.cells.filter((c) => c.key === KEY) },
      { cells: { [KEY]: converged() }, newerBuilds: { ok: true, value: [] } },
      context,
    );
    const checks = result.cells[0]?.checks ?? [];
    // license configurations are checked: not observed yet is pending, never ok
    expect(checks).toContainEqual({ check: 'license-configuration', subject: LICENSE, result: 'pending', reason: 'not observed' });
    expect(checks).toContainEqual({ check: 's3-export', subject: 's3://exports/golden/', result: 'pending', reason: 'not observed' });
    // everything else of the cell is still checked
    expect(checks.filter((c) => c.check !== 's3-export' && c.check !== 'license-configuration').every((c) => c.result === 'ok')).toBe(true);
  });

  it('checks the S3 export: pending while the task is active, ok with the file there, failed with the task failed, none, or the file missing', () => {
    const built = windowsImage();
    const [first] = built.distributionConfiguration?.distributions ?? [];
    if (first === undefined) throw new Error('the factory has distributions');
    first.s3ExportConfiguration = { roleName: 'vmimport', diskImageFormat: 'VMDK', s3Bucket: 'exports', s3Prefix: 'golden/' };
    const desired = desiredImage(built, { fastLaunchInheritForTargets: true });
    const only = { ...desired, cells: desired.cells.filter((c) => c.key === KEY) };
    const run = (s3Export: CellObservation['s3Export']) =>
      plan(only, { cells: { [KEY]: { ...converged(), s3Export } }, newerBuilds: { ok: true, value: [] } }, context).cells[0]?.checks.find(
        (c) => c.check === 's3-export',
      );
    const task = (status: string, statusMessage?: string) => ({
      id: 'export-ami-0123456789abcdef0',
      status,
      statusMessage,
      progress: status === 'active' ? '50' : undefined,
    });
    const key = 'golden/export-ami-0123456789abcdef0.vmdk';
    expect(run({ ok: true, value: { task: task('active', 'converting'), key: undefined, object: undefined } })).toMatchObject({
      result: 'pending',
      reason: expect.stringContaining('is active (converting, 50%)'),
    });
    expect(run({ ok: true, value: { task: task('completed'), key, object: 'present' } })).toMatchObject({
      result: 'ok',
      reason: expect.stringContaining(`s3://exports/${key} is in the bucket`),
    });
    expect(run({ ok: true, value: { task: task('completed'), key, object: 'missing' } })).toMatchObject({
      result: 'failed',
      reason: expect.stringContaining(`s3://exports/${key} is not in the bucket`),
    });
    expect(run({ ok: true, value: { task: task('failed', 'ClientError: no access'), key: undefined, object: undefined } })).toMatchObject({
      result: 'failed',
      reason: expect.stringContaining('is failed: ClientError: no access'),
    });
    expect(run({ ok: true, value: { task: null, key: undefined, object: undefined } })).toMatchObject({
      result: 'failed',
      reason: expect.stringContaining('no export task'),
    });
    const denied = run({
      ok: false,
      error: { kind: 'access-denied', code: 'AccessDenied', message: 'not authorized to perform: s3:GetObject' } as never,
    });
    expect(denied).toMatchObject({ result: 'failed', reason: expect.stringContaining('s3:GetObject') });
    // an AMI not there yet: the export is named as pending, not left out of the report
    const unseen = plan(
      only,
      { cells: { [KEY]: { ...converged(), image: { ok: true, value: null } } }, newerBuilds: { ok: true, value: [] } },
      context,
    ).cells[0]?.checks;
    expect(unseen).toContainEqual({
      check: 's3-export',
      subject: 's3://exports/golden/',
      result: 'pending',
      reason: 'not checked until the AMI is seen',
    });
  });

  it('checks license configurations on the AMI: associates a missing one, reports an extra one, fails with the read refused', () => {
    const LICENSE = 'arn:aws:license-manager:us-east-1:111111111111:license-configuration:lic-0123456789abcdef0123456789abcdef';
    const OTHER = 'arn:aws:license-manager:us-east-1:111111111111:license-configuration:lic-fedcba9876543210fedcba9876543210';
    const built = windowsImage();
    const [first] = built.distributionConfiguration?.distributions ?? [];
    if (first === undefined) throw new Error('the factory has distributions');
    first.licenseConfigurationArns = [LICENSE];
    const desired = desiredImage(built, { fastLaunchInheritForTargets: true });
    const only = { ...desired, cells: desired.cells.filter((c) => c.key === KEY) };
    const run = (licenses: CellObservation['licenses']) =>
      plan(only, { cells: { [KEY]: { ...converged(), licenses } }, newerBuilds: { ok: true, value: [] } }, context).cells[0];
    const missing = run({ ok: true, value: [OTHER] });
    expect(missing?.checks).toContainEqual(expect.objectContaining({ check: 'license-configuration', subject: LICENSE, result: 'drift' }));
    expect(missing?.checks).toContainEqual(
      expect.objectContaining({ check: 'license-configuration', result: 'warning', reason: expect.stringContaining(OTHER) }),
    );
    expect(missing?.actions).toContainEqual(
      expect.objectContaining({
        kind: 'associate-licenses',
        licenseConfigurationArns: [LICENSE],
        resourceArn: expect.stringMatching(/^arn:aws:ec2:us-east-1::image\/ami-/),
      }),
    );
    const present = run({ ok: true, value: [LICENSE] });
    expect(present?.checks).toContainEqual(expect.objectContaining({ check: 'license-configuration', subject: LICENSE, result: 'ok' }));
    // exactly the configured associations: no warning about extras
    expect(present?.checks.filter((c) => c.check === 'license-configuration' && c.result === 'warning')).toStrictEqual([]);
    expect(present?.actions.filter((a) => a.kind === 'associate-licenses')).toStrictEqual([]);
    const denied = run({
      ok: false,
      error: {
        kind: 'access-denied',
        code: 'AccessDeniedException',
        message: 'not authorized to perform: license-manager:ListLicenseSpecificationsForResource',
      } as never,
    });
    expect(denied?.checks).toContainEqual(
      expect.objectContaining({
        check: 'license-configuration',
        subject: LICENSE,
        result: 'failed',
        reason: expect.stringContaining('license-manager:ListLicenseSpecificationsForResource'),
      }),
    );
    // a distribution that names no license configuration has no license check (its AMI's associations are not read)
    const plain = desiredImage(windowsImage(), { fastLaunchInheritForTargets: true });
    const unnamed = plan(
      { ...plain, cells: plain.cells.filter((c) => c.key === KEY) },
      { cells: { [KEY]: { ...converged(), licenses: { ok: true, value: [OTHER] } } }, newerBuilds: { ok: true, value: [] } },
      context,
    ).cells[0];
    expect(unnamed?.checks.filter((c) => c.check === 'license-configuration')).toStrictEqual([]);
  });

  it('names each container distribution as not checked', () => {
    const built = windowsImage({ type: 'DOCKER' });
    const [first] = built.distributionConfiguration?.distributions ?? [];
    if (first === undefined) throw new Error('no distribution');
    first.containerDistributionConfiguration = { targetRepository: { service: 'ECR', repositoryName: 'golden' } };
    expect(desiredImage(built, { fastLaunchInheritForTargets: true }).containerRegions).toStrictEqual(['us-east-1']);
  });

  it('plans nothing that targets or the owner would not already get when there is no sharee (sharedAccounts off)', () => {
    const desired = desiredImage(windowsImage(), { fastLaunchInheritForTargets: true });
    expect(desired.cells.filter((c) => c.origin === 'shared')).toStrictEqual([]);
  });
});

/** Cells of origin `shared`: an account of launchPermission.userIds that receives no copy (eu-west-1 of the factory image shares with SHARE_WITH). */
describe('plan of shared cells (pure)', () => {
  const SHARED_KEY = `eu-west-1/${SHARE_WITH}`;
  const sharedImage = (imageId: string, ownerId: string, overrides: Partial<ObservedImage> = {}): ObservedImage =>
    image({ imageId, ownerId, tags: {}, ...overrides });
  const fine = (): CellObservation => ({
    key: SHARED_KEY,
    access: { ok: true, value: true },
    image: undefined,
    launchPermissions: undefined,
    snapshots: undefined,
    launchTemplates: {},
    fastLaunch: undefined,
    fastLaunchTemplate: undefined,
    parameters: {},
    sharedImages: {
      ok: true,
      value: {
        [AMI.a]: sharedImage(AMI.a, TARGET_A, { tags: { Team: 'platform' } }),
        [AMI.b]: sharedImage(AMI.b, TARGET_B, { tags: { Team: 'platform' } }),
      },
    },
  });

  interface SharedCase {
    reason: string;
    build?: (image: Image) => void;
    observe: (cell: CellObservation) => void;
    context?: Partial<PlanContext>;
    /** The checks, in order, as `check subject result`. */
    want: string[];
    reasons?: RegExp[];
    /** Planned actions as `kind account target`. */
    actions: string[];
    status?: string;
  }

  const cases: SharedCase[] = [
    {
      reason: "both shared copies visible with the amiTags in the sharee's scope: ok, nothing to do",
      observe: () => undefined,
      want: [`ami ${AMI.a} ok`, `tags ${AMI.a} ok`, `ami ${AMI.b} ok`, `tags ${AMI.b} ok`],
      actions: [],
    },
    {
      reason:
        "a shared copy without the amiTags in the sharee's scope is tagged from the sharee account (only amiTags, not the source tag)",
      observe: (c) => {
        c.sharedImages = {
          ok: true,
          value: { [AMI.a]: sharedImage(AMI.a, TARGET_A), [AMI.b]: sharedImage(AMI.b, TARGET_B, { tags: { Team: 'platform' } }) },
        };
      },
      want: [`ami ${AMI.a} ok`, `tags ${AMI.a} drift`, `ami ${AMI.b} ok`, `tags ${AMI.b} ok`],
      reasons: [/missing or different tag\(s\): Team$/],
      actions: [`create-tags ${SHARE_WITH} ${AMI.a}`],
    },
    {
      reason: "a copy not visible to the sharee yet (its launch permission is repaired on the copy's cell) is pending",
      observe: (c) => {
        c.sharedImages = { ok: true, value: { [AMI.b]: sharedImage(AMI.b, TARGET_B, { tags: { Team: 'platform' } }) } };
      },
      want: [`ami ${AMI.a} pending`, `ami ${AMI.b} ok`, `tags ${AMI.b} ok`],
      reasons: [new RegExp(`not visible in account ${SHARE_WITH}: the launch permission of eu-west-1/${TARGET_A}'s copy`)],
      actions: [],
    },
    {
      reason: 'a role that cannot be assumed in the sharee account skips the cell by default: nobody asked for a role there',
      observe: (c) => {
        c.access = {
          ok: false,
          error: {
            kind: 'access-denied',
            code: 'AccessDenied',
            message: `cannot assume arn:aws:iam::${SHARE_WITH}:role/ImageBuilderReconcilerTarget in account ${SHARE_WITH}: AccessDenied: no`,
          },
        };
      },
      want: [`access ${SHARE_WITH} skipped`],
      reasons: [/^cannot assume .*; this account only receives a launch permission .*RECONCILER_SHARED_ACCOUNTS=require/],
      actions: [],
      status: 'skipped',
    },
    {
      reason: 'with RECONCILER_SHARED_ACCOUNTS=require the same role failure fails the cell',
      observe: (c) => {
        c.access = { ok: false, error: { kind: 'access-denied', code: 'AccessDenied', message: 'cannot assume role' } };
      },
      context: { sharedRoleRequired: true },
      want: [`access ${SHARE_WITH} failed`],
      reasons: [/^cannot reach the account: cannot assume role$/],
      actions: [],
      status: 'failed',
    },
    {
      reason: 'a throttled AssumeRole is pending, in either mode',
      observe: (c) => {
        c.access = { ok: false, error: { kind: 'throttled', code: 'Throttling', message: 'Rate exceeded' } };
      },
      context: { sharedRoleRequired: true },
      want: [`access ${SHARE_WITH} pending`],
      actions: [],
    },
    {
      reason: "a refused DescribeImages in the sharee account fails the cell with EC2's words",
      observe: (c) => {
        c.sharedImages = {
          ok: false,
          error: { kind: 'access-denied', code: 'UnauthorizedOperation', message: 'not allowed to DescribeImages' },
        };
      },
      want: [`ami ${AMI.a}, ${AMI.b} failed`],
      reasons: [/^not allowed to DescribeImages$/],
      actions: [],
    },
    {
      reason: 'a shared copy that failed is reported failed; the other is still tagged',
      observe: (c) => {
        c.sharedImages = {
          ok: true,
          value: {
            [AMI.a]: sharedImage(AMI.a, TARGET_A, { state: 'failed', stateReason: 'Copy failed' }),
            [AMI.b]: sharedImage(AMI.b, TARGET_B),
          },
        };
      },
      want: [`ami ${AMI.a} failed`, `ami ${AMI.b} ok`, `tags ${AMI.b} drift`],
      reasons: [/^the AMI is failed: Copy failed$/],
      actions: [`create-tags ${SHARE_WITH} ${AMI.b}`],
    },
    {
      reason: "an AMI of that ID owned by another account than the copy's is failed and never tagged",
      observe: (c) => {
        c.sharedImages = {
          ok: true,
          value: { [AMI.a]: sharedImage(AMI.a, '999999999999'), [AMI.b]: sharedImage(AMI.b, TARGET_B, { tags: { Team: 'platform' } }) },
        };
      },
      want: [`ami ${AMI.a} failed`, `ami ${AMI.b} ok`, `tags ${AMI.b} ok`],
      reasons: [new RegExp(`^the AMI is owned by 999999999999, not by ${TARGET_A}$`)],
      actions: [],
    },
    {
      reason: 'a shared copy still pending is pending and not tagged yet',
      observe: (c) => {
        c.sharedImages = {
          ok: true,
          value: {
            [AMI.a]: sharedImage(AMI.a, TARGET_A, { state: 'pending' }),
            [AMI.b]: sharedImage(AMI.b, TARGET_B, { tags: { Team: 'platform' } }),
          },
        };
      },
      want: [`ami ${AMI.a} pending`, `ami ${AMI.b} ok`, `tags ${AMI.b} ok`],
      reasons: [/^the AMI is still pending$/],
      actions: [],
    },
    {
      reason: 'shared copies not observed (an interrupted observation) are pending, never ok',
      observe: (c) => {
        c.sharedImages = undefined;
      },
      want: [`ami ${AMI.a}, ${AMI.b} pending`],
      reasons: [/^not observed$/],
      actions: [],
    },
    {
      reason: 'no copy recorded in the region (a FAILED build): nothing is shared, the cell is skipped and asks for no retry',
      build: (built) => {
        built.state = { status: 'FAILED', reason: 'copies failed' };
        built.outputResources = { amis: (built.outputResources?.amis ?? []).filter((a) => a.region !== 'eu-west-1') };
      },
      observe: (c) => {
        c.sharedImages = undefined;
      },
      context: { retryFailedImages: true },
      want: ['ami (none) skipped'],
      actions: [],
      status: 'skipped',
    },
  ];

  it.each(cases)('$reason', (c) => {
    // Prepare
    const built = windowsImage();
    c.build?.(built);
    const desired = desiredImage(built, { fastLaunchInheritForTargets: true, sharedAccounts: true });
    const cell = desired.cells.find((d) => d.key === SHARED_KEY);
    expect(cell).toMatchObject({ origin: 'shared', tags: { Team: 'platform' } });
    const observed = fine();
    c.observe(observed);

    // Act
    const result = plan(
      { ...desired, cells: cell === undefined ? [] : [cell] },
      { cells: { [SHARED_KEY]: observed }, newerBuilds: { ok: true, value: [] } },
      { ...context, ...c.context },
    );

    // Assess
    const planned = result.cells[0];
    expect(planned?.origin).toBe('shared');
    expect(planned?.checks.map((k) => `${k.check} ${k.subject} ${k.result}`)).toStrictEqual(c.want);
    for (const reason of c.reasons ?? []) expect(planned?.checks.map((k) => k.reason)).toContainEqual(expect.stringMatching(reason));
    expect(planned?.actions.map((a) => `${a.kind} ${a.cell.accountId} ${a.target}`)).toStrictEqual(c.actions);
    if (c.actions.length > 0)
      expect(planned?.actions[0]).toMatchObject({ kind: 'create-tags', cell: { region: 'eu-west-1', accountId: SHARE_WITH } });
    // a shared cell is never a missing copy that RetryImage would bring back
    expect(result.imageActions).toStrictEqual([]);
    if (c.status !== undefined) {
      const report = buildReport({
        runId: 'r',
        trigger: 'manual',
        mode: 'apply',
        desired,
        plan: result,
        outcomes: [],
        attempt: 1,
        firstSeenAt: '2026-12-01T00:00:00.000Z',
        startedAt: new Date(0),
        finishedAt: new Date(0),
        awsCalls: 0,
      });
      expect(report.cells[0]?.status).toBe(c.status);
    }
  });

  it("makes a cell only for sharees that receive no copy, only where there are amiTags, with the copies of the distribution's accounts", () => {
    const built = windowsImage();
    const [first, second] = built.distributionConfiguration?.distributions ?? [];
    if (first?.amiDistributionConfiguration === undefined || second?.amiDistributionConfiguration === undefined)
      throw new Error('the factory has two distributions');
    // a target of the region is not a sharee (it holds a copy); us-east-1 has no amiTags here
    second.amiDistributionConfiguration.launchPermission = { userIds: [SHARE_WITH, TARGET_A] };
    first.amiDistributionConfiguration = {
      ...first.amiDistributionConfiguration,
      amiTags: {},
      launchPermission: { userIds: [SHARE_WITH] },
    };
    const desired = desiredImage(built, { fastLaunchInheritForTargets: true, sharedAccounts: true });
    const shared = desired.cells.filter((d) => d.origin === 'shared');
    expect(shared.map((d) => d.key)).toStrictEqual([`eu-west-1/${SHARE_WITH}`]);
    expect(shared[0]?.sharedImages?.map((a) => `${a.accountId} ${a.imageId}`)).toStrictEqual([
      `${TARGET_A} ${AMI.a}`,
      `${TARGET_B} ${AMI.b}`,
    ]);
  });
});
