/**
 * Seeds of the service model's constraints: a valid document with every member of a root shape, and,
 * for each constraint of each member the model constrains, a copy of it with one value that breaks it.
 * Generated from the model table, so a constraint added to the model gets a seed without a test edit.
 */
import { SHAPES } from '../../src/lib/preflight/model/imagebuilder-model.ts';
import type { ModelShape } from '../../src/lib/preflight/model/shape.ts';
import type { Constraint } from '../../src/lib/preflight/model/validate.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A valid value of each patterned string shape (the model test checks each matches its pattern). */
const EXAMPLES: Record<string, string> = {
  AccountId: '123456789012',
  AmiNameString: 'golden {{imagebuilder:buildDate}}',
  DistributionConfigurationArn: 'arn:aws:imagebuilder:us-east-1:111111111111:distribution-configuration/golden',
  ImageBuilderArn: 'arn:aws:imagebuilder:us-east-1:111111111111:distribution-configuration/golden',
  LaunchTemplateId: 'lt-0123456789abcdef0',
  LicenseConfigurationArn: 'arn:aws:license-manager:us-east-1:111111111111:license-configuration:lic-0123456789abcdef0123456789abcdef',
  OrganizationArn: 'arn:aws:organizations::111111111111:organization/o-abcdefghij',
  OrganizationalUnitArn: 'arn:aws:organizations::111111111111:ou/o-abcdefghij/ou-ab12-cdefgh34',
  ResourceName: 'golden',
  SsmParameterName: '/golden/latest',
  TagKey: 'Team',
  // the gate's and backfill's requests (workflows, step actions, DistributeImage)
  ImageBuildVersionArn: 'arn:aws:imagebuilder:us-east-1:111111111111:image/golden/1.0.0/1',
  InlineWorkflowData: 'schemaVersion: 1.0',
  LogGroupName: '/aws/imagebuilder/golden',
  ParallelGroup: 'group-1',
  RoleNameOrArn: 'arn:aws:iam::111111111111:role/ImageBuilderWorkflows',
  VersionNumber: '1.0.0',
  WorkflowExecutionId: 'wf-0123abcd-0123-4567-89ab-0123456789ab',
  WorkflowParameterName: 'stage',
  WorkflowParameterValue: 'canary',
  WorkflowStepExecutionId: 'step-0123abcd-0123-4567-89ab-0123456789ab',
  WorkflowVersionArnOrBuildVersionArn: 'arn:aws:imagebuilder:us-east-1:111111111111:workflow/distribution/gate/1.0.0/1',
};

/** Values that break a pattern, tried in order: the first that breaks the pattern and no other constraint is used. */
const PATTERN_BREAKERS = ['12345', 'aws:reserved', '!!!', 'golden.json', 'ou-ab12-cdefgh34'];

function shape(name: string): ModelShape {
  const s = SHAPES[name];
  if (s === undefined) throw new Error(`no shape ${name}`);
  return s;
}

function fitsLength(s: ModelShape, length: number): boolean {
  return !('min' in s && s.min !== undefined && length < s.min) && !('max' in s && s.max !== undefined && length > s.max);
}

/** A valid value of a shape, with every member of every structure filled in. */
function valid(name: string): Json {
  const s = shape(name);
  switch (s.type) {
    case 'structure':
      return Object.fromEntries(Object.entries(s.members).map(([m, child]) => [m, valid(child)]));
    case 'list':
      return [valid(s.member)];
    case 'map':
      return { [String(valid(s.key))]: valid(s.value) };
    case 'string':
      if (s.enum !== undefined) return s.enum[0] ?? '';
      if (s.pattern !== undefined) {
        const example = EXAMPLES[name];
        if (example === undefined) throw new Error(`no example of the patterned shape ${name}: add one to EXAMPLES`);
        return example;
      }
      return 'x'.repeat(Math.max(1, s.min ?? 1));
    case 'boolean':
      return true;
    case 'timestamp':
      return 0;
    default:
      return Math.max(s.min ?? 1, Math.min(s.max ?? 1, 1));
  }
}

interface Seed {
  /** JSON path of the broken value, as lint writes it */
  path: string;
  /** where the service says the broken value is: lists as name.N.member, a wrong list item or map entry on its list or map */
  servicePath: string;
  constraint: Constraint;
  /** the model shape whose constraint is broken */
  shape: string;
  document: Json;
}

