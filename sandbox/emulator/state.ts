import { randomBytes } from 'node:crypto';
import { awsManagedPolicies } from './iam/aws-managed.ts';
import type {
  DistributionConfiguration,
  Image,
  ImagePipeline,
  ImageRecipe,
  InfrastructureConfiguration,
} from '@aws-sdk/client-imagebuilder';

/** Everything the sandbox holds. Keys are `account/region` unless said otherwise. */

interface Ami {
  imageId: string;
  ownerId: string;
  region: string;
  name: string;
  description: string | undefined;
  state: 'pending' | 'available' | 'failed' | 'deregistered' | 'disabled';
  stateReason: string | undefined;
  creationDate: string;
  /** `windows` for Windows AMIs (EC2's Platform field). */
  platform: 'windows' | undefined;
  /** The owner's tags. */
  tags: Map<string, string>;
  /**
   * Tags other accounts put on the AMI shared with them, by account: EC2 tags belong to the account that set
   * them ("User-defined tags that you attach to a shared AMI are available only to your AWS account and not to
   * the other accounts that the AMI is shared with", EC2 User Guide, "Share an AMI with specific AWS accounts",
   * Considerations; the same for organizations and OUs in "Share an AMI with organizations and OUs").
   */
  accountTags: Map<string, Map<string, string>>;
  launchPermissions: { userIds: Set<string>; groups: Set<string>; organizationArns: Set<string>; organizationalUnitArns: Set<string> };
  snapshotIds: string[];
  deregistrationProtection: 'enabled' | 'disabled' | 'disabled-with-cooldown';
  deprecationTime: string | undefined;
  sourceImageId: string | undefined;
  sourceRegion: string | undefined;
  /** Reads that still miss this AMI (eventual consistency). */
  invisibleReads: number;
  lastLaunchedTime: string | undefined;
  deregisteredAt: number | undefined;
}

interface Snapshot {
  snapshotId: string;
  ownerId: string;
  region: string;
  volumeSize: number;
  encrypted: boolean;
  kmsKeyId: string | undefined;
  description: string;
  startTime: string;
  tags: Map<string, string>;
}

interface LaunchTemplateVersion {
  number: number;
  description: string | undefined;
  createTime: string;
  data: Record<string, unknown>;
}

interface LaunchTemplate {
  id: string;
  name: string;
  ownerId: string;
  region: string;
  defaultVersion: number;
  versions: LaunchTemplateVersion[];
  tags: Map<string, string>;
  createTime: string;
  /** ClientToken → the version it created and its request's parameters (CreateLaunchTemplateVersion idempotency). */
  clientTokens: Map<string, { version: number; request: string }>;
}

interface FastLaunch {
  imageId: string;
  ownerId: string;
  state: 'enabling' | 'enabling-failed' | 'enabled' | 'enabled-failed' | 'disabling' | 'disabling-failed';
  stateTransitionReason: string;
  stateTransitionTime: string;
  targetResourceCount: number;
  maxParallelLaunches: number;
  launchTemplate: { id: string; name: string; version: string } | undefined;
  /** Simulated time at which `enabling` becomes `enabled` (or fails). */
  readyAt: number;
  fails: boolean;
}

interface Instance {
  instanceId: string;
  imageId: string;
  ownerId: string;
  region: string;
  state: 'running' | 'stopped' | 'terminated';
  launchTime: string;
  launchTemplate: { id: string; version: string } | undefined;
}

/** One version of a parameter, as SSM keeps it (GetParameterHistory): its value and the labels on it. */
interface ParameterVersion {
  version: number;
  value: string;
  lastModified: Date;
  labels: string[];
}

interface Parameter {
  name: string;
  value: string;
  type: string;
  dataType: string;
  version: number;
  lastModified: Date;
  /** Every version written, oldest first (SSM keeps the last 100: "Working with parameter versions"). */
  history: ParameterVersion[];
}

