import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Obj as TemplateObj, parseTemplate, templateRoles } from '../../emulator/iam/cloudformation.ts';
import { installRole, roleSession } from '../../emulator/iam/roles.ts';
import { AwsError } from '../../emulator/protocol/errors.ts';
import { partitionOf } from '../../emulator/partition.ts';
import type { SandboxEnv } from '../../emulator/server.ts';
import { createTable } from '../../emulator/services/dynamodb.ts';
import { createQueue, deleteMessage, receiveMessages, sendMessage } from '../../emulator/services/sqs.ts';
import type { PublishedEvent, Queue, Role, Table } from '../../emulator/state.ts';

/** Lambda's waits before the first and second retry of a failed asynchronous invocation. */
const ASYNC_RETRY_WAITS_MS = [60_000, 120_000];

/**
 * The deployment, read from serverless.yml: functions with their EventBridge patterns and SQS sources,
 * the queues it creates, and the environment every function gets. The sandbox runs the built Lambda
 * bundles in-process and delivers events and messages to them exactly as these settings say.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

interface FunctionDef {
  name: string;
  /** `dist/lambda/<fn>/index.handler` */
  handler: string;
  eventPatterns: Obj[];
  sqs: { queueLogicalId: string; batchSize: number; reportBatchItemFailures: boolean }[];
  maximumRetryAttempts: number;
  onFailureQueueLogicalId: string | undefined;
  /** Schedule events: the rule's period in ms (from `rate(…)`), and the expression as written. */
  schedules: { periodMs: number; expression: string }[];
  /** Logical id of the function's execution role (`role:`), or the framework's shared role. */
  roleLogicalId: string;
  /** The function's own environment (on top of the provider's). */
  environment: Obj;
}

const RATE_UNITS: Record<string, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/**
 * A schedule expression `rate(value unit)`, as EventBridge accepts it: a positive whole value, the unit
 * singular for 1 and plural otherwise (EventBridge User Guide, "Creating a rule that runs on a schedule",
 * rate expressions: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html).
 * Cron expressions are not modelled: the sandbox refuses them rather than ignore them.
 */
function ratePeriodMs(expression: string, fn: string): number {
  const match = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression.trim());
  const value = Number(match?.[1]);
  const unit = match?.[2] ?? '';
  const singular = unit.replace(/s$/, '');
  if (match === null || value < 1 || (value === 1) !== (unit === singular)) {
    throw new Error(`function ${fn}: "${expression}" is not a schedule expression EventBridge accepts (rate(1 hour), rate(6 hours); the sandbox does not model cron())`);
  }
  return value * (RATE_UNITS[singular] ?? 0);
}

/** The logical id the framework gives the role it makes from `provider.iam.role` (Serverless Framework docs, IAM). */
const FRAMEWORK_ROLE = 'IamRoleLambdaExecution';

interface Deployment {
  service: string;
  functions: FunctionDef[];
  queues: { logicalId: string; properties: Obj }[];
  /** AWS::DynamoDB::Table resources. */
  tables: { logicalId: string; properties: Obj }[];
  environment: Obj;
  params: Record<string, string>;
  /** The CloudFormation resources (with the framework's role from `provider.iam.role`, when it makes one). */
  resources: Obj;
  /** The template's Conditions (what `Fn::If` and a resource's `Condition` test). */
  conditions: Obj;
}

function isObj(value: Json | undefined): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function logicalIdOf(value: Json | undefined): string | undefined {
  if (!isObj(value)) return undefined;
  const getAtt = value['Fn::GetAtt'];
  if (Array.isArray(getAtt) && typeof getAtt[0] === 'string') return getAtt[0];
  return typeof value.Ref === 'string' ? value.Ref : undefined;
}

/**
 * The event patterns of the rules of infra/region-forwarder.yaml, with its parameters at their defaults:
 * what each region where that stack is deployed forwards to the reconciler's bus.
 */
