import * as schemas from '@aws-sdk/client-dynamodb';
import { partitionOf } from '../partition.ts';
import { AwsError } from '../protocol/errors.ts';
import { type Ctx, type ServiceDef, op } from '../server.ts';
import type { AttributeValue, Item, SandboxState, Table } from '../state.ts';
import { type Placeholders, evaluate, parseCondition, parseUpdate, typeOf } from './dynamodb-expressions.ts';

/**
 * Amazon DynamoDB over its JSON 1.0 protocol (target prefix `DynamoDB_20120810`), as far as Powertools
 * Idempotency's DynamoDB persistence layer needs it: PutItem with a ConditionExpression and
 * ReturnValuesOnConditionCheckFailure, GetItem, UpdateItem with a SET expression, DeleteItem. Operations,
 * members and error codes are those of the service model (@aws-sdk/client-dynamodb) and the DynamoDB API
 * Reference (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/); errors are HTTP 400 with
 * `__type` and `message`, and a failed condition answers ConditionalCheckFailedException ("The conditional
 * request failed") carrying the item when ReturnValuesOnConditionCheckFailure is ALL_OLD (API Reference,
 * PutItem). Tables come from serverless.yml's AWS::DynamoDB::Table resources ({@link createTable}).
 *
 * Not modelled, and refused with a ValidationException that says so rather than ignored: the legacy
 * parameters (Expected, ConditionalOperator, AttributeUpdates, AttributesToGet), ProjectionExpression,
 * ReturnConsumedCapacity and ReturnItemCollectionMetrics other than NONE, and the expression forms
 * listed in dynamodb-expressions.ts. TTL deletes nothing: DynamoDB deletes expired items "within a few
 * days" (Developer Guide, "Time to Live"), so a reader must check the expiry itself, as Powertools does.
 */

/** The members of PutItem, GetItem, UpdateItem and DeleteItem as they arrive (wire format, not yet checked). */
interface ItemInput {
  [member: string]: unknown;
  TableName?: string;
  Item?: unknown;
  Key?: unknown;
  ConditionExpression?: string;
  UpdateExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Record<string, unknown>;
  ReturnValues?: string;
  ReturnValuesOnConditionCheckFailure?: string;
}

const ATTRIBUTE_TYPES = new Set(['S', 'N', 'B', 'BOOL', 'NULL', 'M', 'L', 'SS', 'NS', 'BS']);

/** The most an item may hold (Developer Guide, "Service, account, and table quotas": 400 KB). */
const MAX_ITEM_BYTES = 400 * 1024;

function validation(message: string): AwsError {
  return new AwsError('ValidationException', message);
}

function tableKey(account: string, region: string, name: string): string {
  return `${account}/${region}/${name}`;
}

/** Create a table (serverless.yml resources); an existing one of that name is returned as it is. */
function createTable(state: SandboxState, account: string, region: string, name: string, key: Table['key'], ttlAttribute?: string): Table {
  const existing = state.tables.get(tableKey(account, region, name));
  if (existing !== undefined) return existing;
  if (!/^[A-Za-z0-9_.-]{3,255}$/.test(name))
    throw validation(`TableName must be 3 to 255 characters of a-z, A-Z, 0-9, _, - and .: ${name}`);
  if (key.length < 1 || key.length > 2) throw validation('A key schema has a partition key and at most one sort key');
  const table: Table = {
    name,
    arn: `arn:${partitionOf(region)}:dynamodb:${region}:${account}:table/${name}`,
    accountId: account,
    region,
    key,
    ttlAttribute,
    items: new Map(),
  };
  state.tables.set(tableKey(account, region, name), table);
  return table;
}

function findTable(ctx: Ctx, name: string | undefined): Table {
  const table = name === undefined ? undefined : ctx.env.state.tables.get(tableKey(ctx.account, ctx.region, name));
  if (table === undefined) throw new AwsError('ResourceNotFoundException', 'Requested resource not found');
  return table;
}