interface Role {
  name: string;
  arn: string;
  accountId: string;
  /** Accounts (and role ARNs) the trust policy allows. */
  trusted: string[];
  externalId: string | undefined;
  /** MaxSessionDuration in seconds (IAM API Reference, CreateRole: 3600 to 43200, default 3600). */
  maxSessionDuration: number;
  created: string;
  assumeRolePolicyDocument: string;
  /** Inline permission policies: name → JSON document. */
  inlinePolicies: Map<string, string>;
  /** ARNs of the managed policies attached to the role. */
  attachedPolicies: Set<string>;
}

interface ManagedPolicy {
  arn: string;
  name: string;
  document: string;
  created: string;
}

interface Session {
  accessKeyId: string;
  accountId: string;
  roleArn: string;
  sessionName: string;
  expiration: Date;
}

interface QueueMessage {
  messageId: string;
  body: string;
  md5: string;
  sentAt: number;
  visibleAt: number;
  receiveCount: number;
  receiptHandle: string | undefined;
  firstReceivedAt: number | undefined;
  /** The message's attributes (SendMessage `MessageAttributes`), by name. */
  attributes?: Record<string, string>;
}

interface Queue {
  name: string;
  url: string;
  arn: string;
  accountId: string;
  region: string;
  visibilityTimeout: number;
  delaySeconds: number;
  redrive: { deadLetterTargetArn: string; maxReceiveCount: number } | undefined;
  messages: QueueMessage[];
}

/** A DynamoDB attribute value in the wire format (`{ "S": "…" }`, `{ "N": "42" }`, `{ "M": { … } }`, …). */
type AttributeValue = Record<string, unknown>;

/** A DynamoDB item: attribute name → value. */
type Item = Record<string, AttributeValue>;

/** A DynamoDB table (serverless.yml's AWS::DynamoDB::Table resources; the sandbox models no CreateTable). */
interface Table {
  name: string;
  arn: string;
  accountId: string;
  region: string;
  /** The key schema: the partition key, then the sort key if any, with their scalar types. */
  key: { name: string; type: 'S' | 'N' | 'B' }[];
  /** The TTL attribute (TimeToLiveSpecification), when enabled. Expired items are not deleted by the sandbox. */
  ttlAttribute: string | undefined;
  /** Items by their key (the key attributes' values, JSON). */
  items: Map<string, Item>;
}

interface PublishedEvent {
  id: string;
  time: string;
  account: string;
  region: string;
  bus: string;
  source: string;
  detailType: string;
  resources: string[];
  detail: unknown;
}

interface ImageBuilderStore {
  distributions: Map<string, DistributionConfiguration>;
  recipes: Map<string, ImageRecipe>;
  infrastructure: Map<string, InfrastructureConfiguration>;
  pipelines: Map<string, ImagePipeline>;
  images: Map<string, Image>;
  clientTokens: Map<string, string>;
}

/** An Auto Scaling group: a launch template version (or a mixed-instances policy) or a launch configuration. */
interface AutoScalingGroup {
  name: string;
  arn: string;
  launchConfigurationName: string | undefined;
  launchTemplate: { id: string | undefined; name: string | undefined; version: string | undefined } | undefined;
  mixedTemplates: { id: string | undefined; name: string | undefined; version: string | undefined }[];
  minSize: number;
  maxSize: number;
  created: string;
}

interface LaunchConfiguration {
  name: string;
  arn: string;
  imageId: string;
  instanceType: string;
  created: string;
}

/** A Spot Fleet or EC2 Fleet request: AMIs named directly, or launch template versions. */
interface Fleet {
  id: string;
  kind: 'spot-fleet' | 'ec2-fleet';
  state: string;
  imageIds: string[];
  templates: { id: string | undefined; name: string | undefined; version: string | undefined; overrideImageIds: string[] }[];
  created: string;
}

/**
 * A Spot Instance request (RequestSpotInstances): it launches from the AMI of its launch specification, and a
 * persistent one launches again after its instance is interrupted or terminated.
 */
interface SpotInstanceRequest {
  id: string;
  type: 'one-time' | 'persistent';
  state: 'open' | 'active' | 'closed' | 'cancelled' | 'failed' | 'disabled';
  statusCode: string;
  imageId: string;
  instanceType: string;
  instanceId: string | undefined;
  created: string;
}