function readForwarderPatterns(path: string): Obj[] {
  const doc = parseTemplate(readFileSync(path, 'utf8')) as Obj;
  const defaults: Record<string, Json> = {};
  for (const [name, p] of Object.entries(isObj(doc.Parameters) ? doc.Parameters : {})) if (isObj(p) && p.Default !== undefined) defaults[name] = p.Default;
  const resolveRefs = (value: Json): Json => {
    if (Array.isArray(value)) return value.map(resolveRefs);
    if (isObj(value)) {
      if (typeof value.Ref === 'string' && Object.keys(value).length === 1) return defaults[value.Ref] ?? null;
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveRefs(v)]));
    }
    return value;
  };
  return Object.values(isObj(doc.Resources) ? doc.Resources : {})
    .filter((r): r is Obj => isObj(r) && r.Type === 'AWS::Events::Rule' && isObj(r.Properties) && isObj(r.Properties.EventPattern))
    .map((r) => resolveRefs((r.Properties as Obj).EventPattern as Json) as Obj);
}

function readDeployment(path: string): Deployment {
  const doc = parseTemplate(readFileSync(path, 'utf8')) as Obj;
  const params: Record<string, string> = {};
  const defaults = isObj(doc.params) && isObj(doc.params.default) ? doc.params.default : {};
  for (const [k, v] of Object.entries(defaults)) params[k] = String(v);
  const provider = isObj(doc.provider) ? doc.provider : {};
  const functions: FunctionDef[] = [];
  for (const [name, raw] of Object.entries(isObj(doc.functions) ? doc.functions : {})) {
    if (!isObj(raw)) continue;
    const events = Array.isArray(raw.events) ? raw.events : [];
    const def: FunctionDef = {
      name,
      handler: String(raw.handler),
      eventPatterns: [],
      sqs: [],
      maximumRetryAttempts: typeof raw.maximumRetryAttempts === 'number' ? raw.maximumRetryAttempts : 2,
      onFailureQueueLogicalId: isObj(raw.destinations) && isObj(raw.destinations.onFailure) ? logicalIdOf(raw.destinations.onFailure.arn) : undefined,
      schedules: [],
      roleLogicalId: typeof raw.role === 'string' ? raw.role : (logicalIdOf(raw.role) ?? FRAMEWORK_ROLE),
      environment: isObj(raw.environment) ? raw.environment : {},
    };
    for (const event of events) {
      if (!isObj(event)) continue;
      if (isObj(event.eventBridge) && isObj(event.eventBridge.pattern)) def.eventPatterns.push(event.eventBridge.pattern);
      if (event.schedule !== undefined) {
        const rate = isObj(event.schedule) ? event.schedule.rate : event.schedule;
        const expressions = (Array.isArray(rate) ? rate : [rate]).map(String);
        // resolved when the wiring starts (the rate may be a ${param:…})
        for (const expression of expressions) def.schedules.push({ periodMs: 0, expression });
      }
      if (isObj(event.sqs)) {
        def.sqs.push({
          queueLogicalId: logicalIdOf(event.sqs.arn) ?? '',
          batchSize: typeof event.sqs.batchSize === 'number' ? event.sqs.batchSize : 10,
          reportBatchItemFailures: event.sqs.functionResponseType === 'ReportBatchItemFailures',
        });
      }
    }
    functions.push(def);
  }
  const resources: Obj = { ...(isObj(doc.resources) && isObj(doc.resources.Resources) ? doc.resources.Resources : {}) };
  // the framework makes one role for every function without its own `role`, from provider.iam.role
  const iamRole = isObj(provider.iam) && isObj(provider.iam.role) ? provider.iam.role : undefined;
  if (functions.some((f) => f.roleLogicalId === FRAMEWORK_ROLE)) {
    resources[FRAMEWORK_ROLE] = {
      Type: 'AWS::IAM::Role',
      Properties: {
        RoleName: iamRole?.name ?? `${String(doc.service)}-\${sls:stage}-\${aws:region}-lambdaRole`,
        AssumeRolePolicyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: ['lambda.amazonaws.com'] }, Action: ['sts:AssumeRole'] }] },
        Policies: [{ PolicyName: `${String(doc.service)}-lambda`, PolicyDocument: { Version: '2012-10-17', Statement: Array.isArray(iamRole?.statements) ? iamRole.statements : [] } }],
        ManagedPolicyArns: Array.isArray(iamRole?.managedPolicies) ? iamRole.managedPolicies : [],
      },
    };
  }
  const conditions: Obj = isObj(doc.resources) && isObj(doc.resources.Conditions) ? doc.resources.Conditions : {};
  const queues = Object.entries(resources)
    .filter(([, r]) => isObj(r) && r.Type === 'AWS::SQS::Queue')
    .map(([logicalId, r]) => ({ logicalId, properties: isObj(r) && isObj(r.Properties) ? r.Properties : {} }));
  const tables = Object.entries(resources)
    .filter(([, r]) => isObj(r) && r.Type === 'AWS::DynamoDB::Table')
    .map(([logicalId, r]) => ({ logicalId, properties: isObj(r) && isObj(r.Properties) ? r.Properties : {} }));
  return { service: String(doc.service), functions, queues, tables, environment: isObj(provider.environment) ? provider.environment : {}, params, resources, conditions };
}

