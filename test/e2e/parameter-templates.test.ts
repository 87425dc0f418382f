/**
 * Launch templates whose ImageId is `resolve:ssm:<parameter>`: the sandbox behaves as EC2 does (it refuses a
 * parameter that does not exist or is not `aws:ec2:image`, resolves `:version` and `:label` to that version,
 * and answers the resolved AMI with ResolveAlias), and the reconciler leaves such a template parameter-driven:
 * no pinned version when the parameter resolves to the build's AMI, pending while this distribution's parameter
 * is repaired, failed with what to do when nothing here moves the parameter.
 */
import {
  CreateLaunchTemplateCommand,
  CreateLaunchTemplateVersionCommand,
  DescribeLaunchTemplateVersionsCommand,
} from '@aws-sdk/client-ec2';
import { StartImagePipelineExecutionCommand } from '@aws-sdk/client-imagebuilder';
import { GetParameterCommand, LabelParameterVersionCommand, PutParameterCommand } from '@aws-sdk/client-ssm';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import type { Scenario } from '../../sandbox/harness/scenario.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';
import { buildBundles } from '../helpers/build.ts';
import { clients, demoScenario, useSandbox } from '../helpers/sandbox.ts';
import { waitFor } from '../helpers/wait.ts';

const OWNER = '111111111111';
const A = '222222222222';
const B = '333333333333';
const D = '444444444444';
const REGION = 'us-east-1';
const LATEST = '/golden/windows/latest';

describe('sandbox EC2: resolve:ssm: launch templates', () => {
  let box: Sandbox;
  let c: ReturnType<typeof clients>;
  const ami = (ref: string) => box.refs.get(`ami:${ref}`) ?? '';
  const sandboxes = useSandbox();

  beforeAll(async () => {
    box = await sandboxes.start({
      scenario: {
        name: 'ssm-templates',
        defaultAccount: OWNER,
        accounts: [A],
        regions: [REGION],
        images: [
          { ref: 'one', account: OWNER, region: REGION, name: 'one' },
          { ref: 'two', account: OWNER, region: REGION, name: 'two' },
        ],
        parameters: [
          { account: OWNER, region: REGION, name: '/ami/web', value: '${ami:one}', dataType: 'aws:ec2:image' },
          { account: OWNER, region: REGION, name: '/plain/text', value: '${ami:one}' },
        ],
      },
    });
    c = clients(box.url, OWNER);
  });

  async function refusal(send: Promise<unknown>): Promise<string> {
    const error = await send.then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(error instanceof Error)) throw new Error('EC2 accepted the reference');
    return `${error.name}: ${error.message}`;
  }

  it('refuses a parameter that does not exist, one that is not aws:ec2:image, and a version that does not exist', async () => {
    expect(
      await refusal(
        c.ec2.send(
          new CreateLaunchTemplateCommand({ LaunchTemplateName: 'missing', LaunchTemplateData: { ImageId: 'resolve:ssm:/ami/nope' } }),
        ),
      ),
    ).toMatch(/^SsmInvalidParameter: .*\/ami\/nope/);
    expect(
      await refusal(
        c.ec2.send(
          new CreateLaunchTemplateCommand({ LaunchTemplateName: 'text', LaunchTemplateData: { ImageId: 'resolve:ssm:/plain/text' } }),
        ),
      ),
    ).toBe('SsmInvalidParameter: Unsupported data type. The following parameter data types are supported: aws:ec2:image');
    expect(
      await refusal(
        c.ec2.send(
          new CreateLaunchTemplateCommand({ LaunchTemplateName: 'nine', LaunchTemplateData: { ImageId: 'resolve:ssm:/ami/web:9' } }),
        ),
      ),
    ).toMatch(/^SsmInvalidParameter: .*version 9/);
    const lt = await c.ec2.send(
      new CreateLaunchTemplateCommand({ LaunchTemplateName: 'web', LaunchTemplateData: { ImageId: ami('one') } }),
    );
    const id = lt.LaunchTemplate?.LaunchTemplateId;
    expect(
      await refusal(
        c.ec2.send(
          new CreateLaunchTemplateVersionCommand({ LaunchTemplateId: id, LaunchTemplateData: { ImageId: 'resolve:ssm:/plain/text' } }),
        ),
      ),
    ).toMatch(/^SsmInvalidParameter: Unsupported data type/);
    // another account's parameter ARN: sharing is not modelled, so it is not found
    expect(
      await refusal(
        c.ec2.send(
          new CreateLaunchTemplateVersionCommand({
            LaunchTemplateId: id,
            LaunchTemplateData: { ImageId: `resolve:ssm:arn:aws:ssm:${REGION}:${A}:parameter/ami/web` },
          }),
        ),
      ),
    ).toMatch(/^SsmInvalidParameter: /);
    const versions = await c.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: id }));
    expect(versions.LaunchTemplateVersions?.map((v) => v.LaunchTemplateData?.ImageId)).toStrictEqual([ami('one')]);
  });

  it('resolves the latest version, a :version and a :label each to its own AMI with ResolveAlias, and keeps the reference without it', async () => {
    // version 2 of /ami/web names AMI two; version 1 (labelled "stable") still names AMI one
    await c.ssm.send(
      new PutParameterCommand({ Name: '/ami/web', Value: ami('two'), Type: 'String', DataType: 'aws:ec2:image', Overwrite: true }),
    );
    box.clock.advance(60_000);
    await waitFor(
      'version 2 of /ami/web',
      async () => (await c.ssm.send(new GetParameterCommand({ Name: '/ami/web' }))).Parameter?.Version === 2,
    );
    const labelled = await c.ssm.send(
      new LabelParameterVersionCommand({ Name: '/ami/web', ParameterVersion: 1, Labels: ['stable', '1bad'] }),
    );
    expect(labelled.InvalidLabels).toStrictEqual(['1bad']);
    expect((await c.ssm.send(new GetParameterCommand({ Name: '/ami/web:stable' }))).Parameter).toMatchObject({
      Value: ami('one'),
      Version: 1,
      Selector: ':stable',
    });
    const lt = await c.ec2.send(
      new CreateLaunchTemplateCommand({ LaunchTemplateName: 'driven', LaunchTemplateData: { ImageId: 'resolve:ssm:/ami/web' } }),
    );
    const id = lt.LaunchTemplate?.LaunchTemplateId;
    await c.ec2.send(
      new CreateLaunchTemplateVersionCommand({ LaunchTemplateId: id, LaunchTemplateData: { ImageId: 'resolve:ssm:/ami/web:1' } }),
    );
    await c.ec2.send(
      new CreateLaunchTemplateVersionCommand({ LaunchTemplateId: id, LaunchTemplateData: { ImageId: 'resolve:ssm:/ami/web:stable' } }),
    );
    await c.ec2.send(
      new CreateLaunchTemplateVersionCommand({
        LaunchTemplateId: id,
        LaunchTemplateData: { ImageId: `resolve:ssm:arn:aws:ssm:${REGION}:${OWNER}:parameter/ami/web:2` },
      }),
    );
    const resolved = async (version: string, ResolveAlias: boolean) =>
      (await c.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: id, Versions: [version], ResolveAlias })))
        .LaunchTemplateVersions?.[0]?.LaunchTemplateData?.ImageId;
    expect(await resolved('1', true)).toBe(ami('two'));
    expect(await resolved('2', true)).toBe(ami('one'));
    expect(await resolved('3', true)).toBe(ami('one'));
    expect(await resolved('4', true)).toBe(ami('two'));
    expect(await resolved('2', false)).toBe('resolve:ssm:/ami/web:1');
  });
});

