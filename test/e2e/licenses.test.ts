/**
 * End to end on the wired sandbox: the license configurations a distribution names are checked on each
 * cell's AMI through License Manager. Image Builder associates them with the owner's AMI only; a copy that
 * lacks them is repaired where License Manager allows it, and fails with the missing ARN where it does not.
 */
import { randomUUID } from 'node:crypto';
import {
  GetDistributionConfigurationCommand,
  StartImagePipelineExecutionCommand,
  UpdateDistributionConfigurationCommand,
} from '@aws-sdk/client-imagebuilder';
import {
  CreateLicenseConfigurationCommand,
  LicenseManagerClient,
  ListLicenseSpecificationsForResourceCommand,
  UpdateLicenseSpecificationsForResourceCommand,
} from '@aws-sdk/client-license-manager';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';
import { buildBundles } from '../helpers/build.ts';
import { clients, demoScenario, useSandbox } from '../helpers/sandbox.ts';

const OWNER = '111111111111';
const A = '222222222222';
const REGION = 'us-east-1';

function licenseManager(url: string, account: string): LicenseManagerClient {
  return new LicenseManagerClient({
    endpoint: url,
    region: REGION,
    credentials: { accessKeyId: account, secretAccessKey: 'sandbox' },
    maxAttempts: 1,
  });
}

function cell(report: ReconcileReport | undefined, account: string) {
  return report?.cells.find((c) => c.region === REGION && c.accountId === account);
}

async function associated(box: Sandbox, account: string, imageId: string): Promise<string[]> {
  const out = await licenseManager(box.url, account).send(
    new ListLicenseSpecificationsForResourceCommand({ ResourceArn: `arn:aws:ec2:${REGION}::image/${imageId}` }),
  );
  return (out.LicenseSpecifications ?? []).map((s) => s.LicenseConfigurationArn ?? '');
}

describe('license configurations end to end', () => {
  let box: Sandbox;
  let arn: string;
  let license: string;
  let first: ReconcileReport | undefined;
  const sandboxes = useSandbox();

  beforeAll(async () => {
    await buildBundles();
    box = await sandboxes.start({ scenario: demoScenario(), wire: true, clockSpeed: 3000 });
    license =
      (
        await licenseManager(box.url, OWNER).send(
          new CreateLicenseConfigurationCommand({ Name: 'windows-server', LicenseCountingType: 'vCPU' }),
        )
      ).LicenseConfigurationArn ?? '';
    const ib = clients(box.url, OWNER).imagebuilder;
    const configArn = box.refs.get('distribution:golden-windows') ?? '';
    const current = await ib.send(new GetDistributionConfigurationCommand({ distributionConfigurationArn: configArn }));
    const distributions = (current.distributionConfiguration?.distributions ?? []).map((d) =>
      d.region === REGION ? { ...d, licenseConfigurationArns: [license] } : d,
    );
    await ib.send(
      new UpdateDistributionConfigurationCommand({ distributionConfigurationArn: configArn, distributions, clientToken: 'licenses' }),
    );
    arn =
      (
        await ib.send(
          new StartImagePipelineExecutionCommand({ imagePipelineArn: box.refs.get('pipeline:golden-windows'), clientToken: 'licenses' }),
        )
      ).imageBuildVersionArn ?? '';
    first = await box.finalReport(arn, 30_000);
    await box.idle();
  }, 120_000);

  it("confirms the owner's association, and fails the copy whose account cannot use the owner's configuration, naming it", async () => {
    const owner = cell(first, OWNER);
    expect(owner?.checks.find((c) => c.check === 'license-configuration')).toMatchObject({ subject: license, result: 'ok' });
    const target = cell(first, A);
    expect(target?.status).toBe('failed');
    // the reconciler tried to associate it in A, and License Manager refused: the report names the ARN and says why
    const tried = first?.actions.find((a) => a.kind === 'associate-licenses' && a.accountId === A && a.region === REGION);
    expect(tried).toMatchObject({ outcome: 'failed' });
    expect(JSON.stringify(target)).toContain(license);
    expect(JSON.stringify(tried)).toMatch(/InvalidParameterValueException|does not exist or is not accessible/);
    expect(first?.outcome).toBe('failed');
    expect(await associated(box, A, target?.imageId ?? '')).toStrictEqual([]);
  });

  it('associates a license configuration removed from the AMI again, and reports the cell repaired', async () => {
    const imageId = cell(first, OWNER)?.imageId ?? '';
    const lm = licenseManager(box.url, OWNER);
    await lm.send(
      new UpdateLicenseSpecificationsForResourceCommand({
        ResourceArn: `arn:aws:ec2:${REGION}::image/${imageId}`,
        RemoveLicenseSpecifications: [{ LicenseConfigurationArn: license }],
      }),
    );
    expect(await associated(box, OWNER, imageId)).toStrictEqual([]);
    const available = box.state.events.find(
      (e) => e.resources[0] === arn && (e.detail as { state?: { status: string } }).state?.status === 'AVAILABLE',
    );
    if (available === undefined) throw new Error('no AVAILABLE event');
    const before = box.reports(arn).length;
    // a new event (its own id): a second delivery of the same event would be answered from its idempotency record
    box.wiring?.deliver({ ...available, id: randomUUID() });
    const again = await box.finalReport(arn, 30_000, before);
    await box.idle();
    const runs = box.reports(arn).slice(before);
    const repaired = runs.flatMap((r) => r.actions).find((a) => a.kind === 'associate-licenses' && a.accountId === OWNER);
    expect(repaired).toMatchObject({ outcome: 'applied' });
    expect(cell(runs[0], OWNER)?.status).toBe('repaired');
    expect(cell(again, OWNER)?.checks.find((c) => c.check === 'license-configuration')?.result).toMatch(/ok|drift/);
    expect(await associated(box, OWNER, imageId)).toStrictEqual([license]);
  });
});
