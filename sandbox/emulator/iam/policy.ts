/**
 * IAM policy evaluation as AWS does it for a principal's identity-based policies in its own account
 * (IAM User Guide, "Policy evaluation logic": an explicit Deny in any policy wins; otherwise an Allow
 * is needed; otherwise the request is implicitly denied).
 *
 * Matching follows the IAM JSON policy reference:
 * - Action: service prefix and action name are case-insensitive; `*` and `?` are wildcards
 *   ("IAM JSON policy elements: Action").
 * - Resource: ARNs match segment-wise with `*` and `?` wildcards, case-sensitive ("IAM JSON policy
 *   elements: Resource").
 * - NotAction / NotResource: the statement applies to everything not listed.
 * - Condition: every operator block must match (AND), every key in a block must match (AND), any of a
 *   key's values may match (OR); condition key names are case-insensitive, values case-sensitive unless
 *   the operator says otherwise ("IAM JSON policy elements: Condition operators"). A key missing from the
 *   request fails a positive operator and satisfies a negated one: "If the key that you specify in a policy
 *   condition is not present in the request context, the values do not match and the condition is false. If
 *   the policy condition requires that the key is not matched, such as StringNotLike or ArnNotLike, and the
 *   right key is not present, the condition is true. This logic applies to all condition operators except
 *   ...IfExists and Null check" (IAM User Guide, "IAM JSON policy elements: Condition operators",
 *   https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
 *   `…IfExists`: "If the policy key is present in the context of the request, process the key as specified
 *   in the policy. If the key is not present, evaluate the condition element as true" (same page,
 *   "...IfExists condition operators"). `Null`: true asks for the key to be absent, false present. Multivalued keys
 *   (aws:CalledVia, aws:TagKeys) take `ForAnyValue:` / `ForAllValues:` ("Single-valued vs. multivalued
 *   context keys"); without a set prefix a multivalued key matches when any of its values does.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Condition?: Record<string, Record<string, string | string[] | boolean>>;
  /** Trust and resource policies only: who the statement is about. */
  Principal?: '*' | { AWS?: string | string[]; Service?: string | string[]; Federated?: string | string[] };
}

interface PolicyDocument {
  Version?: string;
  Statement: Statement | Statement[];
}

/** A policy as the evaluator sees it: where it came from (for messages and the proof) and its document. */
interface NamedPolicy {
  /** `inline:<name>` or the managed policy's ARN. */
  source: string;
  document: PolicyDocument;
}

/** The request context: condition keys and their values (multivalued keys have several). */
type RequestContext = Record<string, string | string[]>;

/** One authorization question: may the principal perform this action on this resource, in this context. */
interface AuthRequest {
  action: string;
  resource: string;
  context?: RequestContext;
}

interface Decision {
  decision: 'allow' | 'explicitDeny' | 'implicitDeny';
  /** The statement that decided (the Deny, or the first Allow). */
  matched: { source: string; sid: string | undefined; index: number } | undefined;
  /** Refused by the resource's own policy (another account's resource) although the identity policy allows. */
  resourcePolicy?: boolean;
}

class MalformedPolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedPolicyError';
  }
}

const list = (value: string | string[] | undefined): string[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

function globToRegExp(pattern: string, flags: string): RegExp {
  return new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    flags,
  );
}

function actionMatches(pattern: string, action: string): boolean {
  return globToRegExp(pattern, 'is').test(action);
}

/** ARN matching: `*` alone matches everything; otherwise the six ARN parts match each with wildcards. */
function arnMatches(pattern: string, arn: string): boolean {
  if (pattern === '*') return true;
  const p = pattern.split(':');
  const a = arn.split(':');
  if (p.length < 6 || a.length < 6) return globToRegExp(pattern, 's').test(arn);
  const pHead = p.slice(0, 5);
  const aHead = a.slice(0, 5);
  if (!pHead.every((part, i) => globToRegExp(part, 's').test(aHead[i] ?? ''))) return false;
  return globToRegExp(p.slice(5).join(':'), 's').test(a.slice(5).join(':'));
}

function contextValue(context: RequestContext, key: string): string[] | undefined {
  const lower = key.toLowerCase();
  for (const [k, v] of Object.entries(context)) if (k.toLowerCase() === lower) return Array.isArray(v) ? v : [v];
  return undefined;
}

type Matcher = (policyValue: string, requestValue: string) => boolean;

const number = (value: string): number => (value.trim() === '' ? Number.NaN : Number(value));
const date = (value: string): number => (/^\d+$/.test(value) ? Number(value) * 1000 : Date.parse(value));

/**
 * The condition operators the sandbox models (IAM User Guide, "IAM JSON policy elements: Condition
 * operators": string, numeric, date, Boolean and ARN operators). A negated operator matches a request value
 * that none of the policy's values match.
 */
