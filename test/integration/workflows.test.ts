/**
 * Image Builder's distribution workflows in the sandbox (docs/gate.md): CreateWorkflow of type DISTRIBUTION,
 * a pipeline's build running it step by step, a WaitForAction step pausing the build in DISTRIBUTING with its
 * `EC2 Image Builder Workflow Step Waiting` event, and SendWorkflowStepAction's answers and refusals.
 */
import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
import {
  CreateDistributionConfigurationCommand,
  CreateWorkflowCommand,
  DistributeImageCommand,
  GetImageCommand,
  GetImagePipelineCommand,
  GetWorkflowStepExecutionCommand,
  ListWaitingWorkflowStepsCommand,
  ListWorkflowStepExecutionsCommand,
  SendWorkflowStepActionCommand,
  UpdateImagePipelineCommand,
} from '@aws-sdk/client-imagebuilder';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import type { PublishedEvent } from '../../sandbox/emulator/state.ts';
import { gateDocument, parseStage } from '../../src/lib/gate/workflow.ts';
import { clients, demoScenario, startBuild, useSandbox } from '../helpers/sandbox.ts';
import { waitFor } from '../helpers/wait.ts';

const OWNER = '111111111111';

describe('sandbox distribution workflows', () => {
  let box: Sandbox;
  let ib: ReturnType<typeof clients>['imagebuilder'];
  const events: PublishedEvent[] = [];
  let released = '';
  let stopped = '';
  const sandboxes = useSandbox('all');

  beforeAll(async () => {
    box = await sandboxes.start({ scenario: demoScenario(), wire: false, clockSpeed: 600 });
    box.onEvent = (event) => {
      events.push(event);
    };
    ib = clients(box.url, OWNER).imagebuilder;
    const pipelineArn = box.refs.get('pipeline:golden-windows') ?? '';
    const pipeline = (await ib.send(new GetImagePipelineCommand({ imagePipelineArn: pipelineArn }))).imagePipeline;
    const config = box.state.cell(OWNER, 'us-east-1').imagebuilder.distributions.get(pipeline?.distributionConfigurationArn ?? '');
    const data = gateDocument({
      stages: [parseStage('us-east-1')],
      distributions: config?.distributions,
      ownerAccountId: OWNER,
      timeoutSeconds: 3600,
    });
    const created = await ib.send(
      new CreateWorkflowCommand({ name: 'gate', semanticVersion: '1.0.0', type: 'DISTRIBUTION', data, clientToken: 'gate-1' }),
    );
    await ib.send(
      new UpdateImagePipelineCommand({
        imagePipelineArn: pipelineArn,
        imageRecipeArn: pipeline?.imageRecipeArn,
        infrastructureConfigurationArn: pipeline?.infrastructureConfigurationArn,
        distributionConfigurationArn: pipeline?.distributionConfigurationArn,
        workflows: [{ workflowArn: created.workflowBuildVersionArn }],
        executionRole: `arn:aws:iam::${OWNER}:role/ImageBuilderWorkflows`,
      }),
    );
  });

  async function waitingStep(arn: string) {
    return waitFor(`a waiting step of ${arn}`, async () => {
      const out = await ib.send(new ListWaitingWorkflowStepsCommand({}));
      return out.steps?.find((s) => s.imageBuildVersionArn === arn);
    });
  }

  async function copiesIn(region: string, account: string, arn: string): Promise<number> {
    const out = await clients(box.url, account, region).ec2.send(new DescribeImagesCommand({ Owners: ['self'] }));
    const name = (await ib.send(new GetImageCommand({ imageBuildVersionArn: arn }))).image?.outputResources?.amis?.[0]?.name;
    return (out.Images ?? []).filter((i) => i.Name === name).length;
  }

  it('refuses a workflow document it cannot run, and a request the model forbids', async () => {
    await expect(
      ib.send(
        new CreateWorkflowCommand({ name: 'bad', semanticVersion: '1.0.0', type: 'DISTRIBUTION', data: 'steps: []', clientToken: 'b1' }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidRequestException' });
    const launch = 'schemaVersion: 1.0\nsteps:\n  - name: Launch\n    action: ExecuteComponents\n';
    await expect(
      ib.send(new CreateWorkflowCommand({ name: 'bad', semanticVersion: '1.0.0', type: 'DISTRIBUTION', data: launch, clientToken: 'b2' })),
    ).rejects.toThrow(/not one this sandbox runs in a distribution workflow/);
    const tooLong = 'schemaVersion: 1.0\nsteps:\n  - name: Wait\n    action: WaitForAction\n    timeoutSeconds: 604801\n';
    await expect(
      ib.send(new CreateWorkflowCommand({ name: 'bad', semanticVersion: '1.0.0', type: 'DISTRIBUTION', data: tooLong, clientToken: 'b3' })),
    ).rejects.toThrow(/timeoutSeconds must be an integer from 1 to 604800/);
    await expect(
      ib.send(new CreateWorkflowCommand({ name: 'bad', semanticVersion: '1.0', type: 'DISTRIBUTION', data: launch, clientToken: 'b4' })),
    ).rejects.toMatchObject({ name: 'ValidationException' });
  });

  it('pauses the build in DISTRIBUTING at the gate, with the documented event, until RESUME', async () => {
    const arn = await startBuild(box, 'wf-resume');
    const step = await waitingStep(arn);
    expect(step.name).toBe('ReconcilerGate1');
    expect((await ib.send(new GetImageCommand({ imageBuildVersionArn: arn }))).image?.state?.status).toBe('DISTRIBUTING');
    const event = events.find((e) => e.detailType === 'EC2 Image Builder Workflow Step Waiting');
    expect(event).toMatchObject({
      source: 'aws.imagebuilder',
      account: OWNER,
      region: 'us-east-1',
      resources: [arn, expect.stringMatching(/:workflow\/distribution\/gate\/1\.0\.0\/1$/)],
      detail: {
        'workflow-execution-id': step.workflowExecutionId,
        'workflow-step-execution-id': step.stepExecutionId,
        'workflow-step-name': 'ReconcilerGate1',
      },
    });
    // stage 1 distributed us-east-1 only: nothing in eu-west-1 yet
    const steps = await ib.send(new ListWorkflowStepExecutionsCommand({ workflowExecutionId: step.workflowExecutionId }));
    expect(steps.steps?.map((s) => [s.name, s.status])).toEqual([
      ['DistributeStage1', 'COMPLETED'],
      ['ShareStage1', 'COMPLETED'],
      ['ConfigureStage1', 'COMPLETED'],
      ['ReconcilerGate1', 'RUNNING'],
      ['DistributeStage2', 'PENDING'],
      ['ShareStage2', 'PENDING'],
      ['ConfigureStage2', 'PENDING'],
      ['ReconcilerGate2', 'PENDING'],
    ]);
    const outputs = JSON.parse(steps.steps?.[0]?.outputs ?? '{}') as { distributedImages: { region: string; accountId: string }[] };
    expect(outputs.distributedImages.map((d) => `${d.accountId}/${d.region}`).sort()).toEqual([
      '111111111111/us-east-1',
      '222222222222/us-east-1',
      '333333333333/us-east-1',
    ]);
    expect(await copiesIn('eu-west-1', '222222222222', arn)).toBe(0);

    // refusals: the model's pattern, an unknown step, another image's ARN
    await expect(
      ib.send(new SendWorkflowStepActionCommand({ stepExecutionId: 'step-1', imageBuildVersionArn: arn, action: 'RESUME' })),
    ).rejects.toMatchObject({ name: 'ValidationException' });
    await expect(
      ib.send(
        new SendWorkflowStepActionCommand({
          stepExecutionId: 'step-00000000-0000-0000-0000-000000000000',
          imageBuildVersionArn: arn,
          action: 'RESUME',
        }),
      ),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    await expect(
      ib.send(
        new SendWorkflowStepActionCommand({
          stepExecutionId: step.stepExecutionId,
          imageBuildVersionArn: arn.replace(/\/\d+$/, '/99'),
          action: 'RESUME',
        }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidRequestException' });

    const answer = { stepExecutionId: step.stepExecutionId, imageBuildVersionArn: arn, action: 'RESUME' as const, clientToken: 'go-1' };
    const first = await ib.send(new SendWorkflowStepActionCommand(answer));
    expect(first.stepExecutionId).toBe(step.stepExecutionId);
    // the same token: the original answer, nothing run again; a new token: the step no longer waits
    expect((await ib.send(new SendWorkflowStepActionCommand(answer))).stepExecutionId).toBe(step.stepExecutionId);
    await expect(ib.send(new SendWorkflowStepActionCommand({ ...answer, clientToken: 'go-2' }))).rejects.toMatchObject({
      name: 'InvalidRequestException',
    });
    const resumed = await ib.send(new GetWorkflowStepExecutionCommand({ stepExecutionId: step.stepExecutionId }));
    expect(resumed).toMatchObject({ status: 'COMPLETED', action: 'WaitForAction', outputs: JSON.stringify({ action: 'RESUME' }) });

    // stage 2 waits in turn; answered, the build becomes AVAILABLE with every region's copies
    const second = await waitFor('the second gate', async () => {
      const out = await ib.send(new ListWaitingWorkflowStepsCommand({}));
      return out.steps?.find((s) => s.imageBuildVersionArn === arn && s.name === 'ReconcilerGate2');
    });
    await ib.send(
      new SendWorkflowStepActionCommand({ stepExecutionId: second.stepExecutionId, imageBuildVersionArn: arn, action: 'RESUME' }),
    );
    await waitFor(`${arn} AVAILABLE`, async () => {
      const image = await ib.send(new GetImageCommand({ imageBuildVersionArn: arn }));
      return image.image?.state?.status === 'AVAILABLE';
    });
    expect(await copiesIn('eu-west-1', '222222222222', arn)).toBe(1);
    released = arn;
  });

  it('fails the build with the STOP reason, and later stages never copy', async () => {
    const arn = await startBuild(box, 'wf-stop');
    const step = await waitingStep(arn);
    await ib.send(
      new SendWorkflowStepActionCommand({
        stepExecutionId: step.stepExecutionId,
        imageBuildVersionArn: arn,
        action: 'STOP',
        reason: '222222222222/us-east-1: launch template lt-1 not updated',
      }),
    );
    const image = await waitFor(`${arn} FAILED`, async () => {
      const out = await ib.send(new GetImageCommand({ imageBuildVersionArn: arn }));
      return out.image?.state?.status === 'FAILED' ? out.image : undefined;
    });
    expect(image.state?.reason).toContain('222222222222/us-east-1: launch template lt-1 not updated');
    const steps = await ib.send(new ListWorkflowStepExecutionsCommand({ workflowExecutionId: step.workflowExecutionId }));
    expect(steps.steps?.slice(3).map((s) => s.status)).toEqual(['FAILED', 'CANCELLED', 'CANCELLED', 'CANCELLED', 'CANCELLED']);
    expect(await copiesIn('eu-west-1', '222222222222', arn)).toBe(0);
    stopped = arn;
  });

  it('DistributeImage copies an AVAILABLE build to the cells of a configuration that have none, once', async () => {
    const config = await ib.send(
      new CreateDistributionConfigurationCommand({
        name: 'added-cells',
        distributions: [{ region: 'eu-west-1', amiDistributionConfiguration: { targetAccountIds: ['333333333333', '222222222222'] } }],
        clientToken: 'added',
      }),
    );
    const configArn = config.distributionConfigurationArn ?? '';
    const role = `arn:aws:iam::${OWNER}:role/ImageBuilderDistribution`;
    await expect(
      ib.send(
        new DistributeImageCommand({ sourceImage: 'ami-0123456789abcdef0', distributionConfigurationArn: configArn, executionRole: role }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidRequestException' });
    await expect(
      ib.send(
        new DistributeImageCommand({ sourceImage: released, distributionConfigurationArn: `${configArn}-gone`, executionRole: role }),
      ),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    await expect(
      ib.send(new DistributeImageCommand({ sourceImage: stopped, distributionConfigurationArn: configArn, executionRole: role })),
    ).rejects.toMatchObject({ name: 'ResourceInUseException' });
    await expect(
      ib.send(new DistributeImageCommand({ sourceImage: released, distributionConfigurationArn: configArn, executionRole: 'not a role!' })),
    ).rejects.toMatchObject({ name: 'ValidationException' });

    expect(await copiesIn('eu-west-1', '333333333333', released)).toBe(0);
    const request = { sourceImage: released, distributionConfigurationArn: configArn, executionRole: role, clientToken: 'backfill-1' };
    expect((await ib.send(new DistributeImageCommand(request))).imageBuildVersionArn).toBe(released);
    await expect(ib.send(new DistributeImageCommand({ ...request, executionRole: `${role}2` }))).rejects.toMatchObject({
      name: 'IdempotentParameterMismatchException',
    });
    // again, and with another token: the copies that exist are not made twice
    await ib.send(new DistributeImageCommand(request));
    await ib.send(new DistributeImageCommand({ ...request, clientToken: 'backfill-2' }));
    // the configuration names no AMI name: the new copy is named as Image Builder names one without a pattern
    const image = (await ib.send(new GetImageCommand({ imageBuildVersionArn: released }))).image;
    const added = image?.outputResources?.amis?.filter((a) => a.region === 'eu-west-1' && a.accountId === '333333333333') ?? [];
    expect(added).toHaveLength(1);
    const seen = await clients(box.url, '333333333333', 'eu-west-1').ec2.send(
      new DescribeImagesCommand({ ImageIds: [added[0]?.image ?? ''] }),
    );
    expect(seen.Images?.[0]?.OwnerId).toBe('333333333333');
    // 222222222222 had its copy from the build: not copied again
    expect(image?.outputResources?.amis?.filter((a) => a.region === 'eu-west-1' && a.accountId === '222222222222')).toHaveLength(1);
    expect(await copiesIn('eu-west-1', '222222222222', released)).toBe(1);
  });
});
