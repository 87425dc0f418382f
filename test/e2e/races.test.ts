/**
 * Races on the sandbox that cannot pass by luck: a `pause` fault holds one call of the older build's run
 * until the test releases it, so the newer build's run always writes in between. Then a storm: five builds,
 * every event delivered twice and out of order, with throttling; the newest build must win every pointer.
 */
import { DescribeLaunchTemplateVersionsCommand } from '@aws-sdk/client-ec2';
import { GetImageCommand } from '@aws-sdk/client-imagebuilder';
import { DeleteParameterCommand, GetParameterCommand } from '@aws-sdk/client-ssm';
import { afterEach, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { createClientFactory } from '../../src/lib/aws/clients.ts';
import { loadConfig } from '../../src/lib/core/config.ts';
import { type ReconcileDeps, reconcile } from '../../src/lib/reconcile/reconcile.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';
import { silentLog } from '../helpers/factories.ts';
import { SSM_IMAGE_VALIDATION_MS } from '../../sandbox/emulator/services/ssm.ts';
import { clients, demoScenario, sandbox, startBuild, useSandbox } from '../helpers/sandbox.ts';
import { waitFor } from '../helpers/wait.ts';

const OWNER = '111111111111';
const A = '222222222222';
const D = '444444444444';
const PARAMETER = '/golden/windows/latest';

/** Let simulated time run until the build is AVAILABLE. */
async function available(box: Sandbox, arn: string): Promise<void> {
  const ib = clients(box.url, OWNER).imagebuilder;
  await waitFor(`${arn} to be AVAILABLE`, async () => {
    box.clock.advance(10 * 60_000);
    return (await ib.send(new GetImageCommand({ imageBuildVersionArn: arn }))).image?.state?.status === 'AVAILABLE';
  });
}

async function amiOf(box: Sandbox, arn: string, account: string, region: string): Promise<string> {
  const out = await clients(box.url, OWNER).imagebuilder.send(new GetImageCommand({ imageBuildVersionArn: arn }));
  const ami = out.image?.outputResources?.amis?.find((a) => a.accountId === account && a.region === region)?.image;
  if (ami === undefined) throw new Error(`no AMI for ${account}/${region}`);
  return ami;
}

/** The AMIs of a launch template's $Default and $Latest versions, as the account sees them. */
async function templateImages(
  box: Sandbox,
  account: string,
  region: string,
  ref: string,
): Promise<{ default: string | undefined; latest: string | undefined }> {
  const ec2 = clients(box.url, account, region).ec2;
  const read = async (version: string) =>
    (await ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: box.refs.get(`lt:${ref}`), Versions: [version] })))
      .LaunchTemplateVersions?.[0]?.LaunchTemplateData?.ImageId;
  return { default: await read('$Default'), latest: await read('$Latest') };
}

async function parameter(box: Sandbox, account: string, region: string): Promise<string | undefined> {
  return (await clients(box.url, account, region).ssm.send(new GetParameterCommand({ Name: PARAMETER }))).Parameter?.Value;
}

/** The reconciler's dependencies, as the Lambda functions build them, pointed at the sandbox. */
function depsFor(box: Sandbox, sdkMaxAttempts = 3): ReconcileDeps {
  const config = loadConfig({ AWS_REGION: 'us-east-1', RECONCILER_ACCOUNT_ID: OWNER, RECONCILER_SDK_MAX_ATTEMPTS: String(sdkMaxAttempts) });
  return {
    config,
    clients: createClientFactory({ ...config, endpoint: box.url, credentials: { accessKeyId: OWNER, secretAccessKey: 'sandbox' } }),
    log: silentLog,
    now: () => box.clock.date(),
    newRunId: () => 'race',
    publish: false,
  };
}

/** No cell of the run waits on SSM (Fast Launch `enabling` takes simulated minutes and is not waited for here). */
function parametersSettled(report: ReconcileReport): boolean {
  return report.cells.every((c) => !c.reasons.some((r) => /^ssm-parameter \S+: pending:/.test(r)));
}

function action(report: ReconcileReport, kind: string, region: string, account: string) {
  return report.actions.find((a) => a.kind === kind && a.region === region && a.accountId === account);
}

