/**
 * Revoke a bad build on the sandbox (issue 25), with the reconciler's command line as the user's client: the
 * demo's multi-account, multi-region build with launch templates, SSM parameters and Fast Launch. A good
 * build, then a configuration that adds a parameter in a cell the good build never reached, then the bad
 * build. The plan lists every pointer move; the apply moves them (the new cell's parameter is left and says
 * so), disables Fast Launch and deprecates the AMIs; a sweep and a redelivered event change nothing;
 * `unrevoke` restores normal ordering; and a reconcile of the build that was under way when it was revoked
 * is fenced by the mark.
 */
import {
  DescribeFastLaunchImagesCommand,
  DescribeImagesCommand,
  DescribeLaunchTemplateVersionsCommand,
  ModifyLaunchTemplateCommand,
} from '@aws-sdk/client-ec2';
import {
  GetDistributionConfigurationCommand,
  GetImageCommand,
  ListTagsForResourceCommand,
  UpdateDistributionConfigurationCommand,
} from '@aws-sdk/client-imagebuilder';
import { GetParameterCommand, PutParameterCommand } from '@aws-sdk/client-ssm';
import { beforeAll, describe, expect, it } from 'vitest';
import { SSM_IMAGE_VALIDATION_MS } from '../../sandbox/emulator/services/ssm.ts';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { main } from '../../src/cli/index.ts';
import { createClientFactory } from '../../src/lib/aws/clients.ts';
import { loadConfig } from '../../src/lib/core/config.ts';
import { reconcile } from '../../src/lib/reconcile/reconcile.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';
import type { RevokeReport } from '../../src/lib/revoke/revoke.ts';
import type { SweepReport } from '../../src/lib/sweep/sweep.ts';
import { silentLog } from '../helpers/factories.ts';
import { clients, demoScenario, startBuild, useSandbox } from '../helpers/sandbox.ts';
import { validateReconcileReport, schemaErrors, validateRevokeReport } from '../helpers/schema.ts';
import { waitFor } from '../helpers/wait.ts';

const OWNER = '111111111111';
const A = '222222222222';
const D = '444444444444';
const PARAMETER = '/golden/windows/latest';
const REVOKED_TAG = 'imagebuilder-reconciler:revoked';

/** A pointer of the demo: where it is and how to read it. */
interface Pointer {
  name: string;
  account: string;
  region: string;
  kind: 'launch-template' | 'ssm-parameter';
  ref?: string;
}

const POINTERS: Pointer[] = [
  { name: 'owner template', account: OWNER, region: 'us-east-1', kind: 'launch-template', ref: 'web-owner' },
  { name: 'template A/us-east-1', account: A, region: 'us-east-1', kind: 'launch-template', ref: 'web-a' },
  { name: 'template D/eu-west-1', account: D, region: 'eu-west-1', kind: 'launch-template', ref: 'web-d' },
  { name: 'owner parameter', account: OWNER, region: 'us-east-1', kind: 'ssm-parameter' },
  { name: 'parameter A/eu-west-1', account: A, region: 'eu-west-1', kind: 'ssm-parameter' },
];
/** Added to the configuration between the builds: only the bad build has an AMI in its cell. */
const NEW_CELL: Pointer = { name: 'parameter D/us-east-1', account: D, region: 'us-east-1', kind: 'ssm-parameter' };

