import { NormalizedSchema } from '@smithy/core/schema';
import type { SchemaRef } from '@smithy/types';
import { AwsError } from './errors.ts';

/**
 * The query protocols (EC2 and awsQuery: STS, IAM, SQS of older clients), driven by the SDK's own schemas so
 * that member names, list wrappers and flattening are exactly what the SDK and the AWS CLI expect.
 */
type Flavor = 'ec2' | 'query';

function escapeXml(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function capitalize(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}

function queryKey(member: NormalizedSchema, name: string, flavor: Flavor): string {
  const traits = member.getMergedTraits();
  if (flavor === 'ec2') return (traits.ec2QueryName as string | undefined) ?? capitalize((traits.xmlName as string | undefined) ?? name);
  return (traits.xmlName as string | undefined) ?? name;
}

function scalar(schema: NormalizedSchema, raw: string): unknown {
  if (schema.isNumericSchema()) return Number(raw);
  if (schema.isBooleanSchema()) return raw === 'true';
  if (schema.isTimestampSchema()) return new Date(raw);
  return raw;
}

/** Parse form parameters into the input structure the schema describes. */
function parseQueryInput(params: Map<string, string>, schema: SchemaRef, flavor: Flavor): Record<string, unknown> {
  const keys = [...params.keys()];
  const present = (key: string) => keys.some((k) => k === key || k.startsWith(`${key}.`));
  const join = (prefix: string, key: string) => (prefix === '' ? key : `${prefix}.${key}`);

  const read = (ns: NormalizedSchema, key: string): unknown => {
    if (ns.isStructSchema()) {
      const out: Record<string, unknown> = {};
      for (const [name, member] of ns.structIterator()) {
        const memberKey = join(key, queryKey(member, name, flavor));
        if (!present(memberKey)) continue;
        const value = read(member, memberKey);
        if (value !== undefined) out[name] = value;
      }
      return out;
    }
    if (ns.isListSchema()) {
      const member = ns.getValueSchema();
      const flattened = flavor === 'ec2' || Boolean(ns.getMergedTraits().xmlFlattened);
      const base = flattened ? key : `${key}.${(member.getMergedTraits().xmlName as string | undefined) ?? 'member'}`;
      const items: unknown[] = [];
      for (let i = 1; present(`${base}.${i}`); i += 1) items.push(read(member, `${base}.${i}`));
      return items;
    }
    if (ns.isMapSchema()) {
      const out: Record<string, unknown> = {};
      const flattened = Boolean(ns.getMergedTraits().xmlFlattened);
      const base = flattened ? key : `${key}.entry`;
      for (let i = 1; present(`${base}.${i}`); i += 1) {
        const k = params.get(`${base}.${i}.key`) ?? params.get(`${base}.${i}.Name`);
        const valueKey = params.has(`${base}.${i}.value`) ? `${base}.${i}.value` : `${base}.${i}.Value`;
        if (k !== undefined) out[k] = read(ns.getValueSchema(), valueKey);
      }
      return out;
    }
    const raw = params.get(key);
    return raw === undefined ? undefined : scalar(ns, raw);
  };
  return read(NormalizedSchema.of(schema), '') as Record<string, unknown>;
}

function serializeValue(value: unknown, ns: NormalizedSchema): string {
  if (value === undefined || value === null) return '';
  if (ns.isStructSchema()) {
    const record = value as Record<string, unknown>;
    let xml = '';
    for (const [name, member] of ns.structIterator()) {
      const v = record[name];
      if (v === undefined || v === null) continue;
      const tag = (member.getMergedTraits().xmlName as string | undefined) ?? name;
      if (member.isListSchema() && member.getMergedTraits().xmlFlattened) {
        for (const item of v as unknown[]) xml += `<${tag}>${serializeValue(item, member.getValueSchema())}</${tag}>`;
        continue;
      }
      if (member.isMapSchema() && member.getMergedTraits().xmlFlattened) {
        const keyTag = (member.getKeySchema().getMergedTraits().xmlName as string | undefined) ?? 'key';
        const valueTag = (member.getValueSchema().getMergedTraits().xmlName as string | undefined) ?? 'value';
        for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
          xml += `<${tag}><${keyTag}>${escapeXml(k)}</${keyTag}><${valueTag}>${serializeValue(item, member.getValueSchema())}</${valueTag}></${tag}>`;
        }
        continue;
      }
      xml += `<${tag}>${serializeValue(v, member)}</${tag}>`;
    }
    return xml;
  }
  if (ns.isListSchema()) {
    const member = ns.getValueSchema();
    const tag = (member.getMergedTraits().xmlName as string | undefined) ?? 'member';
    return (value as unknown[]).map((item) => `<${tag}>${serializeValue(item, member)}</${tag}>`).join('');
  }
  if (ns.isMapSchema()) {
    return Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => `<entry><key>${escapeXml(k)}</key><value>${serializeValue(v, ns.getValueSchema())}</value></entry>`)
      .join('');
  }
  if (value instanceof Date) return value.toISOString();
  if (ns.isTimestampSchema() && typeof value === 'string') return value;
  return escapeXml(String(value));
}

const EC2_NS = 'http://ec2.amazonaws.com/doc/2016-11-15/';

/** An EC2 query response body. */
function ec2Response(action: string, output: unknown, schema: SchemaRef, requestId: string): string {
  const body = serializeValue(output ?? {}, NormalizedSchema.of(schema));
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${EC2_NS}"><requestId>${requestId}</requestId>${body}</${action}Response>`;
}

/** An awsQuery response body (STS, IAM, SQS query). */
function queryResponse(action: string, output: unknown, schema: SchemaRef, namespace: string, requestId: string): string {
  const body = serializeValue(output ?? {}, NormalizedSchema.of(schema));
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${namespace}"><${action}Result>${body}</${action}Result><ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>`;
}

function ec2Error(error: AwsError, requestId: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${escapeXml(error.code)}</Code><Message>${escapeXml(error.message)}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`;
}

function queryError(error: AwsError, requestId: string): string {
  const type = error.status >= 500 ? 'Receiver' : 'Sender';
  return `<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Error><Type>${type}</Type><Code>${escapeXml(error.code)}</Code><Message>${escapeXml(error.message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`;
}

function requireParam(input: Record<string, unknown>, name: string): void {
  if (input[name] === undefined) throw new AwsError('MissingParameter', `The request must contain the parameter ${name}`);
}

export { ec2Error, ec2Response, escapeXml, parseQueryInput, queryError, queryResponse, requireParam };
export type { Flavor };
