/**
 * The project's import boundaries, read from the source with TypeScript's own pre-processor
 * (`ts.preProcessFile`, which lists a file's imports, re-exports and dynamic imports without type-checking):
 * - the emulator (sandbox/emulator/) is a fake AWS and knows nothing of the reconciler: no import of src/;
 * - the reconciler (src/) does not ship the sandbox: no import of sandbox/;
 * - the reconcile and cleanup planners stay pure: no value from the AWS SDK (@aws-sdk/*, @smithy/*) or
 *   from src/lib/aws/ (types are fine: a planner may name the shapes it plans over).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SKIPPED = new Set(['node_modules', 'dist', '.git', 'coverage', '.serverless']);

type Rule = 'emulator-imports-src' | 'src-imports-sandbox' | 'planner-imports-aws';

/**
 * Imports a rule lets through, each with its reason. An entry that no longer excuses anything fails the
 * test below, so the list cannot outlive its reasons.
 */
const EXCEPTIONS: { file: string; rule: Rule; imports: string; why: string }[] = [
  {
    file: 'src/cli/commands/demo.ts',
    rule: 'src-imports-sandbox',
    imports: 'sandbox/harness/demo.ts',
    why: 'a type-only import of the demo harness, which the CLI loads with import() only for `demo` and `sandbox` (the CLI bundle carries none of it: test/deploy/package.test.ts)',
  },
];

interface Import {
  /** the specifier as written */
  specifier: string;
  /** repo-relative path (with /) of a relative specifier; the specifier itself otherwise */
  target: string;
  /** `import type …`, `export type …`, or named imports that are all `type`: nothing of it is left at run time */
  typeOnly: boolean;
}

interface Violation {
  file: string;
  rule: Rule;
  target: string;
}

function toPosix(path: string): string {
  return path.split(sep).join('/');
}

/** Every .ts file of the repository (outside dependencies and build output), repo-relative. */
function sourceFiles(dir = ROOT): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (SKIPPED.has(entry.name)) return [];
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|cts)$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [toPosix(relative(ROOT, path))] : [];
  });
}

/**
 * Whether the import or export statement that holds the specifier at `pos` brings in types only. The
 * statement starts at the nearest line before it that begins with `import` or `export`; a dynamic `import(…)`
 * always loads a value.
 */
