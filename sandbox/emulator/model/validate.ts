import { SHAPES } from './imagebuilder-model.ts';
import type { ModelShape } from './shape.ts';

/**
 * Validation of an input against Image Builder's service model: the constraints of the model's
 * shapes (required members, enums, patterns, lengths, ranges), as the service checks them before it
 * runs an operation: the emulator answers a request that breaks one with the service's ValidationException.
 * The emulator's own copy: `lint` (src/lib/preflight/model/) has its twin, both tables written by
 * scripts/gen-imagebuilder-model.mjs from the same model, and test/fidelity/golden-model.test.ts holds both
 * to AWS's documented answers. Pure: no I/O. Wrong types are not this module's business (lint's shape check and the service's
 * deserializer report them); a value of the wrong type is skipped here.
 */
type Constraint = 'required' | 'enum' | 'pattern' | 'length' | 'range';

interface Violation {
  /** JSON path as lint writes it: distributions[0].s3ExportConfiguration.diskImageFormat */
  path: string;
  /** the path as the service writes it in a ValidationException: distributions.1.member.s3ExportConfiguration.diskImageFormat */
  servicePath: string;
  constraint: Constraint;
  /** the model shape whose constraint is broken (OrganizationArn, DiskImageFormat, …) */
  shape: string;
  /** the member name (last path element that is a name) */
  member: string;
  value: unknown;
  /** the value the service names in its message: the whole list or map when one of its items or keys is wrong */
  serviceValue: unknown;
  /** in the service's words: "Member must satisfy enum value set: [VMDK, RAW, VHD]" */
  detail: string;
  /** the constraint's bound or set, for fixes: the pattern, the enum values, the limits */
  enum?: string[];
  pattern?: string;
  min?: number;
  max?: number;
}