/** An attribute value must set exactly one supported data type, numbers must be numbers (API Reference, AttributeValue). */
function checkValue(value: unknown): asserts value is AttributeValue {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw validation('Supplied AttributeValue is empty, must contain exactly one of the supported datatypes');
  const types = Object.keys(value).filter((k) => (value as Record<string, unknown>)[k] !== undefined);
  if (types.length === 0) throw validation('Supplied AttributeValue is empty, must contain exactly one of the supported datatypes');
  if (types.length > 1)
    throw validation('Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes');
  const type = types[0] ?? '';
  const inner = (value as Record<string, unknown>)[type];
  if (!ATTRIBUTE_TYPES.has(type)) throw validation(`Supplied AttributeValue has an unsupported datatype: ${type}`);
  if (type === 'N' && (typeof inner !== 'string' || !Number.isFinite(Number(inner)) || inner.trim() === ''))
    throw validation(`The parameter cannot be converted to a numeric value: ${String(inner)}`);
  if ((type === 'S' || type === 'B') && typeof inner !== 'string') throw validation(`Supplied AttributeValue ${type} must be a string`);
  if (type === 'BOOL' && typeof inner !== 'boolean') throw validation('Supplied AttributeValue BOOL must be true or false');
  if (type === 'NULL' && inner !== true)
    throw validation('One or more parameter values were invalid: Null attribute value types must have the value of true');
  if (type === 'M') for (const v of Object.values(inner as Record<string, unknown>)) checkValue(v);
  if (type === 'L') for (const v of inner as unknown[]) checkValue(v);
  if (type === 'SS' || type === 'NS' || type === 'BS') {
    const set = inner as unknown[];
    if (!Array.isArray(set) || set.length === 0)
      throw validation('One or more parameter values were invalid: An string set  may not be empty');
    if (new Set(set.map(String)).size !== set.length) throw validation('Input collection contains duplicates');
  }
}

/** An item's size as DynamoDB counts it (Developer Guide, "Item sizes and formats"), bytes. */
function sizeOf(value: AttributeValue): number {
  const type = typeOf(value);
  const inner = value[type];
  switch (type) {
    case 'S':
      return Buffer.byteLength(String(inner));
    case 'N':
      return (
        Math.ceil(
          String(inner)
            .replace(/^-|\.|e.*$/gi, '')
            .replace(/^0+/, '').length / 2,
        ) + 1
      );
    case 'B':
      return Buffer.from(String(inner), 'base64').length;
    case 'BOOL':
    case 'NULL':
      return 1;
    case 'M':
      return (
        3 + Object.entries(inner as Record<string, AttributeValue>).reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + sizeOf(v) + 1, 0)
      );
    case 'L':
      return 3 + (inner as AttributeValue[]).reduce((sum, v) => sum + sizeOf(v) + 1, 0);
    default:
      return (inner as string[]).reduce((sum, v) => sum + Buffer.byteLength(v), 0);
  }
}

function itemSize(item: Item): number {
  return Object.entries(item).reduce((sum, [name, value]) => sum + Buffer.byteLength(name) + sizeOf(value), 0);
}

function checkItem(table: Table, item: unknown): Item {
  if (typeof item !== 'object' || item === null || Array.isArray(item))
    throw validation('One or more parameter values were invalid: Item is required');
  for (const value of Object.values(item)) checkValue(value);
  const checked = item as Item;
  for (const { name, type } of table.key) {
    const value = checked[name];
    if (value === undefined) throw validation(`One or more parameter values were invalid: Missing the key ${name} in the item`);
    if (typeOf(value) !== type)
      throw validation(
        `One or more parameter values were invalid: Type mismatch for key ${name} expected: ${type} actual: ${typeOf(value)}`,
      );
    if (value[type] === '')
      throw validation(
        `One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: ${name}`,
      );
  }
  if (itemSize(checked) > MAX_ITEM_BYTES) throw validation('Item size has exceeded the maximum allowed size');
  return checked;
}

/** A request's Key: exactly the table's key attributes, with their types. */
function keyOf(table: Table, key: unknown): string {
  if (typeof key !== 'object' || key === null) throw validation('The provided key element does not match the schema');
  const given = key as Record<string, unknown>;
  if (Object.keys(given).length !== table.key.length) throw validation('The provided key element does not match the schema');
  for (const { name, type } of table.key) {
    const value = given[name];
    checkValue(value);
    if (typeOf(value) !== type) throw validation('The provided key element does not match the schema');
    if (value[type] === '')
      throw validation(
        `One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: ${name}`,
      );
  }
  return JSON.stringify(table.key.map(({ name }) => given[name]));
}

