/**
 * The distribution gate end to end (docs/gate.md): the gate installed on the demo's pipeline with the CLI,
 * the build started and watched with the AWS CLI as the user's client (the SDK where the AWS CLI is absent;
 * Debian's awscli 2.9 has no workflow commands, so the gate is installed with `imagebuilder-reconciler gate
 * install`), Image Builder's waiting steps answered by the reconciler's gate function through the rules and
 * queues of serverless.yml.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
import {
  GetImageCommand,
  type Image,
  ListWorkflowStepExecutionsCommand,
  StartImagePipelineExecutionCommand,
} from '@aws-sdk/client-imagebuilder';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import type { PublishedEvent } from '../../sandbox/emulator/state.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';
import { buildBundles } from '../helpers/build.ts';
import { cli } from '../helpers/cli.ts';
import { schemaErrors, validateReconcileReport } from '../helpers/schema.ts';
import { clients, demoScenario, finished, useSandbox } from '../helpers/sandbox.ts';
import { waitFor } from '../helpers/wait.ts';

const run = promisify(execFile);
const AWS = '/usr/bin/aws';
const OWNER = '111111111111';
const A = '222222222222';
const SPEED = 3000;

/** The user's client: the AWS CLI when installed, else the SDK (the same calls). */
function userClient(box: Sandbox) {
  const viaCli = existsSync(AWS);
  async function aws(account: string, region: string, ...args: string[]): Promise<Record<string, unknown>> {
    const { stdout } = await run(AWS, ['--endpoint-url', box.url, '--region', region, '--output', 'json', ...args], {
      env: {
        PATH: process.env.PATH,
        HOME: tmpdir(),
        AWS_ACCESS_KEY_ID: account,
        AWS_SECRET_ACCESS_KEY: 'sandbox',
        AWS_PAGER: '',
        AWS_EC2_METADATA_DISABLED: 'true',
      },
    });
    return JSON.parse(stdout) as Record<string, unknown>;
  }
  return {
    async start(pipelineArn: string): Promise<string> {
      if (viaCli) {
        const out = await aws(OWNER, 'us-east-1', 'imagebuilder', 'start-image-pipeline-execution', '--image-pipeline-arn', pipelineArn);
        return String(out.imageBuildVersionArn);
      }
      const out = await clients(box.url, OWNER).imagebuilder.send(
        new StartImagePipelineExecutionCommand({ imagePipelineArn: pipelineArn }),
      );
      return out.imageBuildVersionArn ?? '';
    },
    async image(arn: string): Promise<Image> {
      if (viaCli) return (await aws(OWNER, 'us-east-1', 'imagebuilder', 'get-image', '--image-build-version-arn', arn)).image as Image;
      return (await clients(box.url, OWNER).imagebuilder.send(new GetImageCommand({ imageBuildVersionArn: arn }))).image ?? {};
    },
    /** The AMIs of the account in the region that are copies of the build (by the name Image Builder gave them). */
    async copies(account: string, region: string, name: string): Promise<number> {
      const images = viaCli
        ? ((await aws(account, region, 'ec2', 'describe-images', '--owners', 'self')).Images as { Name?: string }[])
        : ((await clients(box.url, account, region).ec2.send(new DescribeImagesCommand({ Owners: ['self'] }))).Images ?? []);
      return images.filter((i) => i.Name === name).length;
    },
  };
}

async function install(box: Sandbox, ...stages: string[]): Promise<void> {
  const { code, out, err } = await cli([
    'gate',
    'install',
    '--pipeline',
    box.refs.get('pipeline:golden-windows') ?? '',
    '--execution-role',
    `arn:aws:iam::${OWNER}:role/ImageBuilderWorkflows`,
    ...stages.flatMap((s) => ['--stage', s]),
    '--endpoint-url',
    box.url,
    '--region',
    'us-east-1',
  ]);
  expect(code, `${out}${err}`).toBe(0);
  expect(out).toMatch(
    /gate installed: arn:aws:imagebuilder:us-east-1:111111111111:workflow\/distribution\/imagebuilder-reconciler-gate\/1\.0\.0\/1 \(2 stage\(s\)\)/,
  );
}

function gateReports(box: Sandbox, arn: string, step: string): ReconcileReport[] {
  return box.reports(arn).filter((r) => r.gate?.stepName === step);
}

