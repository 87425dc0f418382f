// `npm run worlds -- [N] [--seed S]`: N random worlds (default 10,000) against cleanup's planner, in process
// (test/helpers/planner-worlds.ts); prints the count of worlds, AMIs, wrongful deletions and needless keeps.
// Exit 1 when any world deletes an AMI that had to be kept.
import fc from 'fast-check';
import { judge, world } from '../test/helpers/planner-worlds.ts';

const args = process.argv.slice(2);
const seedAt = args.indexOf('--seed');
const seed = seedAt >= 0 ? Number(args[seedAt + 1]) : Date.now() % 2 ** 31;
const n = Number(args.find((a, i) => /^\d+$/.test(a) && i !== seedAt + 1) ?? 10_000);
if (!Number.isInteger(n) || n < 1 || !Number.isInteger(seed)) {
  console.error('usage: npm run worlds -- [N] [--seed S]  (N: a positive whole number of worlds)');
  process.exit(2);
}
const started = performance.now();
let amis = 0;
let wrongful = 0;
let needless = 0;
const examples: string[] = [];
for (const w of fc.sample(world, { numRuns: n, seed })) {
  const verdict = judge(w);
  amis += verdict.amis;
  wrongful += verdict.wrongful.length;
  needless += verdict.needlessKeeps.length;
  if (examples.length < 3) examples.push(...verdict.wrongful, ...verdict.needlessKeeps);
}
const ms = Math.round(performance.now() - started);
console.log(
  `worlds: ${n}  AMIs: ${amis}  wrongful deletions: ${wrongful}  needless keeps (no read failed): ${needless}  seed: ${seed}  ${ms} ms`,
);
for (const e of examples.slice(0, 3)) console.log(`  ${e}`);
process.exitCode = wrongful > 0 ? 1 : 0;
