/**
 * RECONCILER_SHARED_ORGANIZATIONS end to end on the sandbox: a distribution that shares its copies with an
 * OU gets the amiTags in the scope of every account of that OU and of the OUs below it (listed with AWS
 * Organizations by the reconciler's own role), and every organization it cannot list says why.
 */
import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
import { GetImageCommand } from '@aws-sdk/client-imagebuilder';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/index.ts';
import type { DoctorReport } from '../../src/lib/preflight/doctor.ts';
import type { Scenario } from '../../sandbox/harness/scenario.ts';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { buildBundles } from '../helpers/build.ts';
import { schemaErrors, validateReconcileReport } from '../helpers/schema.ts';
import { clients, DEMO_OWNER as OWNER, demoScenario, finished, startBuild, useSandbox } from '../helpers/sandbox.ts';

const [A, B, D, E, F, G] = ['222222222222', '333333333333', '444444444444', '555555555555', '666666666666', '777777777777'];
const ORG = 'o-a1b2c3d4e5';
const UNIT = `arn:aws:organizations::${OWNER}:ou/${ORG}/ou-a1b2-11111111`;
const OTHER_ORG = 'arn:aws:organizations::999999999999:organization/o-zzzzzzzzzz';

/** The demo, in one organization; eu-west-1 also shares with an OU (E, and F in an OU below it; G is outside it) and another organization. */
function orgScenario(management: string, params: Record<string, string>): Scenario {
  const scenario = demoScenario();
  scenario.accounts = [...scenario.accounts, E, F, G];
  scenario.organizations = { [ORG]: [management, ...[OWNER, A, B, D, E, F, G].filter((a) => a !== management)] };
  scenario.organizationalUnits = [
    { id: 'ou-a1b2-11111111', name: 'workloads', organization: ORG, accounts: [E] },
    { id: 'ou-a1b2-22222222', name: 'prod', organization: ORG, parent: 'ou-a1b2-11111111', accounts: [F] },
  ];
  scenario.deploymentParams = { ...scenario.deploymentParams, sharedOrganizations: 'true', ...params };
  const eu = scenario.imagebuilder?.distributions?.[0]?.distributions?.find((d) => d.region === 'eu-west-1');
  if (eu?.amiDistributionConfiguration?.launchPermission === undefined) throw new Error('the demo shares eu-west-1');
  eu.amiDistributionConfiguration.launchPermission.organizationalUnitArns = [UNIT];
  eu.amiDistributionConfiguration.launchPermission.organizationArns = [OTHER_ORG];
  return scenario;
}

