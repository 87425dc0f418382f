import * as schemas from '@aws-sdk/client-organizations';
import type {
  ListAccountsForParentRequest,
  ListAccountsRequest,
  ListOrganizationalUnitsForParentRequest,
} from '@aws-sdk/client-organizations';
import { partitionOf } from '../partition.ts';
import { AwsError } from '../protocol/errors.ts';
import { type Ctx, type ServiceDef, op } from '../server.ts';

/**
 * AWS Organizations over its JSON 1.1 protocol (target prefix `AWSOrganizationsV20161128`), as far as listing
 * the accounts of an organization or an OU needs it. Operations, members and error codes are those of the
 * service model (@aws-sdk/client-organizations).
 *
 * Who may call what (AWS Organizations API Reference, each operation: "This operation can be called only from
 * the organization's management account or by a member account that is a delegated administrator"):
 * `DescribeOrganization` any member account; the `List…` operations only the management account (the sandbox
 * models no delegated administrators). A member is refused with `AccessDeniedException`, an account of no
 * organization with `AWSOrganizationsNotInUseException`. `MaxResults` is 1–20 and the service may return
 * fewer with a `NextToken` ("always check NextToken"): the sandbox pages at 5 to make paging visible.
 */

/** The id of an organization's (one) root: `r-` and four characters (the model's pattern ^r-[0-9a-z]{4,32}$). */
function rootOf(organization: string): string {
  return `r-${organization.slice(2, 6)}`;
}

const PAGE = 5;

function invalidInput(message: string): AwsError {
  return new AwsError('InvalidInputException', message, 400, { Reason: 'INVALID_INPUT' });
}

/** The caller's organization and its management account; an account of none gets AWSOrganizationsNotInUseException. */
function membership(ctx: Ctx): { organization: string; managementAccount: string } {
  const organization = ctx.env.state.organizations.get(ctx.account);
  if (organization === undefined)
    throw new AwsError('AWSOrganizationsNotInUseException', 'Your account is not a member of an organization.', 400);
  return { organization, managementAccount: ctx.env.state.organizationManagement.get(organization) ?? '' };
}

/** The caller's organization, and that the caller is its management account. */
function management(ctx: Ctx): { organization: string; managementAccount: string } {
  const member = membership(ctx);
  if (member.managementAccount !== ctx.account)
    throw new AwsError('AccessDeniedException', "You don't have permissions to access this resource.", 400);
  return member;
}

function page<T>(
  items: T[],
  input: { NextToken?: string | undefined; MaxResults?: number | undefined },
): { items: T[]; next: string | undefined } {
  const max = input.MaxResults ?? 20;
  if (!Number.isInteger(max) || max < 1 || max > 20)
    throw invalidInput('You provided a value that does not match the required pattern: MaxResults must be between 1 and 20.');
  const start = input.NextToken === undefined ? 0 : Number(input.NextToken);
  if (!Number.isInteger(start) || start < 0 || start > items.length) throw invalidInput('The NextToken is invalid.');
  const end = start + Math.min(max, PAGE);
  return { items: items.slice(start, end), next: end < items.length ? String(end) : undefined };
}

function accountsOf(ctx: Ctx, organization: string, managementAccount: string, inParent?: string) {
  const p = partitionOf(ctx.region);
  const root = rootOf(organization);
  return [...ctx.env.state.organizations.entries()]
    .filter(
      ([account, org]) =>
        org === organization && (inParent === undefined || (ctx.env.state.accountUnits.get(account) ?? root) === inParent),
    )
    .map(([account]) => account)
    .sort()
    .map((Id) => ({
      Id,
      Arn: `arn:${p}:organizations::${managementAccount}:account/${organization}/${Id}`,
      Name: `account-${Id}`,
      Email: `aws+${Id}@example.com`,
      Status: 'ACTIVE',
      State: 'ACTIVE',
      JoinedMethod: Id === managementAccount ? 'CREATED' : 'INVITED',
    }));
}

/** A parent id of the caller's organization (its root or one of its OUs); else ParentNotFoundException. */
function parentOf(ctx: Ctx, organization: string, parentId: string | undefined): string {
  if (parentId === undefined || !/^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$/.test(parentId))
    throw invalidInput(`You provided a value that does not match the required pattern: ParentId ${parentId ?? '(none)'}`);
  if (parentId === rootOf(organization) || ctx.env.state.organizationalUnits.get(parentId)?.organization === organization) return parentId;
  throw new AwsError('ParentNotFoundException', "We can't find a root or OU with the ParentId that you specified.", 400);
}

const organizations: ServiceDef = {
  name: 'organizations',
  protocol: 'json',
  schemas: schemas as unknown as Record<string, unknown>,
  handlers: {
    DescribeOrganization: op((ctx: Ctx) => {
      const { organization, managementAccount } = membership(ctx);
      const p = partitionOf(ctx.region);
      return {
        Organization: {
          Id: organization,
          Arn: `arn:${p}:organizations::${managementAccount}:organization/${organization}`,
          FeatureSet: 'ALL',
          MasterAccountArn: `arn:${p}:organizations::${managementAccount}:account/${organization}/${managementAccount}`,
          MasterAccountId: managementAccount,
          MasterAccountEmail: `aws+${managementAccount}@example.com`,
        },
      };
    }),
    ListRoots: op((ctx: Ctx) => {
      const { organization, managementAccount } = management(ctx);
      const id = rootOf(organization);
      return {
        Roots: [
          {
            Id: id,
            Arn: `arn:${partitionOf(ctx.region)}:organizations::${managementAccount}:root/${organization}/${id}`,
            Name: 'Root',
            PolicyTypes: [],
          },
        ],
      };
    }),
    ListAccounts: op((ctx: Ctx, input: ListAccountsRequest) => {
      const { organization, managementAccount } = management(ctx);
      const { items, next } = page(accountsOf(ctx, organization, managementAccount), input);
      return { Accounts: items, NextToken: next };
    }),
    ListAccountsForParent: op((ctx: Ctx, input: ListAccountsForParentRequest) => {
      const { organization, managementAccount } = management(ctx);
      const parent = parentOf(ctx, organization, input.ParentId);
      const { items, next } = page(accountsOf(ctx, organization, managementAccount, parent), input);
      return { Accounts: items, NextToken: next };
    }),
    ListOrganizationalUnitsForParent: op((ctx: Ctx, input: ListOrganizationalUnitsForParentRequest) => {
      const { organization, managementAccount } = management(ctx);
      const parent = parentOf(ctx, organization, input.ParentId);
      const units = [...ctx.env.state.organizationalUnits.values()]
        .filter((u) => u.organization === organization && u.parent === parent)
        .sort((a, b) => a.id.localeCompare(b.id))
        .map((u) => ({
          Id: u.id,
          Arn: `arn:${partitionOf(ctx.region)}:organizations::${managementAccount}:ou/${organization}/${u.id}`,
          Name: u.name,
        }));
      const { items, next } = page(units, input);
      return { OrganizationalUnits: items, NextToken: next };
    }),
  },
};

export { organizations, rootOf };
