import { AwsError } from '../protocol/errors.ts';
import type { AttributeValue, Item } from '../state.ts';

/**
 * DynamoDB condition and update expressions, parsed and evaluated for the subset the sandbox models: what
 * Powertools Idempotency sends (and the same forms written otherwise). The grammar and precedence are those
 * of the DynamoDB Developer Guide, "Condition and filter expressions, operators, and functions"
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.OperatorsAndFunctions.html):
 *
 *     condition ::= operand comparator operand | function | condition AND condition | condition OR condition
 *                 | NOT condition | ( condition )
 *     comparator ::= = | < | <= | > | >=
 *     function ::= attribute_exists (path) | attribute_not_exists (path)
 *
 * with precedence comparators, functions, parentheses, NOT, AND, OR (highest first); and of "Update
 * expressions" (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.UpdateExpressions.html)
 * for `SET path = :value, …`.
 *
 * What AWS accepts but the sandbox does not model is refused with a ValidationException that says so,
 * never accepted and ignored: `<>`, BETWEEN, IN, the functions begin_with, contains, size and
 * attribute_type, plain attribute names in paths (AWS accepts those that are not reserved words; the sandbox
 * knows no list of reserved words, so it takes `#name` placeholders only), nested paths, and the update
 * clauses REMOVE, ADD and DELETE and SET's arithmetic and functions.
 */

type Operand = { kind: 'path'; name: string } | { kind: 'value'; placeholder: string; value: AttributeValue };

type Condition =
  | { kind: 'or' | 'and'; left: Condition; right: Condition }
  | { kind: 'not'; inner: Condition }
  | { kind: 'compare'; comparator: '=' | '<' | '<=' | '>' | '>='; left: Operand; right: Operand }
  | { kind: 'exists' | 'not-exists'; name: string };

/** What the expressions of one request may use, and what they did use (AWS refuses unused placeholders). */
interface Placeholders {
  names: Record<string, string>;
  values: Record<string, AttributeValue>;
  usedNames: Set<string>;
  usedValues: Set<string>;
}

type Token = { kind: 'name' | 'value' | 'word' | 'punct'; text: string; at: number };

