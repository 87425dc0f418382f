import { writeParameter } from '../../emulator/services/parameters.ts';
import { type Obj as TemplateObj, templateRoles } from '../../emulator/iam/cloudformation.ts';
import { installRole } from '../../emulator/iam/roles.ts';
import { partitionOf } from '../../emulator/partition.ts';
import type { SandboxEnv } from '../../emulator/server.ts';
import { createTable } from '../../emulator/services/dynamodb.ts';
import { createQueue } from '../../emulator/services/sqs.ts';
import type { Queue, Role, Table } from '../../emulator/state.ts';
import { type Deployment, type Json, type Obj, isObj, logicalIdOf } from './deployment.ts';

/**
 * The deployment's CloudFormation resources, created in the emulator as CloudFormation creates them: its SQS
 * queues (with their redrive policies), its DynamoDB tables and its IAM roles (the framework's and those under
 * resources), in the reconciler's account and region; and the Serverless variables and references that name them.
 */
class Stack {
  /** The deployment's queues, by logical id. */
  readonly queues = new Map<string, Queue>();
  /** The deployment's DynamoDB tables, by logical id. */
  readonly tables = new Map<string, Table>();
  /** The deployment's IAM roles in the sandbox, by logical id. */
  readonly roles = new Map<string, Role>();

  constructor(
    private readonly env: SandboxEnv,
    private readonly deployment: Deployment,
    private readonly where: { account: string; region: string },
  ) {}

  physicalName(logicalId: string): string {
    return `${this.deployment.service}-sandbox-${logicalId}`;
  }

  /** A Serverless variable or a CloudFormation reference of serverless.yml, as deployed here. */
  resolve(value: Json): string {
    if (typeof value === 'string') {
      return value
        .replace(/\$\{param:(\w+)\}/g, (_, name: string) => this.deployment.params[name] ?? '')
        .replace(/\$\{self:service\}/g, this.deployment.service)
        .replace(/\$\{sls:stage\}/g, 'sandbox')
        .replace(/\$\{aws:region\}/g, this.where.region)
        .replace(/\$\{aws:accountId\}/g, this.where.account);
    }
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    if (isObj(value)) {
      if (value.Ref === 'AWS::AccountId') return this.where.account;
      if (value.Ref === 'AWS::Region') return this.where.region;
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
    const known = [
      'TableName',
      'KeySchema',
      'AttributeDefinitions',
      'BillingMode',
      'TimeToLiveSpecification',
      'SSESpecification',
      'PointInTimeRecoverySpecification',
    ];
    const unknown = Object.keys(properties).filter((k) => !known.includes(k));
    if (unknown.length > 0) throw new Error(`table ${logicalId}: the sandbox does not model ${unknown.join(', ')}`);
    const definitions = Array.isArray(properties.AttributeDefinitions) ? properties.AttributeDefinitions.filter(isObj) : [];
    const key = (Array.isArray(properties.KeySchema) ? properties.KeySchema.filter(isObj) : [])
      .sort((a, b) => (a.KeyType === 'HASH' ? -1 : 0) - (b.KeyType === 'HASH' ? -1 : 0))
      .map((k) => {
        const name = String(k.AttributeName);
        const type = definitions.find((d) => d.AttributeName === name)?.AttributeType;
        if (type !== 'S' && type !== 'N' && type !== 'B')
          throw new Error(`table ${logicalId}: key attribute ${name} has no AttributeDefinitions entry of type S, N or B`);
        return { name, type } as const;
      });
    const ttl =
      isObj(properties.TimeToLiveSpecification) && properties.TimeToLiveSpecification.Enabled === true
        ? String(properties.TimeToLiveSpecification.AttributeName)
        : undefined;
    const name = properties.TableName === undefined ? this.physicalName(logicalId) : this.resolve(properties.TableName);
    return createTable(this.env.state, this.where.account, this.where.region, name, key, ttl);
  }

  /** Create the deployment's IAM roles (the framework's and those under resources) with their policies. */
  installRoles(): Map<string, Role> {
    const { account, region } = this.where;
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
    const parameters = this.resolveVariables(this.deployment.parameters) as TemplateObj;
    for (const role of templateRoles(
      { Parameters: parameters, Resources: resources, Conditions: conditions },
      { account, region, partition, parameters: {}, attributes },
    )) {
      this.roles.set(role.logicalId, installRole(this.env.state, account, role, partition));
    }
    return this.roles;
  }

  /** Create the deployment's queues (AWS::SQS::Queue), then set their visibility timeouts and redrive policies. */
  createQueues(): void {
    const { account, region } = this.where;
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
  }

  /**
   * Create the deployment's AWS::SSM::Parameter resources as CloudFormation does (String parameters: Name,
   * Type, Value, Description; `Fn::Join` and `Ref` in the value). Any other property is refused, so a template
   * change the sandbox cannot follow fails loudly.
   */
  createParameters(): void {
    for (const { logicalId, properties } of this.deployment.parameterResources) {
      const unknown = Object.keys(properties).filter((k) => !['Name', 'Type', 'Value', 'Description'].includes(k));
      if (unknown.length > 0) throw new Error(`parameter ${logicalId}: the sandbox does not model ${unknown.join(', ')}`);
      if (properties.Type !== 'String') throw new Error(`parameter ${logicalId}: the sandbox models Type String only`);
      const value = (v: Json): string => {
        // Fn::Join: the values joined by the delimiter (CloudFormation User Guide, "Fn::Join")
        const join = isObj(v) ? v['Fn::Join'] : undefined;
        if (Array.isArray(join) && typeof join[0] === 'string' && Array.isArray(join[1])) return join[1].map(value).join(join[0]);
        return this.resolve(v);
      };
      const name = properties.Name === undefined ? `/${this.physicalName(logicalId)}` : this.resolve(properties.Name);
      writeParameter(this.env.state.cell(this.where.account, this.where.region), {
        name,
        value: value(properties.Value ?? ''),
        type: 'String',
        lastModified: this.env.clock.date(),
      });
    }
  }

  /** Create the deployment's AWS::DynamoDB::Table resources. */
  createTables(): void {
    for (const { logicalId, properties } of this.deployment.tables) this.tables.set(logicalId, this.createTable(logicalId, properties));
  }
}

export { Stack };
