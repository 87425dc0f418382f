/**
 * The accounts an AMI is shared with through AWS Organizations: a distribution's
 * `launchPermission.organizationArns` and `organizationalUnitArns`. EC2 gives every account of the organization,
 * or of the OU and all OUs below it, the launch permission ("When you share an AMI with an organization or an
 * OU, all of the children accounts get access to the AMI", EC2 User Guide, "Share an AMI with organizations
 * and OUs"), and shows none of them the owner's tags; listing them lets the reconciler tag the AMI in each one's
 * own scope, as it does for `userIds` (cells of origin `shared`).
 *
 * Organizations answers the `List…` calls only to the organization's management account or a delegated
 * administrator (AWS Organizations API Reference, ListAccounts, ListAccountsForParent,
 * ListOrganizationalUnitsForParent), and only about its own organization: an ARN of another organization is not
 * listed. Every listing that does not complete says why; nothing is guessed.
 */
import type { Image } from '@aws-sdk/client-imagebuilder';
import {
  DescribeOrganizationCommand,
  OrganizationsClient,
  paginateListAccounts,
  paginateListAccountsForParent,
  paginateListOrganizationalUnitsForParent,
} from '@aws-sdk/client-organizations';
import type { ClientFactory } from './clients.ts';
import { AwsCallError, briefFailure, toFailure } from '../core/errors.ts';

/** One organization or OU ARN of the configuration, and what listing its accounts gave. */
interface OrganizationListing {
  arn: string;
  /** listed: `accounts` are its active accounts; skipped/failed: not listed (failed with `RECONCILER_SHARED_ACCOUNTS=require`); pending: throttled, a recheck lists again. */
  status: 'listed' | 'skipped' | 'failed' | 'pending';
  accounts: string[];
  reason?: string;
}

const ORGANIZATION_ARN = /^arn:aws[a-z-]*:organizations::\d{12}:organization\/(o-[a-z0-9]{10,32})$/;
const OU_ARN = /^arn:aws[a-z-]*:organizations::\d{12}:ou\/(o-[a-z0-9]{10,32})\/(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$/;

/**
 * The organization and OU ARNs of the distributions whose shared cells would be tagged (those with amiTags,
 * as {@link desiredImage} makes shared cells only there), each once, sorted.
 */
function sharedOrganizationArns(image: Image): string[] {
  const arns = new Set<string>();
  for (const distribution of image.type === 'DOCKER' ? [] : (image.distributionConfiguration?.distributions ?? [])) {
    const ami = distribution.amiDistributionConfiguration;
    if (Object.keys(ami?.amiTags ?? {}).length === 0) continue;
    for (const arn of [...(ami?.launchPermission?.organizationArns ?? []), ...(ami?.launchPermission?.organizationalUnitArns ?? [])])
      arns.add(arn);
  }
  return [...arns].sort();
}

/** Whether an Organizations account may act (assume a role): only ACTIVE ones (`State`, else the older `Status`). */
function active(account: { Id?: string | undefined; State?: string | undefined; Status?: string | undefined }): account is { Id: string } {
  return account.Id !== undefined && (account.State ?? account.Status) === 'ACTIVE';
}

/** The active accounts of an OU and of every OU below it (at most five levels deep in Organizations); `step.call` names the call under way. */
async function accountsUnder(client: OrganizationsClient, unit: string, step: { call: string }): Promise<string[]> {
  const accounts: string[] = [];
  const queue = [unit];
  for (let parent = queue.shift(); parent !== undefined; parent = queue.shift()) {
    step.call = 'ListAccountsForParent';
    for await (const page of paginateListAccountsForParent({ client }, { ParentId: parent }))
      accounts.push(...(page.Accounts ?? []).filter(active).map((a) => a.Id));
    step.call = 'ListOrganizationalUnitsForParent';
    for await (const page of paginateListOrganizationalUnitsForParent({ client }, { ParentId: parent }))
      queue.push(...(page.OrganizationalUnits ?? []).flatMap((u) => (u.Id === undefined ? [] : [u.Id])));
  }
  return accounts;
}

/**
 * List the accounts of each organization and OU the image's distributions share with. `required`
 * (`RECONCILER_SHARED_ACCOUNTS=require`) makes a listing that cannot be done `failed`, else `skipped`. Never
 * throws: every problem is in the listing's reason.
 */
async function listSharedOrganizations(
  image: Image,
  client: OrganizationsClient,
  options: { required: boolean; accountId: string },
): Promise<OrganizationListing[]> {
  const arns = sharedOrganizationArns(image);
  if (arns.length === 0) return [];
  const refused = options.required ? 'failed' : 'skipped';
  const unlisted = (arn: string, error: unknown, call: string): OrganizationListing => {
    const failure = toFailure(new AwsCallError(call, options.accountId, 'global', error));
    const status = failure.kind === 'throttled' ? 'pending' : refused;
    const who =
      failure.code === 'AccessDeniedException' || failure.code === 'AWSOrganizationsNotInUseException'
        ? ": the reconciler's account must be the organization's management account or a delegated administrator, its role allowed organizations:List*"
        : '';
    return { arn, status, accounts: [], reason: `cannot list the accounts of ${arn} (${call}: ${briefFailure(failure)})${who}` };
  };
  let own: string | undefined;
  try {
    own = (await client.send(new DescribeOrganizationCommand({}))).Organization?.Id;
  } catch (error: unknown) {
    return arns.map((arn) => unlisted(arn, error, 'DescribeOrganization'));
  }
  const out: OrganizationListing[] = [];
  for (const arn of arns) {
    const organization = ORGANIZATION_ARN.exec(arn);
    const unit = OU_ARN.exec(arn);
    const id = organization?.[1] ?? unit?.[1];
    if (id === undefined) {
      out.push({
        arn,
        status: refused,
        accounts: [],
        reason: `${arn} is neither an organization ARN (arn:aws:organizations::<account>:organization/o-…) nor an OU ARN (…:ou/o-…/ou-…)`,
      });
      continue;
    }
    if (id !== own) {
      out.push({
        arn,
        status: refused,
        accounts: [],
        reason: `${arn} is of organization ${id}; the reconciler's account is in ${own ?? 'none'}, and Organizations lists only the caller's own organization`,
      });
      continue;
    }
    const step = { call: 'ListAccounts' };
    try {
      let accounts: string[];
      if (unit?.[2] !== undefined) {
        accounts = await accountsUnder(client, unit[2], step);
      } else {
        accounts = [];
        for await (const page of paginateListAccounts({ client }, {}))
          accounts.push(...(page.Accounts ?? []).filter(active).map((a) => a.Id));
      }
      out.push({ arn, status: 'listed', accounts: [...new Set(accounts)].sort() });
    } catch (error: unknown) {
      out.push(unlisted(arn, error, step.call));
    }
  }
  return out;
}

/** The accounts of each listing that completed, by organization or OU ARN (what {@link desiredImage} takes). */
function listedAccounts(listings: OrganizationListing[]): Map<string, string[]> {
  return new Map(listings.filter((o) => o.status === 'listed').map((o) => [o.arn, o.accounts]));
}

/**
 * AWS Organizations as the reconciler's own account, from the client factory. Organizations is global: one
 * endpoint per partition, which the SDK resolves from any region of it (us-east-1, cn-northwest-1, us-gov-west-1).
 */
function organizationsClient(clients: ClientFactory): OrganizationsClient {
  return clients.homeClient(OrganizationsClient);
}

export { listSharedOrganizations, listedAccounts, organizationsClient, sharedOrganizationArns };
export type { OrganizationListing };
