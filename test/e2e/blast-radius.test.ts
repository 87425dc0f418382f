/**
 * A bounded blast radius on the deployed wiring (serverless.yml's roles and infra/target-account-role.yaml,
 * enforced by the sandbox's IAM): only the deployment's functions may assume the target roles, the
 * deployment's targetAccounts bound where they may, and each role assumed legitimately is refused what the
 * reconciler never needs, each refusal naming its action.
 */
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { CreateRoleCommand, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { beforeAll, describe, expect, it } from 'vitest';
import { roleSession } from '../../sandbox/emulator/iam/roles.ts';
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
});
