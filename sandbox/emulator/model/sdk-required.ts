import { NormalizedSchema } from '@smithy/core/schema';
import type { SchemaRef } from '@smithy/types';

/**
 * The required members an input lacks, by the SDK's own schemas (the `<Operation>$` exports a service's
 * ServiceDef already carries): a structure schema is `[3, namespace, name, traits, members, schemas,
 * requiredCount]`, its first `requiredCount` members required (Smithy's `@required` trait, as the SDK's
 * schema generator writes it). Nested structures, lists and maps are walked. The schemas carry no patterns,
 * lengths or ranges (only the Image Builder model in this folder has those, from botocore): a service that
 * needs more checks writes them beside its handler. Paths as AWS writes them in a validation message
 * (`instances.instanceGroups.1.member.instanceRole`). Pure.
 */
function missingRequired(schema: SchemaRef, input: unknown): string[] {
  const out: string[] = [];
  const walk = (ns: NormalizedSchema, value: unknown, path: string) => {
    if (value === undefined || value === null) return;
    if (ns.isStructSchema()) {
      if (typeof value !== 'object' || Array.isArray(value)) return;
      const raw = ns.getSchema() as unknown as unknown[];
      const required = typeof raw[6] === 'number' ? raw[6] : 0;
      let i = 0;
      for (const [name, member] of ns.structIterator()) {
        const child = (value as Record<string, unknown>)[name];
        const at = path === '' ? name : `${path}.${name}`;
        if (i < required && (child === undefined || child === null)) out.push(at);
        else walk(member, child, at);
        i += 1;
      }
    } else if (ns.isListSchema()) {
      if (!Array.isArray(value)) return;
      value.forEach((item, n) => {
        walk(ns.getValueSchema(), item, `${path}.${n + 1}.member`);
      });
    } else if (ns.isMapSchema()) {
      if (typeof value !== 'object') return;
      for (const [key, item] of Object.entries(value as Record<string, unknown>)) walk(ns.getValueSchema(), item, `${path}.${key}`);
    }
  };
  walk(NormalizedSchema.of(schema), input, '');
  return out;
}

/** The input schema of an operation of a service module (`<Operation>$`: `[9, namespace, name, traits, input, output]`). */
function inputSchema(schemas: Record<string, unknown>, operation: string): SchemaRef {
  const op = schemas[`${operation}$`];
  if (!Array.isArray(op)) throw new Error(`no schema for ${operation}`);
  return op[4] as SchemaRef;
}

export { inputSchema, missingRequired };