function parameterDrivenScenario(): Scenario {
  const s = demoScenario();
  s.images = [
    ...(s.images ?? []),
    { ref: 'previous-b-use1', account: B, region: REGION, name: 'golden-windows-previous', platform: 'windows', ageDays: 30 },
  ];
  s.parameters = [
    ...(s.parameters ?? []),
    // A's own copy of the demo parameter (version 1: the previous AMI), which this distribution also writes
    { account: A, region: REGION, name: LATEST, value: '${ami:previous-a-use1}', dataType: 'aws:ec2:image' },
    // B's copy: version 1 the previous AMI; the build writes version 2, which a `:1` reference does not follow
    { account: B, region: REGION, name: LATEST, value: '${ami:previous-b-use1}', dataType: 'aws:ec2:image' },
    // D's parameter, which nothing in the distribution writes
    { account: D, region: 'eu-west-1', name: '/team/web', value: '${ami:previous-d-euw1}', dataType: 'aws:ec2:image' },
  ];
  s.launchTemplates = (s.launchTemplates ?? []).map((lt) =>
    lt.ref === 'web-a' ? { ...lt, image: `resolve:ssm:${LATEST}` } : lt.ref === 'web-d' ? { ...lt, image: 'resolve:ssm:/team/web' } : lt,
  );
  s.launchTemplates.push({ ref: 'pinned-b', account: B, region: REGION, name: 'web-pinned', image: `resolve:ssm:${LATEST}:1` });
  const east = s.imagebuilder?.distributions?.[0]?.distributions?.find((d) => d.region === REGION);
  if (east === undefined) throw new Error('demo scenario has no us-east-1 distribution');
  east.ssmParameterConfigurations = [
    ...(east.ssmParameterConfigurations ?? []),
    { amiAccountId: A, parameterName: LATEST, dataType: 'aws:ec2:image' },
    { amiAccountId: B, parameterName: LATEST, dataType: 'aws:ec2:image' },
  ];
  east.launchTemplateConfigurations = [
    ...(east.launchTemplateConfigurations ?? []),
    { launchTemplateId: '${lt:pinned-b}', accountId: B, setDefaultVersion: true },
  ];
  return s;
}