const TOKEN = /\s*(?:(#[A-Za-z0-9_]+)|(:[A-Za-z0-9_]+)|([A-Za-z_][A-Za-z0-9_.[\]]*)|(<=|>=|<>|[=<>(),+-]))/y;

function validation(message: string): AwsError {
  return new AwsError('ValidationException', message);
}

function tokenize(what: string, text: string): Token[] {
  const tokens: Token[] = [];
  TOKEN.lastIndex = 0;
  let at = 0;
  while (at < text.length) {
    if (/^\s*$/.test(text.slice(at))) break;
    TOKEN.lastIndex = at;
    const match = TOKEN.exec(text);
    if (match === null) {
      const rest = text.slice(at).trimStart();
      throw validation(`Invalid ${what}: Syntax error; token: "${rest.slice(0, 1)}", near: "${rest.slice(0, 10)}"`);
    }
    const [whole, name, value, word, punct] = match;
    const start = at + whole.length - (name ?? value ?? word ?? punct ?? '').length;
    if (name !== undefined) tokens.push({ kind: 'name', text: name, at: start });
    else if (value !== undefined) tokens.push({ kind: 'value', text: value, at: start });
    else if (word !== undefined) tokens.push({ kind: 'word', text: word, at: start });
    else tokens.push({ kind: 'punct', text: punct ?? '', at: start });
    at += whole.length;
  }
  return tokens;
}

/** The one data type of an attribute value (`S`, `N`, `M`, …). */
function typeOf(value: AttributeValue): string {
  return Object.keys(value)[0] ?? '';
}

class Parser {
  private index = 0;

  constructor(
    private readonly what: 'ConditionExpression' | 'UpdateExpression',
    private readonly text: string,
    private readonly tokens: Token[],
    private readonly placeholders: Placeholders,
  ) {}

  private peek(): Token | undefined {
    return this.tokens[this.index];
  }

  private next(): Token | undefined {
    const token = this.tokens[this.index];
    this.index += 1;
    return token;
  }

  syntax(token: Token | undefined): AwsError {
    if (token === undefined) return validation(`Invalid ${this.what}: Syntax error; token: "<EOF>", near: "${this.text.slice(-10)}"`);
    return validation(
      `Invalid ${this.what}: Syntax error; token: "${token.text}", near: "${this.text.slice(Math.max(0, token.at - 5), token.at + token.text.length + 5).trim()}"`,
    );
  }

  private expect(text: string): void {
    const token = this.next();
    if (token?.text !== text) throw this.syntax(token);
  }

  private isWord(word: string): boolean {
    const token = this.peek();
    return token?.kind === 'word' && token.text.toUpperCase() === word;
  }

  done(): void {
    if (this.index < this.tokens.length) throw this.syntax(this.peek());
  }

  /** A document path: a `#name` placeholder, resolved. */
  path(): string {
    const token = this.next();
    if (token === undefined) throw this.syntax(token);
    if (token.kind === 'word') {
      throw validation(
        `Invalid ${this.what}: the sandbox models only expression attribute names (#name) in document paths, not "${token.text}" (AWS also takes attribute names that are not reserved words)`,
      );
    }
    if (token.kind !== 'name') throw this.syntax(token);
    const name = this.placeholders.names[token.text];
    if (name === undefined)
      throw validation(
        `Invalid ${this.what}: An expression attribute name used in the document path is not defined; attribute name: ${token.text}`,
      );
    this.placeholders.usedNames.add(token.text);
    if (this.peek()?.text === '.' || this.peek()?.text === '[')
      throw validation(`Invalid ${this.what}: the sandbox does not model nested document paths`);
    return name;
  }

  private value(): Operand {
    const token = this.next();
    if (token?.kind !== 'value') throw this.syntax(token);
    const value = this.placeholders.values[token.text];
    if (value === undefined)
      throw validation(
        `Invalid ${this.what}: An expression attribute value used in expression is not defined; attribute value: ${token.text}`,
      );
    this.placeholders.usedValues.add(token.text);
    return { kind: 'value', placeholder: token.text, value };
  }

  private operand(): Operand {
    const token = this.peek();
    if (token?.kind === 'value') return this.value();
    if (token?.kind === 'word' && this.tokens[this.index + 1]?.text === '(') {
      throw validation(`Invalid ${this.what}: the sandbox does not model the function ${token.text} here`);
    }
    return { kind: 'path', name: this.path() };
  }

  /** condition ::= or */
  condition(): Condition {
    let left = this.and();
    while (this.isWord('OR')) {
      this.next();
      left = { kind: 'or', left, right: this.and() };
    }
    return left;
  }

  private and(): Condition {
    let left = this.not();
    while (this.isWord('AND')) {
      this.next();
      left = { kind: 'and', left, right: this.not() };
    }
    return left;
  }

  private not(): Condition {
    if (this.isWord('NOT')) {
      this.next();
      return { kind: 'not', inner: this.not() };
    }
    return this.primary();
  }

  private primary(): Condition {
    const token = this.peek();
    if (token === undefined) throw this.syntax(token);
    if (token.text === '(') {
      this.next();
      const inner = this.condition();
      this.expect(')');
      return inner;
    }
    if (token.kind === 'word' && this.tokens[this.index + 1]?.text === '(') {
      this.next();
      if (token.text !== 'attribute_exists' && token.text !== 'attribute_not_exists') {
        throw validation(
          `Invalid ${this.what}: the sandbox does not model the function ${token.text} (only attribute_exists and attribute_not_exists)`,
        );
      }
      this.expect('(');
      if (this.peek()?.kind === 'value')
        throw validation(`Invalid ${this.what}: Operator or function requires a document path; operator or function: ${token.text}`);
      const name = this.path();
      this.expect(')');
      return { kind: token.text === 'attribute_exists' ? 'exists' : 'not-exists', name };
    }
    const left = this.operand();
    const comparator = this.next();
    if (comparator?.text === '<>') throw validation(`Invalid ${this.what}: the sandbox does not model the comparator <>`);
    if (comparator?.kind === 'word' && ['BETWEEN', 'IN'].includes(comparator.text.toUpperCase())) {
      throw validation(`Invalid ${this.what}: the sandbox does not model ${comparator.text.toUpperCase()}`);
    }
    if (comparator === undefined || !['=', '<', '<=', '>', '>='].includes(comparator.text)) throw this.syntax(comparator);
    const right = this.operand();
    const cmp = comparator.text as '=' | '<' | '<=' | '>' | '>=';
    if (cmp !== '=') {
      for (const side of [left, right]) {
        // ordering is defined for the scalar types only (Developer Guide, comparison operators)
        if (side.kind === 'value' && !['S', 'N', 'B'].includes(typeOf(side.value))) {
          throw validation(
            `Invalid ${this.what}: Incorrect operand type for operator or function; operator: ${cmp}, operand type: ${typeOf(side.value)}`,
          );
        }
      }
    }
    return { kind: 'compare', comparator: cmp, left, right };
  }

  /** update ::= SET action (, action)* ; action ::= path = :value */
  update(): { name: string; value: AttributeValue }[] {
    const clause = this.next();
    if (clause?.kind !== 'word') throw this.syntax(clause);
    const keyword = clause.text.toUpperCase();
    if (['REMOVE', 'ADD', 'DELETE'].includes(keyword))
      throw validation(`Invalid ${this.what}: the sandbox models only the SET clause, not ${keyword}`);
    if (keyword !== 'SET') throw this.syntax(clause);
    const actions: { name: string; value: AttributeValue }[] = [];
    for (;;) {
      const name = this.path();
      this.expect('=');
      const token = this.peek();
      if (token?.kind !== 'value' || ['+', '-'].includes(this.tokens[this.index + 1]?.text ?? '')) {
        throw validation(
          `Invalid ${this.what}: the sandbox models only SET path = :value (no paths, arithmetic or functions on the right)`,
        );
      }
      const operand = this.value();
      if (operand.kind !== 'value') throw this.syntax(token);
      if (actions.some((a) => a.name === name))
        throw validation(
          `Invalid ${this.what}: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [${name}], path two: [${name}]`,
        );
      actions.push({ name, value: operand.value });
      if (this.peek()?.text !== ',') break;
      this.next();
    }
    const after = this.peek();
    if (after?.kind === 'word' && ['SET', 'REMOVE', 'ADD', 'DELETE'].includes(after.text.toUpperCase())) {
      throw validation(`Invalid ${this.what}: the sandbox models only one SET clause`);
    }
    return actions;
  }
}

function parseCondition(text: string, placeholders: Placeholders): Condition {
  if (text.trim() === '') throw validation('Invalid ConditionExpression: The expression can not be empty;');
  const parser = new Parser('ConditionExpression', text, tokenize('ConditionExpression', text), placeholders);
  const condition = parser.condition();
  parser.done();
  return condition;
}

function parseUpdate(text: string, placeholders: Placeholders): { name: string; value: AttributeValue }[] {
  if (text.trim() === '') throw validation('Invalid UpdateExpression: The expression can not be empty;');
  const parser = new Parser('UpdateExpression', text, tokenize('UpdateExpression', text), placeholders);
  const actions = parser.update();
  parser.done();
  return actions;
}

function bytesOf(value: AttributeValue): Buffer {
  return Buffer.from(String(value.B ?? ''), 'base64');
}

/** Deep equality of two attribute values of the same type (sets in any order). */
function equal(a: AttributeValue, b: AttributeValue): boolean {
  const type = typeOf(a);
  if (type !== typeOf(b)) return false;
  const x = a[type];
  const y = b[type];
  switch (type) {
    case 'N':
      return Number(x) === Number(y);
    case 'SS':
    case 'NS':
    case 'BS': {
      const xs = (x as string[]).map(String).sort();
      const ys = (y as string[]).map(String).sort();
      return xs.length === ys.length && xs.every((v, i) => (type === 'NS' ? Number(v) === Number(ys[i]) : v === ys[i]));
    }
    case 'M': {
      const xm = x as Record<string, AttributeValue>;
      const ym = y as Record<string, AttributeValue>;
      const keys = Object.keys(xm);
      return keys.length === Object.keys(ym).length && keys.every((k) => ym[k] !== undefined && equal(xm[k] as AttributeValue, ym[k]));
    }
    case 'L': {
      const xl = x as AttributeValue[];
      const yl = y as AttributeValue[];
      return xl.length === yl.length && xl.every((v, i) => equal(v, yl[i] as AttributeValue));
    }
    default:
      return x === y;
  }
}

/** Order two scalar values of the same type: N numerically, S by UTF-8 bytes, B by bytes; else undefined. */
function order(a: AttributeValue, b: AttributeValue): number | undefined {
  const type = typeOf(a);
  if (type !== typeOf(b)) return undefined;
  if (type === 'N') return Math.sign(Number(a.N) - Number(b.N));
  if (type === 'S') return Buffer.compare(Buffer.from(String(a.S)), Buffer.from(String(b.S)));
  if (type === 'B') return Buffer.compare(bytesOf(a), bytesOf(b));
  return undefined;
}

function resolve(operand: Operand, item: Item | undefined): AttributeValue | undefined {
  return operand.kind === 'value' ? operand.value : item?.[operand.name];
}

/**
 * Evaluate a condition against an item (undefined: no item with that key). A comparison with an attribute
 * the item lacks, or of values of different types, is false.
 */
function evaluate(condition: Condition, item: Item | undefined): boolean {
  switch (condition.kind) {
    case 'or':
      return evaluate(condition.left, item) || evaluate(condition.right, item);
    case 'and':
      return evaluate(condition.left, item) && evaluate(condition.right, item);
    case 'not':
      return !evaluate(condition.inner, item);
    case 'exists':
      return item?.[condition.name] !== undefined;
    case 'not-exists':
      return item?.[condition.name] === undefined;
    case 'compare': {
      const left = resolve(condition.left, item);
      const right = resolve(condition.right, item);
      if (left === undefined || right === undefined) return false;
      if (condition.comparator === '=') return equal(left, right);
      const sign = order(left, right);
      if (sign === undefined) return false;
      switch (condition.comparator) {
        case '<':
          return sign < 0;
        case '<=':
          return sign <= 0;
        case '>':
          return sign > 0;
        default:
          return sign >= 0;
      }
    }
    default:
      return false;
  }
}

export { evaluate, parseCondition, parseUpdate, typeOf };
export type { Condition, Placeholders };