// ---- EventBridge pattern matching (equality, prefix, suffix, anything-but, exists)

function matchValue(rule: Json, value: unknown): boolean {
  if (isObj(rule)) {
    if (typeof rule.prefix === 'string') return typeof value === 'string' && value.startsWith(rule.prefix);
    if (typeof rule.suffix === 'string') return typeof value === 'string' && value.endsWith(rule.suffix);
    if (rule.exists !== undefined) return (value !== undefined) === rule.exists;
    if (rule['anything-but'] !== undefined) {
      const but = rule['anything-but'];
      return value !== undefined && !(Array.isArray(but) ? but : [but]).some((b) => b === value);
    }
    return false;
  }
  return rule === value;
}

/** Whether an event matches an EventBridge pattern. */
function matchesPattern(pattern: Obj, event: Record<string, unknown>): boolean {
  return Object.entries(pattern).every(([key, rule]) => {
    const value = event[key];
    if (isObj(rule)) return typeof value === 'object' && value !== null && !Array.isArray(value) && matchesPattern(rule, value as Record<string, unknown>);
    if (!Array.isArray(rule)) return false;
    const values = Array.isArray(value) ? value : [value];
    return rule.some((r) => values.some((v) => matchValue(r, v)));
  });
}

/** One function invocation, as the log and the demo see it. */
interface Invocation {
  id: string;
  function: string;
  trigger: 'eventbridge' | 'sqs' | 'schedule' | 'manual';
  startedAt: string;
  durationMs: number;
  attempt: number;
  event: unknown;
  result: unknown;
  error: string | undefined;
  /** The second delivery of the same event or message (the `duplicateDeliveries` fault). */
  duplicate: boolean;
}

type LambdaHandler = (event: unknown, context: unknown) => Promise<unknown>;