function templateCheck(report: ReconcileReport | undefined, account: string, region: string, templateId: string) {
  return report?.cells
    .find((c) => c.accountId === account && c.region === region)
    ?.checks.find((c) => c.check === 'launch-template' && c.subject === templateId);
}

describe('reconcile: parameter-driven launch templates end to end', () => {
  let box: Sandbox;
  let arn: string;
  let first: ReconcileReport | undefined;
  const lt = (ref: string) => box.refs.get(`lt:${ref}`) ?? '';
  const versions = (account: string, region: string, ref: string) =>
    box.state
      .cell(account, region)
      .launchTemplates.get(lt(ref))
      ?.versions.map((v) => v.data.ImageId);
  const sandboxes = useSandbox();

  beforeAll(async () => {
    await buildBundles();
    box = await sandboxes.start({ scenario: parameterDrivenScenario(), wire: true, clockSpeed: 3000 });
    const ib = clients(box.url, OWNER).imagebuilder;
    arn =
      (
        await ib.send(
          new StartImagePipelineExecutionCommand({
            imagePipelineArn: box.refs.get('pipeline:golden-windows'),
            clientToken: 'ssm-templates',
          }),
        )
      ).imageBuildVersionArn ?? '';
    first = await box.finalReport(arn, 30_000);
    await box.idle();
  }, 120_000);

  it("leaves a template whose parameter resolves to the build's AMI parameter-driven, with no new version", () => {
    const ami = first?.cells.find((c) => c.accountId === A && c.region === REGION)?.imageId;
    expect(templateCheck(first, A, REGION, lt('web-a'))).toMatchObject({
      result: 'ok',
      reason: expect.stringContaining(`resolves to ${ami}; left parameter-driven`),
    });
    expect(versions(A, REGION, 'web-a')).toStrictEqual([`resolve:ssm:${LATEST}`]);
    expect(
      box.server.requests.filter((r) => r.operation === 'CreateLaunchTemplateVersion' && r.account === A && r.region === REGION),
    ).toStrictEqual([]);
  });

  it('fails a template pinned to an older parameter version than the build wrote, and one on a parameter nothing here writes, naming what to do and pinning neither', () => {
    // the build moved B's parameter to version 2 (its copy); the template names version 1
    const copy = first?.cells.find((c) => c.accountId === B && c.region === REGION)?.imageId;
    expect(box.state.cell(B, REGION).parameters.get(LATEST)).toMatchObject({ version: 2, value: copy });
    const pinned = templateCheck(first, B, REGION, lt('pinned-b'));
    expect(pinned).toMatchObject({
      result: 'failed',
      reason: expect.stringContaining(`resolve:ssm:${LATEST}:1, which resolves to ${box.refs.get('ami:previous-b-use1') ?? ''}`),
    });
    expect(pinned?.reason).toContain('left parameter-driven rather than pinned');
    expect(versions(B, REGION, 'pinned-b')).toStrictEqual([`resolve:ssm:${LATEST}:1`]);
    const team = templateCheck(first, D, 'eu-west-1', lt('web-d'));
    expect(team).toMatchObject({ result: 'failed', reason: expect.stringContaining('resolve:ssm:/team/web') });
    expect(versions(D, 'eu-west-1', 'web-d')).toStrictEqual(['resolve:ssm:/team/web']);
    expect(first?.cells.find((c) => c.accountId === D && c.region === 'eu-west-1')?.status).toBe('failed');
  });

  it("reports the template pending while this distribution's parameter is repaired, then ok, still parameter-driven", async () => {
    const ssm = clients(box.url, A).ssm;
    const previous = box.refs.get('ami:previous-a-use1') ?? '';
    await ssm.send(new PutParameterCommand({ Name: LATEST, Value: previous, Type: 'String', DataType: 'aws:ec2:image', Overwrite: true }));
    await waitFor(
      'the parameter back at the previous AMI',
      async () => (await ssm.send(new GetParameterCommand({ Name: LATEST }))).Parameter?.Value === previous,
    );
    const available = box.state.events.find(
      (e) => e.resources[0] === arn && (e.detail as { state?: { status: string } }).state?.status === 'AVAILABLE',
    );
    if (available === undefined) throw new Error('no AVAILABLE event');
    const before = box.reports(arn).length;
    box.wiring?.deliver(available);
    const final = await box.finalReport(arn, 30_000, before);
    await box.idle();
    const runs = box.reports(arn).slice(before);
    expect(templateCheck(runs[0], A, REGION, lt('web-a'))).toMatchObject({
      result: 'pending',
      reason: expect.stringContaining(`this distribution sets ${LATEST}`),
    });
    expect(templateCheck(final, A, REGION, lt('web-a'))?.result).toBe('ok');
    expect(versions(A, REGION, 'web-a')).toStrictEqual([`resolve:ssm:${LATEST}`]);
  });
});
