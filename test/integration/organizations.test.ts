/**
 * AWS Organizations in the sandbox: the management account lists accounts of the organization, a root or an
 * OU (in pages); a member account and an account of no organization are refused as AWS refuses them; an AMI
 * shared with an organization or an OU is visible to the accounts in it, nested OUs included, and to no other.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { CopyImageCommand, CreateTagsCommand, DescribeImagesCommand, ModifyImageAttributeCommand } from '@aws-sdk/client-ec2';
import {
  DescribeOrganizationCommand,
  ListAccountsForParentCommand,
  ListOrganizationalUnitsForParentCommand,
  OrganizationsClient,
  paginateListAccounts,
} from '@aws-sdk/client-organizations';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { clients, useSandbox } from '../helpers/sandbox.ts';

const ORG = 'o-a1b2c3d4e5';
const UNIT = 'ou-a1b2-11111111';
const CHILD = 'ou-a1b2-22222222';
const MEMBERS = ['111111111111', '222222222222', '333333333333', '444444444444', '555555555555', '666666666666', '777777777777'];

describe('AWS Organizations in the sandbox', () => {
  let box: Sandbox;
  const org = (account: string) =>
    new OrganizationsClient({
      endpoint: box.url,
      region: 'us-east-1',
      credentials: { accessKeyId: account, secretAccessKey: 'sandbox' },
      maxAttempts: 1,
    });
  const sandboxes = useSandbox();

  beforeAll(async () => {
    box = await sandboxes.start({
      scenario: {
        name: 'organizations',
        defaultAccount: '111111111111',
        accounts: [...MEMBERS.slice(1), '888888888888'],
        regions: ['us-east-1'],
        clockSpeed: 1,
        organizations: { [ORG]: MEMBERS },
        organizationalUnits: [
          { id: UNIT, name: 'workloads', organization: ORG, accounts: ['222222222222'] },
          { id: CHILD, name: 'prod', organization: ORG, parent: UNIT, accounts: ['333333333333'] },
        ],
        images: [{ ref: 'shared', account: '111111111111', region: 'us-east-1', name: 'golden' }],
      },
    });
  });

  it('lets the management account list every account, in pages, and the accounts and OUs of a parent', async () => {
    const listed: string[] = [];
    let pages = 0;
    for await (const page of paginateListAccounts({ client: org('111111111111') }, {})) {
      pages += 1;
      listed.push(...(page.Accounts ?? []).map((a) => a.Id ?? ''));
    }
    expect(listed).toEqual(MEMBERS);
    expect(pages).toBe(2);
    const described = await org('444444444444').send(new DescribeOrganizationCommand({}));
    expect(described.Organization).toMatchObject({
      Id: ORG,
      MasterAccountId: '111111111111',
      Arn: `arn:aws:organizations::111111111111:organization/${ORG}`,
    });
    const inUnit = await org('111111111111').send(new ListAccountsForParentCommand({ ParentId: UNIT }));
    expect(inUnit.Accounts?.map((a) => a.Id)).toEqual(['222222222222']);
    const children = await org('111111111111').send(new ListOrganizationalUnitsForParentCommand({ ParentId: UNIT }));
    expect(children.OrganizationalUnits).toEqual([
      { Id: CHILD, Arn: `arn:aws:organizations::111111111111:ou/${ORG}/${CHILD}`, Name: 'prod' },
    ]);
  });

  it('refuses a member account, an account of no organization and an unknown parent', async () => {
    await expect(org('222222222222').send(new ListAccountsForParentCommand({ ParentId: UNIT }))).rejects.toMatchObject({
      name: 'AccessDeniedException',
    });
    await expect(org('888888888888').send(new DescribeOrganizationCommand({}))).rejects.toMatchObject({
      name: 'AWSOrganizationsNotInUseException',
    });
    await expect(org('111111111111').send(new ListAccountsForParentCommand({ ParentId: 'ou-zzzz-99999999' }))).rejects.toMatchObject({
      name: 'ParentNotFoundException',
    });
    await expect(org('111111111111').send(new ListAccountsForParentCommand({ ParentId: 'not-a-parent' }))).rejects.toMatchObject({
      name: 'InvalidInputException',
    });
  });

  it('shows an AMI shared with an OU to the accounts in it and in the OUs below it, and to no one else', async () => {
    const image = box.refs.get('ami:shared') ?? '';
    await clients(box.url, '111111111111').ec2.send(
      new ModifyImageAttributeCommand({
        ImageId: image,
        LaunchPermission: { Add: [{ OrganizationalUnitArn: `arn:aws:organizations::111111111111:ou/${ORG}/${UNIT}` }] },
      }),
    );
    const sees = async (account: string) =>
      ((await clients(box.url, account).ec2.send(new DescribeImagesCommand({ ExecutableUsers: ['self'] }))).Images ?? []).map(
        (i) => i.ImageId,
      );
    expect(await sees('222222222222')).toEqual([image]);
    expect(await sees('333333333333')).toEqual([image]);
    expect(await sees('444444444444')).toEqual([]);
    // a sharee tags the AMI in its own scope; an account it is not shared with cannot
    await clients(box.url, '333333333333').ec2.send(
      new CreateTagsCommand({ Resources: [image], Tags: [{ Key: 'Team', Value: 'platform' }] }),
    );
    await expect(
      clients(box.url, '444444444444').ec2.send(new CreateTagsCommand({ Resources: [image], Tags: [{ Key: 'Team', Value: 'platform' }] })),
    ).rejects.toMatchObject({ name: 'InvalidAMIID.NotFound' });
    // the organization as a whole
    await clients(box.url, '111111111111').ec2.send(
      new ModifyImageAttributeCommand({
        ImageId: image,
        LaunchPermission: { Add: [{ OrganizationArn: `arn:aws:organizations::111111111111:organization/${ORG}` }] },
      }),
    );
    expect(await sees('444444444444')).toEqual([image]);
    expect(await sees('888888888888')).toEqual([]);
  });

  it('scopes DescribeImages by ExecutableUsers as EC2 does: explicit grants; self includes organization grants, another ID not; own AMIs are not listed', async () => {
    const owner = clients(box.url, '111111111111').ec2;
    const copy = async (name: string) =>
      (await owner.send(new CopyImageCommand({ SourceImageId: box.refs.get('ami:shared'), SourceRegion: 'us-east-1', Name: `xu-${name}` })))
        .ImageId ?? '';
    const [explicit, viaOrg, open] = [await copy('explicit'), await copy('via-org'), await copy('public')];
    await owner.send(
      new ModifyImageAttributeCommand({
        ImageId: explicit,
        LaunchPermission: { Add: [{ UserId: '444444444444' }, { UserId: '555555555555' }] },
      }),
    );
    await owner.send(
      new ModifyImageAttributeCommand({
        ImageId: viaOrg,
        LaunchPermission: { Add: [{ OrganizationArn: `arn:aws:organizations::111111111111:organization/${ORG}` }] },
      }),
    );
    await owner.send(new ModifyImageAttributeCommand({ ImageId: open, LaunchPermission: { Add: [{ Group: 'all' }] } }));
    const scoped = async (account: string, users: string[]) => {
      const out = await clients(box.url, account).ec2.send(
        new DescribeImagesCommand({ ExecutableUsers: users, Filters: [{ Name: 'name', Values: ['xu-*'] }] }),
      );
      return (out.Images ?? []).map((i) => i.ImageId).sort();
    };
    const sorted = (...ids: string[]) => [...ids].sort();
    expect(await scoped('444444444444', ['self'])).toEqual(sorted(explicit, viaOrg));
    expect(await scoped('444444444444', ['444444444444'])).toEqual(sorted(explicit, viaOrg));
    // asked about another account: what is shared with that ID explicitly, not through its organization
    expect(await scoped('444444444444', ['555555555555'])).toEqual([explicit]);
    expect(await scoped('444444444444', ['all'])).toEqual([open]);
    // without ExecutableUsers: everything the account may launch
    expect(
      (
        await clients(box.url, '444444444444').ec2.send(new DescribeImagesCommand({ Filters: [{ Name: 'name', Values: ['xu-*'] }] }))
      ).Images?.map((i) => i.ImageId).sort(),
    ).toEqual(sorted(explicit, viaOrg, open));
    // the owner's launch permission is implicit
    expect(await scoped('111111111111', ['self'])).toEqual([]);
  });

  it.runIf(existsSync('/usr/bin/aws'))('answers the AWS CLI as Organizations does', async () => {
    const { stdout } = await promisify(execFile)(
      '/usr/bin/aws',
      ['--endpoint-url', box.url, '--region', 'us-east-1', '--output', 'json', 'organizations', 'list-accounts'],
      {
        env: {
          PATH: process.env.PATH,
          HOME: '/tmp',
          AWS_ACCESS_KEY_ID: '111111111111',
          AWS_SECRET_ACCESS_KEY: 'sandbox',
          AWS_PAGER: '',
          AWS_EC2_METADATA_DISABLED: 'true',
        },
      },
    );
    // the CLI follows NextToken itself
    expect((JSON.parse(stdout) as { Accounts: { Id: string }[] }).Accounts.map((a) => a.Id)).toEqual(MEMBERS);
  });
});