/** Ways to break a shape's own constraints (not its members'): [constraint, breaking value]. */
function breakers(name: string): [Constraint, Json][] {
  const s = shape(name);
  const out: [Constraint, Json][] = [];
  if (s.type === 'string') {
    if (s.min !== undefined && s.min > 0) out.push(['length', 'x'.repeat(s.min - 1)]);
    if (s.max !== undefined) out.push(['length', `${String(valid(name))}${'x'.repeat(s.max)}`.slice(0, s.max + 1)]);
    if (s.enum !== undefined) out.push(['enum', 'QCOW2']);
    if (s.pattern !== undefined) {
      const pattern = new RegExp(s.pattern);
      const value = PATTERN_BREAKERS.find((v) => !pattern.test(v) && fitsLength(s, [...v].length));
      if (value === undefined) throw new Error(`no value breaks the pattern of ${name}: add one to PATTERN_BREAKERS`);
      out.push(['pattern', value]);
    }
  } else if (s.type === 'list' || s.type === 'map') {
    const item = s.type === 'list' ? valid(s.member) : undefined;
    const entries = (n: number): Json =>
      s.type === 'list'
        ? Array.from({ length: n }, () => item ?? null)
        : Object.fromEntries(Array.from({ length: n }, (_, i) => [`Key${i}`, 'v']));
    if (s.min !== undefined && s.min > 0) out.push(['length', entries(s.min - 1)]);
    if (s.max !== undefined) out.push(['length', entries(s.max + 1)]);
  } else if (s.type !== 'structure' && s.type !== 'boolean' && s.type !== 'timestamp' && s.type !== 'blob') {
    if (s.min !== undefined) out.push(['range', s.min - 1]);
    if (s.max !== undefined) out.push(['range', s.max + 1]);
  }
  return out;
}

type Step = string | number;

/** The container at `steps` in `doc`. */
function at(doc: Json, steps: Step[]): Json {
  let here = doc;
  for (const step of steps) here = (here as Record<string, Json>)[step] ?? null;
  return here;
}

/** A copy of `doc` with the value at `steps` replaced (or deleted, with undefined). */
function withValue(doc: Json, steps: Step[], value: Json | undefined): Json {
  const copy = structuredClone(doc);
  const holder = at(copy, steps.slice(0, -1)) as Record<string, Json>;
  const last = steps.at(-1) ?? '';
  if (value === undefined) delete holder[last];
  else holder[last] = value;
  return copy;
}

function jsonPath(steps: Step[]): string {
  return steps.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}

function servicePath(steps: Step[]): string {
  return steps.map((s) => (typeof s === 'number' ? `${s + 1}.member` : s)).join('.');
}

function isContainer(name: string): boolean {
  const t = shape(name).type;
  return t === 'structure' || t === 'list' || t === 'map';
}

/** Every seed under a root shape: one per constraint of every member path (list items at index 0, map keys and values). */
function seeds(root: string, options: { skipTokens?: boolean } = {}): { base: Json; seeds: Seed[] } {
  const base = valid(root);
  const out: Seed[] = [];
  function visit(name: string, steps: Step[]): void {
    // a scalar list item is reported on its list
    const reported = typeof steps.at(-1) === 'number' && !isContainer(name) ? steps.slice(0, -1) : steps;
    if (steps.length > 0)
      for (const [constraint, value] of breakers(name))
        out.push({
          path: jsonPath(steps),
          servicePath: servicePath(reported),
          constraint,
          shape: name,
          document: withValue(base, steps, value),
        });
    const s = shape(name);
    if (s.type === 'structure') {
      for (const [member, child] of Object.entries(s.members)) {
        if (s.required?.includes(member) && !(options.skipTokens === true && s.idempotencyTokens?.includes(member))) {
          out.push({
            path: jsonPath([...steps, member]),
            servicePath: servicePath([...steps, member]),
            constraint: 'required',
            shape: child,
            document: withValue(base, [...steps, member], undefined),
          });
        }
        visit(child, [...steps, member]);
      }
    } else if (s.type === 'list') {
      visit(s.member, [...steps, 0]);
    } else if (s.type === 'map') {
      const key = String(valid(s.key));
      for (const [constraint, value] of breakers(s.key)) {
        const map = { ...(at(base, steps) as Record<string, Json>) };
        const v = map[key] ?? null;
        delete map[key];
        map[String(value)] = v;
        out.push({
          path: `${jsonPath(steps)}.${String(value)}`,
          servicePath: servicePath(steps),
          constraint,
          shape: s.key,
          document: withValue(base, steps, map),
        });
      }
      for (const [constraint, value] of breakers(s.value))
        out.push({
          path: `${jsonPath(steps)}.${key}`,
          servicePath: servicePath(steps),
          constraint,
          shape: s.value,
          document: withValue(base, [...steps, key], value),
        });
    }
  }
  visit(root, []);
  return { base, seeds: out };
}

export { EXAMPLES, seeds };
export type { Seed };
