/**
 * End to end on the sandbox: Image Builder builds in the local AWS, its events reach the reconciler's
 * real Lambda bundles through the rules and queues of serverless.yml, and the results are checked the way a
 * user would check them: with the AWS SDK, as each account.
 */
import { DescribeFastLaunchImagesCommand, DescribeImagesCommand, DescribeLaunchTemplateVersionsCommand } from '@aws-sdk/client-ec2';
import { GetImageCommand } from '@aws-sdk/client-imagebuilder';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { main } from '../../src/cli/index.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';
import { buildBundles } from '../helpers/build.ts';
import { schemaErrors, validateReconcileReport } from '../helpers/schema.ts';
import { clients, demoScenario, finished, startBuild, useSandbox } from '../helpers/sandbox.ts';
import { waitFor } from '../helpers/wait.ts';

const OWNER = '111111111111';
const A = '222222222222';
const B = '333333333333';
const D = '444444444444';
const SPEED = 3000;

/** The AMI Image Builder recorded for a cell. */
async function amiOf(box: Sandbox, arn: string, account: string, region: string): Promise<string> {
  const out = await clients(box.url, OWNER).imagebuilder.send(new GetImageCommand({ imageBuildVersionArn: arn }));
  const ami = out.image?.outputResources?.amis?.find((a) => a.accountId === account && a.region === region)?.image;
  if (ami === undefined) throw new Error(`no AMI for ${account}/${region}`);
  return ami;
}

async function tagsOf(box: Sandbox, account: string, region: string, imageId: string): Promise<Record<string, string>> {
  const out = await clients(box.url, account, region).ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
  return Object.fromEntries((out.Images?.[0]?.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
}

async function defaultImage(box: Sandbox, account: string, region: string, ref: string): Promise<string | undefined> {
  const out = await clients(box.url, account, region).ec2.send(
    new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: box.refs.get(`lt:${ref}`), Versions: ['$Default'] }),
  );
  return out.LaunchTemplateVersions?.[0]?.LaunchTemplateData?.ImageId;
}

async function fastLaunchState(box: Sandbox, account: string, region: string, imageId: string): Promise<string | undefined> {
  const out = await clients(box.url, account, region).ec2.send(new DescribeFastLaunchImagesCommand({ ImageIds: [imageId] }));
  return out.FastLaunchImages?.[0]?.State;
}

function cellOf(report: ReconcileReport, region: string, account: string) {
  const cell = report.cells.find((c) => c.region === region && c.accountId === account);
  if (cell === undefined) throw new Error(`no cell ${region}/${account}`);
  return cell;
}