const MATCHERS: Record<string, { match: Matcher; negated: boolean }> = {
  StringEquals: { match: (p, r) => p === r, negated: false },
  StringNotEquals: { match: (p, r) => p === r, negated: true },
  StringEqualsIgnoreCase: { match: (p, r) => p.toLowerCase() === r.toLowerCase(), negated: false },
  StringNotEqualsIgnoreCase: { match: (p, r) => p.toLowerCase() === r.toLowerCase(), negated: true },
  StringLike: { match: (p, r) => globToRegExp(p, 's').test(r), negated: false },
  StringNotLike: { match: (p, r) => globToRegExp(p, 's').test(r), negated: true },
  NumericEquals: { match: (p, r) => number(p) === number(r), negated: false },
  NumericNotEquals: { match: (p, r) => number(p) === number(r), negated: true },
  NumericLessThan: { match: (p, r) => number(r) < number(p), negated: false },
  NumericLessThanEquals: { match: (p, r) => number(r) <= number(p), negated: false },
  NumericGreaterThan: { match: (p, r) => number(r) > number(p), negated: false },
  NumericGreaterThanEquals: { match: (p, r) => number(r) >= number(p), negated: false },
  DateEquals: { match: (p, r) => date(p) === date(r), negated: false },
  DateNotEquals: { match: (p, r) => date(p) === date(r), negated: true },
  DateLessThan: { match: (p, r) => date(r) < date(p), negated: false },
  DateLessThanEquals: { match: (p, r) => date(r) <= date(p), negated: false },
  DateGreaterThan: { match: (p, r) => date(r) > date(p), negated: false },
  DateGreaterThanEquals: { match: (p, r) => date(r) >= date(p), negated: false },
  ArnEquals: { match: arnMatches, negated: false },
  ArnNotEquals: { match: arnMatches, negated: true },
  ArnLike: { match: arnMatches, negated: false },
  ArnNotLike: { match: arnMatches, negated: true },
  Bool: { match: (p, r) => p.toLowerCase() === r.toLowerCase(), negated: false },
};

function conditionMatches(operator: string, key: string, policyValues: string[], context: RequestContext): boolean {
  const requestValues = contextValue(context, key);
  if (operator === 'Null') {
    // Null: true means "the key is absent", false "the key is present"
    const wantAbsent = policyValues.some((v) => v.toLowerCase() === 'true');
    return wantAbsent === (requestValues === undefined);
  }
  let op = operator;
  let set: 'any' | 'all' | undefined;
  if (op.startsWith('ForAnyValue:')) {
    set = 'any';
    op = op.slice('ForAnyValue:'.length);
  } else if (op.startsWith('ForAllValues:')) {
    set = 'all';
    op = op.slice('ForAllValues:'.length);
  }
  let ifExists = false;
  if (op.endsWith('IfExists')) {
    ifExists = true;
    op = op.slice(0, -'IfExists'.length);
  }
  const matcher = MATCHERS[op];
  if (matcher === undefined) throw new MalformedPolicyError(`the sandbox does not model the condition operator ${operator}`);
  if (requestValues === undefined || requestValues.length === 0) {
    // ForAllValues over an empty set is true, ForAnyValue false ("Single-valued vs. multivalued context
    // keys"); otherwise a missing key satisfies …IfExists and the negated operators only (see the top)
    if (set === 'all') return true;
    if (set === 'any') return false;
    return ifExists || matcher.negated;
  }
  const one = (r: string) => {
    const hit = policyValues.some((p) => matcher.match(p, r));
    return matcher.negated ? !hit : hit;
  };
  if (set === 'all') return requestValues.every(one);
  return requestValues.some(one);
}

function statementsOf(document: PolicyDocument): Statement[] {
  const raw = document.Statement as unknown;
  if (raw === undefined || raw === null) throw new MalformedPolicyError('the policy has no Statement');
  return Array.isArray(raw) ? (raw as Statement[]) : [raw as Statement];
}

function statementApplies(statement: Statement, request: AuthRequest): boolean {
  const context = request.context ?? {};
  if (statement.Action !== undefined) {
    if (!list(statement.Action).some((a) => actionMatches(a, request.action))) return false;
  } else if (statement.NotAction !== undefined) {
    if (list(statement.NotAction).some((a) => actionMatches(a, request.action))) return false;
  } else {
    return false;
  }
  if (statement.Resource !== undefined) {
    if (!list(statement.Resource).some((r) => arnMatches(r, request.resource))) return false;
  } else if (statement.NotResource !== undefined) {
    if (list(statement.NotResource).some((r) => arnMatches(r, request.resource))) return false;
  } else {
    return false;
  }
  for (const [operator, block] of Object.entries(statement.Condition ?? {})) {
    for (const [key, value] of Object.entries(block)) {
      const values = (Array.isArray(value) ? value : [value]).map(String);
      if (!conditionMatches(operator, key, values, context)) return false;
    }
  }
  return true;
}