function lambdaContext(fn: string, account: string, region: string) {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: fn,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:${partitionOf(region)}:lambda:${region}:${account}:function:${fn}`,
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${fn}`,
    logStreamName: 'sandbox',
    getRemainingTimeInMillis: () => 300_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

interface WiringOptions {
  /** serverless.yml of the deployment to wire. */
  serverlessYml: string;
  /** The account and region the reconciler is deployed to. */
  account: string;
  region: string;
  /** Environment overrides (on top of serverless.yml's). */
  environment?: Record<string, string> | undefined;
  /** Overrides of serverless.yml's params (`--param` at deploy time). */
  params?: Record<string, string> | undefined;
  /** Set the process environment the functions read (the config module's applyEnvironment). */
  applyEnvironment: (vars: Record<string, string>) => void;
  /** Regions (other than the reconciler's) where infra/region-forwarder.yaml is deployed. Default none. */
  forwardedRegions?: string[];
  /** The forwarder template; default infra/region-forwarder.yaml next to serverless.yml. */
  forwarderYml?: string;
}

/**
 * Wire a deployment into the sandbox: create its queues, give its functions their environment, deliver
 * matching events to them (with Lambda's asynchronous retries and on-failure destination), and poll their
 * SQS sources (with partial batch failures and redrive).
 */
class Wiring {
  static instances = 0;
  readonly deployment: Deployment;
  readonly invocations: Invocation[] = [];
  readonly queues = new Map<string, Queue>();
  /** The deployment's DynamoDB tables, by logical id. */
  readonly tables = new Map<string, Table>();
  onInvocation: ((invocation: Invocation) => void) | undefined;
  private readonly handlers = new Map<string, LambdaHandler>();
  private poller: NodeJS.Timeout | undefined;
  private stopped = false;
  private inFlight = new Set<Promise<unknown>>();
  /** Failed asynchronous invocations waiting for Lambda's retry. */
  private retriesWaiting = 0;
  private polling = new Set<string>();
  private readonly forwarderPatterns: Obj[];
  private functionEnvironment: (fn: FunctionDef) => Record<string, string> = () => ({});
  /** The environment every function shares (and the process keeps between loads). */
  private common: Record<string, string> = {};
  /** The deployment's IAM roles in the sandbox, by logical id. */
  readonly roles = new Map<string, Role>();

  constructor(
    private readonly env: SandboxEnv,
    private readonly options: WiringOptions,
  ) {
    this.deployment = readDeployment(options.serverlessYml);
    this.forwarderPatterns = (options.forwardedRegions ?? []).length === 0 ? [] : readForwarderPatterns(options.forwarderYml ?? join(dirname(options.serverlessYml), 'infra', 'region-forwarder.yaml'));
    Object.assign(this.deployment.params, options.params ?? {});
  }

  private physicalName(logicalId: string): string {
    return `${this.deployment.service}-sandbox-${logicalId}`;
  }

  private resolve(value: Json): string {
    if (typeof value === 'string') {
      return value
        .replace(/\$\{param:(\w+)\}/g, (_, name: string) => this.deployment.params[name] ?? '')
        .replace(/\$\{self:service\}/g, this.deployment.service)
        .replace(/\$\{sls:stage\}/g, 'sandbox')
        .replace(/\$\{aws:region\}/g, this.options.region)
        .replace(/\$\{aws:accountId\}/g, this.options.account);
    }
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    if (isObj(value)) {
      if (value.Ref === 'AWS::AccountId') return this.options.account;
      if (value.Ref === 'AWS::Region') return this.options.region;
      const id = logicalIdOf(value);
      const queue = id === undefined ? undefined : this.queues.get(id);
      if (queue !== undefined) return value.Ref !== undefined ? queue.url : queue.arn;
      // a table's Ref is its name, its Arn attribute its ARN (AWS::DynamoDB::Table return values)
      const table = id === undefined ? undefined : this.tables.get(id);
      if (table !== undefined) return value.Ref !== undefined ? table.name : table.arn;
    }
    throw new Error(`the sandbox cannot resolve ${JSON.stringify(value)} in serverless.yml`);
  }

  /** Serverless variables in every string of a value (CloudFormation's own `${AWS::…}` stay). */
  private resolveVariables(value: Json): Json {
    if (typeof value === 'string') return value.includes('${') ? this.resolve(value) : value;
    if (Array.isArray(value)) return value.map((v) => this.resolveVariables(v));
    if (isObj(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.resolveVariables(v)]));
    return value;
  }

  /**
   * A table as CloudFormation creates it from AWS::DynamoDB::Table: its TableName (else a generated name), the
   * KeySchema with the types of AttributeDefinitions, and the TimeToLiveSpecification's attribute. Only the
   * properties listed are understood; any other is refused, so a template change the sandbox cannot follow
   * fails loudly.
   */
  private createTable(logicalId: string, properties: Obj): Table {
    const known = ['TableName', 'KeySchema', 'AttributeDefinitions', 'BillingMode', 'TimeToLiveSpecification', 'SSESpecification', 'PointInTimeRecoverySpecification'];
    const unknown = Object.keys(properties).filter((k) => !known.includes(k));
    if (unknown.length > 0) throw new Error(`table ${logicalId}: the sandbox does not model ${unknown.join(', ')}`);
    const definitions = Array.isArray(properties.AttributeDefinitions) ? properties.AttributeDefinitions.filter(isObj) : [];
    const key = (Array.isArray(properties.KeySchema) ? properties.KeySchema.filter(isObj) : [])
      .sort((a, b) => (a.KeyType === 'HASH' ? -1 : 0) - (b.KeyType === 'HASH' ? -1 : 0))
      .map((k) => {
        const name = String(k.AttributeName);
        const type = definitions.find((d) => d.AttributeName === name)?.AttributeType;
        if (type !== 'S' && type !== 'N' && type !== 'B') throw new Error(`table ${logicalId}: key attribute ${name} has no AttributeDefinitions entry of type S, N or B`);
        return { name, type } as const;
      });
    const ttl = isObj(properties.TimeToLiveSpecification) && properties.TimeToLiveSpecification.Enabled === true ? String(properties.TimeToLiveSpecification.AttributeName) : undefined;
    const name = properties.TableName === undefined ? this.physicalName(logicalId) : this.resolve(properties.TableName);
    return createTable(this.env.state, this.options.account, this.options.region, name, key, ttl);
  }

  /** Create the deployment's IAM roles (the framework's and those under resources) with their policies. */
  private installRoles(): Map<string, Role> {
    const { account, region } = this.options;
    const partition = partitionOf(region);
    const resources = this.resolveVariables(this.deployment.resources) as TemplateObj;
    const attributes = (logicalId: string, attribute: string | undefined): string | undefined => {
      const table = this.tables.get(logicalId);
      if (table !== undefined) return attribute === undefined ? table.name : attribute === 'Arn' ? table.arn : undefined;
      const queue = this.queues.get(logicalId);
      if (queue === undefined) return undefined;
      return attribute === undefined ? queue.url : attribute === 'Arn' ? queue.arn : attribute === 'QueueName' ? queue.name : undefined;
    };
    const conditions = this.resolveVariables(this.deployment.conditions) as TemplateObj;
    for (const role of templateRoles({ Resources: resources, Conditions: conditions }, { account, region, partition, parameters: {}, attributes })) {
      this.roles.set(role.logicalId, installRole(this.env.state, account, role, partition));
    }
    return this.roles;
  }

  /** Create queues, set the environment and load the function bundles. */
  async start(): Promise<void> {
    const { account, region } = this.options;
    for (const { logicalId } of this.deployment.queues) {
      this.queues.set(logicalId, createQueue(this.env.state, this.env.url(), account, region, this.physicalName(logicalId), {}));
    }
    for (const { logicalId, properties } of this.deployment.queues) {
      const queue = this.queues.get(logicalId);
      if (queue === undefined) continue;
      if (typeof properties.VisibilityTimeout === 'number') queue.visibilityTimeout = properties.VisibilityTimeout;
      const redrive = properties.RedrivePolicy;
      if (isObj(redrive)) {
        const dlq = this.queues.get(logicalIdOf(redrive.deadLetterTargetArn) ?? '');
        if (dlq !== undefined) queue.redrive = { deadLetterTargetArn: dlq.arn, maxReceiveCount: Number(redrive.maxReceiveCount) };
      }
    }
    for (const { logicalId, properties } of this.deployment.tables) this.tables.set(logicalId, this.createTable(logicalId, properties));
    const vars: Record<string, string> = {};
    for (const [key, value] of Object.entries(this.deployment.environment)) vars[key] = this.resolve(value);
    const common = {
      ...vars,
      AWS_REGION: region,
      AWS_ENDPOINT_URL: this.env.url(),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      POWERTOOLS_METRICS_DISABLED: 'true',
    };
    this.common = common;
    const roles = this.installRoles();
    // each function runs with its execution role's credentials, as Lambda gives them (AWS Lambda Developer
    // Guide, "Defining Lambda function permissions with an execution role"; the runtime's environment
    // variables AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN)
    this.functionEnvironment = (fn: FunctionDef) => {
      const role = roles.get(fn.roleLogicalId);
      if (role === undefined) throw new Error(`function ${fn.name}: serverless.yml defines no IAM role ${fn.roleLogicalId}`);
      const credentials = roleSession(this.env.state, role, `${this.deployment.service}-sandbox-${fn.name}`);
      const own: Record<string, string> = {};
      for (const [key, value] of Object.entries(fn.environment)) own[key] = this.resolve(value);
      return { ...common, ...own, AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey, AWS_SESSION_TOKEN: credentials.sessionToken, ...(this.options.environment ?? {}) };
    };
    // patterns may use ${param:…} (the ARN prefix filter)
    const resolveStrings = (value: Json): Json => {
      if (typeof value === 'string') return this.resolve(value);
      // `!Sub` in a pattern: CloudFormation resolves intrinsic functions inside the rule's EventPattern
      if (isObj(value) && typeof value['Fn::Sub'] === 'string' && Object.keys(value).length === 1) {
        return this.resolve(value['Fn::Sub'])
          .replace(/\$\{AWS::Partition\}/g, partitionOf(region))
          .replace(/\$\{AWS::Region\}/g, region)
          .replace(/\$\{AWS::AccountId\}/g, account);
      }
      if (Array.isArray(value)) return value.map(resolveStrings);
      if (isObj(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveStrings(v)]));
      return value;
    };
    for (const fn of this.deployment.functions) fn.eventPatterns = fn.eventPatterns.map((p) => resolveStrings(p) as Obj);
    for (const fn of this.deployment.functions) {
      fn.schedules = fn.schedules.map(({ expression }) => {
        const resolved = this.resolve(expression);
        return { expression: resolved, periodMs: ratePeriodMs(resolved, fn.name) };
      });
    }
    await this.load();
    this.poller = setInterval(() => this.poll(), 50);
    this.poller.unref();
    for (const fn of this.deployment.functions) {
      fn.schedules.forEach((schedule, index) => this.schedule(fn, schedule.periodMs, index + 1));
    }
  }

  /** Load the functions' bundles (default: all) with their environment and role credentials, as a cold start does. */
  private async load(names?: string[]): Promise<void> {
    const root = dirname(this.options.serverlessYml);
    for (const fn of this.deployment.functions) {
      if (names !== undefined && !names.includes(fn.name)) continue;
      // functions read their environment (and credentials) when loaded, as on a cold start
      this.options.applyEnvironment(this.functionEnvironment(fn));
      const modulePath = join(root, `${fn.handler.slice(0, fn.handler.lastIndexOf('.'))}.mjs`);
      const exported = fn.handler.slice(fn.handler.lastIndexOf('.') + 1);
      let module: Record<string, unknown>;
      try {
        // a fresh module instance per sandbox: functions read their environment when loaded, as on a cold start
        module = (await import(`${pathToFileURL(modulePath).href}?sandbox=${(Wiring.instances += 1)}`)) as Record<string, unknown>;
      } catch (error: unknown) {
        throw new Error(`cannot load the ${fn.name} function from ${modulePath} (run npm run build first)`, { cause: error });
      }
      const handler = module[exported];
      if (typeof handler !== 'function') throw new Error(`${modulePath} exports no ${exported} function`);
      this.handlers.set(fn.name, handler as LambdaHandler);
    }
    // the process itself (the CLI and tests running in it) acts as the home account's administrator, as before
    // any function was loaded; each loaded function keeps the role credentials it read at load time
    this.options.applyEnvironment({ ...this.common, AWS_ACCESS_KEY_ID: this.options.account, AWS_SECRET_ACCESS_KEY: 'sandbox', AWS_SESSION_TOKEN: '', ...(this.options.environment ?? {}) });
  }

  /**
   * New execution environments for some functions (default: all), as Lambda starts after an update or when
   * it scales out: they load again, with fresh role credentials and nothing cached from earlier runs.
   */
  async coldStart(names?: string[]): Promise<void> {
    const unknown = (names ?? []).filter((name) => !this.deployment.functions.some((fn) => fn.name === name));
    if (unknown.length > 0) throw new Error(`serverless.yml defines no function ${unknown.join(', ')}`);
    await this.idle();
    await this.load(names);
  }

  /**
   * An EventBridge schedule rule: every period of simulated time, the `Scheduled Event` EventBridge sends
   * (source aws.events, the rule's ARN in resources, empty detail), invoked asynchronously like any rule target.
   */
  private schedule(fn: FunctionDef, periodMs: number, index: number): void {
    const { account, region } = this.options;
    const ruleArn = `arn:${partitionOf(region)}:events:${region}:${account}:rule/${this.deployment.service}-sandbox-${fn.name}-schedule-${index}`;
    const fire = (): void => {
      if (this.stopped) return;
      const event = { version: '0', id: randomUUID(), 'detail-type': 'Scheduled Event', source: 'aws.events', account, time: this.env.clock.iso(), region, resources: [ruleArn], detail: {} };
      this.track(this.deliverToTarget(fn, event, 'schedule'));
      this.env.clock.after(periodMs, fire);
    };
    this.env.clock.after(periodMs, fire);
  }

  /**
   * Deliver a published event to every function whose rule matches it: events on the default bus of the
   * deployment's account and region, and events of the regions where the forwarder stack is deployed that
   * one of its rules matches. A forwarded event keeps its source region
   * (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-region.html).
   */
  deliver(event: PublishedEvent): void {
    if (event.bus !== 'default' || event.account !== this.options.account) return;
    if (event.region !== this.options.region) {
      if (!(this.options.forwardedRegions ?? []).includes(event.region)) return;
      const envelope = { 'detail-type': event.detailType, source: event.source, account: event.account, region: event.region, resources: event.resources, detail: event.detail };
      if (!this.forwarderPatterns.some((pattern) => matchesPattern(pattern, envelope))) return;
    }
    const delay = this.env.faults.eventDelayMs(event.resources);
    if (delay > 0) {
      this.env.clock.after(delay, () => this.deliverNow(event));
      return;
    }
    this.deliverNow(event);
  }

  private deliverNow(event: PublishedEvent): void {
    const envelope = { version: '0', id: event.id, 'detail-type': event.detailType, source: event.source, account: event.account, time: event.time, region: event.region, resources: event.resources, detail: event.detail };
    for (const fn of this.deployment.functions) {
      if (!fn.eventPatterns.some((pattern) => matchesPattern(pattern, envelope))) continue;
      this.track(this.deliverToTarget(fn, envelope, 'eventbridge'));
    }
  }

  /** One event to one rule target: once, or twice under the `duplicateDeliveries` fault (the same event, same id). */
  private async deliverToTarget(fn: FunctionDef, event: unknown, trigger: Invocation['trigger']): Promise<void> {
    const mode = this.env.faults.settings.duplicateDeliveries;
    if (mode === 'off') return this.invokeAsync(fn, event, trigger);
    if (mode === 'sequential') {
      await this.invokeAsync(fn, event, trigger);
      return this.invokeAsync(fn, event, trigger, true);
    }
    await Promise.all([this.invokeAsync(fn, event, trigger), this.invokeAsync(fn, event, trigger, true)]);
  }

  private track(promise: Promise<unknown>): void {
    this.inFlight.add(promise);
    void promise.finally(() => this.inFlight.delete(promise));
  }

  /**
   * Lambda's asynchronous invocation: on an error, Lambda runs the function up to `maximumRetryAttempts` more
   * times, waiting one minute before the first retry and two minutes before the second (Lambda Developer
   * Guide, "Error handling and automatic retries in Lambda", asynchronous invocation), then sends the event
   * to the on-failure destination. The waits run on the sandbox clock, like a queue's delay: nothing is in
   * flight meanwhile, so `idle()` returns with the failure seen and the retry still to come.
   */
  private async invokeAsync(fn: FunctionDef, event: unknown, trigger: Invocation['trigger'], duplicate = false, attempt = 1): Promise<void> {
    const outcome = await this.invoke(fn, trigger, event, attempt, duplicate);
    if (outcome.error === undefined) return;
    if (attempt <= fn.maximumRetryAttempts) {
      const waitMs = ASYNC_RETRY_WAITS_MS[Math.min(attempt, ASYNC_RETRY_WAITS_MS.length) - 1] ?? 120_000;
      this.retriesWaiting += 1;
      this.env.clock.after(waitMs, () => {
        this.retriesWaiting -= 1;
        this.track(this.invokeAsync(fn, event, trigger, duplicate, attempt + 1));
      });
      return;
    }
    const queue = fn.onFailureQueueLogicalId === undefined ? undefined : this.queues.get(fn.onFailureQueueLogicalId);
    if (queue !== undefined) {
      const record = { version: '1.0', timestamp: this.env.clock.iso(), requestContext: { functionArn: fn.name, condition: 'RetriesExhausted', approximateInvokeCount: attempt }, requestPayload: event, responseContext: { functionError: 'Unhandled' }, responsePayload: { errorMessage: outcome.error } };
      sendMessage(this.env.state, queue, JSON.stringify(record), 0, this.env.clock.now());
    }
  }

  private async invoke(fn: FunctionDef, trigger: Invocation['trigger'], event: unknown, attempt: number, duplicate = false): Promise<Invocation> {
    const handler = this.handlers.get(fn.name);
    const started = Date.now();
    const invocation: Invocation = { id: randomUUID(), function: fn.name, trigger, startedAt: new Date(started).toISOString(), durationMs: 0, attempt, event, result: undefined, error: undefined, duplicate };
    try {
      if (handler === undefined) throw new Error(`function ${fn.name} is not loaded`);
      invocation.result = await handler(event, lambdaContext(`${this.deployment.service}-sandbox-${fn.name}`, this.options.account, this.options.region));
    } catch (error: unknown) {
      invocation.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    }
    invocation.durationMs = Date.now() - started;
    this.invocations.push(invocation);
    this.onInvocation?.(invocation);
    return invocation;
  }

  /**
   * Invoke a function synchronously, as `serverless invoke -f <name>` or Lambda's Invoke API with
   * InvocationType RequestResponse does: no retries, no destination; the caller gets the result or the error.
   */
  async invokeFunction(name: string, event: unknown): Promise<Invocation> {
    const fn = this.deployment.functions.find((f) => f.name === name);
    if (fn === undefined) throw new Error(`serverless.yml defines no function ${name}`);
    const run = this.invoke(fn, 'manual', event, 1);
    this.track(run);
    return run;
  }

  /** The SQS event source mappings: receive, invoke, delete what succeeded. */
  private poll(): void {
    for (const fn of this.deployment.functions) {
      for (const source of fn.sqs) {
        const queue = this.queues.get(source.queueLogicalId);
        const key = `${fn.name}/${source.queueLogicalId}`;
        if (queue === undefined || this.polling.has(key)) continue;
        const messages = receiveMessages(this.env.state, queue, source.batchSize, queue.visibilityTimeout, this.env.clock.now());
        if (messages.length === 0) continue;
        const event = {
          Records: messages.map((m) => ({
            messageId: m.messageId,
            receiptHandle: m.receiptHandle ?? '',
            body: m.body,
            attributes: { ApproximateReceiveCount: String(m.receiveCount), SentTimestamp: String(m.sentAt), SenderId: this.options.account, ApproximateFirstReceiveTimestamp: String(m.firstReceivedAt ?? m.sentAt) },
            messageAttributes: {},
            md5OfBody: m.md5,
            eventSource: 'aws:sqs',
            eventSourceARN: queue.arn,
            awsRegion: queue.region,
          })),
        };
        this.polling.add(key);
        const failedIn = (invocation: Invocation): Set<string> => {
          // an invocation that failed as a whole fails every message of its batch
          if (invocation.error !== undefined) return new Set(messages.map((m) => m.messageId));
          const result = invocation.result as { batchItemFailures?: { itemIdentifier: string }[] } | undefined;
          return new Set(source.reportBatchItemFailures ? (result?.batchItemFailures ?? []).map((f) => f.itemIdentifier) : []);
        };
        const settle = (invocation: Invocation): void => {
          const failed = failedIn(invocation);
          for (const m of messages) {
            if (failed.has(m.messageId)) continue; // visible again after the visibility timeout
            try {
              deleteMessage(queue, m.receiptHandle);
            } catch (error: unknown) {
              // a message already moved to the dead-letter queue has no valid receipt handle any more
              if (!(error instanceof AwsError)) throw error;
            }
          }
        };
        /** The duplicate delivery of the batch: a copy its function failed stays in the queue, to be received again. */
        const settleCopy = (invocation: Invocation): void => {
          const failed = failedIn(invocation);
          const visibleAt = this.env.clock.now() + queue.visibilityTimeout * 1000;
          for (const m of messages) {
            if (!failed.has(m.messageId) || queue.messages.some((q) => q.messageId === m.messageId)) continue;
            queue.messages.push({ ...m, receiptHandle: undefined, visibleAt });
          }
        };
        const mode = this.env.faults.settings.duplicateDeliveries;
        const run =
          mode === 'off'
            ? this.invoke(fn, 'sqs', event, 1).then(settle)
            : mode === 'sequential'
              ? this.invoke(fn, 'sqs', event, 1)
                  .then(settle)
                  .then(() => this.invoke(fn, 'sqs', event, 1, true))
                  .then(settleCopy)
              : Promise.all([this.invoke(fn, 'sqs', event, 1), this.invoke(fn, 'sqs', event, 1, true)]).then(([first, second]) => {
                  settle(first);
                  settleCopy(second);
                });
        this.track(run.finally(() => this.polling.delete(key)));
      }
    }
  }

  /** Whether any invocation runs or waits for its retry, or any queue a function consumes still holds messages. */
  busy(): boolean {
    if (this.inFlight.size > 0 || this.retriesWaiting > 0) return true;
    return this.deployment.functions.some((fn) => fn.sqs.some((source) => (this.queues.get(source.queueLogicalId)?.messages.length ?? 0) > 0));
  }

  /** Wait until no invocation is running. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  stop(): void {
    this.stopped = true;
    if (this.poller !== undefined) clearInterval(this.poller);
  }
}

export { Wiring, matchesPattern, readDeployment, readForwarderPatterns };
export type { Deployment, FunctionDef, Invocation };