/** A CloudFormation stack: its template as submitted and its parameters (an SSM parameter type resolved). */
interface Stack {
  stackId: string;
  name: string;
  status: string;
  templateBody: string;
  parameters: { key: string; value: string; resolvedValue: string | undefined }[];
  created: string;
}

/** An AWS Batch compute environment: what cleanup's in-use check reads of it (the AMIs it launches from). */
interface ComputeEnvironment {
  name: string;
  arn: string;
  type: 'MANAGED' | 'UNMANAGED';
  state: 'ENABLED' | 'DISABLED';
  status: 'CREATING' | 'UPDATING' | 'DELETING' | 'DELETED' | 'VALID' | 'INVALID';
  statusReason: string | undefined;
  /** The ComputeResource as given (managed environments only). */
  computeResources: Record<string, unknown> | undefined;
  serviceRole: string | undefined;
}

/** An Amazon EMR cluster, with its instance groups or instance fleets (each may name its own custom AMI). */
interface EmrCluster {
  id: string;
  arn: string;
  name: string;
  state: 'STARTING' | 'BOOTSTRAPPING' | 'RUNNING' | 'WAITING' | 'TERMINATING' | 'TERMINATED' | 'TERMINATED_WITH_ERRORS';
  releaseLabel: string | undefined;
  customAmiId: string | undefined;
  collection: 'INSTANCE_GROUP' | 'INSTANCE_FLEET';
  groups: { id: string; name: string | undefined; role: string; instanceType: string; count: number; customAmiId: string | undefined }[];
  fleets: {
    id: string;
    name: string | undefined;
    type: string;
    specs: { instanceType: string; weightedCapacity: number; customAmiId: string | undefined }[];
  }[];
  created: string;
  ended: string | undefined;
}

/** An S3 bucket (global name, one owner and region) and its objects by key. */
interface Bucket {
  name: string;
  ownerId: string;
  region: string;
  created: string;
  objects: Map<string, { body: string; etag: string; lastModified: Date; contentType: string }>;
}

/** A VM Import/Export image export task (ExportImage). */
interface ExportTask {
  id: string;
  imageId: string;
  format: 'VMDK' | 'RAW' | 'VHD';
  bucket: string;
  prefix: string;
  status: 'active' | 'completed' | 'deleting' | 'deleted' | 'failed';
  statusMessage: string | undefined;
  progress: string | undefined;
  description: string | undefined;
  clientToken: string | undefined;
}

/** An AMI usage report (CreateImageUsageReport): use of an AMI by other accounts. */
interface UsageReport {
  reportId: string;
  imageId: string;
  resourceTypes: string[];
  accountIds: string[] | undefined;
  versionDepth: number;
  created: number;
  entries: { accountId: string; resourceType: string; count: number }[];
}

interface CellStore {
  autoScalingGroups: Map<string, AutoScalingGroup>;
  launchConfigurations: Map<string, LaunchConfiguration>;
  fleets: Map<string, Fleet>;
  spotInstanceRequests: Map<string, SpotInstanceRequest>;
  /** CloudFormation stacks, by stack id (deleted ones stay, DELETE_COMPLETE, as AWS keeps them for a while). */
  stacks: Map<string, Stack>;
  /** AWS Batch compute environments, by name (deleted ones stay, DELETED, as Batch lists them for a while). */
  computeEnvironments: Map<string, ComputeEnvironment>;
  /** Amazon EMR clusters, by cluster id (terminated ones stay: EMR lists them for two months). */
  emrClusters: Map<string, EmrCluster>;
  usageReports: Map<string, UsageReport>;
  images: Map<string, Ami>;
  snapshots: Map<string, Snapshot>;
  launchTemplates: Map<string, LaunchTemplate>;
  fastLaunch: Map<string, FastLaunch>;
  instances: Map<string, Instance>;
  parameters: Map<string, Parameter>;
  /** `aws:ec2:image` puts that answered 200 and are still being validated, by parameter name. */
  parameterValidations: Map<string, { value: string; version: number }>;
  imagebuilder: ImageBuilderStore;
  /** EC2 image export tasks (ExportImage), by id. */
  exportTasks: Map<string, ExportTask>;
  /** License Manager: this account's license configurations in the region, by ARN. */
  licenseConfigurations: Map<string, { arn: string; name: string; countingType: string }>;
  /** License Manager: the license configuration ARNs this account associated with each AMI, by AMI id. */
  licenseAssociations: Map<string, Set<string>>;
}

