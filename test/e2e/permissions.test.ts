/**
 * Permissions end to end: the sandbox enforces the roles of serverless.yml and infra/target-account-role.yaml,
 * and an operator changes them with the AWS CLI as on AWS. A Deny on one action the reconciler needs fails
 * exactly the cells that need it, each naming the denied action; every other cell converges.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { SimulatePrincipalPolicyCommand } from '@aws-sdk/client-iam';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { beforeAll, describe, expect, it } from 'vitest';
import { roleSession } from '../../sandbox/emulator/iam/roles.ts';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { buildBundles } from '../helpers/build.ts';
import { clients, demoScenario, finished, startBuild, useSandbox } from '../helpers/sandbox.ts';

const run = promisify(execFile);
const AWS = '/usr/bin/aws';
const OWNER = '111111111111';
const A = '222222222222';
const B = '333333333333';
const D = '444444444444';
const TARGET_ROLE = 'ImageBuilderReconcilerTarget';

const deny = (action: string) =>
  JSON.stringify({ Version: '2012-10-17', Statement: [{ Sid: 'OperatorDeny', Effect: 'Deny', Action: action, Resource: '*' }] });

describe.runIf(existsSync(AWS))('permissions end to end (AWS CLI against the sandbox)', () => {
  let box: Sandbox | undefined;

  beforeAll(() => buildBundles(), 120_000);
  const sandboxes = useSandbox('each');

  async function aws(account: string, ...args: string[]): Promise<unknown> {
    const { stdout } = await run(AWS, ['--endpoint-url', box?.url ?? '', '--region', 'us-east-1', '--output', 'json', ...args], {
      env: {
        PATH: process.env.PATH,
        HOME: '/tmp',
        AWS_ACCESS_KEY_ID: account,
        AWS_SECRET_ACCESS_KEY: 'sandbox',
        AWS_PAGER: '',
        AWS_EC2_METADATA_DISABLED: 'true',
      },
    });
    return stdout.trim() === '' ? {} : JSON.parse(stdout);
  }

  it('a Deny added with the AWS CLI fails exactly the cells that need the action, naming it; the rest converge', async () => {
    box = await sandboxes.start({ scenario: demoScenario(), wire: true, clockSpeed: 3000 });
    // the operator denies launch template versions to the reconciler in account A, and Fast Launch's launch
    // check (a dependent permission of EnableFastLaunch) in account D
    await aws(
      A,
      'iam',
      'put-role-policy',
      '--role-name',
      TARGET_ROLE,
      '--policy-name',
      'no-lt',
      '--policy-document',
      deny('ec2:CreateLaunchTemplateVersion'),
    );
    await aws(
      D,
      'iam',
      'put-role-policy',
      '--role-name',
      TARGET_ROLE,
      '--policy-name',
      'no-launch',
      '--policy-document',
      deny('ec2:RunInstances'),
    );
    expect(await aws(A, 'iam', 'list-role-policies', '--role-name', TARGET_ROLE)).toStrictEqual({ PolicyNames: ['no-lt', 'repair'] });
    const simulated = (await aws(
      A,
      'iam',
      'simulate-principal-policy',
      '--policy-source-arn',
      `arn:aws:iam::${A}:role/${TARGET_ROLE}`,
      '--action-names',
      'ec2:CreateLaunchTemplateVersion',
      'ec2:ModifyLaunchTemplate',
      '--resource-arns',
      `arn:aws:ec2:us-east-1:${A}:launch-template/${box.refs.get('lt:web-a') ?? ''}`,
      // the simulator does not read the template's tags: the opt-in tag the grant asks for is given as context
      '--context-entries',
      'ContextKeyName=aws:ResourceTag/imagebuilder-reconciler:managed,ContextKeyValues=true,ContextKeyType=string',
    )) as { EvaluationResults: { EvalActionName: string; EvalDecision: string }[] };
    expect(simulated.EvaluationResults.map((r) => [r.EvalActionName, r.EvalDecision])).toStrictEqual([
      ['ec2:CreateLaunchTemplateVersion', 'explicitDeny'],
      ['ec2:ModifyLaunchTemplate', 'allowed'],
    ]);

    const final = await finished(box, await startBuild(box, 'denied'));
    const failed = final.cells.filter((c) => c.status === 'failed');
    // A's launch template lives in us-east-1; D's Windows copy in eu-west-1 gets Fast Launch (inherited)
    expect(failed.map((c) => `${c.region}/${c.accountId}`).sort()).toStrictEqual([`eu-west-1/${D}`, `us-east-1/${A}`]);
    const reasons = (region: string, account: string) =>
      failed.find((c) => c.region === region && c.accountId === account)?.reasons.join(' ') ?? '';
    expect(reasons('us-east-1', A)).toMatch(/not authorized to perform: ec2:CreateLaunchTemplateVersion/);
    expect(reasons('eu-west-1', D)).toMatch(/ec2:RunInstances/);
    expect(final.cells.filter((c) => c.status !== 'failed').every((c) => c.status === 'ok')).toBe(true);

    // the encoded message EC2 answered with decodes to the denied request
    const refused = box.server.requests.find((r) => r.account === A && r.errorCode === 'UnauthorizedOperation');
    expect(refused?.authorizations.at(-1)).toMatchObject({ action: 'ec2:CreateLaunchTemplateVersion', decision: 'explicitDeny' });

    // with the Deny removed, the next run converges everywhere
    await aws(A, 'iam', 'delete-role-policy', '--role-name', TARGET_ROLE, '--policy-name', 'no-lt');
    await aws(D, 'iam', 'delete-role-policy', '--role-name', TARGET_ROLE, '--policy-name', 'no-launch');
    const again = await finished(box, await startBuild(box, 'allowed'));
    expect(again.cells.every((c) => c.status === 'ok')).toBe(true);
  });

  it("encrypted copies: Fast Launch in each target uses its own KMS key through the template's grant; a Deny on kms:CreateGrant fails only that account's Fast Launch, naming it", async () => {
    const scenario = demoScenario();
    const eu = scenario.imagebuilder?.distributions?.[0]?.distributions?.find((d) => d.region === 'eu-west-1');
    if (eu?.amiDistributionConfiguration === undefined) throw new Error('the demo distributes to eu-west-1');
    // a key id: each destination account encrypts its copy with its own key of that id
    eu.amiDistributionConfiguration.kmsKeyId = '1234abcd-12ab-34cd-56ef-1234567890ab';
    box = await sandboxes.start({ scenario, wire: true, clockSpeed: 3000 });
    await aws(
      D,
      'iam',
      'put-role-policy',
      '--role-name',
      TARGET_ROLE,
      '--policy-name',
      'no-grant',
      '--policy-document',
      deny('kms:CreateGrant'),
    );

    const final = await finished(box, await startBuild(box, 'encrypted'));
    const failed = final.cells.filter((c) => c.status === 'failed');
    expect(failed.map((c) => `${c.region}/${c.accountId}`)).toStrictEqual([`eu-west-1/${D}`]);
    expect(failed[0]?.reasons.join(' ')).toMatch(
      /not authorized to perform: kms:CreateGrant on resource: arn:aws:kms:eu-west-1:444444444444:key\/1234abcd-12ab-34cd-56ef-1234567890ab with an explicit deny/,
    );
    expect(final.cells.filter((c) => c.status !== 'failed').every((c) => c.status === 'ok')).toBe(true);
    // account A's encrypted copy got its Fast Launch through the template's grant on its own key
    const granted = box.server.requests
      .filter((r) => r.account === A && r.operation === 'EnableFastLaunch' && r.errorCode === undefined)
      .flatMap((r) => r.authorizations.filter((a) => a.action === 'kms:CreateGrant'));
    expect(granted).toContainEqual(
      expect.objectContaining({
        decision: 'allow',
        resource: `arn:aws:kms:eu-west-1:${A}:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
        statement: 'inline:repair#FastLaunchEncryptedSnapshotsGrant',
      }),
    );
  });

  it('Fast Launch without a launch template needs EC2FastLaunchFullAccess: refused as AWS refuses it, with what to deploy; the option turns it on', async () => {
    const scenario = demoScenario();
    const apse2 = scenario.imagebuilder?.distributions?.[0]?.distributions?.find((d) => d.region === 'ap-southeast-2');
    for (const f of apse2?.fastLaunchConfigurations ?? []) delete f.launchTemplate;
    box = await sandboxes.start({ scenario, wire: true, clockSpeed: 3000 });
    const final = await finished(box, await startBuild(box, 'no-template'));
    const failed = final.cells.filter((c) => c.status === 'failed');
    expect(failed.map((c) => `${c.region}/${c.accountId}`)).toStrictEqual([`ap-southeast-2/${B}`]);
    expect(failed[0]?.reasons.join(' ')).toMatch(
      /not authorized to perform: ec2:CreateVpc on resource: arn:aws:ec2:ap-southeast-2:333333333333:vpc\/\* because no identity-based policy allows .*\(without a launch template EC2 Fast Launch builds its own VPC .*FastLaunchWithoutLaunchTemplate=true/,
    );
    await box.stop();

    // deployed with the option, the same configuration converges
    scenario.targetRoleParameters = { ...scenario.targetRoleParameters, FastLaunchWithoutLaunchTemplate: 'true' };
    box = await sandboxes.start({ scenario, wire: true, clockSpeed: 3000 });
    const fixed = await finished(box, await startBuild(box, 'no-template-allowed'));
    expect(fixed.outcome).toBe('converged');
  });

  it('the event-triggered functions cannot delete (revoke may only disable or deprecate); cleanup can, only images Image Builder made', async () => {
    box = await sandboxes.start({ scenario: demoScenario(), wire: true, clockSpeed: 3000 });
    const iam = clients(box.url, OWNER).iam;
    const roleArn = (logicalId: string) => box?.wiring?.roles.get(logicalId)?.arn ?? '';
    const simulate = async (logicalId: string, actions: string[], resource: string, context: Record<string, string> = {}) => {
      const out = await iam.send(
        new SimulatePrincipalPolicyCommand({
          PolicySourceArn: roleArn(logicalId),
          ActionNames: actions,
          ResourceArns: [resource],
          ContextEntries: Object.entries(context).map(([ContextKeyName, value]) => ({
            ContextKeyName,
            ContextKeyValues: [value],
            ContextKeyType: 'string',
          })),
        }),
      );
      return (out.EvaluationResults ?? []).map((r) => r.EvalDecision);
    };
    const image = 'arn:aws:ec2:us-east-1::image/ami-0123456789abcdef0';
    const retire = ['ec2:DeregisterImage', 'ec2:DisableImage', 'ec2:EnableImageDeprecation'];
    const byImageBuilder = { 'aws:ResourceTag/CreatedBy': 'EC2 Image Builder' };
    // the reconcile role never deregisters; it may disable and deprecate only for revoke (RevokeImages), which
    // only its manual payload asks for: no event or recheck message can (test/unit/revoke-input.test.ts)
    expect(await simulate('ReconcileRole', retire, image, byImageBuilder)).toStrictEqual(['implicitDeny', 'allowed', 'allowed']);
    expect(await simulate('CleanupRole', retire, image, byImageBuilder)).toStrictEqual(['allowed', 'allowed', 'allowed']);
    // in its own account, what Image Builder made carries its CreatedBy tag: the reconciler's tag alone retires
    // nothing there; in target accounts it is the only tag a copy has (infra/target-account-role.yaml)
    expect(
      await simulate('CleanupRole', retire, image, {
        'aws:ResourceTag/imagebuilder-reconciler:source-image': 'arn:aws:imagebuilder:us-east-1:111111111111:image/x/1.0.0/1',
      }),
    ).toStrictEqual(['implicitDeny', 'implicitDeny', 'implicitDeny']);
    // an AMI nobody of ours made
    expect(await simulate('CleanupRole', retire, image)).toStrictEqual(['implicitDeny', 'implicitDeny', 'implicitDeny']);
    expect(await simulate('ReconcileRole', ['ec2:DeleteSnapshot'], 'arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0')).toStrictEqual(
      ['implicitDeny'],
    );
    // each may assume only its own role in target accounts
    expect(await simulate('ReconcileRole', ['sts:AssumeRole'], `arn:aws:iam::${A}:role/ImageBuilderReconcilerCleanup`)).toStrictEqual([
      'implicitDeny',
    ]);
    expect(await simulate('ReconcileRole', ['sts:AssumeRole'], `arn:aws:iam::${A}:role/${TARGET_ROLE}`)).toStrictEqual(['allowed']);
    expect(await simulate('CleanupRole', ['sts:AssumeRole'], `arn:aws:iam::${A}:role/${TARGET_ROLE}`)).toStrictEqual(['implicitDeny']);
  });

  it('with organizationId, each role assumes target roles only in accounts of that organization', async () => {
    const scenario = demoScenario();
    scenario.deploymentParams = { ...scenario.deploymentParams, organizationId: 'o-a1b2c3d4e5' };
    scenario.organizations = { 'o-a1b2c3d4e5': [OWNER, A], 'o-f6g7h8i9j0': ['333333333333'] };
    box = await sandboxes.start({ scenario, wire: true, clockSpeed: 3000 });
    const assume = async (logicalId: string, account: string, roleName: string): Promise<string> => {
      const role = box?.wiring?.roles.get(logicalId);
      if (role === undefined || box === undefined) throw new Error(`no role ${logicalId}`);
      const sts = new STSClient({
        endpoint: box.url,
        region: 'us-east-1',
        credentials: roleSession(box.state, role, 'test'),
        maxAttempts: 1,
      });
      return sts.send(new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${account}:role/${roleName}`, RoleSessionName: 'test' })).then(
        () => 'assumed',
        (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error)),
      );
    };
    expect(await assume('ReconcileRole', A, TARGET_ROLE)).toBe('assumed');
    expect(await assume('CleanupRole', A, 'ImageBuilderReconcilerCleanup')).toBe('assumed');
    // another organization's account, and one in none
    for (const account of ['333333333333', D]) {
      expect(await assume('ReconcileRole', account, TARGET_ROLE)).toMatch(
        new RegExp(
          `^AccessDenied: User: \\S+ is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::${account}:role/${TARGET_ROLE} because no identity-based policy allows`,
        ),
      );
      expect(await assume('CleanupRole', account, 'ImageBuilderReconcilerCleanup')).toMatch(
        /^AccessDenied: .*not authorized to perform: sts:AssumeRole/,
      );
    }
  });
});