/** Evaluate identity-based policies for one request. */
function evaluate(policies: NamedPolicy[], request: AuthRequest): Decision {
  let allow: Decision['matched'];
  for (const policy of policies) {
    const statements = statementsOf(policy.document);
    for (const [index, statement] of statements.entries()) {
      if (!statementApplies(statement, request)) continue;
      const matched = { source: policy.source, sid: statement.Sid, index };
      if (statement.Effect === 'Deny') return { decision: 'explicitDeny', matched };
      if (statement.Effect === 'Allow') allow ??= matched;
    }
  }
  return allow === undefined ? { decision: 'implicitDeny', matched: undefined } : { decision: 'allow', matched: allow };
}

/**
 * Documents parsed, by their text: a role's policies are authorized against on every request, and parsing
 * them each time made the sandbox's own CPU grow with the calls. Only valid documents are kept; callers
 * read a document, never change it. Bounded: a sandbox holds far fewer distinct documents than this.
 */
const parsedPolicies = new Map<string, PolicyDocument>();
const PARSED_POLICIES_MAX = 10_000;

/** Who calls sts:AssumeRole, as a trust policy sees them. */
interface TrustCaller {
  /** aws:PrincipalArn: the role's ARN for a role session, `arn:<partition>:iam::<account>:root` for the root user. */
  principalArn: string;
  account: string;
}

/**
 * A principal element names the caller: `*`; an account (`<account>` or `arn:…:iam::<account>:root`), which
 * "delegates authority to the account" so that any principal of it may assume the role when its own
 * identity policy allows; or a role's ARN, which names that role's sessions (IAM User Guide, "AWS JSON policy
 * elements: Principal", AWS account principals and IAM role principals).
 */
function principalMatches(principal: Statement['Principal'], caller: TrustCaller): boolean {
  if (principal === undefined) return false;
  if (principal === '*') return true;
  return list(principal.AWS).some((p) => {
    if (p === '*' || p === caller.account) return true;
    const root = /^arn:aws[a-z-]*:iam::(\d{12}):root$/.exec(p);
    if (root !== null) return root[1] === caller.account;
    return p === caller.principalArn;
  });
}

/**
 * A role's trust policy for one sts:AssumeRole request: a statement applies when it names the action, the
 * caller and every condition holds in the request context; an explicit Deny wins, otherwise an Allow is
 * needed (IAM User Guide, "Policy evaluation logic", role trust policies).
 */
function evaluateTrust(document: PolicyDocument, caller: TrustCaller, context: RequestContext, action = 'sts:AssumeRole'): Decision {
  let allow: Decision['matched'];
  for (const [index, statement] of statementsOf(document).entries()) {
    if (!list(statement.Action).some((a) => actionMatches(a, action))) continue;
    if (!principalMatches(statement.Principal, caller)) continue;
    if (!statementApplies({ ...statement, Resource: '*' }, { action, resource: '*', context })) continue;
    const matched = { source: 'trust', sid: statement.Sid, index };
    if (statement.Effect === 'Deny') return { decision: 'explicitDeny', matched };
    allow ??= matched;
  }
  return allow === undefined ? { decision: 'implicitDeny', matched: undefined } : { decision: 'allow', matched: allow };
}

/** Parse and check a policy document the way IAM does on PutRolePolicy / CreatePolicy (the parts we model). */
function parsePolicy(text: string): PolicyDocument {
  const cached = parsedPolicies.get(text);
  if (cached !== undefined) return cached;
  const document = parseUncached(text);
  if (parsedPolicies.size >= PARSED_POLICIES_MAX) parsedPolicies.clear();
  parsedPolicies.set(text, document);
  return document;
}

function parseUncached(text: string): PolicyDocument {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error: unknown) {
    throw new MalformedPolicyError(`The policy is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new MalformedPolicyError('The policy must be a JSON object');
  const document = parsed as PolicyDocument;
  for (const statement of statementsOf(document)) {
    if (statement.Effect !== 'Allow' && statement.Effect !== 'Deny')
      throw new MalformedPolicyError(`Statement Effect must be Allow or Deny, got ${JSON.stringify(statement.Effect)}`);
    if ((statement.Action === undefined) === (statement.NotAction === undefined))
      throw new MalformedPolicyError('Each statement needs exactly one of Action and NotAction');
    if ((statement.Resource === undefined) === (statement.NotResource === undefined))
      throw new MalformedPolicyError('Each statement needs exactly one of Resource and NotResource');
    for (const action of [...list(statement.Action), ...list(statement.NotAction)]) {
      if (action !== '*' && !/^[a-z0-9-]+:[A-Za-z0-9*?]+$/.test(action))
        throw new MalformedPolicyError(`Action ${action} is not of the form service:Action`);
    }
    for (const operator of Object.keys(statement.Condition ?? {})) {
      const base = operator.replace(/^For(AnyValue|AllValues):/, '').replace(/IfExists$/, '');
      if (base !== 'Null' && MATCHERS[base] === undefined)
        throw new MalformedPolicyError(`the sandbox does not model the condition operator ${operator}`);
    }
  }
  return document;
}

export { MalformedPolicyError, actionMatches, arnMatches, evaluate, evaluateTrust, parsePolicy, statementsOf };
export type { AuthRequest, Decision, Json, NamedPolicy, PolicyDocument, RequestContext, Statement, TrustCaller };