describe('reconcile end to end on the sandbox', () => {
  let box: Sandbox | undefined;

  // what the functions write to stdout and stderr (the sandbox runs the bundles in this process)
  const written: string[] = [];
  beforeAll(() => {
    // Powertools writes through a Console of its own on process.stdout and process.stderr
    for (const stream of [process.stdout, process.stderr]) {
      const write = stream.write.bind(stream) as (chunk: string | Uint8Array) => boolean;
      vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
        written.push(String(chunk));
        return write(chunk);
      });
    }
    buildBundles();
  }, 120_000);
  const sandboxes = useSandbox('each');
  afterAll(() => {
    vi.restoreAllMocks();
    // an invocation that records no metric is no problem: Powertools Metrics' warning for it is not in the logs
    expect(written.filter((w) => w.includes('No application metrics to publish'))).toStrictEqual([]);
  });

  it('closes every gap Image Builder leaves, requeues until Fast Launch is enabled, and converges', async () => {
    box = await sandboxes.start({ scenario: demoScenario(), wire: true, clockSpeed: SPEED });
    const arn = await startBuild(box, 'happy');
    const final = await finished(box, arn);

    // the first run found the gaps: Image Builder put no amiTags on target copies (aws-facts §3, roadmap #62),
    // did not update cross-account templates without the CreatedBy tag (§5) nor enable Fast Launch there (§4)
    const first = box.reports(arn)[0];
    expect(first?.trigger).toBe('eventbridge');
    expect(cellOf(first as ReconcileReport, 'eu-west-1', D).reasons.join('\n')).toMatch(
      /tags: drift: missing or different tag\(s\): Team, CostCenter/,
    );
    expect(cellOf(first as ReconcileReport, 'eu-west-1', D).reasons.join('\n')).toMatch(/launch-template .*: drift: no version uses/);
    expect(first?.next).toMatchObject({ recheck: true, attempt: 2 });

    expect(final.outcome).toBe('converged');
    expect(final.trigger).toBe('sqs');
    expect(final.cells.map((c) => `${c.region}/${c.accountId}`).sort()).toStrictEqual(
      [
        `ap-northeast-1/${A}`,
        `ap-southeast-2/${B}`,
        `eu-west-1/${A}`,
        `eu-west-1/${B}`,
        `eu-west-1/${D}`,
        `us-east-1/${OWNER}`,
        `us-east-1/${A}`,
        `us-east-1/${B}`,
      ].sort(),
    );

    // eu-west-1 shares its copies (A's and D's) with B, which gets no copy: B sees them without any tag until the
    // reconciler tags them from B, in B's own tag scope (the copies' owners see none of B's tags, B none of theirs)
    const copyA = await amiOf(box, arn, A, 'eu-west-1');
    const shared = cellOf(final, 'eu-west-1', B);
    expect(shared).toMatchObject({ origin: 'shared', status: 'ok' });
    // the documented report schema knows the origin
    expect(schemaErrors(validateReconcileReport, final)).toStrictEqual([]);
    expect(
      shared.checks
        .filter((c) => c.check === 'tags')
        .map((c) => c.subject)
        .sort(),
    ).toStrictEqual([copyA, await amiOf(box, arn, D, 'eu-west-1')].sort());
    expect(first?.actions.filter((a) => a.accountId === B && a.region === 'eu-west-1').map((a) => [a.kind, a.outcome])).toStrictEqual([
      ['create-tags', 'applied'],
      ['create-tags', 'applied'],
    ]);
    expect(await tagsOf(box, B, 'eu-west-1', copyA)).toStrictEqual({ Team: 'platform', CostCenter: '4711' });
    expect(await tagsOf(box, B, 'eu-west-1', await amiOf(box, arn, D, 'eu-west-1'))).toStrictEqual({
      Team: 'platform',
      CostCenter: '4711',
    });
    expect(await tagsOf(box, A, 'eu-west-1', copyA)).toStrictEqual({
      Team: 'platform',
      CostCenter: '4711',
      'imagebuilder-reconciler:source-image': arn,
    });

    // checked as each account sees it
    const copyD = await amiOf(box, arn, D, 'eu-west-1');
    expect(await tagsOf(box, D, 'eu-west-1', copyD)).toMatchObject({
      Team: 'platform',
      CostCenter: '4711',
      'imagebuilder-reconciler:source-image': arn,
    });
    expect(await defaultImage(box, D, 'eu-west-1', 'web-d')).toBe(copyD);
    expect(await defaultImage(box, A, 'us-east-1', 'web-a')).toBe(await amiOf(box, arn, A, 'us-east-1'));
    expect(await defaultImage(box, OWNER, 'us-east-1', 'web-owner')).toBe(await amiOf(box, arn, OWNER, 'us-east-1'));
    for (const [account, region] of [
      [A, 'us-east-1'],
      [B, 'us-east-1'],
      [A, 'eu-west-1'],
      [D, 'eu-west-1'],
      [B, 'ap-southeast-2'],
    ] as const) {
      expect(await fastLaunchState(box, account, region, await amiOf(box, arn, account, region)), `${account}/${region}`).toBe('enabled');
    }
    const param = await clients(box.url, A, 'eu-west-1').ssm.send(new GetParameterCommand({ Name: '/golden/windows/latest' }));
    expect(param.Parameter?.Value).toBe(await amiOf(box, arn, A, 'eu-west-1'));
  });

  it("reports a failed copy with Image Builder's reason, and still tags and shares what landed", async () => {
    const scenario = demoScenario();
    scenario.faults = { failedCopies: [`${D}/eu-west-1`] };
    box = await sandboxes.start({ scenario, wire: true, clockSpeed: SPEED });
    const arn = await startBuild(box, 'failed-copy');
    const final = await finished(box, arn);

    expect(final.image.status).toBe('FAILED');
    const failed = cellOf(final, 'eu-west-1', D);
    expect(failed.status).toBe('failed');
    expect(failed.reasons[0]).toMatch(
      /not distributed \(image FAILED: Not all distribution jobs are completed\. 1\) AMI Copy Reported Failure For ami-\w+ when distributing the image from the source account \(ID: 111111111111\) to the destination account \(ID: 444444444444\) in Region eu-west-1/,
    );
    const landed = cellOf(final, 'eu-west-1', A);
    expect(landed.checks.filter((c) => c.result === 'skipped').map((c) => c.check)).toStrictEqual(['fast-launch', 'ssm-parameter']);
    expect(await tagsOf(box, A, 'eu-west-1', await amiOf(box, arn, A, 'eu-west-1'))).toMatchObject({ Team: 'platform' });
    expect(final.outcome).toBe('failed');
  });

  it("records a removed role in one account as that account's cells failing; every other cell converges", async () => {
    const scenario = demoScenario();
    scenario.removedRoles = [B];
    box = await sandboxes.start({ scenario, wire: true, clockSpeed: SPEED });
    const arn = await startBuild(box, 'removed-role');
    const final = await finished(box, arn);

    for (const region of ['us-east-1', 'ap-southeast-2']) {
      const cell = cellOf(final, region, B);
      expect(cell.status).toBe('failed');
      expect(cell.reasons.join(' ')).toMatch(
        /cannot assume arn:aws:iam::333333333333:role\/ImageBuilderReconcilerTarget in account 333333333333: AccessDenied/,
      );
    }
    expect(final.cells.filter((c) => c.accountId !== B).map((c) => c.status)).toStrictEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    // B only receives a launch permission in eu-west-1: no role there is skipped, not failed (RECONCILER_SHARED_ACCOUNTS=tag)
    const shared = cellOf(final, 'eu-west-1', B);
    expect(shared).toMatchObject({ origin: 'shared', status: 'skipped' });
    expect(shared.reasons.join(' ')).toMatch(
      /cannot assume arn:aws:iam::333333333333:role\/ImageBuilderReconcilerTarget .*only receives a launch permission/,
    );
    expect(await tagsOf(box, D, 'eu-west-1', await amiOf(box, arn, D, 'eu-west-1'))).toMatchObject({ Team: 'platform' });
  });

  it('rides out EC2 throttling (RequestLimitExceeded) with retries and rechecks, and converges', async () => {
    const scenario = demoScenario();
    scenario.faults = { throttles: [{ service: 'ec2', account: A, burst: 3, ratePerSecond: 5 }] };
    box = await sandboxes.start({ scenario, wire: true, clockSpeed: SPEED });
    const arn = await startBuild(box, 'throttled');
    const final = await finished(box, arn);

    const throttled = box.server.requests.filter((r) => r.errorCode === 'RequestLimitExceeded' && r.account === A);
    expect(throttled.length).toBeGreaterThan(0);
    expect(final.outcome).toBe('converged');
    // check the result once the throttling is over (the checking client makes a single attempt)
    box.faults.set({});
    expect(await defaultImage(box, A, 'us-east-1', 'web-a')).toBe(await amiOf(box, arn, A, 'us-east-1'));
  });

  it('does no work when EventBridge delivers an event it already handled again, twice', async () => {
    // no sweep tick in between: every AWS call after the redeliveries would be theirs
    box = await sandboxes.start({
      scenario: demoScenario(),
      wire: true,
      clockSpeed: SPEED,
      reconcilerEnvironment: { RECONCILER_SWEEP_MODE: 'off' },
    });
    const arn = await startBuild(box, 'duplicates');
    await finished(box, arn);
    const versionsBefore = box.state.cell(A, 'us-east-1').launchTemplates.get(box.refs.get('lt:web-a') ?? '')?.versions.length;
    const available = box.state.events.find(
      (e) =>
        e.detailType === 'EC2 Image Builder Image State Change' && (e.detail as { state: { status: string } }).state.status === 'AVAILABLE',
    );
    if (available === undefined) throw new Error('no AVAILABLE event');
    const before = box.reports(arn).length;
    const requestsBefore = box.server.requests.length;
    const invocationsBefore = box.wiring?.invocations.length ?? 0;

    box.wiring?.deliver(available);
    box.wiring?.deliver(available);
    await box.idle();

    // both answered from the idempotency record of the first delivery: no report, no AWS call but DynamoDB's
    const answers = (box.wiring?.invocations.slice(invocationsBefore) ?? []).filter((i) => i.function === 'reconcile');
    expect(answers.map((i) => [i.error, (i.result as { status: string }).status])).toStrictEqual([
      [undefined, 'duplicate'],
      [undefined, 'duplicate'],
    ]);
    expect(box.reports(arn).slice(before)).toStrictEqual([]);
    expect(box.server.requests.slice(requestsBefore).filter((r) => r.service !== 'dynamodb')).toStrictEqual([]);
    expect(box.state.cell(A, 'us-east-1').launchTemplates.get(box.refs.get('lt:web-a') ?? '')?.versions.length).toBe(versionsBefore);
  });

  it('converges with no double work when two deliveries of the same event run at the same time', async () => {
    box = await sandboxes.start({ scenario: demoScenario(), wire: true, clockSpeed: SPEED });
    // hold the build's events, then deliver its AVAILABLE event twice at once
    box.faults.merge({
      eventDelays: [{ resourcePrefix: 'arn:aws:imagebuilder:us-east-1:111111111111:image/golden-windows/', seconds: 240 * 3600 }],
    });
    const arn = await startBuild(box, 'concurrent');
    box.clock.advance(2 * 3600_000);
    const available = await waitFor(`the AVAILABLE event of ${arn}`, () =>
      box?.state.events.find((e) => e.resources[0] === arn && (e.detail as { state?: { status: string } }).state?.status === 'AVAILABLE'),
    );
    box.faults.set({});
    box.wiring?.deliver(available);
    box.wiring?.deliver(available);
    const final = await finished(box, arn);

    // the two runs and their rechecks interleave; whichever reports last, the state is converged
    expect(['converged', 'repaired']).toContain(final.outcome);
    let out = '';
    const code = await main(['status', arn, '--json', '--endpoint-url', box.url, '--region', 'us-east-1'], {
      out: (text) => (out += text),
      err: () => undefined,
      isTTY: false,
    });
    expect(code).toBe(0);
    expect((JSON.parse(out) as ReconcileReport).outcome).toBe('converged');
    // the second delivery found the first one's record in progress and did nothing: one run, one recheck chain
    const runs = box.reports(arn).filter((r) => r.trigger === 'eventbridge');
    expect(runs).toHaveLength(1);
    const answers = (box.wiring?.invocations ?? []).filter(
      (i) => i.function === 'reconcile' && (i.event as { id?: string }).id === available.id,
    );
    expect(answers).toHaveLength(2);
    expect(answers.filter((i) => (i.result as { status: string } | undefined)?.status === 'duplicate')).toHaveLength(1);
    expect(new Set(box.reports(arn).map((r) => r.firstSeenAt)).size).toBe(1);
    expect(runs.flatMap((r) => r.actions).filter((a) => a.outcome === 'failed')).toStrictEqual([]);
    // each target template got exactly one new version with this AMI
    for (const [account, region, ref] of [
      [A, 'us-east-1', 'web-a'],
      [D, 'eu-west-1', 'web-d'],
    ] as const) {
      const ami = await amiOf(box, arn, account, region);
      const template = box.state.cell(account, region).launchTemplates.get(box.refs.get(`lt:${ref}`) ?? '');
      expect(template?.versions.filter((v) => v.data.ImageId === ami)).toHaveLength(1);
      expect(await defaultImage(box, account, region, ref)).toBe(ami);
    }
  });

  it('never rolls a launch template, SSM parameter or Fast Launch back when an older build finishes after a newer one', async () => {
    box = await sandboxes.start({ scenario: demoScenario(), wire: true, clockSpeed: SPEED });
    // build 1's events reach the reconciler late (EventBridge delivery is best effort)
    box.faults.merge({
      eventDelays: [{ resourcePrefix: 'arn:aws:imagebuilder:us-east-1:111111111111:image/golden-windows/1.0.0/1', seconds: 48 * 3600 }],
    });
    const old = await startBuild(box, 'old');
    // build 2 starts a simulated minute after build 1, so the two builds' creation times differ too
    const started = box.clock.now();
    await waitFor('a simulated minute to pass', () => (box?.clock.now() ?? 0) >= started + 60_000);
    const newer = await startBuild(box, 'new');
    await finished(box, newer);
    const newerA = await amiOf(box, newer, A, 'eu-west-1');
    const newerD = await amiOf(box, newer, D, 'eu-west-1');
    expect(await defaultImage(box, D, 'eu-west-1', 'web-d')).toBe(newerD);

    box.clock.advance(49 * 3600 * 1000); // now build 1's AVAILABLE arrives
    const late = await finished(box, old);

    expect(late.image.supersededBy).toBe(newer);
    expect(await defaultImage(box, D, 'eu-west-1', 'web-d')).toBe(newerD);
    expect(await defaultImage(box, A, 'us-east-1', 'web-a')).toBe(await amiOf(box, newer, A, 'us-east-1'));
    const param = await clients(box.url, A, 'eu-west-1').ssm.send(new GetParameterCommand({ Name: '/golden/windows/latest' }));
    expect(param.Parameter?.Value).toBe(newerA);
    expect(await fastLaunchState(box, D, 'eu-west-1', await amiOf(box, old, D, 'eu-west-1'))).toBeUndefined();
    const skipped = cellOf(late, 'eu-west-1', D).checks.filter((c) => c.result === 'skipped');
    expect(skipped.map((c) => c.check).sort()).toStrictEqual(['fast-launch', 'launch-template']);
    expect(skipped.every((c) => c.reason.includes(`superseded: newer build ${newer}`))).toBe(true);
    // what is not a rollback is still done: the old copies carry their tags
    expect(await tagsOf(box, D, 'eu-west-1', await amiOf(box, old, D, 'eu-west-1'))).toMatchObject({ Team: 'platform' });
  });
});
