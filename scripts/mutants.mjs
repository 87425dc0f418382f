#!/usr/bin/env node
// Mutation check of the two pure planners: each guard and decision is weakened in turn, one file at a time,
// and the planners' unit tests must fail for every mutant. `npm run mutants` (a few seconds per mutant);
// `--file cleanup` or `--file reconcile` for one planner; `--json` for machine-readable output. Prints
// killed/total per file. Exit 1 when a mutant survives.
// The file under test is restored after each mutant, also when the run is interrupted.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';

/** Every TypeScript file of the reconcile planner's folder: a new check file is mutated without a change here. */
const RECONCILE_PLAN = 'src/lib/reconcile/plan';
const reconcileFiles = readdirSync(RECONCILE_PLAN)
  .filter((name) => name.endsWith('.ts'))
  .sort()
  .map((name) => `${RECONCILE_PLAN}/${name}`);

const TARGETS = {
  cleanup: {
    files: ['src/lib/cleanup/plan.ts'],
    tests: ['test/unit/cleanup-plan.test.ts', 'test/unit/cleanup-worlds.test.ts'],
    skipToDelete: true,
  },
  reconcile: { files: reconcileFiles, tests: ['test/unit/plan.test.ts', 'test/unit/reconcile.test.ts'], skipToDelete: false },
};
/** The unit tests' configuration without the global setup that builds the Lambda bundles (unit tests need none). */
const VITEST_CONFIG = 'scripts/mutants.vitest.config.ts';

const args = process.argv.slice(2);
const only = args.includes('--file') ? args[args.indexOf('--file') + 1] : undefined;
const json = args.includes('--json');

/** The end of the parenthesised expression starting at `open` (the index of '('). */
function closing(text, open) {
  let depth = 0;
  for (let i = open; i < text.length; i += 1) {
    if (text[i] === '(') depth += 1;
    else if (text[i] === ')') {
      depth -= 1;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/** Mutants of one source: every `if` condition forced false (the guard removed) and true, every strict
 * comparison made loose and back, and (cleanup) every `return skip(...)` turned into a deletion. */
function mutantsOf(source, skipToDelete) {
  const out = [];
  const lines = source.split('\n');
  let offset = 0;
  lines.forEach((line, index) => {
    const trimmed = line.trim();
    if (!(trimmed.startsWith('//') || trimmed.startsWith('*') || trimmed.startsWith('/*'))) {
      for (const match of line.matchAll(/\bif \(/g)) {
        const open = offset + match.index + 3;
        const close = closing(source, open);
        if (close < 0) continue;
        const cond = source.slice(open + 1, close);
        out.push({
          line: index + 1,
          what: `if (${cond.slice(0, 60)}) → if (false)`,
          text: `${source.slice(0, open + 1)}false${source.slice(close)}`,
        });
        out.push({
          line: index + 1,
          what: `if (${cond.slice(0, 60)}) → if (true)`,
          text: `${source.slice(0, open + 1)}true${source.slice(close)}`,
        });
      }
      for (const [from, to] of [
        [' < ', ' <= '],
        [' <= ', ' < '],
        [' >= ', ' > '],
        [' > ', ' >= '],
      ]) {
        let at = line.indexOf(from);
        while (at >= 0) {
          const pos = offset + at;
          out.push({
            line: index + 1,
            what: `'${from.trim()}' → '${to.trim()}'`,
            text: `${source.slice(0, pos)}${to}${source.slice(pos + from.length)}`,
          });
          at = line.indexOf(from, at + 1);
        }
      }
      if (skipToDelete) {
        const at = line.indexOf('return skip(');
        if (at >= 0) {
          const pos = offset + at + 'return '.length;
          const close = closing(source, pos + 'skip'.length);
          out.push({
            line: index + 1,
            what: `${source.slice(pos, Math.min(close + 1, pos + 40))}… → deregister`,
            text: `${source.slice(0, pos)}({ action: 'deregister' as const, reason: 'mutant' })${source.slice(close + 1)}`,
          });
        }
      }
    }
    offset += line.length + 1;
  });
  return out;
}

const results = [];
let restoreCurrent;
process.on('SIGINT', () => {
  restoreCurrent?.();
  process.exit(130);
});
for (const [name, target] of Object.entries(TARGETS)) {
  if (only !== undefined && only !== name) continue;
  for (const file of target.files) {
    const original = readFileSync(file, 'utf8');
    restoreCurrent = () => writeFileSync(file, original);
    try {
      for (const mutant of mutantsOf(original, target.skipToDelete)) {
        writeFileSync(file, mutant.text);
        const run = spawnSync('npx', ['vitest', 'run', '--config', VITEST_CONFIG, ...target.tests, '--reporter=dot', '--bail=1'], {
          encoding: 'utf8',
          timeout: 120_000,
        });
        const killed = run.status !== 0;
        results.push({ file, line: mutant.line, mutant: mutant.what, killed });
        if (!json) process.stdout.write(`${killed ? 'killed  ' : 'SURVIVED'} ${file}:${mutant.line} ${mutant.what}\n`);
      }
    } finally {
      restoreCurrent();
      restoreCurrent = undefined;
    }
  }
}
const survived = results.filter((r) => !r.killed);
// killed/total per file of the selected planners (a file without a guard or comparison shows 0/0)
const perFile = {};
for (const [name, target] of Object.entries(TARGETS)) {
  if (only === undefined || only === name) for (const file of target.files) perFile[file] = { mutants: 0, killed: 0 };
}
for (const r of results) {
  perFile[r.file].mutants += 1;
  if (r.killed) perFile[r.file].killed += 1;
}
if (json) {
  process.stdout.write(
    `${JSON.stringify({ mutants: results.length, killed: results.length - survived.length, perFile, survived }, null, 2)}\n`,
  );
} else {
  process.stdout.write('\n');
  for (const [file, counts] of Object.entries(perFile)) process.stdout.write(`${file}: ${counts.killed}/${counts.mutants} killed\n`);
  process.stdout.write(`\n${results.length} mutants, ${results.length - survived.length} killed, ${survived.length} survived\n`);
}
process.exit(survived.length === 0 ? 0 : 1);
