import { readFileSync } from 'node:fs';
import { type ScalarTag, type CollectionTag, parse } from 'yaml';
import type { Json } from './policy.ts';

/**
 * Just enough of CloudFormation to read the IAM roles of a template the way a deployment would create
 * them: parameters (with defaults), pseudo parameters, conditions, and the intrinsic functions the
 * project's templates use (Ref, Fn::Sub, Fn::If, Fn::Equals, Fn::Not, Fn::And, Fn::Or, Fn::Join,
 * Fn::Split, Fn::Select, Fn::GetAtt), and the template's Rules, whose failed assertion fails the stack as
 * CloudFormation fails it ("Rules" section of the template anatomy; "Rule functions"). Anything else is refused by name, so a template change the sandbox cannot follow fails
 * loudly instead of granting something else (CloudFormation User Guide, "Intrinsic function reference").
 */

type Obj = { [key: string]: Json };

const isObj = (value: Json | undefined): value is Obj => typeof value === 'object' && value !== null && !Array.isArray(value);

/** YAML short forms (`!Sub`, `!If [...]`) as their long forms. */
const shortForms: (ScalarTag | CollectionTag)[] = [
  'Ref',
  'Sub',
  'GetAtt',
  'If',
  'Equals',
  'Not',
  'And',
  'Or',
  'Join',
  'Select',
  'Split',
  'ImportValue',
  'FindInMap',
  'Condition',
].flatMap((name) => {
  const key = name === 'Ref' || name === 'Condition' ? name : `Fn::${name}`;
  const scalar: ScalarTag = { tag: `!${name}`, resolve: (value: string) => ({ [key]: name === 'GetAtt' ? value.split('.') : value }) };
  const collection = (kind: 'seq' | 'map'): CollectionTag =>
    ({
      tag: `!${name}`,
      collection: kind,
      resolve: (value: { toJSON: () => Json }) => ({ [key]: value.toJSON() }),
    }) as unknown as CollectionTag;
  const seq = collection('seq');
  const map = collection('map');
  return [scalar, seq, map];
});

function parseTemplate(text: string): Obj {
  return parse(text, { customTags: shortForms }) as Obj;
}

function readTemplate(path: string): Obj {
  return parseTemplate(readFileSync(path, 'utf8'));
}

interface ResolveOptions {
  account: string;
  region: string;
  partition: string;
  parameters: Record<string, string>;
  /** Values of `Fn::GetAtt [LogicalId, Attr]` and `Ref LogicalId` for resources outside IAM (queues). */
  attributes?: (logicalId: string, attribute: string | undefined) => string | undefined;
}

const NO_VALUE = Symbol('AWS::NoValue');

class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

class Resolver {
  private readonly conditions = new Map<string, boolean>();

  constructor(
    private readonly template: Obj,
    private readonly options: ResolveOptions,
  ) {
    const declared = isObj(template.Parameters) ? template.Parameters : {};
    for (const [name, def] of Object.entries(declared)) {
      if (options.parameters[name] === undefined && !(isObj(def) && def.Default !== undefined))
        throw new TemplateError(`template parameter ${name} has no value and no default`);
    }
  }

  private ref(name: string): string | typeof NO_VALUE {
    switch (name) {
      case 'AWS::AccountId':
        return this.options.account;
      case 'AWS::Region':
        return this.options.region;
      case 'AWS::Partition':
        return this.options.partition;
      case 'AWS::URLSuffix':
        return this.options.partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com';
      case 'AWS::NoValue':
        return NO_VALUE;
      default:
    }
    const given = this.options.parameters[name];
    if (given !== undefined) return given;
    const declared = isObj(this.template.Parameters) ? this.template.Parameters[name] : undefined;
    if (isObj(declared) && declared.Default !== undefined) return String(declared.Default);
    const attribute = this.options.attributes?.(name, undefined);
    if (attribute !== undefined) return attribute;
    const resources = isObj(this.template.Resources) ? this.template.Resources : {};
    const resource = resources[name];
    if (isObj(resource) && resource.Type === 'AWS::IAM::Role' && isObj(resource.Properties))
      return this.str(resource.Properties.RoleName ?? name);
    throw new TemplateError(`cannot resolve Ref ${name}`);
  }