function typeOnlyAt(text: string, pos: number): boolean {
  const before = text.slice(0, pos);
  if (/\bimport\s*\(\s*['"`]?$/.test(before) || /\brequire\s*\(\s*['"`]?$/.test(before)) return false;
  const starts = [...before.matchAll(/(?:^|\n)[ \t]*(?:import|export)\b/g)];
  const start = starts.at(-1);
  if (start === undefined) return false;
  const clause = before.slice(start.index).trim();
  if (/^(?:import|export)\s+type\b/.test(clause)) return true;
  const named = /^(?:import|export)\s*\{([^}]*)\}\s*from\s*['"`]?$/.exec(clause);
  if (named === null) return false;
  const specifiers = (named[1] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return specifiers.length > 0 && specifiers.every((s) => /^type\s/.test(s));
}

/** The imports of a file (static, re-exports and dynamic), relative specifiers resolved to repo paths. */
function importsOf(file: string, text: string): Import[] {
  const info = ts.preProcessFile(text, true, true);
  return info.importedFiles.map((ref) => {
    const relativeSpecifier = ref.fileName.startsWith('./') || ref.fileName.startsWith('../');
    const target = relativeSpecifier ? toPosix(relative(ROOT, resolve(ROOT, dirname(file), ref.fileName))) : ref.fileName;
    return { specifier: ref.fileName, target, typeOnly: typeOnlyAt(text, ref.pos) };
  });
}

function under(path: string, dir: string): boolean {
  return path === dir.replace(/\/$/, '') || path.startsWith(dir);
}

const PLANNERS = ['src/lib/reconcile/plan.ts', 'src/lib/reconcile/plan/', 'src/lib/cleanup/plan.ts', 'src/lib/cleanup/plan/'];

function isPlanner(file: string): boolean {
  return PLANNERS.some((p) => (p.endsWith('/') ? file.startsWith(p) : file === p));
}

/** What the rules find in a set of files (repo-relative path → text), before exceptions. */
function check(files: Map<string, string>): Violation[] {
  const out: Violation[] = [];
  for (const [file, text] of files) {
    for (const imported of importsOf(file, text)) {
      const { target } = imported;
      if (under(file, 'sandbox/emulator/') && under(target, 'src/')) out.push({ file, rule: 'emulator-imports-src', target });
      if (under(file, 'src/') && under(target, 'sandbox/')) out.push({ file, rule: 'src-imports-sandbox', target });
      const aws = target.startsWith('@aws-sdk/') || target.startsWith('@smithy/') || under(target, 'src/lib/aws/');
      if (isPlanner(file) && aws && !imported.typeOnly) out.push({ file, rule: 'planner-imports-aws', target });
    }
  }
  return out;
}

function excused(v: Violation): boolean {
  return EXCEPTIONS.some((e) => e.file === v.file && e.rule === v.rule && v.target.startsWith(e.imports));
}

describe('import boundaries', () => {
  const files = new Map(sourceFiles().map((file) => [file, readFileSync(join(ROOT, file), 'utf8')]));

  it('reads the whole source tree', () => {
    const paths = [...files.keys()];
    expect(paths).toEqual(
      expect.arrayContaining([
        'src/lib/reconcile/plan/index.ts',
        'src/lib/cleanup/plan.ts',
        'sandbox/emulator/server.ts',
        'sandbox/harness/index.ts',
        'test/unit/boundaries.test.ts',
      ]),
    );
    expect(paths.some((p) => p.startsWith('node_modules/') || p.startsWith('dist/'))).toBe(false);
  });

  it('holds: the emulator imports nothing from src/, src/ nothing from sandbox/, the planners no AWS value', () => {
    const found = check(files).filter((v) => !excused(v));
    expect(found.map((v) => `${v.file} (${v.rule}): ${v.target}`)).toStrictEqual([]);
  });

  it('has no exception left that excuses nothing', () => {
    const found = check(files);
    const stale = EXCEPTIONS.filter((e) => !found.some((v) => e.file === v.file && e.rule === v.rule && v.target.startsWith(e.imports)));
    expect(stale.map((e) => `${e.file} (${e.rule})`)).toStrictEqual([]);
  });

  describe('the rules', () => {
    const found = (file: string, text: string) => check(new Map([[file, text]])).map((v) => `${v.rule} ${v.target}`);

    it('catch an emulator file importing src/, however the path is written', () => {
      expect(found('sandbox/emulator/services/s3.ts', "import { partitionOfRegion } from '../../../src/lib/core/arn.ts';\n")).toStrictEqual(
        ['emulator-imports-src src/lib/core/arn.ts'],
      );
      expect(found('sandbox/emulator/services/ec2/images.ts', "export { x } from '../../../../src/lib/core/arn.ts';\n")).toStrictEqual([
        'emulator-imports-src src/lib/core/arn.ts',
      ]);
      expect(found('sandbox/emulator/server.ts', "import type { Config } from '../../src/lib/core/config.ts';\n")).toStrictEqual([
        'emulator-imports-src src/lib/core/config.ts',
      ]);
      expect(found('sandbox/emulator/server.ts', "const m = await import('../../src/lib/core/config.ts');\n")).toStrictEqual([
        'emulator-imports-src src/lib/core/config.ts',
      ]);
      // the harness may
      expect(found('sandbox/harness/index.ts', "import { applyEnvironment } from '../../src/lib/core/config.ts';\n")).toStrictEqual([]);
    });

    it('catch src/ importing sandbox/', () => {
      expect(found('src/cli/index.ts', "import { startSandbox } from '../../sandbox/harness/index.ts';\n")).toStrictEqual([
        'src-imports-sandbox sandbox/harness/index.ts',
      ]);
      expect(found('src/lib/core/config.ts', "import type { SandboxEnv } from '../../../sandbox/emulator/server.ts';\n")).toStrictEqual([
        'src-imports-sandbox sandbox/emulator/server.ts',
      ]);
      expect(found('test/helpers/sandbox.ts', "import { startSandbox } from '../../sandbox/harness/index.ts';\n")).toStrictEqual([]);
    });

    it('catch a planner importing an AWS value, and let its types through', () => {
      expect(found('src/lib/reconcile/plan/tags.ts', "import { EC2Client } from '@aws-sdk/client-ec2';\n")).toStrictEqual([
        'planner-imports-aws @aws-sdk/client-ec2',
      ]);
      expect(found('src/lib/cleanup/plan/candidates.ts', "import { NormalizedSchema } from '@smithy/core/schema';\n")).toStrictEqual([
        'planner-imports-aws @smithy/core/schema',
      ]);
      expect(found('src/lib/cleanup/plan.ts', "import { createClientFactory } from '../aws/clients.ts';\n")).toStrictEqual([
        'planner-imports-aws src/lib/aws/clients.ts',
      ]);
      expect(
        found('src/lib/reconcile/plan/tags.ts', "import {\n  type Image,\n  DescribeImagesCommand,\n} from '@aws-sdk/client-ec2';\n"),
      ).toStrictEqual(['planner-imports-aws @aws-sdk/client-ec2']);
      expect(
        found(
          'src/lib/reconcile/plan/tags.ts',
          "import type { Image } from '@aws-sdk/client-ec2';\nimport { type LaunchTemplate, type Tag } from '@aws-sdk/client-ec2';\n",
        ),
      ).toStrictEqual([]);
      expect(
        found('src/lib/reconcile/plan/tags.ts', "import type {\n  Image,\n} from '@aws-sdk/client-ec2';\nimport { z } from 'zod';\n"),
      ).toStrictEqual([]);
      // the same import outside a planner is the observers' business
      expect(found('src/lib/reconcile/observe.ts', "import { DescribeImagesCommand } from '@aws-sdk/client-ec2';\n")).toStrictEqual([]);
    });
  });
});