function itemKey(table: Table, item: Item): string {
  return JSON.stringify(table.key.map(({ name }) => item[name]));
}

/** Parameters the sandbox does not model: refused by name rather than ignored. */
function refuseUnmodelled(input: Record<string, unknown>, names: string[]): void {
  for (const name of names) {
    if (input[name] !== undefined)
      throw validation(`the sandbox does not model ${name}; use expressions (ConditionExpression, UpdateExpression)`);
  }
  for (const name of ['ReturnConsumedCapacity', 'ReturnItemCollectionMetrics']) {
    if (input[name] !== undefined && input[name] !== 'NONE') throw validation(`the sandbox does not model ${name} ${String(input[name])}`);
  }
}

function oneOf(name: string, value: unknown, allowed: string[]): string {
  if (value === undefined) return 'NONE';
  if (typeof value !== 'string' || !allowed.includes(value))
    throw validation(`${name} can only be ${allowed.join(' or ')} for this operation, got ${String(value)}`);
  return value;
}

/**
 * The placeholders of a request's expressions. AWS refuses placeholders without an expression, empty maps,
 * and any placeholder no expression uses (API Reference, ExpressionAttributeNames / ExpressionAttributeValues).
 */
function placeholdersOf(
  input: { ExpressionAttributeNames?: Record<string, string> | undefined; ExpressionAttributeValues?: Record<string, unknown> | undefined },
  expressions: (string | undefined)[],
): Placeholders {
  const names = input.ExpressionAttributeNames;
  const values = input.ExpressionAttributeValues;
  const none = expressions.every((e) => e === undefined);
  if (names !== undefined && none) throw validation('ExpressionAttributeNames can only be specified when using expressions');
  if (values !== undefined && none) throw validation('ExpressionAttributeValues can only be specified when using expressions');
  if (names !== undefined && Object.keys(names).length === 0) throw validation('ExpressionAttributeNames must not be empty');
  if (values !== undefined && Object.keys(values).length === 0) throw validation('ExpressionAttributeValues must not be empty');
  for (const value of Object.values(values ?? {})) checkValue(value);
  return { names: names ?? {}, values: (values ?? {}) as Record<string, AttributeValue>, usedNames: new Set(), usedValues: new Set() };
}

function checkAllUsed(placeholders: Placeholders): void {
  const unusedNames = Object.keys(placeholders.names).filter((n) => !placeholders.usedNames.has(n));
  if (unusedNames.length > 0)
    throw validation(`Value provided in ExpressionAttributeNames unused in expressions: keys: {${unusedNames.join(', ')}}`);
  const unusedValues = Object.keys(placeholders.values).filter((v) => !placeholders.usedValues.has(v));
  if (unusedValues.length > 0)
    throw validation(`Value provided in ExpressionAttributeValues unused in expressions: keys: {${unusedValues.join(', ')}}`);
}

function conditionFailed(existing: Item | undefined, returnOld: string): AwsError {
  return new AwsError(
    'ConditionalCheckFailedException',
    'The conditional request failed',
    400,
    returnOld === 'ALL_OLD' && existing !== undefined ? { Item: existing } : undefined,
  );
}