describe('no rollback under a forced interleaving', () => {
  let box: Sandbox | undefined;

  afterEach(async () => {
    box?.faults.release();
    await box?.stop();
    box = undefined;
  });

  /**
   * Build 1's run reads the state before build 2 is AVAILABLE, and is held at `held`; build 2's run then
   * reconciles completely; then build 1's run goes on. Returns both builds and build 1's report.
   */
  async function interleave(
    held: { operation: string; account: string; region: string },
    before?: (box: Sandbox) => Promise<void>,
    settle = false,
    between?: (box: Sandbox) => void,
  ) {
    box = await sandbox({ scenario: demoScenario(), wire: false, clockSpeed: 1 });
    const deps = depsFor(box);
    const old = await startBuild(box, 'old');
    await available(box, old);
    await before?.(box);
    box.faults.merge({ pauses: [{ ...held, count: 1 }] });
    const oldRun = reconcile({ imageBuildVersionArn: old, trigger: 'manual', mode: 'apply' }, deps);
    const sandboxNow = box;
    await waitFor(`build 1's ${held.operation} to be held`, () => sandboxNow.faults.held().length === 1);

    box.clock.advance(60_000);
    const newer = await startBuild(box, 'new');
    await available(box, newer);
    const newerReport = await reconcile({ imageBuildVersionArn: newer, trigger: 'manual', mode: 'apply' }, deps);
    expect(newerReport.counts.actions.failed).toBe(0);
    // SSM validates build 2's aws:ec2:image put before it writes it: let that finish first when asked
    if (settle) box.clock.advance(SSM_IMAGE_VALIDATION_MS);
    between?.(box);

    expect(box.faults.release()).toBe(1);
    return { old, newer, oldReport: await oldRun };
  }

  it('launch template: build 1 held at CreateLaunchTemplateVersion does not take the default (or $Latest) back from build 2', async () => {
    const { old, newer, oldReport } = await interleave({ operation: 'CreateLaunchTemplateVersion', account: D, region: 'eu-west-1' });
    if (box === undefined) throw new Error('no sandbox');
    const newerAmi = await amiOf(box, newer, D, 'eu-west-1');
    expect(await amiOf(box, old, D, 'eu-west-1')).not.toBe(newerAmi);

    expect(await templateImages(box, D, 'eu-west-1', 'web-d')).toStrictEqual({ default: newerAmi, latest: newerAmi });
    const lt = action(oldReport, 'update-launch-template', 'eu-west-1', D);
    expect(lt).toMatchObject({
      outcome: 'skipped',
      detail: expect.stringMatching(new RegExp(`^superseded: the default of launch template .* already names ${newerAmi}`)),
    });
    // the rest of the cell's pointers are left to build 2's run, and the cell is not left pending for it
    expect(action(oldReport, 'enable-fast-launch', 'eu-west-1', D)).toMatchObject({
      outcome: 'skipped',
      detail: expect.stringMatching(/^superseded: /),
    });
    expect(oldReport.cells.find((c) => c.region === 'eu-west-1' && c.accountId === D)?.status).not.toBe('pending');
  });

  it("SSM parameter: build 1 held before its PutParameter does not overwrite build 2's AMI", async () => {
    // Image Builder wrote the parameter itself; someone deleted it since, so build 1's run has to write it
    const deleted = async (b: Sandbox) => {
      await clients(b.url, A, 'eu-west-1').ssm.send(new DeleteParameterCommand({ Name: PARAMETER }));
    };
    const { old, newer, oldReport } = await interleave({ operation: 'CreateTags', account: A, region: 'eu-west-1' }, deleted, true);
    if (box === undefined) throw new Error('no sandbox');
    const newerAmi = await amiOf(box, newer, A, 'eu-west-1');
    expect(await amiOf(box, old, A, 'eu-west-1')).not.toBe(newerAmi);

    expect(await parameter(box, A, 'eu-west-1')).toBe(newerAmi);
    expect(action(oldReport, 'put-parameter', 'eu-west-1', A)).toMatchObject({
      outcome: 'skipped',
      detail: expect.stringMatching(new RegExp(`^superseded: parameter ${PARAMETER} already names ${newerAmi}`)),
    });
    // what is not a rollback is still done: build 1's copy got its tags once released
    expect(action(oldReport, 'create-tags', 'eu-west-1', A)?.outcome).toBe('applied');
  });

  it("SSM parameter: build 1's PutParameter held in flight lands after build 2's value, and build 1's recheck rolls the parameter forward", async () => {
    // the re-read cannot see a write that happens after it: here build 1 has re-read and its write is in flight
    const deleted = async (b: Sandbox) => {
      await clients(b.url, A, 'eu-west-1').ssm.send(new DeleteParameterCommand({ Name: PARAMETER }));
    };
    const { old, newer, oldReport } = await interleave({ operation: 'PutParameter', account: A, region: 'eu-west-1' }, deleted);
    if (box === undefined) throw new Error('no sandbox');
    const newerAmi = await amiOf(box, newer, A, 'eu-west-1');
    const oldAmi = await amiOf(box, old, A, 'eu-west-1');
    expect(oldAmi).not.toBe(newerAmi);
    // SSM answered 200 and validates build 1's value after the call: the sweep cannot see it yet, so the cell waits
    expect(action(oldReport, 'put-parameter', 'eu-west-1', A)).toMatchObject({
      outcome: 'applied',
      detail: expect.stringMatching(/SSM validates aws:ec2:image values after the call/),
    });
    expect(oldReport.cells.find((c) => c.region === 'eu-west-1' && c.accountId === A)?.status).toBe('pending');
    box.clock.advance(SSM_IMAGE_VALIDATION_MS);
    expect(await parameter(box, A, 'eu-west-1')).toBe(oldAmi);
    // build 1's recheck finds its own, older AMI over build 2's and puts build 2's back
    const recheck = await reconcile({ imageBuildVersionArn: old, trigger: 'sqs', mode: 'apply', attempt: 2 }, depsFor(box));
    expect(action(recheck, 'put-parameter', 'eu-west-1', A)).toMatchObject({
      outcome: 'applied',
      reason: expect.stringMatching(new RegExp(`newer build ${newer} has ${newerAmi} here: .*rolled forward`)),
    });
    box.clock.advance(SSM_IMAGE_VALIDATION_MS);
    expect(await parameter(box, A, 'eu-west-1')).toBe(newerAmi);
  });

  it("launch template: build 1's default write lands after build 2's and its roll-forward listing is throttled: pending with a note, and the recheck rolls forward", async () => {
    // build 1 has re-read the default and its ModifyLaunchTemplate is in flight while build 2's run writes
    const throttled = (b: Sandbox) =>
      b.faults.merge({
        errors: [{ service: 'imagebuilder', operation: 'ListImagePipelineImages', code: 'ThrottlingException', message: 'Rate exceeded' }],
      });
    const { old, newer, oldReport } = await interleave(
      { operation: 'ModifyLaunchTemplate', account: D, region: 'eu-west-1' },
      undefined,
      false,
      throttled,
    );
    if (box === undefined) throw new Error('no sandbox');
    const newerAmi = await amiOf(box, newer, D, 'eu-west-1');
    const oldAmi = await amiOf(box, old, D, 'eu-west-1');
    // the write landed last: the default is build 1's, and the run says it could not check, never "done"
    expect((await templateImages(box, D, 'eu-west-1', 'web-d')).default).toBe(oldAmi);
    expect(action(oldReport, 'update-launch-template', 'eu-west-1', D)).toMatchObject({
      outcome: 'applied',
      detail: expect.stringMatching(/set default version/),
    });
    expect(oldReport.actions.find((a) => a.id.endsWith('/roll-forward') && a.region === 'eu-west-1' && a.accountId === D)).toMatchObject({
      outcome: 'skipped',
      detail: expect.stringMatching(
        /^not checked for a newer build's write .*cannot list the newer builds \(.*ThrottlingException.*\); the recheck looks again$/,
      ),
    });
    expect(oldReport.outcome).toBe('pending');
    expect(oldReport.notes).toContainEqual(expect.stringMatching(/^roll forward not checked: the newer builds could not be listed/));
    const cell = oldReport.cells.find((c) => c.region === 'eu-west-1' && c.accountId === D);
    expect(cell?.status).toBe('pending');
    expect(cell?.reasons).toContainEqual(
      expect.stringMatching(/^update-launch-template .*: pending: not checked for a newer build's write/),
    );

    // the listing works again: build 1's recheck finds its own AMI the default over build 2's and rolls it forward
    box.faults.set({});
    const recheck = await reconcile({ imageBuildVersionArn: old, trigger: 'sqs', mode: 'apply', attempt: 2 }, depsFor(box));
    const rolled = recheck.actions.find((a) => a.id.endsWith(`update-launch-template/${box?.refs.get('lt:web-d') ?? ''}/roll-forward`));
    expect(rolled).toMatchObject({
      outcome: 'applied',
      reason: expect.stringMatching(new RegExp(`newer build ${newer} has ${newerAmi} here: .*rolled forward`)),
    });
    // build 2's own version is made the default again: no new version
    expect(rolled?.detail).toMatch(/^version \d+ already uses ami-[0-9a-f]+; set default version \d+$/);
    expect((await templateImages(box, D, 'eu-west-1', 'web-d')).default).toBe(newerAmi);
    // the cell waits only on what build 2's run started (Fast Launch enabling), no longer on an unchecked pointer
    const reasons = recheck.cells.find((c) => c.region === 'eu-west-1' && c.accountId === D)?.reasons ?? [];
    expect(reasons.filter((r) => r.includes('pending') && !r.startsWith('fast-launch: pending: enabling'))).toStrictEqual([]);
    expect(recheck.notes.filter((n) => n.startsWith('roll forward not checked'))).toStrictEqual([]);
  });
});

describe('a storm of builds and duplicate, out-of-order deliveries', () => {
  let box: Sandbox | undefined;

  const sandboxes = useSandbox('each');

  it('five builds, each delivered twice and out of order, all at once, 10 % throttled: every pointer names the newest build, with bounded writes', async () => {
    box = await sandboxes.start({ scenario: demoScenario(), wire: false, clockSpeed: 1 });
    // one attempt per call: a throttled call is not retried by the SDK (whose backoff sleeps in real time)
    // but by the reconciler's next run, which is what this test is about
    const deps = depsFor(box, 1);
    const builds: string[] = [];
    for (let i = 1; i <= 5; i += 1) {
      builds.push(await startBuild(box, `storm-${i}`));
      box.clock.advance(60_000);
    }
    for (const arn of builds) await available(box, arn);
    const newest = builds[4] ?? '';
    // Image Builder wrote the parameters itself; remove them, so that every run has them to write
    for (const [account, region] of [
      [OWNER, 'us-east-1'],
      [A, 'eu-west-1'],
    ] as const) {
      await clients(box.url, account, region).ssm.send(new DeleteParameterCommand({ Name: PARAMETER }));
    }
    const requestsBefore = box.server.requests.length;
    box.faults.set({
      errors: [
        { service: 'ec2', code: 'RequestLimitExceeded', message: 'Request limit exceeded.', status: 503, every: 10 },
        { service: 'ssm', code: 'ThrottlingException', message: 'Rate exceeded', status: 400, every: 10 },
      ],
    });
    // out of order and twice: 3 1 5 2 4, then 4 2 5 1 3, all running at the same time
    const order = [2, 0, 4, 1, 3, 3, 1, 4, 0, 2];
    const reports = await Promise.all(order.map((i) => reconcile({ imageBuildVersionArn: builds[i] ?? '', trigger: 'eventbridge' }, deps)));
    const throttled = box.server.requests
      .slice(requestsBefore)
      .filter((r) => r.errorCode === 'RequestLimitExceeded' || r.errorCode === 'ThrottlingException');
    expect(throttled.length).toBeGreaterThan(0);
    box.faults.set({});
    // a run that was throttled past its retries, or whose aws:ec2:image put SSM has not confirmed (or refused
    // while another put was validated), is pending; its rechecks (here: more rounds, SSM validating between) finish it
    const again: ReconcileReport[] = [];
    for (let attempt = 2; attempt <= 6; attempt += 1) {
      box.clock.advance(SSM_IMAGE_VALIDATION_MS);
      const round = await Promise.all(builds.map((arn) => reconcile({ imageBuildVersionArn: arn, trigger: 'sqs', attempt }, deps)));
      again.push(...round);
      if (round.every(parametersSettled)) break;
    }
    box.clock.advance(SSM_IMAGE_VALIDATION_MS);
    expect(again.slice(-builds.length).filter((r) => !parametersSettled(r))).toStrictEqual([]);
    expect(
      [...reports, ...again]
        .flatMap((r) => r.actions)
        .filter((a) => a.outcome === 'failed' && !/Throttl|RequestLimit/.test(a.error?.code ?? '')),
    ).toStrictEqual([]);

    for (const [account, region, ref] of [
      [OWNER, 'us-east-1', 'web-owner'],
      [A, 'us-east-1', 'web-a'],
      [D, 'eu-west-1', 'web-d'],
    ] as const) {
      const ami = await amiOf(box, newest, account, region);
      expect(await templateImages(box, account, region, ref), `${account}/${region} ${ref}`).toStrictEqual({ default: ami, latest: ami });
    }
    expect(await parameter(box, A, 'eu-west-1')).toBe(await amiOf(box, newest, A, 'eu-west-1'));
    expect(await parameter(box, OWNER, 'us-east-1')).toBe(await amiOf(box, newest, OWNER, 'us-east-1'));

    // bounded: however many deliveries, each build writes each pointer at most once (a launch template
    // takes two calls: the version and the default), so 3 templates and 2 parameters cost at most 8 per build
    const pointerWrites = box.server.requests
      .slice(requestsBefore)
      .filter(
        (r) => ['CreateLaunchTemplateVersion', 'ModifyLaunchTemplate', 'PutParameter'].includes(r.operation) && r.errorCode === undefined,
      );
    expect(pointerWrites.length).toBeLessThanOrEqual(builds.length * (2 * 3 + 2));
  });
});
