/**
 * Helpers shared by the input schemas of every trigger: zod building blocks for the values AWS and the
 * reconciler put in events (account ids, regions, ARNs), the one-line summary of a failed parse, and the
 * bounded description of a rejected input that is logged instead of the input itself.
 */
import * as z from 'zod';
import { CELL_KEY } from './cells.ts';
import { REGION_PATTERN } from './regions.ts';

/** The longest text of an input that reaches a log line or an error message. */
const EXCERPT_CHARS = 512;

/** Keys whose values never reach a log line (credentials, tokens), matched case-insensitively. */
const SECRET_KEY = /secret|password|passwd|token|credential|authorization|api[-_]?key|session/i;

/** Clip a text to `max` characters, saying how much was left out. */
function clip(text: string, max = 120): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/** A value quoted for an error message, clipped: a 5 MB string never becomes a 5 MB message. */
function quote(value: unknown, max = 120): string {
  if (typeof value === 'string') return `"${clip(value, max)}"`;
  try {
    return clip(JSON.stringify(value) ?? String(value), max);
  } catch {
    return typeof value;
  }
}

const AccountId = z.string().regex(/^\d{12}$/, 'must be a 12-digit account id');
const Region = z.string().regex(REGION_PATTERN, 'must be a region name such as us-east-1');
/** A cell key, `<region>/<account>`. */
const CellKey = z.string().regex(CELL_KEY, 'must be <region>/<account>');

/** One issue of a failed parse, as Standard Schema (zod, Powertools Parser) reports it. */
interface Issue {
  readonly message: string;
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
}

function isIssueList(value: unknown): value is Issue[] {
  return (
    Array.isArray(value) &&
    value.every((i) => typeof i === 'object' && i !== null && typeof (i as { message?: unknown }).message === 'string')
  );
}

/** The issues of a failed parse as one bounded line: `resources.0: not an image build ARN; attempt: …`. */
function summarizeIssues(issues: readonly Issue[], max = 3): string {
  const parts = issues.slice(0, max).map((issue) => {
    const path = (issue.path ?? []).map((p) => String(typeof p === 'object' ? p.key : p)).join('.');
    return clip(path === '' ? issue.message : `${path}: ${issue.message}`, 200);
  });
  const more = issues.length > max ? `; and ${issues.length - max} more` : '';
  return `${parts.join('; ')}${more}`;
}

/** The issues carried by a Powertools `ParseError` (its `cause`), or undefined. */
function issuesOf(error: unknown): Issue[] | undefined {
  if (!(error instanceof Error)) return undefined;
  return isIssueList(error.cause) ? error.cause : undefined;
}

/** The shape of a value, a few levels deep: types and keys, never the values themselves. */
function shapeOf(value: unknown, depth = 2): unknown {
  if (value === null) return 'null';
  if (Array.isArray(value)) {
    if (depth === 0 || value.length === 0) return `array(${value.length})`;
    return { [`array(${value.length})`]: shapeOf(value[0], depth - 1) };
  }
  if (typeof value === 'object') {
    const keys = Object.keys(value);
    if (depth === 0) return `object(${keys.length} keys)`;
    const out: Record<string, unknown> = {};
    for (const key of keys.slice(0, 12)) out[clip(key, 40)] = shapeOf((value as Record<string, unknown>)[key], depth - 1);
    if (keys.length > 12) out['…'] = `${keys.length - 12} more keys`;
    return out;
  }
  if (typeof value === 'string') return `string(${value.length})`;
  return typeof value;
}

/** A JSON copy of a value with secret-looking keys redacted and long strings cut, walking at most `budget` nodes. */
function redacted(value: unknown, budget = { nodes: 200 }, depth = 0): unknown {
  budget.nodes -= 1;
  if (budget.nodes < 0 || depth > 6) return '…';
  if (typeof value === 'string') return clip(value, 200);
  if (Array.isArray(value)) return value.slice(0, 20).map((v) => redacted(v, budget, depth + 1));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value).slice(0, 30))
      out[clip(key, 40)] = SECRET_KEY.test(key) ? '[redacted]' : redacted(v, budget, depth + 1);
    return out;
  }
  return value;
}

/** Approximate size of an input in bytes (its JSON, or its text). */
function sizeOf(value: unknown): number {
  if (typeof value === 'string') return Buffer.byteLength(value);
  try {
    return Buffer.byteLength(JSON.stringify(value) ?? '');
  } catch {
    return -1;
  }
}

/** What is logged of a rejected input: its type, size, shape and a bounded, redacted excerpt. */
interface InputDescription {
  type: string;
  bytes: number;
  shape: unknown;
  excerpt: string;
}

/** Describe an input for a log line, never whole: a 5 MB event yields well under 4 KB. */
function describeInput(value: unknown): InputDescription {
  let excerpt: string;
  try {
    excerpt = clip(JSON.stringify(redacted(value)) ?? String(value), EXCERPT_CHARS);
  } catch {
    excerpt = '(not serialisable)';
  }
  return {
    type: value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value,
    bytes: sizeOf(value),
    shape: shapeOf(value),
    excerpt,
  };
}

export { AccountId, CellKey, EXCERPT_CHARS, Region, SECRET_KEY, clip, describeInput, issuesOf, quote, redacted, summarizeIssues };
export type { InputDescription, Issue };