const dynamodb: ServiceDef = {
  name: 'dynamodb',
  protocol: 'json',
  jsonVersion: '1.0',
  schemas: schemas as unknown as Record<string, unknown>,
  handlers: {
    PutItem: op((ctx: Ctx, input: ItemInput) => {
      refuseUnmodelled(input, ['Expected', 'ConditionalOperator']);
      const table = findTable(ctx, input.TableName);
      const item = checkItem(table, input.Item);
      const returnValues = oneOf('ReturnValues', input.ReturnValues, ['NONE', 'ALL_OLD']);
      const onFailure = oneOf('ReturnValuesOnConditionCheckFailure', input.ReturnValuesOnConditionCheckFailure, ['NONE', 'ALL_OLD']);
      const placeholders = placeholdersOf(input, [input.ConditionExpression]);
      const condition = input.ConditionExpression === undefined ? undefined : parseCondition(input.ConditionExpression, placeholders);
      checkAllUsed(placeholders);
      const key = itemKey(table, item);
      const existing = table.items.get(key);
      if (condition !== undefined && !evaluate(condition, existing)) throw conditionFailed(existing, onFailure);
      table.items.set(key, structuredClone(item));
      return returnValues === 'ALL_OLD' && existing !== undefined ? { Attributes: existing } : {};
    }),
    GetItem: op((ctx: Ctx, input: ItemInput) => {
      refuseUnmodelled(input, ['AttributesToGet', 'ProjectionExpression', 'ExpressionAttributeNames']);
      const table = findTable(ctx, input.TableName);
      // a single table in one process: every read sees every completed write, consistent or not
      const item = table.items.get(keyOf(table, input.Key));
      return item === undefined ? {} : { Item: item };
    }),
    UpdateItem: op((ctx: Ctx, input: ItemInput) => {
      refuseUnmodelled(input, ['AttributeUpdates', 'Expected', 'ConditionalOperator']);
      const table = findTable(ctx, input.TableName);
      const key = keyOf(table, input.Key);
      const returnValues = oneOf('ReturnValues', input.ReturnValues, ['NONE', 'ALL_OLD', 'ALL_NEW']);
      const onFailure = oneOf('ReturnValuesOnConditionCheckFailure', input.ReturnValuesOnConditionCheckFailure, ['NONE', 'ALL_OLD']);
      if (input.UpdateExpression === undefined) throw validation('the sandbox models UpdateItem with an UpdateExpression only');
      const placeholders = placeholdersOf(input, [input.UpdateExpression, input.ConditionExpression]);
      const actions = parseUpdate(input.UpdateExpression, placeholders);
      const condition = input.ConditionExpression === undefined ? undefined : parseCondition(input.ConditionExpression, placeholders);
      checkAllUsed(placeholders);
      for (const { name } of actions) {
        if (table.key.some((k) => k.name === name))
          throw validation(`One or more parameter values were invalid: Cannot update attribute ${name}. This attribute is part of the key`);
      }
      const existing = table.items.get(key);
      if (condition !== undefined && !evaluate(condition, existing)) throw conditionFailed(existing, onFailure);
      // UpdateItem "creates a new item if it does not already exist" (API Reference, UpdateItem)
      const updated: Item = structuredClone(
        existing ?? (Object.fromEntries(table.key.map(({ name }) => [name, (input.Key as Record<string, AttributeValue>)[name]])) as Item),
      );
      for (const { name, value } of actions) updated[name] = structuredClone(value);
      if (itemSize(updated) > MAX_ITEM_BYTES) throw validation('Item size to update has exceeded the maximum allowed size');
      table.items.set(key, updated);
      if (returnValues === 'ALL_OLD') return existing === undefined ? {} : { Attributes: existing };
      if (returnValues === 'ALL_NEW') return { Attributes: updated };
      return {};
    }),
    DeleteItem: op((ctx: Ctx, input: ItemInput) => {
      refuseUnmodelled(input, ['Expected', 'ConditionalOperator']);
      const table = findTable(ctx, input.TableName);
      const key = keyOf(table, input.Key);
      const returnValues = oneOf('ReturnValues', input.ReturnValues, ['NONE', 'ALL_OLD']);
      const onFailure = oneOf('ReturnValuesOnConditionCheckFailure', input.ReturnValuesOnConditionCheckFailure, ['NONE', 'ALL_OLD']);
      const placeholders = placeholdersOf(input, [input.ConditionExpression]);
      const condition = input.ConditionExpression === undefined ? undefined : parseCondition(input.ConditionExpression, placeholders);
      checkAllUsed(placeholders);
      const existing = table.items.get(key);
      if (condition !== undefined && !evaluate(condition, existing)) throw conditionFailed(existing, onFailure);
      table.items.delete(key);
      return returnValues === 'ALL_OLD' && existing !== undefined ? { Attributes: existing } : {};
    }),
  },
};

export { createTable, dynamodb };
