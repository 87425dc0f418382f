/** `doctor` against the sandbox: the demo's roles grant everything; a Deny or a missing role shows exactly where. */
import { AttachRolePolicyCommand, DeleteRolePolicyCommand, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import type { DoctorReport } from '../../src/lib/preflight/doctor.ts';
import { clients, demoScenario, useSandbox } from '../helpers/sandbox.ts';
import { cli } from '../helpers/cli.ts';

/** A terminal wide enough for the doctor's matrices. */
const WIDE = 250;

describe('imagebuilder-reconciler doctor', () => {
  let box: Sandbox;
  let config = '';
  const at = () => ['--endpoint-url', box.url, '--region', 'us-east-1'];
  const sandboxes = useSandbox();

  beforeAll(async () => {
    box = await sandboxes.start({ scenario: demoScenario() });
    config = box.refs.get('distribution:golden-windows') ?? '';
  });

  it('finds every action allowed in every cell of the demo', async () => {
    const { code, out, err } = await cli(['doctor', '--config', config, ...at(), '--json'], WIDE);
    expect(err).toBe('');
    expect(code).toBe(0);
    const { ok, reports } = JSON.parse(out) as { ok: boolean; reports: DoctorReport[] };
    expect(ok).toBe(true);
    const [report] = reports;
    // the cells a build of the demo's configuration has; the own account works with its own role
    expect(report?.cells.map((c) => `${c.region}/${c.accountId}:${c.status}`)).toEqual([
      'ap-northeast-1/222222222222:ok',
      'ap-southeast-2/333333333333:ok',
      'eu-west-1/222222222222:ok',
      // 333333333333 only receives the launch permission there: its tags are set from it
      'eu-west-1/333333333333:ok',
      'eu-west-1/444444444444:ok',
      'us-east-1/111111111111:own-account',
      'us-east-1/222222222222:ok',
      'us-east-1/333333333333:ok',
    ]);
    // each cell is checked for what its settings need: the launch template in 444444444444/eu-west-1, SSM in 222222222222/eu-west-1
    expect(report?.cells.find((c) => c.region === 'eu-west-1' && c.accountId === '444444444444')?.groups.map((g) => g.name)).toEqual([
      'observe',
      'images',
      'LT',
      'FL',
      'FL-launch',
      'FL-role',
    ]);
    expect(report?.cells.find((c) => c.region === 'eu-west-1' && c.accountId === '222222222222')?.groups.map((g) => g.name)).toContain(
      'SSM',
    );
    expect(report?.cells.find((c) => c.region === 'eu-west-1' && c.accountId === '333333333333')?.groups.map((g) => g.name)).toEqual([
      'observe',
      'images',
    ]);
    // each role's trust admits the reconciler's functions only (read by the role itself)
    expect(report?.accounts.filter((a) => a.status === 'ok').map((a) => a.trust)).toEqual([[], [], []]);
    expect(report?.accounts.filter((a) => a.status === 'ok').map((a) => a.accountId)).toEqual([
      '222222222222',
      '333333333333',
      '444444444444',
    ]);
    // EC2 itself was asked too, with DryRun, for the reads that need no resource named
    expect(
      report?.cells.find((c) => c.region === 'eu-west-1' && c.accountId === '444444444444')?.groups.find((g) => g.name === 'observe')
        ?.dryRun,
    ).toEqual(
      ['ec2:DescribeImages', 'ec2:DescribeSnapshots', 'ec2:DescribeLaunchTemplates', 'ec2:DescribeFastLaunchImages'].map((action) => ({
        action,
        result: 'allowed',
        code: 'DryRunOperation',
      })),
    );
  });

  it("reports a trust policy that admits more than the reconciler's functions, and a launch template that has not opted in", async () => {
    const D = '444444444444';
    const role = box.state.rolesOf(D).get('ImageBuilderReconcilerTarget');
    const template = box.state.cell(D, 'eu-west-1').launchTemplates.get(box.refs.get('lt:web-d') ?? '');
    if (role === undefined || template === undefined) throw new Error('the demo has no role or template in 444444444444');
    const trust = role.assumeRolePolicyDocument;
    // the trust an older template deployed: the reconciler account's root, with no condition
    role.assumeRolePolicyDocument = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::111111111111:root' }, Action: 'sts:AssumeRole' }],
    });
    template.tags.delete('imagebuilder-reconciler:managed');
    try {
      const json = await cli(['doctor', '--config', config, ...at(), '--json'], WIDE);
      expect(json.code).toBe(1);
      const [report] = (JSON.parse(json.out) as { reports: DoctorReport[] }).reports;
      expect(report?.accounts.find((a) => a.accountId === D)?.trust).toEqual([
        "trusts arn:aws:iam::111111111111:root without an aws:PrincipalArn condition naming the reconciler's roles: any principal there whose own policies allow sts:AssumeRole can assume it",
      ]);
      expect(report?.accounts.find((a) => a.accountId === '222222222222')?.trust).toEqual([]);
      const lt = report?.cells.find((c) => c.region === 'eu-west-1' && c.accountId === D)?.groups.find((g) => g.name === 'LT');
      expect(lt?.status).toBe('denied');
      expect(lt?.denials.map((d) => d.fix)).toEqual([
        `launch template ${box.refs.get('lt:web-d') ?? ''} has not opted in: tag it imagebuilder-reconciler:managed=true (or CreatedBy=EC2 Image Builder)`,
      ]);
      const text = await cli(['doctor', '--config', config, ...at()], WIDE);
      expect(text.out).toMatch(
        /444444444444: role ImageBuilderReconcilerTarget trusts arn:aws:iam::111111111111:root without an aws:PrincipalArn condition/,
      );
      expect(text.out).toMatch(/PROBLEMS: 1 of 8 cells; 1 role\(s\) trusted beyond the reconciler's functions/);
    } finally {
      role.assumeRolePolicyDocument = trust;
      template.tags.set('imagebuilder-reconciler:managed', 'true');
    }
  });

  it("a Deny on a read shows once, from the simulator with its policy, and EC2's DryRun agrees", async () => {
    const iam = clients(box.url, '444444444444').iam;
    const deny = { Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: 'ec2:DescribeSnapshots', Resource: '*' }] };
    await iam.send(
      new PutRolePolicyCommand({
        RoleName: 'ImageBuilderReconcilerTarget',
        PolicyName: 'no-snapshot-reads',
        PolicyDocument: JSON.stringify(deny),
      }),
    );
    try {
      const { code, out } = await cli(['doctor', '--config', config, ...at(), '--accounts', '444444444444', '--json'], WIDE);
      expect(code).toBe(1);
      const observe = (JSON.parse(out) as { reports: DoctorReport[] }).reports[0]?.cells[0]?.groups.find((g) => g.name === 'observe');
      expect(observe?.denials).toEqual([
        expect.objectContaining({ action: 'ec2:DescribeSnapshots', decision: 'explicitDeny', policy: 'no-snapshot-reads' }),
      ]);
      expect(observe?.dryRun.filter((d) => d.result !== 'allowed')).toEqual([
        { action: 'ec2:DescribeSnapshots', result: 'denied', code: 'UnauthorizedOperation', explicitDeny: true },
      ]);
    } finally {
      await iam.send(new DeleteRolePolicyCommand({ RoleName: 'ImageBuilderReconcilerTarget', PolicyName: 'no-snapshot-reads' }));
    }
  });

  it('with --cleanup checks the cleanup role, with its in-use reads and its deletes', async () => {
    const { code, out } = await cli(['doctor', '--config', config, '--cleanup', ...at(), '--json'], WIDE);
    expect(code).toBe(0);
    const [report] = (JSON.parse(out) as { reports: DoctorReport[] }).reports;
    expect(report?.role).toEqual({ kind: 'cleanup', name: 'ImageBuilderReconcilerCleanup' });
    expect(report?.accounts.map((a) => a.roleArn)).toContain('arn:aws:iam::222222222222:role/ImageBuilderReconcilerCleanup');
    expect(report?.cells.find((c) => c.status === 'ok')?.groups.map((g) => `${g.name}:${g.status}`)).toEqual([
      'observe:ok',
      'consumers:ok',
      'stacks:ok',
      'batch-emr:ok',
      'clusters:ok',
      'refs:ok',
      'retire:ok',
      'mark:ok',
      'snapshots:ok',
    ]);
  });

  it('names exactly the cell and the action a Deny in one account takes away', async () => {
    const iam = clients(box.url, '444444444444').iam;
    const deny = {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Deny', Action: 'ec2:ModifyLaunchTemplate', Resource: 'arn:aws:ec2:eu-west-1:444444444444:launch-template/*' }],
    };
    await iam.send(
      new PutRolePolicyCommand({
        RoleName: 'ImageBuilderReconcilerTarget',
        PolicyName: 'no-default-versions',
        PolicyDocument: JSON.stringify(deny),
      }),
    );
    try {
      const json = await cli(['doctor', '--config', config, ...at(), '--json'], WIDE);
      expect(json.code).toBe(1);
      const [report] = (JSON.parse(json.out) as { reports: DoctorReport[] }).reports;
      const bad = report?.cells.filter((c) => c.status !== 'ok' && c.status !== 'own-account').map((c) => `${c.region}/${c.accountId}`);
      expect(bad).toEqual(['eu-west-1/444444444444']);
      const denials = report?.cells.flatMap((c) => c.groups.flatMap((g) => g.denials.map((d) => ({ group: g.name, ...d }))));
      expect(denials).toEqual([
        expect.objectContaining({
          group: 'LT',
          action: 'ec2:ModifyLaunchTemplate',
          decision: 'explicitDeny',
          policy: 'no-default-versions',
          fix: expect.stringContaining('no-default-versions'),
        }),
      ]);
      const human = await cli(['doctor', '--config', config, ...at(), '--no-color'], WIDE);
      expect(human.code).toBe(1);
      expect(human.out).toMatch(/LT✗/);
      expect(human.out.match(/[\w-]+✗/g)).toEqual(['LT✗']);
      expect(human.out).toMatch(
        /eu-west-1\/444444444444 LT: ec2:ModifyLaunchTemplate explicitly denied on arn:aws:ec2:eu-west-1:444444444444:launch-template\/lt-\w+: remove ec2:ModifyLaunchTemplate from the Deny in policy no-default-versions/,
      );
      // --accounts and --regions narrow the check to the cells asked about
      const other = await cli(['doctor', '--config', config, ...at(), '--accounts', '222222222222,333333333333', '--json'], WIDE);
      expect(other.code).toBe(0);
      const narrowed = await cli(['doctor', '--config', config, ...at(), '--regions', 'us-east-1', '--json'], WIDE);
      expect(narrowed.code).toBe(0);
      expect((JSON.parse(narrowed.out) as { reports: DoctorReport[] }).reports[0]?.cells.map((c) => c.region)).toEqual([
        'us-east-1',
        'us-east-1',
        'us-east-1',
      ]);
    } finally {
      await iam.send(new DeleteRolePolicyCommand({ RoleName: 'ImageBuilderReconcilerTarget', PolicyName: 'no-default-versions' }));
    }
  });

  it('shows an account without the role, and only that account', async () => {
    const removed = await fetch(`${box.url}/_sandbox/roles/remove`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ account: '333333333333' }),
    });
    expect(await removed.json()).toEqual({ removed: true });
    const { code, out } = await cli(['doctor', '--config', config, ...at(), '--json'], WIDE);
    expect(code).toBe(1);
    const [report] = (JSON.parse(out) as { reports: DoctorReport[] }).reports;
    expect(report?.accounts.find((a) => a.accountId === '333333333333')).toMatchObject({
      status: 'missing-role',
      roleArn: 'arn:aws:iam::333333333333:role/ImageBuilderReconcilerTarget',
    });
    expect(
      report?.cells.filter((c) => c.status !== 'ok' && c.status !== 'own-account').map((c) => `${c.region}/${c.accountId}:${c.status}`),
    ).toEqual(['ap-southeast-2/333333333333:missing-role', 'eu-west-1/333333333333:missing-role', 'us-east-1/333333333333:missing-role']);
    const human = await cli(['doctor', '--config', config, ...at(), '--no-color'], WIDE);
    expect(human.out).toMatch(
      /333333333333: no role ImageBuilderReconcilerTarget in 333333333333 \(\w+\): deploy infra\/target-account-role\.yaml there/,
    );
    // its shared cell in eu-west-1 is no problem: without the role the reconciler skips it (RECONCILER_SHARED_ACCOUNTS=tag)
    expect(report?.cells.find((c) => c.region === 'eu-west-1' && c.accountId === '333333333333')?.optional).toBe(true);
    expect(human.out).toMatch(
      /PROBLEMS: 2 of 8 cells \(1 cell\(s\) of accounts that only receive a launch permission have no role: the reconciler skips them/,
    );
    // in eu-west-1 that account only receives the launch permission: OK, unless shared cells are required
    const eu = await cli(['doctor', '--config', config, ...at(), '--regions', 'eu-west-1', '--no-color'], WIDE);
    expect(eu.code).toBe(0);
    expect(eu.out).toMatch(
      /OK: 2 cells, every action allowed \(1 cell\(s\) of accounts that only receive a launch permission have no role/,
    );
    vi.stubEnv('RECONCILER_SHARED_ACCOUNTS', 'require');
    try {
      expect((await cli(['doctor', '--config', config, ...at(), '--regions', 'eu-west-1'], WIDE)).code).toBe(1);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('refuses bad input before any call (exit 2)', async () => {
    const before = box.server.requests.length;
    expect((await cli(['doctor', '--config', 'arn:aws:imagebuilder:us-east-1:111111111111:image/x/1.0.0/1', ...at()], WIDE)).code).toBe(2);
    const accounts = await cli(['doctor', '--accounts', '12345', ...at()], WIDE);
    expect(accounts).toMatchObject({ code: 2, err: expect.stringContaining('--accounts: "12345" is not a 12-digit account ID') });
    expect((await cli(['doctor', '--regions', 'us-east-1,mars-north-1', ...at()], WIDE)).err).toMatch(
      /--regions: unknown region "mars-north-1"/,
    );
    expect((await cli(['doctor', '--regions', 'eu-wset-1', ...at()], WIDE)).errLines).toEqual([
      'error: --regions: unknown region "eu-wset-1" (did you mean eu-west-1?)',
    ]);
    expect(box.server.requests.length).toBe(before);
  });

  it('cannot run without the endpoint (exit 5)', async () => {
    const { code, err } = await cli(['doctor', '--endpoint-url', 'http://127.0.0.1:9', '--region', 'us-east-1'], WIDE);
    expect(code).toBe(5);
    expect(err).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9/);
  });
});

describe('doctor and the KMS keys and networks of Fast Launch, and the S3 export', () => {
  let box: Sandbox;
  const foreignKey = 'arn:aws:kms:ap-southeast-2:111111111111:key/5678abcd-12ab-34cd-56ef-1234567890ab';
  const sandboxes = useSandbox();

  beforeAll(async () => {
    // encrypted copies in eu-west-1 (a key of each target account) and ap-southeast-2 (a key of the owner's),
    // and Fast Launch without a launch template in ap-southeast-2
    const scenario = demoScenario();
    const [config] = scenario.imagebuilder?.distributions ?? [];
    for (const d of config?.distributions ?? []) {
      if (d.region === 'eu-west-1' && d.amiDistributionConfiguration !== undefined) {
        d.amiDistributionConfiguration.kmsKeyId = '1234abcd-12ab-34cd-56ef-1234567890ab';
        // and an export to S3, checked from the region's first account (no owner copy there)
        d.s3ExportConfiguration = { roleName: 'vmimport', diskImageFormat: 'VMDK', s3Bucket: 'golden-exports', s3Prefix: 'exports/' };
      }
      if (d.region === 'ap-southeast-2' && d.amiDistributionConfiguration !== undefined) {
        d.amiDistributionConfiguration.kmsKeyId = foreignKey;
        for (const f of d.fastLaunchConfigurations ?? []) delete f.launchTemplate;
      }
    }
    box = await sandboxes.start({ scenario });
  });

  it('checks the EBS rights on each key and the VPC Fast Launch builds, naming what to change', async () => {
    const config = box.refs.get('distribution:golden-windows') ?? '';
    const run = async () => {
      const { code, out } = await cli(['doctor', '--config', config, '--endpoint-url', box.url, '--region', 'us-east-1', '--json'], WIDE);
      return { code, report: (JSON.parse(out) as { reports: DoctorReport[] }).reports[0] };
    };
    const { code, report } = await run();
    expect(code).toBe(1);
    const groups = (region: string, account: string) =>
      report?.cells.find((c) => c.region === region && c.accountId === account)?.groups ?? [];
    // the target accounts' own keys: granted by the target template, with the conditions its calls meet
    expect(groups('eu-west-1', '444444444444').map((g) => `${g.name}:${g.status}`)).toEqual([
      'observe:ok',
      'images:ok',
      'LT:ok',
      'FL:ok',
      'FL-launch:ok',
      'FL-role:ok',
      'FL-kms:ok',
      'FL-grant:ok',
    ]);
    expect(groups('eu-west-1', '222222222222').find((g) => g.name === 'FL-grant')?.status).toBe('ok');
    expect(
      groups('eu-west-1', '222222222222')
        .filter((g) => g.name.startsWith('export'))
        .map((g) => `${g.name}:${g.status}`),
    ).toEqual(['export:ok', 'export-file:ok', 'export-list:ok']);
    // the owner's key in 333333333333, and no launch template there: both refused, each with what to do
    const denials = groups('ap-southeast-2', '333333333333').flatMap((g) =>
      g.denials.map((d) => `${g.name} ${d.action} ${d.decision}: ${d.fix}`),
    );
    expect(denials).toEqual([
      expect.stringMatching(
        /^FL-launch ec2:RunInstances implicitDeny: Fast Launch without a launch template launches without one: deploy infra\/target-account-role\.yaml in 333333333333 with FastLaunchWithoutLaunchTemplate=true/,
      ),
      ...['kms:Decrypt', 'kms:DescribeKey', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:ReEncryptFrom', 'kms:ReEncryptTo'].map((a) =>
        expect.stringMatching(
          new RegExp(
            `^FL-kms ${a} implicitDeny: the key is another account's: allow ${a} on ${foreignKey} to role ImageBuilderReconcilerTarget of 333333333333 both in the role and in the key's key policy`,
          ),
        ),
      ),
      expect.stringMatching(/^FL-grant kms:CreateGrant implicitDeny: the key is another account's/),
      expect.stringMatching(
        /^FL-network ec2:CreateVpc implicitDeny: Fast Launch without a launch template creates its own VPC: deploy infra\/target-account-role\.yaml in 333333333333 with FastLaunchWithoutLaunchTemplate=true/,
      ),
    ]);
    expect(report?.cells.filter((c) => c.status === 'denied').map((c) => `${c.region}/${c.accountId}`)).toEqual([
      'ap-southeast-2/333333333333',
    ]);

    // half of what the template's FastLaunchWithoutLaunchTemplate=true does: AWS's managed policy on the role (the
    // other half, the launch check without a template, is the template's to leave out)
    await clients(box.url, '333333333333').iam.send(
      new AttachRolePolicyCommand({
        RoleName: 'ImageBuilderReconcilerTarget',
        PolicyArn: 'arn:aws:iam::aws:policy/EC2FastLaunchFullAccess',
      }),
    );
    const after = await run();
    expect(
      after.report?.cells
        .find((c) => c.region === 'ap-southeast-2')
        ?.groups.filter((g) => g.status !== 'ok')
        .map((g) => g.name),
    ).toEqual(['FL-launch', 'FL-kms', 'FL-grant']);

    // a Deny on the export's file reads shows on the cell that checks the export, naming the bucket
    const deny = {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Deny', Action: 's3:GetObject', Resource: 'arn:aws:s3:::golden-exports/*' }],
    };
    await clients(box.url, '222222222222').iam.send(
      new PutRolePolicyCommand({
        RoleName: 'ImageBuilderReconcilerTarget',
        PolicyName: 'no-exports',
        PolicyDocument: JSON.stringify(deny),
      }),
    );
    const denied = await run();
    expect(
      denied.report?.cells
        .find((c) => c.region === 'eu-west-1' && c.accountId === '222222222222')
        ?.groups.flatMap((g) => g.denials.map((d) => `${g.name} ${d.action} ${d.resource} ${d.decision}`)),
    ).toEqual(['export-file s3:GetObject arn:aws:s3:::golden-exports/exports/export-ami-* explicitDeny']);
  });
});