interface Options {
  /** leave out required idempotency tokens (clientToken): the AWS SDK and the AWS CLI fill them in */
  tokensFilled?: boolean;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObj(value: unknown): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function shapeOf(name: string): ModelShape {
  const shape = SHAPES[name];
  if (shape === undefined) throw new Error(`shape ${name} is not in the generated model`);
  return shape;
}

/** The service model's own wording for each kind of constraint (Smithy's constraint traits). */
function lengthDetail(min: number | undefined, max: number | undefined, length: number): string | undefined {
  if (min !== undefined && length < min) return `Member must have length greater than or equal to ${min}`;
  if (max !== undefined && length > max) return `Member must have length less than or equal to ${max}`;
  return undefined;
}

/** Smithy counts the length of a string in Unicode code points, of a list in items, of a map in entries. */
function codePoints(s: string): number {
  return [...s].length;
}

/** A value as the service prints it in its message. */
function show(value: unknown): string {
  if (value === undefined || value === null) return 'null';
  if (typeof value === 'string') return `'${value}'`;
  if (Array.isArray(value)) return `'[${value.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ')}]'`;
  if (isObj(value))
    return `'{${Object.entries(value)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(', ')}}'`;
  return `'${String(value)}'`;
}

/** Constraints of a scalar (string or number) shape: the detail of the first one broken, if any. */
function scalarDetail(shape: ModelShape, value: Json): { constraint: Constraint; detail: string } | undefined {
  if (shape.type === 'string') {
    if (typeof value !== 'string') return undefined;
    const length = lengthDetail(shape.min, shape.max, codePoints(value));
    if (length !== undefined) return { constraint: 'length', detail: length };
    if (shape.enum !== undefined && !shape.enum.includes(value))
      return { constraint: 'enum', detail: `Member must satisfy enum value set: [${shape.enum.join(', ')}]` };
    if (shape.pattern !== undefined && !new RegExp(shape.pattern).test(value))
      return { constraint: 'pattern', detail: `Member must satisfy regular expression pattern: ${shape.pattern}` };
    return undefined;
  }
  if (shape.type === 'integer' || shape.type === 'long' || shape.type === 'float' || shape.type === 'double') {
    if (typeof value !== 'number') return undefined;
    if (shape.min !== undefined && value < shape.min)
      return { constraint: 'range', detail: `Member must have value greater than or equal to ${shape.min}` };
    if (shape.max !== undefined && value > shape.max)
      return { constraint: 'range', detail: `Member must have value less than or equal to ${shape.max}` };
  }
  return undefined;
}

function bounds(shape: ModelShape): Pick<Violation, 'enum' | 'pattern' | 'min' | 'max'> {
  const out: Pick<Violation, 'enum' | 'pattern' | 'min' | 'max'> = {};
  if ('min' in shape && shape.min !== undefined) out.min = shape.min;
  if ('max' in shape && shape.max !== undefined) out.max = shape.max;
  if (shape.type === 'string') {
    if (shape.enum !== undefined) out.enum = shape.enum;
    if (shape.pattern !== undefined) out.pattern = shape.pattern;
  }
  return out;
}

function walk(value: Json, shapeName: string, member: string, path: string, servicePath: string, options: Options, out: Violation[]): void {
  const shape = shapeOf(shapeName);
  const push = (constraint: Constraint, detail: string, broken: string = shapeName) =>
    out.push({ path, servicePath, constraint, shape: broken, member, value, serviceValue: value, detail, ...bounds(shapeOf(broken)) });
  switch (shape.type) {
    case 'structure': {
      if (!isObj(value)) return;
      for (const name of shape.required ?? []) {
        if (value[name] !== undefined && value[name] !== null) continue;
        if (options.tokensFilled === true && shape.idempotencyTokens?.includes(name)) continue;
        const at = path === '' ? name : `${path}.${name}`;
        out.push({
          path: at,
          servicePath: servicePath === '' ? name : `${servicePath}.${name}`,
          constraint: 'required',
          shape: shape.members[name] ?? name,
          member: name,
          value: null,
          serviceValue: null,
          detail: 'Member must not be null',
        });
      }
      for (const [name, child] of Object.entries(value)) {
        const childShape = shape.members[name];
        if (childShape === undefined || child === null) continue;
        walk(
          child,
          childShape,
          name,
          path === '' ? name : `${path}.${name}`,
          servicePath === '' ? name : `${servicePath}.${name}`,
          options,
          out,
        );
      }
      return;
    }
    case 'list': {
      if (!Array.isArray(value)) return;
      const length = lengthDetail(shape.min, shape.max, value.length);
      if (length !== undefined) push('length', length);
      // the service reports a broken item on the list ("Member must satisfy constraint: [...]"); lint on the item
      value.forEach((item, i) => {
        if (item === null) return;
        const itemShape = shapeOf(shape.member);
        if (itemShape.type === 'structure' || itemShape.type === 'list' || itemShape.type === 'map') {
          walk(item, shape.member, member, `${path}[${i}]`, `${servicePath}.${i + 1}.member`, options, out);
          return;
        }
        const broken = scalarDetail(itemShape, item);
        if (broken !== undefined)
          out.push({
            path: `${path}[${i}]`,
            servicePath,
            constraint: broken.constraint,
            shape: shape.member,
            member,
            value: item,
            serviceValue: value,
            detail: `Member must satisfy constraint: [${broken.detail}]`,
            ...bounds(itemShape),
          });
      });
      return;
    }
    case 'map': {
      if (!isObj(value)) return;
      const length = lengthDetail(shape.min, shape.max, Object.keys(value).length);
      if (length !== undefined) push('length', length);
      const keyShape = shapeOf(shape.key);
      const valueShape = shapeOf(shape.value);
      for (const [key, item] of Object.entries(value)) {
        const badKey = scalarDetail(keyShape, key);
        if (badKey !== undefined)
          out.push({
            path: `${path}.${key}`,
            servicePath,
            constraint: badKey.constraint,
            shape: shape.key,
            member,
            value: key,
            serviceValue: value,
            detail: `Map keys must satisfy constraint: [${badKey.detail}]`,
            ...bounds(keyShape),
          });
        const badValue = scalarDetail(valueShape, item);
        if (badValue !== undefined)
          out.push({
            path: `${path}.${key}`,
            servicePath,
            constraint: badValue.constraint,
            shape: shape.value,
            member,
            value: item,
            serviceValue: value,
            detail: `Map value must satisfy constraint: [${badValue.detail}]`,
            ...bounds(valueShape),
          });
      }
      return;
    }
    default: {
      const broken = scalarDetail(shape, value);
      if (broken !== undefined) push(broken.constraint, broken.detail);
    }
  }
}

/** Every constraint of the model that `value` (an input of shape `root`) breaks, in document order. */
function validateAgainstModel(value: unknown, root: string, options: Options = {}): Violation[] {
  const out: Violation[] = [];
  walk(value as Json, root, '', '', '', options, out);
  return out;
}

/**
 * The message of the ValidationException AWS services answer a request that breaks its model with
 * ("1 validation error detected: Value 'QCOW2' at '…' failed to satisfy constraint: …"). The error
 * itself is in every AWS API reference's Common Errors page, e.g.
 * https://docs.aws.amazon.com/imagebuilder/latest/APIReference/CommonErrors.html ("ValidationException:
 * The input fails to satisfy the constraints specified by an AWS service", HTTP 400).
 */
function validationMessage(violations: Violation[]): string {
  // the service names a list or a map once, however many of its items are wrong
  const parts = [
    ...new Set(violations.map((v) => `Value ${show(v.serviceValue)} at '${v.servicePath}' failed to satisfy constraint: ${v.detail}`)),
  ];
  return `${parts.length} validation error${parts.length === 1 ? '' : 's'} detected: ${parts.join('; ')}`;
}

export { validateAgainstModel, validationMessage };
export type { Constraint, Violation };