describe('revoke a bad build everywhere', () => {
  const sandboxes = useSandbox();
  let box: Sandbox;
  let good = '';
  let bad = '';

  async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await main([...args, '--endpoint-url', box.url, '--region', 'us-east-1'], {
      out: (s) => (out += `${s}\n`),
      err: (s) => (err += `${s}\n`),
      isTTY: false,
      columns: 200,
    });
    return { code, out, err };
  }

  async function json<T>(...args: string[]): Promise<{ code: number; report: T }> {
    const { code, out, err } = await cli(...args, '--json');
    expect(code, err).not.toBe(2);
    return { code, report: JSON.parse(out) as T };
  }

  /** Let SSM validate the aws:ec2:image puts it accepted. */
  const settle = () => box.clock.advance(SSM_IMAGE_VALIDATION_MS);

  async function build(token: string): Promise<string> {
    const arn = await startBuild(box, token);
    const ib = clients(box.url, OWNER).imagebuilder;
    await waitFor(`${arn} to be AVAILABLE`, async () => {
      box.clock.advance(10 * 60_000);
      return (await ib.send(new GetImageCommand({ imageBuildVersionArn: arn }))).image?.state?.status === 'AVAILABLE';
    });
    const { report } = await json<ReconcileReport>('reconcile', arn);
    expect(report.counts.actions.failed, JSON.stringify(report.cells.map((c) => c.reasons))).toBe(0);
    settle();
    return arn;
  }

  async function amiOf(arn: string, account: string, region: string): Promise<string> {
    const out = await clients(box.url, OWNER).imagebuilder.send(new GetImageCommand({ imageBuildVersionArn: arn }));
    const ami = out.image?.outputResources?.amis?.find((a) => a.accountId === account && a.region === region)?.image;
    if (ami === undefined) throw new Error(`${arn} has no AMI in ${account}/${region}`);
    return ami;
  }

  async function read(p: Pointer): Promise<string | undefined> {
    const c = clients(box.url, p.account, p.region);
    if (p.kind === 'ssm-parameter') return (await c.ssm.send(new GetParameterCommand({ Name: PARAMETER }))).Parameter?.Value;
    const out = await c.ec2.send(
      new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: box.refs.get(`lt:${p.ref ?? ''}`), Versions: ['$Default'] }),
    );
    return out.LaunchTemplateVersions?.[0]?.LaunchTemplateData?.ImageId;
  }

  /** Every pointer's value, by name. */
  async function pointers(list = POINTERS): Promise<Record<string, string | undefined>> {
    return Object.fromEntries(await Promise.all(list.map(async (p) => [p.name, await read(p)] as const)));
  }

  /** What every pointer holds when it names `arn`'s AMI of its cell. */
  async function on(arn: string, list = POINTERS): Promise<Record<string, string>> {
    return Object.fromEntries(await Promise.all(list.map(async (p) => [p.name, await amiOf(arn, p.account, p.region)] as const)));
  }

  async function mark(arn: string): Promise<string | undefined> {
    const out = await clients(box.url, OWNER).imagebuilder.send(new ListTagsForResourceCommand({ resourceArn: arn }));
    return out.tags?.[REVOKED_TAG];
  }

  beforeAll(async () => {
    box = await sandboxes.start({ scenario: demoScenario() });
    good = await build('good');
    // a parameter in D's account in us-east-1, which only builds from now on reach
    const ib = clients(box.url, OWNER).imagebuilder;
    const configArn = box.refs.get('distribution:golden-windows') ?? '';
    const current = await ib.send(new GetDistributionConfigurationCommand({ distributionConfigurationArn: configArn }));
    const distributions = (current.distributionConfiguration?.distributions ?? []).map((d) =>
      d.region !== 'us-east-1'
        ? d
        : {
            ...d,
            amiDistributionConfiguration: {
              ...d.amiDistributionConfiguration,
              targetAccountIds: [...(d.amiDistributionConfiguration?.targetAccountIds ?? []), D],
            },
            ssmParameterConfigurations: [
              ...(d.ssmParameterConfigurations ?? []),
              { amiAccountId: D, parameterName: PARAMETER, dataType: 'aws:ec2:image' as const },
            ],
          },
    );
    await ib.send(
      new UpdateDistributionConfigurationCommand({ distributionConfigurationArn: configArn, distributions, clientToken: 'd-use1' }),
    );
    box.clock.advance(60_000);
    bad = await build('bad');
    expect(await pointers([...POINTERS, NEW_CELL])).toStrictEqual(await on(bad, [...POINTERS, NEW_CELL]));
  }, 180_000);

  it('plans every pointer move and changes nothing', async () => {
    const before = await pointers([...POINTERS, NEW_CELL]);
    const { code, report } = await json<RevokeReport>('revoke', bad);
    expect(schemaErrors(validateRevokeReport, report)).toStrictEqual([]);
    expect(code).toBe(3);
    expect(report).toMatchObject({ kind: 'revoke', mode: 'plan', outcome: 'drift', mark: { before: null, outcome: 'planned' } });
    const goodAmis = await on(good);
    for (const p of POINTERS) {
      const moved = report.cells
        .filter((c) => c.accountId === p.account && c.region === p.region)
        .flatMap((c) => c.pointers)
        .find((x) => x.kind === p.kind && x.outcome === 'planned');
      expect(moved, p.name).toMatchObject({
        before: await amiOf(bad, p.account, p.region),
        after: goodAmis[p.name],
        replacementBuild: good,
      });
    }
    expect(report.counts.pointersMoved).toBe(POINTERS.length);
    // the cell the good build never reached: reported, left
    const left = report.cells.find((c) => c.accountId === D && c.region === 'us-east-1');
    expect(left?.status).toBe('left');
    expect(left?.pointers.find((x) => x.kind === 'ssm-parameter')).toMatchObject({
      outcome: 'left',
      detail: expect.stringMatching(/no earlier good build/),
    });
    // Fast Launch off and deprecation, planned for every AMI of the build
    const amis = report.cells.flatMap((c) => c.amis);
    expect(amis.length).toBeGreaterThan(5);
    expect(amis.every((a) => a.retire.outcome === 'planned' && a.retire.action === 'deprecate')).toBe(true);
    expect(amis.some((a) => a.fastLaunch.outcome === 'planned')).toBe(true);
    // a plan is a plan
    expect(await pointers([...POINTERS, NEW_CELL])).toStrictEqual(before);
    expect(await mark(bad)).toBeUndefined();
    const { out } = await cli('revoke', bad);
    expect(out).toMatch(/DRIFT: .*5 pointer\(s\) to move \(plan mode: nothing changed; --apply acts\), 1 left/);
  });

  it('apply marks the build, moves every pointer, disables Fast Launch and deprecates its AMIs', async () => {
    const { code, report } = await json<RevokeReport>('revoke', bad, '--apply', '--reason', 'broken agent (alice)');
    expect(schemaErrors(validateRevokeReport, report)).toStrictEqual([]);
    expect(code, JSON.stringify(report.cells.map((c) => c.reasons))).toBe(3);
    expect(report.outcome).toBe('repaired');
    expect(report.counts.failed).toBe(0);
    settle();
    expect(await mark(bad)).toMatch(/^\d{4}-\d\d-\d\dT.* broken agent \(alice\)$/);
    expect(await pointers()).toStrictEqual(await on(good));
    expect(await read(NEW_CELL)).toBe(await amiOf(bad, D, 'us-east-1'));
    for (const cell of report.cells) {
      for (const ami of cell.amis) {
        const ec2 = clients(box.url, cell.accountId, cell.region).ec2;
        const image = (await ec2.send(new DescribeImagesCommand({ ImageIds: [ami.imageId] }))).Images?.[0];
        expect(image?.DeprecationTime, `${cell.key} ${ami.imageId}`).toBeDefined();
        expect(image?.State).toBe('available');
        if (ami.fastLaunch.outcome === 'applied') {
          const state = (await ec2.send(new DescribeFastLaunchImagesCommand({ ImageIds: [ami.imageId] }))).FastLaunchImages?.[0]?.State;
          expect(['disabling', 'disabled', undefined]).toContain(state);
        }
      }
    }
    // again: nothing left to do
    const again = await json<RevokeReport>('revoke', bad, '--apply');
    expect(again.report.counts.pointersMoved).toBe(0);
    expect(again.report.cells.flatMap((c) => c.amis).filter((a) => a.retire.outcome !== 'unchanged')).toStrictEqual([]);
  });

  it('a sweep and a redelivered event afterwards change nothing', async () => {
    const before = await pointers([...POINTERS, NEW_CELL]);
    const { report: swept } = await json<SweepReport>('sweep');
    expect(swept.pipelines.map((p) => p.imageBuildVersionArn)).toStrictEqual([good]);
    const writes = (r: ReconcileReport) =>
      r.actions.filter(
        (a) =>
          a.outcome === 'applied' && (a.kind === 'update-launch-template' || a.kind === 'put-parameter' || a.kind === 'enable-fast-launch'),
      );
    expect(writes(swept.reports[0] as ReconcileReport)).toStrictEqual([]);
    const { report: redelivered } = await json<ReconcileReport>('reconcile', bad);
    expect(schemaErrors(validateReconcileReport, redelivered)).toStrictEqual([]);
    expect(redelivered.image.revoked).toMatch(/broken agent/);
    expect(redelivered.counts.actions.total).toBe(0);
    settle();
    expect(await pointers([...POINTERS, NEW_CELL])).toStrictEqual(before);
  });

  it('unrevoke restores normal ordering: the next sweep puts the newest build back', async () => {
    const planned = await json<RevokeReport>('unrevoke', bad);
    expect(planned.code).toBe(3);
    expect(await mark(bad)).toBeDefined();
    const { code, report } = await json<RevokeReport>('unrevoke', bad, '--apply');
    expect(schemaErrors(validateRevokeReport, report)).toStrictEqual([]);
    expect(code).toBe(3);
    expect(report.mark).toMatchObject({ outcome: 'applied', after: null });
    expect(await mark(bad)).toBeUndefined();
    const { report: swept } = await json<SweepReport>('sweep');
    expect(swept.pipelines.map((p) => p.imageBuildVersionArn)).toStrictEqual([bad]);
    settle();
    expect(await pointers()).toStrictEqual(await on(bad));
  });

  /** The reconciler's dependencies, as the Lambda functions build them, pointed at the sandbox. */
  function deps() {
    const config = loadConfig({ AWS_REGION: 'us-east-1', RECONCILER_ACCOUNT_ID: OWNER });
    return {
      config,
      clients: createClientFactory({ ...config, endpoint: box.url, credentials: { accessKeyId: OWNER, secretAccessKey: 'sandbox' } }),
      log: silentLog,
      now: () => box.clock.date(),
      newRunId: () => 'race',
      publish: false,
    };
  }

  /** Someone sets D's launch template default back to the version with the good build's AMI. */
  async function templateDBackToGood(): Promise<void> {
    const goodAmi = await amiOf(good, D, 'eu-west-1');
    const ec2 = clients(box.url, D, 'eu-west-1').ec2;
    const id = box.refs.get('lt:web-d');
    const versions = await ec2.send(
      new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: id, Filters: [{ Name: 'image-id', Values: [goodAmi] }] }),
    );
    const withGood = Math.max(...(versions.LaunchTemplateVersions ?? []).map((v) => v.VersionNumber ?? 0));
    await ec2.send(new ModifyLaunchTemplateCommand({ LaunchTemplateId: id, DefaultVersion: String(withGood) }));
  }

  it('a reconcile of the build under way when it is revoked is fenced by the mark', async () => {
    // someone points two pointers back at the good build: the bad build's reconcile will plan to repair them
    const goodAmis = await on(good);
    await templateDBackToGood();
    await clients(box.url, A, 'eu-west-1').ssm.send(
      new PutParameterCommand({
        Name: PARAMETER,
        Value: goodAmis['parameter A/eu-west-1'],
        Type: 'String',
        DataType: 'aws:ec2:image',
        Overwrite: true,
      }),
    );
    settle();

    // the reconcile reads the build (not revoked yet), then is held at its listing of the newer builds
    box.faults.merge({ pauses: [{ operation: 'ListImagePipelineImages', account: OWNER, region: 'us-east-1', count: 1 }] });
    const racing = reconcile({ imageBuildVersionArn: bad, trigger: 'eventbridge', mode: 'apply' }, deps());
    await waitFor('the reconcile to be held', () => box.faults.held().length === 1);
    try {
      const { report } = await json<RevokeReport>('revoke', bad, '--apply');
      expect(report.outcome).toBe('repaired');
    } finally {
      box.faults.release();
    }
    const raced = await racing;
    settle();
    expect(raced.image.revoked).toBeUndefined();
    const fenced = raced.actions.filter((a) => a.kind === 'update-launch-template' || a.kind === 'put-parameter');
    expect(fenced.length).toBeGreaterThan(0);
    expect(fenced.filter((a) => a.outcome === 'applied')).toStrictEqual([]);
    expect(
      fenced.every((a) => a.outcome === 'skipped' && /revoked: this build was revoked while the run was under way/.test(a.detail ?? '')),
    ).toBe(true);
    expect(await pointers()).toStrictEqual(goodAmis);
  });

  it("a write of the build that lands after its revoke is moved back by the run's own last check", async () => {
    await json<RevokeReport>('unrevoke', bad, '--apply');
    await json<SweepReport>('sweep');
    settle();
    expect(await pointers()).toStrictEqual(await on(bad));
    await templateDBackToGood();
    // the reconcile's write of D's default is held until the revoke has moved every pointer
    box.faults.merge({ pauses: [{ operation: 'ModifyLaunchTemplate', account: D, region: 'eu-west-1', count: 1 }] });
    const racing = reconcile({ imageBuildVersionArn: bad, trigger: 'eventbridge', mode: 'apply' }, deps());
    await waitFor('the write to be held', () => box.faults.held().length === 1);
    try {
      const { report } = await json<RevokeReport>('revoke', bad, '--apply');
      expect(report.outcome).toBe('repaired');
    } finally {
      box.faults.release();
    }
    const raced = await racing;
    settle();
    const written = raced.actions.find((a) => a.kind === 'update-launch-template' && a.accountId === D && !a.id.endsWith('/revoked'));
    expect(written?.outcome).toBe('applied');
    expect(raced.actions.find((a) => a.id.endsWith('/revoked') && a.accountId === D)).toMatchObject({
      outcome: 'applied',
      detail: expect.stringMatching(/^revoked meanwhile: version \d+ created from version \d+ with ami-/),
    });
    expect(await pointers()).toStrictEqual(await on(good));
  });
});
