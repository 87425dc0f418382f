import { readFileSync } from 'node:fs';
import { parseTemplate } from '../../emulator/iam/cloudformation.ts';
import { type Json, type Obj, isObj } from './deployment.ts';

// Which events reach which function: EventBridge pattern matching (equality, prefix, suffix, anything-but,
// exists), and the rules of the region forwarder stack.

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
    if (isObj(rule))
      return typeof value === 'object' && value !== null && !Array.isArray(value) && matchesPattern(rule, value as Record<string, unknown>);
    if (!Array.isArray(rule)) return false;
    const values = Array.isArray(value) ? value : [value];
    return rule.some((r) => values.some((v) => matchValue(r, v)));
  });
}

/**
 * The event patterns of the rules of infra/region-forwarder.yaml, with its parameters at their defaults:
 * what each region where that stack is deployed forwards to the reconciler's bus.
 */
function readForwarderPatterns(path: string): Obj[] {
  const doc = parseTemplate(readFileSync(path, 'utf8')) as Obj;
  const defaults: Record<string, Json> = {};
  for (const [name, p] of Object.entries(isObj(doc.Parameters) ? doc.Parameters : {}))
    if (isObj(p) && p.Default !== undefined) defaults[name] = p.Default;
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

export { matchesPattern, readForwarderPatterns };