async function tagsAs(box: Sandbox, account: string, imageId: string): Promise<Record<string, string> | undefined> {
  const out = await clients(box.url, account, 'eu-west-1').ec2.send(new DescribeImagesCommand({ ExecutableUsers: ['self'] }));
  const image = out.Images?.find((i) => i.ImageId === imageId);
  return image === undefined ? undefined : Object.fromEntries((image.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
}

describe('amiTags in the accounts of the organizations and OUs an AMI is shared with', () => {
  let box: Sandbox | undefined;
  beforeAll(() => buildBundles(), 120_000);
  const sandboxes = useSandbox('each');

  it('tags the copies in every account of the OU and the OUs below it; another organization is skipped with why', async () => {
    box = await sandboxes.start({ scenario: orgScenario(OWNER, {}), wire: true, clockSpeed: 3000 });
    const arn = await startBuild(box, 'organizations');
    const final = await finished(box, arn);

    expect(final.organizations).toEqual([
      { arn: UNIT, status: 'listed', accounts: [E, F] },
      {
        arn: OTHER_ORG,
        status: 'skipped',
        accounts: [],
        reason: expect.stringMatching(/is of organization o-zzzzzzzzzz; the reconciler's account is in o-a1b2c3d4e5/),
      },
    ]);
    expect(final.outcome).toBe('converged');
    expect(final.notes).toContainEqual(
      expect.stringMatching(/^accounts of arn:aws:organizations::999999999999:organization\/o-zzzzzzzzzz not tagged \(skipped\)/),
    );
    expect(schemaErrors(validateReconcileReport, final)).toStrictEqual([]);
    const shared = final.cells.filter((c) => c.origin === 'shared').map((c) => `${c.region}/${c.accountId}:${c.status}`);
    expect(shared).toEqual([`eu-west-1/${B}:ok`, `eu-west-1/${E}:ok`, `eu-west-1/${F}:ok`]);

    // as each account sees the copies of A and D: E and F with the amiTags in their own scope; G not at all
    const image = await clients(box.url, OWNER).imagebuilder.send(new GetImageCommand({ imageBuildVersionArn: arn }));
    const copies = (image.image?.outputResources?.amis ?? []).filter((a) => a.region === 'eu-west-1').map((a) => a.image ?? '');
    expect(copies).toHaveLength(2);
    for (const copy of copies) {
      for (const account of [E, F])
        expect(await tagsAs(box, account, copy), `${account} ${copy}`).toStrictEqual({ Team: 'platform', CostCenter: '4711' });
      expect(await tagsAs(box, G, copy)).toBeUndefined();
    }
    // listed by the reconciler's own role, which the deployment allows exactly that
    const listings = box.server.requests.filter((r) => r.service === 'organizations');
    expect(new Set(listings.map((r) => r.operation))).toEqual(
      new Set(['DescribeOrganization', 'ListAccountsForParent', 'ListOrganizationalUnitsForParent']),
    );
    expect(listings.every((r) => r.status === 200 && r.principal?.endsWith('-reconcile') === true)).toBe(true);

    // the command line says the same: what was listed, and what was not and why
    vi.stubEnv('RECONCILER_SHARED_ORGANIZATIONS', 'true');
    let out = '';
    let doctor = '';
    try {
      const at = ['--endpoint-url', box.url, '--region', 'us-east-1'];
      const code = await main(['reconcile', arn, '--plan', ...at, '--no-color'], {
        out: (t) => (out += `${t}\n`),
        err: () => undefined,
        isTTY: false,
        columns: 250,
      });
      expect(code).toBe(0);
      // doctor checks the listed accounts' roles too, as shared cells
      const config = box.refs.get('distribution:golden-windows') ?? '';
      expect(
        await main(['doctor', '--config', config, ...at, '--json'], {
          out: (t) => (doctor += t),
          err: () => undefined,
          isTTY: false,
          columns: 250,
        }),
      ).toBe(0);
    } finally {
      vi.unstubAllEnvs();
    }
    const [checked] = (JSON.parse(doctor) as { reports: DoctorReport[] }).reports;
    expect(
      checked?.cells
        .filter((c) => [E, F, G].includes(c.accountId))
        .map((c) => `${c.region}/${c.accountId}:${c.status}:${c.groups.map((g) => g.name).join(',')}`),
    ).toEqual([`eu-west-1/${E}:ok:observe,images`, `eu-west-1/${F}:ok:observe,images`]);
    expect(checked?.organizations?.map((o) => `${o.arn}:${o.status}`)).toEqual([`${UNIT}:listed`, `${OTHER_ORG}:skipped`]);
    expect(out).toContain(`shared with ${UNIT}: 2 account(s) listed (${E}, ${F})`);
    expect(out).toMatch(/note: accounts of arn:aws:organizations::999999999999:organization\/o-zzzzzzzzzz not tagged \(skipped\)/);
  });

  it('with sharedAccounts require, an account that may not list the organization fails the run, naming why; the cells converge', async () => {
    box = await sandboxes.start({ scenario: orgScenario(A, { sharedAccounts: 'require' }), wire: true, clockSpeed: 3000 });
    const arn = await startBuild(box, 'not-management');
    const final = await finished(box, arn);

    expect(final.organizations?.find((o) => o.arn === UNIT)).toEqual({
      arn: UNIT,
      status: 'failed',
      accounts: [],
      reason: expect.stringMatching(
        /ListAccountsForParent: AccessDeniedException\): the reconciler's account must be the organization's management account or a delegated administrator/,
      ),
    });
    expect(final.outcome).toBe('failed');
    expect(final.cells.every((c) => c.status === 'ok')).toBe(true);
    expect(final.cells.map((c) => c.accountId)).not.toContain(E);
  });

  it('without sharedOrganizations, status notes that the organizations shared with get no tags, and says how to turn it on', async () => {
    box = await sandboxes.start({ scenario: orgScenario(OWNER, {}) });
    const arn = await startBuild(box, 'org-note');
    box.clock.advance(2 * 3600_000);
    // the command line's own settings (the wired tests above leave their deployment's in the environment)
    vi.stubEnv('RECONCILER_SHARED_ORGANIZATIONS', 'false');
    vi.stubEnv('RECONCILER_SHARED_ACCOUNTS', 'tag');
    let out = '';
    const code = await main(['status', arn, '--endpoint-url', box.url, '--region', 'us-east-1'], {
      out: (s) => (out += `${s}\n`),
      err: () => undefined,
      isTTY: false,
    });
    vi.unstubAllEnvs();
    expect(code).toBe(3);
    for (const shared of [UNIT, OTHER_ORG])
      expect(out).toContain(
        `note: launchPermission shares with ${shared}: its accounts can launch the AMIs but get none of the amiTags, which are per account (RECONCILER_SHARED_ORGANIZATIONS=true, the sharedOrganizations param, lists them and tags them)`,
      );
  });
});
