/**
 * End to end on the wired sandbox: SSM validates `aws:ec2:image` values after PutParameter has answered 200,
 * and writes only valid ones. The reconciler counts such a put as pending until the recheck reads the value.
 */
import { randomUUID } from 'node:crypto';
import { DeleteParameterCommand, GetParameterCommand } from '@aws-sdk/client-ssm';
import { GetImageCommand, StartImagePipelineExecutionCommand } from '@aws-sdk/client-imagebuilder';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';
import { buildBundles } from '../helpers/build.ts';
import { clients, demoScenario, useSandbox } from '../helpers/sandbox.ts';

const OWNER = '111111111111';
const A = '222222222222';
const NAME = '/golden/windows/latest';
const SPEED = 3000;

async function parameter(box: Sandbox): Promise<string | undefined> {
  try {
    return (await clients(box.url, A, 'eu-west-1').ssm.send(new GetParameterCommand({ Name: NAME }))).Parameter?.Value;
  } catch (error: unknown) {
    if (error instanceof Error && error.name === 'ParameterNotFound') return undefined;
    throw error;
  }
}

function cellA(report: ReconcileReport | undefined) {
  return report?.cells.find((c) => c.region === 'eu-west-1' && c.accountId === A);
}

/** Build once and let it converge. */
async function build(box: Sandbox): Promise<string> {
  const owner = clients(box.url, OWNER).imagebuilder;
  const arn =
    (
      await owner.send(
        new StartImagePipelineExecutionCommand({ imagePipelineArn: box.refs.get('pipeline:golden-windows'), clientToken: 'ssm' }),
      )
    ).imageBuildVersionArn ?? '';
  expect((await box.finalReport(arn, 30_000))?.outcome).toBe('converged');
  await box.idle();
  return arn;
}

/** Remove A's eu-west-1 parameter (drift) and deliver the build's AVAILABLE event again. */
async function loseParameter(box: Sandbox, arn: string): Promise<{ ami: string; before: number }> {
  const owner = clients(box.url, OWNER).imagebuilder;
  const image = await owner.send(new GetImageCommand({ imageBuildVersionArn: arn }));
  const ami = image.image?.outputResources?.amis?.find((a) => a.accountId === A && a.region === 'eu-west-1')?.image ?? '';
  await clients(box.url, A, 'eu-west-1').ssm.send(new DeleteParameterCommand({ Name: NAME }));
  const available = box.state.events.find(
    (e) => e.resources[0] === arn && (e.detail as { state?: { status: string } }).state?.status === 'AVAILABLE',
  );
  if (available === undefined) throw new Error('no AVAILABLE event');
  const before = box.reports(arn).length;
  // a new event (its own id): a second delivery of the same event would be answered from its idempotency record
  box.wiring?.deliver({ ...available, id: randomUUID() });
  return { ami, before };
}

describe('aws:ec2:image parameters end to end', () => {
  const sandboxes = useSandbox();
  // one build serves both tests (they run in order): each makes the parameter drift and reconciles again
  let box: Sandbox;
  let arn: string;

  beforeAll(async () => {
    await buildBundles();
    box = await sandboxes.start({ scenario: demoScenario(), wire: true, clockSpeed: SPEED });
    arn = await build(box);
  }, 120_000);

  it('leaves the cell pending after the put, and confirms the parameter on the recheck', async () => {
    const { ami, before } = await loseParameter(box, arn);
    const final = await box.finalReport(arn, 30_000, before);
    await box.idle();

    const runs = box.reports(arn).slice(before);
    const first = runs[0];
    expect(first?.actions.find((a) => a.kind === 'put-parameter')).toMatchObject({ outcome: 'applied', accountId: A, region: 'eu-west-1' });
    expect(cellA(first)?.status).toBe('pending');
    expect(cellA(first)?.reasons.join('\n')).toMatch(
      /ssm-parameter \/golden\/windows\/latest: pending: .*SSM validates aws:ec2:image values after the call/,
    );
    expect(first?.next).toMatchObject({ recheck: true });
    expect(final?.outcome).toBe('converged');
    expect(cellA(final)?.checks.find((c) => c.check === 'ssm-parameter')).toMatchObject({ result: 'ok', reason: `holds ${ami}` });
    expect(await parameter(box)).toBe(ami);
  });

  it('never reports repaired when SSM rejects the value: the cell ends failed with the reason', async () => {
    box.faults.merge({ ssmImageValidationFailures: [`${A}/eu-west-1`] });
    const { before } = await loseParameter(box, arn);
    const final = await box.finalReport(arn, 30_000, before);
    await box.idle();

    const runs = box.reports(arn).slice(before);
    expect(runs.length).toBeGreaterThan(1);
    expect(runs.map((r) => cellA(r)?.status).filter((s) => s === 'repaired' || s === 'ok')).toStrictEqual([]);
    expect(final?.outcome).toBe('failed');
    const reasons = cellA(final)?.reasons.join('\n') ?? '';
    expect(reasons).toMatch(/ssm-parameter \/golden\/windows\/latest: pending: .*aws:ec2:image/);
    expect(reasons).toMatch(/gave up: still pending after \d+ attempt/);
    expect(await parameter(box)).toBeUndefined();
  });
});
