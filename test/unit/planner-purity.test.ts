import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * The planners are pure: the same desired and observed state gives the same plan. Their files may import
 * types from anywhere, but no value from the AWS SDK (`@aws-sdk/*`, `@smithy/*`) or the reconciler's AWS
 * layer (`src/lib/aws/`), nothing that does I/O, and they read neither the clock nor `process`: time comes
 * in as an argument.
 */
const RECONCILE_PLAN = 'src/lib/reconcile/plan';
const PLANNER_FILES = [
  ...readdirSync(RECONCILE_PLAN)
    .filter((name) => name.endsWith('.ts'))
    .map((name) => join(RECONCILE_PLAN, name)),
  'src/lib/cleanup/plan.ts',
].sort();

const AWS_LAYER = resolve('src/lib/aws');
const IO_MODULES = ['node:fs', 'node:fs/promises', 'node:net', 'node:http', 'node:https', 'node:child_process', 'node:dns'];

/** What a planner must not read: the clock, randomness, and the process (environment, arguments, exit). */
const IMPURE = [
  { what: 'Date.now()', pattern: /\bDate\.now\(/ },
  { what: 'new Date() without an argument', pattern: /\bnew Date\(\s*\)/ },
  { what: 'performance.now()', pattern: /\bperformance\.now\(/ },
  { what: 'process', pattern: /\bprocess\s*[.[]/ },
  { what: 'Math.random()', pattern: /\bMath\.random\(/ },
  { what: 'a random UUID or bytes', pattern: /\brandom(UUID|Bytes|Int)\(/ },
];

/**
 * Whether the import or export statement that names the module at `pos` brings in types only. Only
 * `import type` / `export type` does: under `verbatimModuleSyntax`, `import { type A } from 'm'` still loads `m`.
 */
function typeOnly(source: string, pos: number): boolean {
  const start = Math.max(source.lastIndexOf('import', pos), source.lastIndexOf('export', pos));
  return /^(import|export)\s+type\b/.test(source.slice(start, pos));
}

/** The modules a file imports values from that a planner must not: read with TypeScript's pre-processor. */
function forbiddenImports(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  const { importedFiles } = ts.preProcessFile(source, true, true);
  return importedFiles
    .filter((ref) => !typeOnly(source, ref.pos))
    .map((ref) => ref.fileName)
    .filter((name) => {
      if (name.startsWith('@aws-sdk/') || name.startsWith('@smithy/') || IO_MODULES.includes(name)) return true;
      if (!name.startsWith('.')) return false;
      const target = resolve(dirname(file), name);
      return target === AWS_LAYER || target.startsWith(`${AWS_LAYER}${sep}`);
    });
}

/** Lines that read the clock, randomness or the process, as `file:line: what`. */
function impureReads(file: string): string[] {
  const hits: string[] = [];
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, index) => {
      for (const { what, pattern } of IMPURE) if (pattern.test(line)) hits.push(`${relative('.', file)}:${index + 1}: ${what}`);
    });
  return hits;
}

describe('the planners are pure', () => {
  it('covers both planners: every file of the reconcile planner and the cleanup planner', () => {
    expect(PLANNER_FILES).toContain(join(RECONCILE_PLAN, 'index.ts'));
    expect(PLANNER_FILES).toContain('src/lib/cleanup/plan.ts');
    expect(PLANNER_FILES.length).toBeGreaterThan(5);
  });

  it.each(PLANNER_FILES)('%s imports no value from the AWS SDK, the AWS layer or an I/O module', (file) => {
    expect(forbiddenImports(file)).toStrictEqual([]);
  });

  it.each(PLANNER_FILES)('%s reads neither the clock nor the process', (file) => {
    expect(impureReads(file)).toStrictEqual([]);
  });

  it('tells a value import from a type-only one, and finds a clock read', () => {
    const probe = (source: string): boolean[] =>
      ts.preProcessFile(source, true, true).importedFiles.map((ref) => typeOnly(source, ref.pos));
    expect(probe("import type { A } from '@aws-sdk/client-ec2';")).toStrictEqual([true]);
    expect(probe("import { type A, type B } from '@aws-sdk/client-ec2';")).toStrictEqual([false]);
    expect(probe("import { type A, EC2Client } from '@aws-sdk/client-ec2';")).toStrictEqual([false]);
    expect(probe("import { EC2Client } from '@aws-sdk/client-ec2';")).toStrictEqual([false]);
    expect(probe("import '@aws-sdk/client-ec2';")).toStrictEqual([false]);
    expect(probe("const m = await import('@aws-sdk/client-ec2');")).toStrictEqual([false]);
    expect(probe("export { EC2Client } from '@aws-sdk/client-ec2';")).toStrictEqual([false]);
    for (const line of ['const t = Date.now();', 'const t = new Date();', 'performance.now()', 'process.env.X', 'Math.random()']) {
      expect(
        IMPURE.some(({ pattern }) => pattern.test(line)),
        line,
      ).toBe(true);
    }
    expect(IMPURE.some(({ pattern }) => pattern.test("new Date('2026-01-01')"))).toBe(false);
  });
});
