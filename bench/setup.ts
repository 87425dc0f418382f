import {
  GetDistributionConfigurationCommand,
  GetImageCommand,
  ImagebuilderClient,
  StartImagePipelineExecutionCommand,
  UpdateDistributionConfigurationCommand,
} from '@aws-sdk/client-imagebuilder';
import { type Sandbox, startSandbox } from '../sandbox/harness/index.ts';
import { type OrgScenario, type OrgShape, orgScenario } from './scenario.ts';

/** An organization in the sandbox, ready to reconcile: the second build of the image, and its configuration. */
interface Org {
  box: Sandbox;
  org: OrgScenario;
  /** The build to reconcile (made after the removed regions left the configuration). */
  imageArn: string;
  /** The earlier build, which still reached the removed regions. */
  previousArn: string;
  distributionArn: string;
}

/** Run a build to its end on simulated time (distribution, AMI copies, integration). */
async function build(box: Sandbox, client: ImagebuilderClient, pipelineArn: string, token: string): Promise<string> {
  const out = await client.send(new StartImagePipelineExecutionCommand({ imagePipelineArn: pipelineArn, clientToken: token }));
  const arn = out.imageBuildVersionArn ?? '';
  for (let hour = 0; hour < 12; hour += 1) {
    box.clock.advance(3_600_000);
    const image = (await client.send(new GetImageCommand({ imageBuildVersionArn: arn }))).image;
    if (image?.state?.status === 'AVAILABLE') return arn;
    if (image?.state?.status === 'FAILED') throw new Error(`bench setup: build ${arn} failed: ${image.state.reason ?? ''}`);
  }
  throw new Error(`bench setup: build ${arn} did not finish in 12 simulated hours`);
}

/**
 * Start a sandbox holding the organization: build once with every region, drop the removed regions from
 * the distribution configuration, build again.
 */
async function prepareOrg(shape: OrgShape): Promise<Org> {
  const org = orgScenario(shape);
  // real-time speed: injected latency is real milliseconds; the bench advances simulated time by hand
  const box = await startSandbox({ port: 0, wire: false, scenario: org.scenario, clockSpeed: 1 });
  const client = new ImagebuilderClient({
    endpoint: box.url,
    region: box.home.region,
    credentials: { accessKeyId: org.owner, secretAccessKey: 'sandbox' },
    // a large organization's build keeps the sandbox busy for seconds at a time (its distribution runs in one
    // advance of the clock), past its keep-alive timeout: a reused connection may then be reset, and is retried
    maxAttempts: 3,
  });
  try {
    const pipelineArn = box.refs.get(`pipeline:${org.pipelineName}`) ?? '';
    const distributionArn = box.refs.get(`distribution:${org.distributionName}`) ?? '';
    const previousArn = await build(box, client, pipelineArn, 'bench-previous');
    // the previous build is eight days old when its region is removed (past cleanup's minimum age of 7 days)
    box.clock.advance(8 * 86_400_000);
    const configuration = (await client.send(new GetDistributionConfigurationCommand({ distributionConfigurationArn: distributionArn })))
      .distributionConfiguration;
    const kept = (configuration?.distributions ?? []).filter((d) => d.region !== undefined && org.current.includes(d.region));
    await client.send(
      new UpdateDistributionConfigurationCommand({
        distributionConfigurationArn: distributionArn,
        distributions: kept,
        clientToken: 'bench-update',
      }),
    );
    const imageArn = await build(box, client, pipelineArn, 'bench-current');
    return { box, org, imageArn, previousArn, distributionArn };
  } catch (error: unknown) {
    await box.stop();
    throw error;
  } finally {
    client.destroy();
  }
}

export { prepareOrg };
export type { Org };