function hex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** AWS-shaped resource ids: `ami-` + 17 hex digits, and the like. */
function resourceId(prefix: string): string {
  return `${prefix}-${hex(9).slice(0, 17)}`;
}

/**
 * A cell's AMIs, by id, that also keep the region's index (every account's AMIs of the region by id) as they
 * change: finding an AMI by id, in any account, is then one lookup, not a scan of every cell.
 */
class IndexedImages extends Map<string, Ami> {
  constructor(private readonly regionIndex: Map<string, Ami>) {
    super();
  }

  override set(imageId: string, image: Ami): this {
    this.regionIndex.set(imageId, image);
    return super.set(imageId, image);
  }

  override delete(imageId: string): boolean {
    if (this.regionIndex.get(imageId) === super.get(imageId)) this.regionIndex.delete(imageId);
    return super.delete(imageId);
  }

  override clear(): void {
    for (const imageId of this.keys()) this.delete(imageId);
  }
}

class SandboxState {
  readonly defaultAccount: string;
  readonly accounts = new Set<string>();
  readonly regions: string[];
  readonly roles = new Map<string, Map<string, Role>>();
  readonly sessions = new Map<string, Session>();
  /** Managed policies by ARN: the customer's, and the AWS managed ones the sandbox knows (iam/aws-managed.ts). */
  readonly managedPolicies = new Map<string, ManagedPolicy>();
  /** `account/service` of the service-linked roles that exist (e.g. `…/ec2fastlaunch.amazonaws.com`). */
  readonly serviceLinkedRoles = new Set<string>();
  /** `account/region` where block public access for AMIs is `block-new-sharing` (EnableImageBlockPublicAccess). */
  readonly imageBlockPublicAccess = new Set<string>();
  /**
   * The AWS Organizations organization each account belongs to (`o-…`); an account not listed belongs to none.
   * IAM's global condition keys aws:ResourceOrgID / aws:PrincipalOrgID carry it (IAM User Guide, "AWS global
   * condition context keys").
   */
  readonly organizations = new Map<string, string>();
  /**
   * The organizational units of each organization (AWS Organizations User Guide, "Managing organizational units"):
   * id → its organization and its parent, the organization's root (`r-…`, see {@link rootOf}) or another OU.
   */
  readonly organizationalUnits = new Map<string, { id: string; name: string; organization: string; parent: string }>();
  /** The OU each member account is in; an account of an organization that is in none is in its root. */
  readonly accountUnits = new Map<string, string>();
  /** Each organization's management account: the first account the scenario lists for it. */
  readonly organizationManagement = new Map<string, string>();
  /** Encoded authorization failure messages (EC2's UnauthorizedOperation) → their decoded JSON. */
  readonly authorizationMessages = new Map<string, string>();
  readonly queues = new Map<string, Queue>();
  /** S3 buckets by name (bucket names are global). */
  readonly buckets = new Map<string, Bucket>();
  /** DynamoDB tables by `account/region/name`. */
  readonly tables = new Map<string, Table>();
  readonly events: PublishedEvent[] = [];
  private readonly cells = new Map<string, CellStore>();
  /** Every account's AMIs of a region, by id (kept by the cells' image maps). */
  private readonly imagesByRegion = new Map<string, Map<string, Ami>>();

  constructor(options: { defaultAccount: string; accounts: string[]; regions: string[] }) {
    this.defaultAccount = options.defaultAccount;
    this.regions = options.regions;
    for (const account of [options.defaultAccount, ...options.accounts]) this.accounts.add(account);
    for (const policy of awsManagedPolicies('2024-05-13T22:45:00Z')) this.managedPolicies.set(policy.arn, policy);
  }

