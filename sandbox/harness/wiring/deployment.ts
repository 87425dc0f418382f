import { readFileSync } from 'node:fs';
import { parseTemplate } from '../../emulator/iam/cloudformation.ts';

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
  /**
   * SQS event sources. `maximumConcurrency`: the event source mapping's ScalingConfig (how many batches its
   * pollers run at once; 2 to 1,000), unset when serverless.yml gives none.
   */
  sqs: { queueLogicalId: string; batchSize: number; reportBatchItemFailures: boolean; maximumConcurrency?: number | undefined }[];
  maximumRetryAttempts: number;
  /**
   * The function's reserved concurrency (`reservedConcurrency`: a number, or a `${param:…}` resolved when the
   * wiring starts), unset for a function that shares the account's unreserved concurrency.
   */
  reservedConcurrency: Json | undefined;
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
    throw new Error(
      `function ${fn}: "${expression}" is not a schedule expression EventBridge accepts (rate(1 hour), rate(6 hours); the sandbox does not model cron())`,
    );
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
  /** The stack's CloudFormation parameters (`resources.Parameters`), each with its default. */
  parameters: Obj;
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
      onFailureQueueLogicalId:
        isObj(raw.destinations) && isObj(raw.destinations.onFailure) ? logicalIdOf(raw.destinations.onFailure.arn) : undefined,
      schedules: [],
      roleLogicalId: typeof raw.role === 'string' ? raw.role : (logicalIdOf(raw.role) ?? FRAMEWORK_ROLE),
      environment: isObj(raw.environment) ? raw.environment : {},
      reservedConcurrency: raw.reservedConcurrency ?? undefined,
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
          maximumConcurrency: typeof event.sqs.maximumConcurrency === 'number' ? event.sqs.maximumConcurrency : undefined,
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
        AssumeRolePolicyDocument: {
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Principal: { Service: ['lambda.amazonaws.com'] }, Action: ['sts:AssumeRole'] }],
        },
        Policies: [
          {
            PolicyName: `${String(doc.service)}-lambda`,
            PolicyDocument: { Version: '2012-10-17', Statement: Array.isArray(iamRole?.statements) ? iamRole.statements : [] },
          },
        ],
        ManagedPolicyArns: Array.isArray(iamRole?.managedPolicies) ? iamRole.managedPolicies : [],
      },
    };
  }
  const conditions: Obj = isObj(doc.resources) && isObj(doc.resources.Conditions) ? doc.resources.Conditions : {};
  // CloudFormation parameters of the stack (their defaults are params): the conditions and roles name them
  const parameters: Obj = isObj(doc.resources) && isObj(doc.resources.Parameters) ? doc.resources.Parameters : {};
  const queues = Object.entries(resources)
    .filter(([, r]) => isObj(r) && r.Type === 'AWS::SQS::Queue')
    .map(([logicalId, r]) => ({ logicalId, properties: isObj(r) && isObj(r.Properties) ? r.Properties : {} }));
  const tables = Object.entries(resources)
    .filter(([, r]) => isObj(r) && r.Type === 'AWS::DynamoDB::Table')
    .map(([logicalId, r]) => ({ logicalId, properties: isObj(r) && isObj(r.Properties) ? r.Properties : {} }));
  return {
    service: String(doc.service),
    functions,
    queues,
    tables,
    environment: isObj(provider.environment) ? provider.environment : {},
    params,
    resources,
    conditions,
    parameters,
  };
}

/**
 * The ARN a role of the deployment gets where the sandbox deploys it (account, region, stage `sandbox`): the
 * target-account roles are deployed with them (ReconcilerRoleArn, CleanupRoleArn), as an operator deploys
 * infra/target-account-role.yaml with the stack's outputs.
 */
function deployedRoleArn(deployment: Deployment, logicalId: string, where: { account: string; region: string; partition: string }): string {
  const resource = deployment.resources[logicalId];
  const properties = isObj(resource) && isObj(resource.Properties) ? resource.Properties : undefined;
  if (properties === undefined || typeof properties.RoleName !== 'string')
    throw new Error(`serverless.yml has no role ${logicalId} with a RoleName the sandbox can resolve`);
  const name = properties.RoleName.replace(/\$\{param:(\w+)\}/g, (_, p: string) => deployment.params[p] ?? '')
    .replace(/\$\{self:service\}/g, deployment.service)
    .replace(/\$\{sls:stage\}/g, 'sandbox')
    .replace(/\$\{aws:region\}/g, where.region);
  return `arn:${where.partition}:iam::${where.account}:role/${name}`;
}

export { FRAMEWORK_ROLE, deployedRoleArn, isObj, logicalIdOf, ratePeriodMs, readDeployment };
export type { Deployment, FunctionDef, Json, Obj };