  private getAtt(logicalId: string, attribute: string): string {
    const external = this.options.attributes?.(logicalId, attribute);
    if (external !== undefined) return external;
    const resources = isObj(this.template.Resources) ? this.template.Resources : {};
    const resource = resources[logicalId];
    if (isObj(resource) && resource.Type === 'AWS::IAM::Role' && attribute === 'Arn' && isObj(resource.Properties)) {
      const path = this.str(resource.Properties.Path ?? '/');
      return `arn:${this.options.partition}:iam::${this.options.account}:role${path}${this.str(resource.Properties.RoleName ?? logicalId)}`;
    }
    throw new TemplateError(`cannot resolve Fn::GetAtt ${logicalId}.${attribute}`);
  }

  private str(value: Json): string {
    const resolved = this.value(value);
    if (typeof resolved !== 'string' && typeof resolved !== 'number' && typeof resolved !== 'boolean')
      throw new TemplateError(`expected a string, got ${JSON.stringify(value)}`);
    return String(resolved);
  }

  /** Check the template's Rules: an assertion that fails under its rule's condition fails the stack. */
  checkRules(): void {
    const rules = isObj(this.template.Rules) ? this.template.Rules : {};
    for (const [name, rule] of Object.entries(rules)) {
      if (!isObj(rule)) continue;
      if (rule.RuleCondition !== undefined && !this.bool(rule.RuleCondition)) continue;
      for (const assertion of Array.isArray(rule.Assertions) ? rule.Assertions : []) {
        if (!isObj(assertion) || this.bool(assertion.Assert ?? null)) continue;
        throw new TemplateError(`rule ${name}: ${String(assertion.AssertDescription ?? 'assertion failed')}`);
      }
    }
  }

  condition(name: string): boolean {
    const known = this.conditions.get(name);
    if (known !== undefined) return known;
    const declared = isObj(this.template.Conditions) ? this.template.Conditions[name] : undefined;
    if (declared === undefined) throw new TemplateError(`unknown condition ${name}`);
    const result = this.bool(declared);
    this.conditions.set(name, result);
    return result;
  }

  private bool(value: Json): boolean {
    if (!isObj(value)) throw new TemplateError(`expected a condition, got ${JSON.stringify(value)}`);
    const [fn, args] = Object.entries(value)[0] ?? [];
    const list = Array.isArray(args) ? args : [];
    switch (fn) {
      case 'Fn::Equals':
        return this.str(list[0] ?? '') === this.str(list[1] ?? '');
      case 'Fn::Not':
        return !this.bool(list[0] ?? null);
      case 'Fn::And':
        return list.every((c) => this.bool(c));
      case 'Fn::Or':
        return list.some((c) => this.bool(c));
      case 'Condition':
        return this.condition(String(args));
      default:
        throw new TemplateError(`the sandbox does not model the condition function ${String(fn)}`);
    }
  }