  cell(account: string, region: string): CellStore {
    const key = `${account}/${region}`;
    let store = this.cells.get(key);
    if (store === undefined) {
      let regionIndex = this.imagesByRegion.get(region);
      if (regionIndex === undefined) {
        regionIndex = new Map();
        this.imagesByRegion.set(region, regionIndex);
      }
      store = {
        images: new IndexedImages(regionIndex),
        snapshots: new Map(),
        launchTemplates: new Map(),
        fastLaunch: new Map(),
        instances: new Map(),
        parameters: new Map(),
        parameterValidations: new Map(),
        autoScalingGroups: new Map(),
        launchConfigurations: new Map(),
        fleets: new Map(),
        spotInstanceRequests: new Map(),
        stacks: new Map(),
        computeEnvironments: new Map(),
        emrClusters: new Map(),
        usageReports: new Map(),
        licenseConfigurations: new Map(),
        licenseAssociations: new Map(),
        exportTasks: new Map(),
        imagebuilder: {
          distributions: new Map(),
          recipes: new Map(),
          infrastructure: new Map(),
          pipelines: new Map(),
          images: new Map(),
          clientTokens: new Map(),
        },
      };
      this.cells.set(key, store);
    }
    return store;
  }

  /** Every cell store that exists, with its account and region. */
  allCells(): { account: string; region: string; store: CellStore }[] {
    return [...this.cells.entries()].map(([key, store]) => {
      const [account = '', region = ''] = key.split('/');
      return { account, region, store };
    });
  }

  /** Find an AMI by id in any account of a region (for shared AMIs). */
  findImage(region: string, imageId: string): Ami | undefined {
    return this.imagesByRegion.get(region)?.get(imageId);
  }

  /** Every account's AMIs of a region. */
  imagesOfRegion(region: string): Iterable<Ami> {
    return this.imagesByRegion.get(region)?.values() ?? [];
  }

  rolesOf(account: string): Map<string, Role> {
    let roles = this.roles.get(account);
    if (roles === undefined) {
      roles = new Map();
      this.roles.set(account, roles);
    }
    return roles;
  }

  putRole(account: string, name: string, trusted: string[], externalId?: string, partition = 'aws'): Role {
    const role: Role = {
      name,
      arn: `arn:${partition}:iam::${account}:role/${name}`,
      accountId: account,
      trusted,
      externalId,
      maxSessionDuration: 3600,
      created: new Date().toISOString(),
      inlinePolicies: new Map(),
      attachedPolicies: new Set(),
      assumeRolePolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Principal: { AWS: trusted.map((t) => (/^\d{12}$/.test(t) ? `arn:${partition}:iam::${t}:root` : t)) },
            Action: 'sts:AssumeRole',
          },
        ],
      }),
    };
    this.rolesOf(account).set(name, role);
    this.accounts.add(account);
    return role;
  }

  /** The account an access key id acts for: 12 digits act as that account; session keys as theirs. */
  accountFor(accessKeyId: string | undefined): string {
    if (accessKeyId === undefined) return this.defaultAccount;
    if (/^\d{12}$/.test(accessKeyId)) return accessKeyId;
    return this.sessions.get(accessKeyId)?.accountId ?? this.defaultAccount;
  }
}

export { SandboxState, hex, resourceId };
export type {
  AttributeValue,
  Item,
  Table,
  Ami,
  AutoScalingGroup,
  SpotInstanceRequest,
  Stack,
  ComputeEnvironment,
  EmrCluster,
  Bucket,
  ExportTask,
  CellStore,
  Fleet,
  LaunchConfiguration,
  ManagedPolicy,
  UsageReport,
  FastLaunch,
  ImageBuilderStore,
  Instance,
  LaunchTemplate,
  LaunchTemplateVersion,
  Parameter,
  ParameterVersion,
  PublishedEvent,
  Queue,
  QueueMessage,
  Role,
  Session,
  Snapshot,
};
