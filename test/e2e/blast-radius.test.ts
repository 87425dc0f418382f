/**
 * A bounded blast radius on the deployed wiring (serverless.yml's roles and infra/target-account-role.yaml,
 * enforced by the sandbox's IAM): only the deployment's functions may assume the target roles, the
 * deployment's targetAccounts bound where they may, and each role assumed legitimately is refused what the
 * reconciler never needs, each refusal naming its action.
 */
import {
  CreateLaunchTemplateCommand,
  CreateLaunchTemplateVersionCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  EC2Client,
  ModifyImageAttributeCommand,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { CreateRoleCommand, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { beforeAll, describe, expect, it } from 'vitest';
import { roleSession } from '../../sandbox/emulator/iam/roles.ts';
import { registerImage } from '../../sandbox/emulator/services/ec2/index.ts';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { buildBundles } from '../helpers/build.ts';
import { clients, demoScenario, finished, startBuild, useSandbox } from '../helpers/sandbox.ts';

const OWNER = '111111111111';
const A = '222222222222';
const B = '333333333333';
const D = '444444444444';
const TARGET_ROLE = 'ImageBuilderReconcilerTarget';
const CLEANUP_ROLE = 'ImageBuilderReconcilerCleanup';

/** STS as a session of a role of the sandbox (as Lambda hands a function its role's credentials). */
function stsAs(box: Sandbox, account: string, roleName: string): STSClient {
  const role = box.state.rolesOf(account).get(roleName);
  if (role === undefined) throw new Error(`no role ${roleName} in ${account}`);
  const c = roleSession(box.state, role, 'probe');
  return new STSClient({ endpoint: box.url, region: 'us-east-1', credentials: c, maxAttempts: 1 });
}

const assume = (sts: STSClient, account: string, name: string) =>
  sts.send(new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${account}:role/${name}`, RoleSessionName: 'probe' }));

describe('only our functions may assume the target roles', () => {
  let box: Sandbox;
  const sandboxes = useSandbox('all');

  beforeAll(async () => {
    await buildBundles();
    const scenario = demoScenario();
    scenario.deploymentParams = { ...scenario.deploymentParams, targetAccounts: `${A},${B}` };
    box = await sandboxes.start({ scenario, wire: true, clockSpeed: 3000 });
  }, 180_000);

  it('a role of the reconciler account that is not one of the functions cannot assume any target role', async () => {
    // a "developer" role that its own account lets assume anything
    const iam = clients(box.url, OWNER).iam;
    await iam.send(
      new CreateRoleCommand({
        RoleName: 'developer',
        AssumeRolePolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${OWNER}:root` }, Action: 'sts:AssumeRole' }],
        }),
      }),
    );
    await iam.send(
      new PutRolePolicyCommand({
        RoleName: 'developer',
        PolicyName: 'everything',
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: '*' }],
        }),
      }),
    );
    const developer = stsAs(box, OWNER, 'developer');
    for (const account of [A, B, D]) {
      for (const name of [TARGET_ROLE, CLEANUP_ROLE]) {
        await expect(assume(developer, account, name), `${name} in ${account}`).rejects.toMatchObject({
          name: 'AccessDenied',
          message: expect.stringMatching(
            new RegExp(
              `assumed-role/developer/probe is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::${account}:role/${name}$`,
            ),
          ),
        });
      }
    }
    // each function role may assume its own target role only: the reconcile role not the cleanup role, and back
    const reconcileRole = box.wiring?.roles.get('ReconcileRole')?.name ?? '';
    const cleanupRole = box.wiring?.roles.get('CleanupRole')?.name ?? '';
    const reconcile = stsAs(box, OWNER, reconcileRole);
    const cleanup = stsAs(box, OWNER, cleanupRole);
    expect((await assume(reconcile, A, TARGET_ROLE)).Credentials).toBeDefined();
    expect((await assume(cleanup, A, CLEANUP_ROLE)).Credentials).toBeDefined();
    await expect(assume(reconcile, A, CLEANUP_ROLE)).rejects.toMatchObject({ name: 'AccessDenied' });
    await expect(assume(cleanup, A, TARGET_ROLE)).rejects.toMatchObject({ name: 'AccessDenied' });
    // outside targetAccounts: the functions' own policies refuse (aws:ResourceAccount)
    await expect(assume(reconcile, D, TARGET_ROLE)).rejects.toMatchObject({
      name: 'AccessDenied',
      message: expect.stringContaining(`sts:AssumeRole on resource: arn:aws:iam::${D}:role/${TARGET_ROLE}`),
    });
    await expect(assume(cleanup, D, CLEANUP_ROLE)).rejects.toMatchObject({ name: 'AccessDenied' });
  });

  it('a cell outside targetAccounts is skipped, naming why, and its role is never asked for; the others converge', async () => {
    const start = box.server.requests.length;
    const arn = await startBuild(box, 'blast-radius-target-accounts');
    const report = await finished(box, arn, 60_000);
    const outside = report.cells.filter((c) => c.accountId === D);
    expect(outside.length).toBeGreaterThan(0);
    for (const cell of outside) {
      expect(cell.status).toBe('skipped');
      expect(cell.reasons.join(' ')).toMatch(/444444444444 is not one of the deployment's targetAccounts \(RECONCILER_TARGET_ACCOUNTS\)/);
    }
    for (const cell of report.cells.filter((c) => c.accountId !== D))
      expect([cell.region, cell.accountId, cell.status]).toStrictEqual([
        cell.region,
        cell.accountId,
        expect.stringMatching(/^(ok|repaired|skipped)$/),
      ]);
    const assumed = box.server.requests
      .slice(start)
      .filter((r) => r.operation === 'AssumeRole')
      .flatMap((r) => r.authorizations.map((a) => a.resource));
    expect(assumed.some((r) => r.includes(`::${A}:`))).toBe(true);
    expect(assumed.filter((r) => r.includes(`::${D}:`))).toStrictEqual([]);
  });

  it('each target role, assumed by its function, is refused what the reconciler never does, naming the action', async () => {
    const region = 'us-east-1';
    const reconcileRole = box.wiring?.roles.get('ReconcileRole')?.name ?? '';
    const cleanupRole = box.wiring?.roles.get('CleanupRole')?.name ?? '';
    const session = async (functionRole: string, target: string) => {
      const c = (await assume(stsAs(box, OWNER, functionRole), A, target)).Credentials;
      const credentials = {
        accessKeyId: c?.AccessKeyId ?? '',
        secretAccessKey: c?.SecretAccessKey ?? '',
        sessionToken: c?.SessionToken ?? '',
      };
      const config = { endpoint: box.url, region, credentials, maxAttempts: 1 };
      return { ec2: new EC2Client(config), s3: new S3Client({ ...config, forcePathStyle: true }) };
    };
    const repair = await session(reconcileRole, TARGET_ROLE);
    const cleanup = await session(cleanupRole, CLEANUP_ROLE);
    // account A's own things: an unrelated object, another team's AMI (shared with B), a template that has not
    // opted in, a backup snapshot, and a copy of the demo's build that the reconciler tagged
    const admin = {
      ec2: clients(box.url, A).ec2,
      s3: new S3Client({
        endpoint: box.url,
        region,
        forcePathStyle: true,
        credentials: { accessKeyId: A, secretAccessKey: 'sandbox' },
        maxAttempts: 1,
      }),
    };
    await admin.s3.send(new CreateBucketCommand({ Bucket: 'payroll' }));
    await admin.s3.send(new PutObjectCommand({ Bucket: 'payroll', Key: 'exports/2026.csv', Body: 'secret' }));
    const theirs = registerImage(box.state, box.clock, { account: A, region, name: 'team-db', tags: { team: 'db' } });
    theirs.launchPermissions.userIds.add(B);
    const labelled = registerImage(box.state, box.clock, {
      account: A,
      region,
      name: 'other-build',
      tags: { 'imagebuilder-reconciler:source-image': 'arn:aws:imagebuilder:us-east-1:999999999999:image/x/1.0.0/1' },
    });
    const backup = theirs.snapshotIds[0] ?? '';
    const template = (
      await admin.ec2.send(
        new CreateLaunchTemplateCommand({ LaunchTemplateName: 'db-fleet', LaunchTemplateData: { InstanceType: 't3.large' } }),
      )
    ).LaunchTemplate?.LaunchTemplateId;
    const ours = [...box.state.cell(A, region).images.values()].find((i) =>
      (i.tags.get('imagebuilder-reconciler:source-image') ?? '').startsWith(`arn:aws:imagebuilder:us-east-1:${OWNER}:image/`),
    );
    if (ours === undefined) throw new Error('no copy of the demo build in A/us-east-1');

    const refusals: [string, string, () => Promise<unknown>][] = [
      [
        's3:GetObject',
        'repair role reads an unrelated S3 object',
        () => repair.s3.send(new GetObjectCommand({ Bucket: 'payroll', Key: 'exports/2026.csv' })),
      ],
      [
        'ec2:ModifyImageAttribute',
        "repair role removes another AMI's launch permission",
        () => repair.ec2.send(new ModifyImageAttributeCommand({ ImageId: theirs.imageId, LaunchPermission: { Remove: [{ UserId: B }] } })),
      ],
      [
        'ec2:ModifyImageAttribute',
        'repair role makes an AMI public',
        () => repair.ec2.send(new ModifyImageAttributeCommand({ ImageId: theirs.imageId, LaunchPermission: { Add: [{ Group: 'all' }] } })),
      ],
      [
        'ec2:RunInstances',
        'repair role launches an instance outside the Fast Launch templates',
        () => repair.ec2.send(new RunInstancesCommand({ ImageId: ours.imageId, MinCount: 1, MaxCount: 1, InstanceType: 't3.large' })),
      ],
      [
        'ec2:CreateLaunchTemplateVersion',
        'repair role writes a template without the opt-in tag',
        () =>
          repair.ec2.send(
            new CreateLaunchTemplateVersionCommand({ LaunchTemplateId: template, LaunchTemplateData: { ImageId: ours.imageId } }),
          ),
      ],
      [
        'ec2:CreateTags',
        "repair role tags an AMI as Image Builder's",
        () =>
          repair.ec2.send(new CreateTagsCommand({ Resources: [theirs.imageId], Tags: [{ Key: 'CreatedBy', Value: 'EC2 Image Builder' }] })),
      ],
      [
        'ec2:CreateTags',
        "repair role re-labels another build's AMI as the reconciler's",
        () =>
          repair.ec2.send(
            new CreateTagsCommand({
              Resources: [labelled.imageId],
              Tags: [
                {
                  Key: 'imagebuilder-reconciler:source-image',
                  Value: `arn:aws:imagebuilder:us-east-1:${OWNER}:image/golden-windows/1.0.0/1`,
                },
              ],
            }),
          ),
      ],
      ['ec2:DeleteSnapshot', 'repair role deletes a snapshot', () => repair.ec2.send(new DeleteSnapshotCommand({ SnapshotId: backup }))],
      [
        's3:GetObject',
        'cleanup role reads an unrelated S3 object',
        () => cleanup.s3.send(new GetObjectCommand({ Bucket: 'payroll', Key: 'exports/2026.csv' })),
      ],
      [
        'ec2:ModifyImageAttribute',
        'cleanup role makes an AMI public',
        () => cleanup.ec2.send(new ModifyImageAttributeCommand({ ImageId: ours.imageId, LaunchPermission: { Add: [{ Group: 'all' }] } })),
      ],
      [
        'ec2:RunInstances',
        'cleanup role launches an instance',
        () => cleanup.ec2.send(new RunInstancesCommand({ ImageId: ours.imageId, MinCount: 1, MaxCount: 1, InstanceType: 't3.large' })),
      ],
      [
        'ec2:CreateLaunchTemplateVersion',
        'cleanup role writes a launch template',
        () =>
          cleanup.ec2.send(
            new CreateLaunchTemplateVersionCommand({ LaunchTemplateId: template, LaunchTemplateData: { ImageId: ours.imageId } }),
          ),
      ],
      [
        'ec2:CreateTags',
        "cleanup role tags an AMI as Image Builder's",
        () =>
          cleanup.ec2.send(
            new CreateTagsCommand({ Resources: [theirs.imageId], Tags: [{ Key: 'CreatedBy', Value: 'EC2 Image Builder' }] }),
          ),
      ],
      [
        'ec2:DeleteSnapshot',
        'cleanup role deletes an unmarked snapshot',
        () => cleanup.ec2.send(new DeleteSnapshotCommand({ SnapshotId: backup })),
      ],
      [
        'ec2:DeregisterImage',
        "cleanup role retires an AMI whose source tag names another account's build",
        () => cleanup.ec2.send(new DeregisterImageCommand({ ImageId: labelled.imageId })),
      ],
      [
        'ec2:DeregisterImage',
        'cleanup role retires an AMI the reconciler never tagged',
        () => cleanup.ec2.send(new DeregisterImageCommand({ ImageId: theirs.imageId })),
      ],
    ];
    for (const [action, what, call] of refusals) {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(error?.message, what).toMatch(new RegExp(`is not authorized to perform: ${action.replace('.', '\\.')} on resource`));
      expect(error?.name, what).toMatch(/^(UnauthorizedOperation|AccessDenied)$/);
    }
    // nothing happened: the object, the launch permission, the tags, the snapshot, the AMIs are as they were
    expect([...theirs.launchPermissions.userIds]).toStrictEqual([B]);
    expect(theirs.launchPermissions.groups.size).toBe(0);
    expect(theirs.tags.has('CreatedBy')).toBe(false);
    expect(box.state.cell(A, region).snapshots.has(backup)).toBe(true);
    expect(labelled.tags.get('imagebuilder-reconciler:source-image')).toMatch(/999999999999/);
    expect(labelled.state).toBe('available');
  });
});