  private sub(text: string, vars: Record<string, string>): string {
    return text.replace(/\$\{([^}!]+)\}/g, (_, name: string) => {
      if (vars[name] !== undefined) return vars[name];
      const dot = name.indexOf('.');
      if (dot > 0 && !name.startsWith('AWS::')) return this.getAtt(name.slice(0, dot), name.slice(dot + 1));
      const resolved = this.ref(name);
      if (resolved === NO_VALUE) throw new TemplateError(`\${${name}} has no value`);
      return resolved;
    });
  }

  /** Resolve every intrinsic function in a value; `AWS::NoValue` removes the property or list item. */
  value(value: Json): Json | typeof NO_VALUE {
    if (Array.isArray(value)) return value.map((v) => this.value(v)).filter((v): v is Json => v !== NO_VALUE);
    if (!isObj(value)) return value;
    const keys = Object.keys(value);
    if (keys.length === 1) {
      const key = keys[0] ?? '';
      const arg = value[key] ?? null;
      switch (key) {
        case 'Ref':
          return this.ref(String(arg));
        case 'Fn::Sub':
          if (typeof arg === 'string') return this.sub(arg, {});
          if (Array.isArray(arg)) {
            const vars: Record<string, string> = {};
            for (const [k, v] of Object.entries(isObj(arg[1]) ? arg[1] : {})) vars[k] = this.str(v);
            return this.sub(String(arg[0]), vars);
          }
          throw new TemplateError('Fn::Sub needs a string or [string, variables]');
        case 'Fn::GetAtt': {
          const [id, attr] = Array.isArray(arg) ? arg.map(String) : String(arg).split('.');
          return this.getAtt(id ?? '', attr ?? '');
        }
        case 'Fn::If': {
          const [name, yes, no] = Array.isArray(arg) ? arg : [];
          return this.value(this.condition(String(name)) ? (yes ?? null) : (no ?? null));
        }
        case 'Fn::Join': {
          const [sep, items] = Array.isArray(arg) ? arg : [];
          const resolved = this.value(items ?? []);
          if (!Array.isArray(resolved)) throw new TemplateError('Fn::Join needs a list');
          return resolved.map(String).join(String(sep));
        }
        case 'Fn::Split': {
          const [sep, text] = Array.isArray(arg) ? arg : [];
          return this.str(text ?? '').split(String(sep));
        }
        case 'Fn::Select': {
          const [index, items] = Array.isArray(arg) ? arg : [];
          const resolved = this.value(items ?? []);
          if (!Array.isArray(resolved)) throw new TemplateError('Fn::Select needs a list');
          const i = Number(this.str(index ?? ''));
          if (!Number.isInteger(i) || i < 0 || i >= resolved.length)
            throw new TemplateError(`Fn::Select index ${String(index)} is out of range`);
          return resolved[i] ?? null;
        }
        default:
          if (key.startsWith('Fn::')) throw new TemplateError(`the sandbox does not model ${key}`);
      }
    }
    const out: Obj = {};
    for (const [k, v] of Object.entries(value)) {
      const resolved = this.value(v);
      if (resolved !== NO_VALUE) out[k] = resolved;
    }
    return out;
  }
}

/** An IAM role as a template creates it. */
interface TemplateRole {
  logicalId: string;
  name: string;
  path: string;
  assumeRolePolicyDocument: Obj;
  /** Inline policies: name → document. */
  policies: Map<string, Obj>;
  managedPolicyArns: string[];
  /** MaxSessionDuration (seconds), when the template sets it. */
  maxSessionDuration?: number;
}

/** The IAM roles (AWS::IAM::Role) of a template, fully resolved; resources whose Condition is false are left out. */
function templateRoles(template: Obj, options: ResolveOptions): TemplateRole[] {
  const resolver = new Resolver(template, options);
  resolver.checkRules();
  const resources = isObj(template.Resources) ? template.Resources : {};
  const roles: TemplateRole[] = [];
  for (const [logicalId, raw] of Object.entries(resources)) {
    if (!isObj(raw) || raw.Type !== 'AWS::IAM::Role') continue;
    if (typeof raw.Condition === 'string' && !resolver.condition(raw.Condition)) continue;
    const resolved = resolver.value(isObj(raw.Properties) ? raw.Properties : {});
    const props = resolved === NO_VALUE ? {} : resolved;
    if (!isObj(props)) continue;
    const policies = new Map<string, Obj>();
    for (const policy of Array.isArray(props.Policies) ? props.Policies : []) {
      if (isObj(policy) && isObj(policy.PolicyDocument)) policies.set(String(policy.PolicyName), policy.PolicyDocument);
    }
    roles.push({
      logicalId,
      name: String(props.RoleName ?? logicalId),
      path: String(props.Path ?? '/'),
      assumeRolePolicyDocument: isObj(props.AssumeRolePolicyDocument) ? props.AssumeRolePolicyDocument : {},
      policies,
      managedPolicyArns: Array.isArray(props.ManagedPolicyArns) ? props.ManagedPolicyArns.map(String) : [],
      ...(props.MaxSessionDuration === undefined ? {} : { maxSessionDuration: Number(props.MaxSessionDuration) }),
    });
  }
  return roles;
}

export { TemplateError, parseTemplate, readTemplate, templateRoles };
export type { Obj, ResolveOptions, TemplateRole };