describe('the distribution gate end to end', () => {
  const sandboxes = useSandbox('each');
  beforeAll(() => buildBundles(), 120_000);

  it('holds the build in DISTRIBUTING until every cell of the first stage converged, then releases it', async () => {
    const box = await sandboxes.start({ scenario: demoScenario(), wire: true, clockSpeed: SPEED });
    const user = userClient(box);
    const endpoint = ['--endpoint-url', box.url, '--region', 'us-east-1', '--json'];
    const lintPipeline = async () => {
      const run = await cli(['lint', box.refs.get('pipeline:golden-windows') ?? '', ...endpoint]);
      return { code: run.code, rules: (JSON.parse(run.out) as { findings: { rule: string }[] }).findings.map((f) => f.rule) };
    };
    // lint sees the pipeline is not gated, then that it is
    expect(await lintPipeline()).toStrictEqual({ code: 0, rules: ['ungated-pipeline'] });
    await install(box, 'us-east-1');
    expect(await lintPipeline()).toStrictEqual({ code: 0, rules: [] });
    const atGate: { regions: string[]; status: string }[] = [];
    box.onEvent = (event: PublishedEvent) => {
      if (event.detailType !== 'EC2 Image Builder Workflow Step Waiting') return;
      const image = box.state.cell(OWNER, 'us-east-1').imagebuilder.images.get(event.resources[0] ?? '');
      atGate.push({
        regions: [...new Set((image?.outputResources?.amis ?? []).map((a) => a.region ?? ''))].sort(),
        status: image?.state?.status ?? '',
      });
    };
    const arn = await user.start(box.refs.get('pipeline:golden-windows') ?? '');
    const image = await waitFor(
      `${arn} to end`,
      async () => {
        const found = await user.image(arn);
        return ['AVAILABLE', 'FAILED'].includes(found.state?.status ?? '') ? found : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    expect(image.state).toStrictEqual({ status: 'AVAILABLE' });

    // when the first gate waited, only stage 1 (us-east-1) had copies, and the image was DISTRIBUTING
    expect(atGate[0]).toStrictEqual({ regions: ['us-east-1'], status: 'DISTRIBUTING' });
    const first = gateReports(box, arn, 'ReconcilerGate1');
    const resumed = first.find((r) => r.gate?.answer === 'RESUME');
    expect(resumed, JSON.stringify(first.map((r) => r.gate))).toBeDefined();
    if (resumed === undefined) return;
    expect(schemaErrors(validateReconcileReport, resumed)).toStrictEqual([]);
    expect(resumed.image.status).toBe('DISTRIBUTING');
    // the stage's cells, all converged (the gate repaired what Image Builder left: tags, templates, Fast Launch)
    expect(new Set(resumed.cells.map((c) => c.region))).toStrictEqual(new Set(['us-east-1']));
    expect(resumed.cells.map((c) => c.status).every((s) => s === 'ok' || s === 'repaired')).toBe(true);
    // earlier runs of the same gate waited (pending cells, rechecked through the queue), answering nothing
    for (const r of first.filter((x) => x !== resumed)) expect(r.gate?.answer).toBeNull();
    expect(gateReports(box, arn, 'ReconcilerGate2').some((r) => r.gate?.answer === 'RESUME')).toBe(true);

    // stage 2 began only after the first gate was answered
    const waiting = box.state.cell(OWNER, 'us-east-1').imagebuilder.images.get(arn);
    const executionId = resumed.gate?.workflowExecutionId ?? '';
    const steps = await clients(box.url, OWNER).imagebuilder.send(
      new ListWorkflowStepExecutionsCommand({ workflowExecutionId: executionId }),
    );
    const gate1 = steps.steps?.find((s) => s.name === 'ReconcilerGate1');
    const stage2 = steps.steps?.find((s) => s.name === 'DistributeStage2');
    expect(Date.parse(stage2?.startTime ?? '')).toBeGreaterThanOrEqual(Date.parse(gate1?.endTime ?? ''));
    expect(steps.steps?.every((s) => s.status === 'COMPLETED')).toBe(true);
    expect(await user.copies(A, 'eu-west-1', waiting?.outputResources?.amis?.[0]?.name ?? '')).toBe(1);

    // AVAILABLE, the reconciler's own run finds nothing left to do in the gated cells
    const final = await finished(box, arn, 60_000);
    expect(final.outcome).toMatch(/converged|repaired/);
  });

  it("stops the build with the failed cell's reason when a cell of the first stage cannot converge; later stages get no copies", async () => {
    const scenario = demoScenario();
    scenario.removedRoles = [A];
    const box = await sandboxes.start({ scenario, wire: true, clockSpeed: SPEED });
    const user = userClient(box);
    await install(box, 'us-east-1');
    const arn = await user.start(box.refs.get('pipeline:golden-windows') ?? '');
    const image = await waitFor(
      `${arn} to end`,
      async () => {
        const found = await user.image(arn);
        return ['AVAILABLE', 'FAILED'].includes(found.state?.status ?? '') ? found : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    expect(image.state?.status).toBe('FAILED');
    expect(image.state?.reason).toMatch(/ReconcilerGate1/);
    expect(image.state?.reason).toMatch(
      /222222222222\/us-east-1: .*cannot assume arn:aws:iam::222222222222:role\/ImageBuilderReconcilerTarget/,
    );

    const stopped = gateReports(box, arn, 'ReconcilerGate1').find((r) => r.gate?.answer === 'STOP');
    expect(stopped?.gate?.reason).toMatch(/^1 of \d+ cell\(s\) failed: 222222222222\/us-east-1/);
    // no copy of this build beyond stage 1, in any account
    const name = image.outputResources?.amis?.[0]?.name ?? '';
    for (const [account, region] of [
      [A, 'eu-west-1'],
      ['444444444444', 'eu-west-1'],
      ['333333333333', 'ap-southeast-2'],
    ] as const)
      expect(await user.copies(account, region, name), `${account}/${region}`).toBe(0);
    expect(image.outputResources?.amis?.every((a) => a.region === 'us-east-1')).toBe(true);
  });
});
