/**
 * Builds are ordered by creation, not by version (issue 25): a team whose recipe 2.0.0 breaks points its
 * pipeline back at recipe 1.0.0 and builds again. With the AWS CLI as the team's client and the reconciler's
 * own command line, that newest build (1.0.0/1) must own every pointer: the owner's and the targets' launch
 * template defaults and the SSM parameters, after the reconcile of each build, a late reconcile of 2.0.0/1,
 * and the sweep.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { SSM_IMAGE_VALIDATION_MS } from '../../sandbox/emulator/services/ssm.ts';
import { main } from '../../src/cli/index.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';
import type { SweepReport } from '../../src/lib/sweep/sweep.ts';
import { demoScenario, sandbox } from '../helpers/sandbox.ts';

const run = promisify(execFile);
const AWS = '/usr/bin/aws';
const OWNER = '111111111111';
const A = '222222222222';
const D = '444444444444';
const PARAMETER = '/golden/windows/latest';

describe.runIf(existsSync(AWS))('a pipeline pointed back at a lower recipe version', () => {
  let box: Sandbox;
  let broken = '';
  let fixed = '';
  const reports: Record<string, ReconcileReport[]> = {};
  let swept: SweepReport | undefined;

  async function aws(account: string, region: string, ...args: string[]): Promise<Record<string, unknown>> {
    const { stdout } = await run(AWS, ['--endpoint-url', box.url, '--region', region, '--output', 'json', ...args], {
      env: {
        PATH: process.env.PATH,
        HOME: '/tmp',
        AWS_ACCESS_KEY_ID: account,
        AWS_SECRET_ACCESS_KEY: 'sandbox',
        AWS_PAGER: '',
        AWS_EC2_METADATA_DISABLED: 'true',
      },
    });
    return stdout.trim() === '' ? {} : (JSON.parse(stdout) as Record<string, unknown>);
  }

  async function reconciler(...args: string[]): Promise<{ code: number; out: string }> {
    let out = '';
    const code = await main([...args, '--json', '--endpoint-url', box.url, '--region', 'us-east-1'], {
      out: (s) => (out += `${s}\n`),
      err: () => undefined,
      isTTY: false,
      columns: 200,
    });
    return { code, out };
  }

  async function reconcile(arn: string): Promise<ReconcileReport> {
    const { code, out } = await reconciler('reconcile', arn);
    expect(code, out).not.toBe(2);
    const report = JSON.parse(out) as ReconcileReport;
    reports[arn] = [...(reports[arn] ?? []), report];
    // SSM validates aws:ec2:image values after PutParameter: let it write them
    box.clock.advance(SSM_IMAGE_VALIDATION_MS);
    return report;
  }

  /** Build the pipeline with the AWS CLI, as the team does, and let simulated time run until it is AVAILABLE. */
  async function build(pipeline: string): Promise<string> {
    const started = await aws(OWNER, 'us-east-1', 'imagebuilder', 'start-image-pipeline-execution', '--image-pipeline-arn', pipeline);
    const arn = String(started.imageBuildVersionArn);
    box.clock.advance(2 * 3600_000);
    const image = (await aws(OWNER, 'us-east-1', 'imagebuilder', 'get-image', '--image-build-version-arn', arn)) as {
      image: { state: { status: string } };
    };
    expect(image.image.state.status).toBe('AVAILABLE');
    return arn;
  }

  async function pointAt(pipeline: string, recipe: string): Promise<void> {
    const got = (await aws(OWNER, 'us-east-1', 'imagebuilder', 'get-image-pipeline', '--image-pipeline-arn', pipeline)) as {
      imagePipeline: { infrastructureConfigurationArn: string; distributionConfigurationArn: string };
    };
    // UpdateImagePipeline replaces the pipeline's settings: the team passes the configurations again
    await aws(
      OWNER,
      'us-east-1',
      'imagebuilder',
      'update-image-pipeline',
      '--image-pipeline-arn',
      pipeline,
      '--image-recipe-arn',
      recipe,
      '--infrastructure-configuration-arn',
      got.imagePipeline.infrastructureConfigurationArn,
      '--distribution-configuration-arn',
      got.imagePipeline.distributionConfigurationArn,
    );
    const now = (await aws(OWNER, 'us-east-1', 'imagebuilder', 'get-image-pipeline', '--image-pipeline-arn', pipeline)) as {
      imagePipeline: { imageRecipeArn: string };
    };
    expect(now.imagePipeline.imageRecipeArn).toBe(recipe);
  }

  /** The AMIs of a build by `account/region`, from one get-image. */
  async function amisOf(arn: string): Promise<(account: string, region: string) => string> {
    const out = (await aws(OWNER, 'us-east-1', 'imagebuilder', 'get-image', '--image-build-version-arn', arn)) as {
      image: { outputResources: { amis: { region: string; accountId: string; image: string }[] } };
    };
    return (account, region) => {
      const ami = out.image.outputResources.amis.find((a) => a.region === region && a.accountId === account)?.image;
      if (ami === undefined) throw new Error(`${arn} has no AMI in ${account}/${region}`);
      return ami;
    };
  }

  async function templateDefault(account: string, region: string, ref: string): Promise<string | undefined> {
    const out = (await aws(
      account,
      region,
      'ec2',
      'describe-launch-template-versions',
      '--launch-template-id',
      box.refs.get(`lt:${ref}`) ?? '',
      '--versions',
      '$Default',
    )) as {
      LaunchTemplateVersions: { LaunchTemplateData: { ImageId?: string } }[];
    };
    return out.LaunchTemplateVersions[0]?.LaunchTemplateData.ImageId;
  }

  async function parameter(account: string, region: string): Promise<string | undefined> {
    return ((await aws(account, region, 'ssm', 'get-parameter', '--name', PARAMETER)) as { Parameter: { Value?: string } }).Parameter.Value;
  }

  /** Every pointer the demo's distribution names, and the AMI of `arn` it must hold. */
  async function pointers(arn: string): Promise<{ have: Record<string, string | undefined>; want: Record<string, string> }> {
    const [amiOf, ownerTemplate, templateA, templateD, ownerParameter, parameterA] = await Promise.all([
      amisOf(arn),
      templateDefault(OWNER, 'us-east-1', 'web-owner'),
      templateDefault(A, 'us-east-1', 'web-a'),
      templateDefault(D, 'eu-west-1', 'web-d'),
      parameter(OWNER, 'us-east-1'),
      parameter(A, 'eu-west-1'),
    ]);
    return {
      have: {
        'owner template': ownerTemplate,
        'target template A/us-east-1': templateA,
        'target template D/eu-west-1': templateD,
        'owner parameter': ownerParameter,
        'target parameter A/eu-west-1': parameterA,
      },
      want: {
        'owner template': amiOf(OWNER, 'us-east-1'),
        'target template A/us-east-1': amiOf(A, 'us-east-1'),
        'target template D/eu-west-1': amiOf(D, 'eu-west-1'),
        'owner parameter': amiOf(OWNER, 'us-east-1'),
        'target parameter A/eu-west-1': amiOf(A, 'eu-west-1'),
      },
    };
  }

  beforeAll(async () => {
    box = await sandbox({ scenario: demoScenario() });
    const pipeline = box.refs.get('pipeline:golden-windows') ?? '';
    const first = box.refs.get('recipe:golden-windows') ?? '';
    const recipe = (await aws(OWNER, 'us-east-1', 'imagebuilder', 'get-image-recipe', '--image-recipe-arn', first)) as {
      imageRecipe: { parentImage: string; components: { componentArn: string }[] };
    };
    const created = await aws(
      OWNER,
      'us-east-1',
      'imagebuilder',
      'create-image-recipe',
      '--name',
      'golden-windows',
      '--semantic-version',
      '2.0.0',
      '--parent-image',
      recipe.imageRecipe.parentImage,
      '--components',
      `componentArn=${recipe.imageRecipe.components[0]?.componentArn ?? ''}`,
    );
    const second = String(created.imageRecipeArn);

    // 2.0.0 is built and reconciled: then found broken
    await pointAt(pipeline, second);
    broken = await build(pipeline);
    await reconcile(broken);
    // the team points the pipeline back at 1.0.0 and builds again: Image Builder sets the owner's default
    await pointAt(pipeline, first);
    box.clock.advance(60_000);
    fixed = await build(pipeline);
    await reconcile(fixed);
    // a late reconcile of the broken build (a delayed event, a recheck), then the sweep
    await reconcile(broken);
    const { out } = await reconciler('sweep');
    swept = JSON.parse(out) as SweepReport;
    box.clock.advance(SSM_IMAGE_VALIDATION_MS);
  }, 120_000);
  afterAll(async () => box.stop());

  it('is a build with a lower version and a later dateCreated', async () => {
    expect(broken).toMatch(/\/golden-windows\/2\.0\.0\/1$/);
    expect(fixed).toMatch(/\/golden-windows\/1\.0\.0\/1$/);
    const created = async (arn: string) =>
      Date.parse(
        String(
          (
            (await aws(OWNER, 'us-east-1', 'imagebuilder', 'get-image', '--image-build-version-arn', arn)) as {
              image: { dateCreated: string };
            }
          ).image.dateCreated,
        ),
      );
    expect(await created(fixed)).toBeGreaterThan(await created(broken));
  });

  it('the newest build by time writes every target pointer; the older one is superseded by it', () => {
    const [first] = reports[fixed] ?? [];
    expect(first?.image.supersededBy).toBeNull();
    const writes = first?.actions.filter((a) => a.kind === 'update-launch-template' || a.kind === 'put-parameter') ?? [];
    expect(writes.length).toBeGreaterThan(0);
    expect(writes.filter((a) => a.outcome !== 'applied')).toStrictEqual([]);
    const late = reports[broken]?.[1];
    expect(late?.image.supersededBy).toBe(fixed);
    expect(
      late?.actions.filter((a) => a.kind === 'update-launch-template' || a.kind === 'put-parameter').filter((a) => a.outcome === 'applied'),
    ).toStrictEqual([]);
  });

  it('the sweep reconciles the newest build by time, not the highest version', () => {
    expect(swept?.pipelines.map((p) => p.imageBuildVersionArn)).toStrictEqual([fixed]);
    expect(
      swept?.reports[0]?.actions.filter(
        (a) => a.outcome === 'applied' && (a.kind === 'update-launch-template' || a.kind === 'put-parameter'),
      ),
    ).toStrictEqual([]);
  });

  it('every pointer stays on the newest build by time', async () => {
    const { have, want } = await pointers(fixed);
    expect(have).toStrictEqual(want);
  });
});
