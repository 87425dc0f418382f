/**
 * The documentation's commands work as written, on every page (README.md and docs/*.md): each `sh` block that
 * starts with `npm run sandbox` is run line by line against a fresh sandbox wired as `npm run sandbox` wires it
 * (the AWS CLI lines only where /usr/bin/aws is installed), and every `imagebuilder-reconciler` command anywhere
 * on a page is accepted by the command line (never exit 2). Every relative link between the pages resolves.
 * The Deploy commands need an AWS account and the Development ones run the suite itself: not run here.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { buildBundles } from '../helpers/build.ts';
import { cli } from '../helpers/cli.ts';
import { demoScenario, startBuild, useSandbox } from '../helpers/sandbox.ts';

const ROOT = new URL('../../', import.meta.url);
const PAGES = [
  'README.md',
  ...readdirSync(new URL('docs/', ROOT))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`),
];
const TEXT = new Map(PAGES.map((page) => [page, readFileSync(new URL(page, ROOT), 'utf8')]));
/** The runnable blocks: `sh` blocks that start the sandbox, with the page they are on. */
const RUNNABLE = PAGES.flatMap((page) =>
  [...(TEXT.get(page) ?? '').matchAll(/```sh\n([\s\S]*?)```/g)]
    .map((m) => m[1] ?? '')
    .filter((block) => block.startsWith('npm run sandbox\n'))
    .map((block, index) => ({ page, index, block })),
);
/** The AWS CLI the suite runs a block's `aws` lines with (the one whose behaviour the pages describe). */
const AWS = '/usr/bin/aws';
const AWS_CLI = existsSync(AWS);
const BUILD = 'arn:aws:imagebuilder:us-east-1:111111111111:image/golden-windows/1.0.0/1';
/** What some blocks must run, so that a page losing a command is noticed (AWS CLI lines left out). */
const EXPECTED: Record<string, string[]> = {
  'README.md': [`status ${BUILD}`, `reconcile ${BUILD}`, 'sweep --plan'],
  'docs/sandbox.md': [
    `status ${BUILD}`,
    `reconcile ${BUILD}`,
    'reconcile --pipeline',
    'sweep --plan',
    'lint arn:aws:imagebuilder:us-east-1:111111111111:distribution-configuration/golden-windows',
  ],
};

/** Split a shell line into words (single and double quotes), dropping a trailing comment, pipe or redirect. */
function words(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)) {
    const word = m[1] ?? m[2] ?? m[3] ?? '';
    if (m[3] !== undefined && ['#', '|', '>', '&&'].some((stop) => word.startsWith(stop))) break;
    out.push(word);
  }
  return out;
}

beforeAll(() => {
  buildBundles();
});

it('the pages that show the sandbox have runnable blocks', () => {
  expect(RUNNABLE.map((r) => r.page)).toStrictEqual(expect.arrayContaining(Object.keys(EXPECTED)));
});

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}_\- ]/gu, '')
    .replaceAll(' ', '-');
}

it('every relative link of a page reaches a file, and its anchor a heading there', () => {
  const broken: string[] = [];
  for (const page of PAGES) {
    for (const [, link = ''] of (TEXT.get(page) ?? '').matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(link)) continue;
      const [target = '', hash] = link.split('#');
      const file = target === '' ? new URL(page, ROOT) : new URL(target, new URL(page, ROOT));
      if (!existsSync(file)) {
        broken.push(`${page}: ${link}`);
        continue;
      }
      if (hash === undefined) continue;
      const text = TEXT.get(file.pathname.slice(ROOT.pathname.length)) ?? readFileSync(file, 'utf8');
      const headings = text
        .replace(/```[\s\S]*?```/g, '')
        .split('\n')
        .filter((l) => /^#+ /.test(l));
      if (!headings.some((h) => anchor(h.replace(/^#+ /, '')) === hash)) broken.push(`${page}: ${link}`);
    }
  }
  expect(broken).toStrictEqual([]);
});

describe.each(RUNNABLE)('$page, block $index', ({ page, index, block }) => {
  let box: Sandbox;
  const sandboxes = useSandbox();
  beforeAll(async () => {
    box = await sandboxes.start({ scenario: demoScenario(), wire: true, clockSpeed: 3000 });
  });
  afterAll(() => {
    vi.unstubAllEnvs();
  });

  it('the "npm run sandbox" block runs as written, in order', async () => {
    const env: Record<string, string> = {};
    const ran: string[] = [];
    const skipped: string[] = [];
    for (const raw of block.replaceAll('\\\n', ' ').split('\n')) {
      const line = raw.replaceAll('http://127.0.0.1:4566', box.url).trim();
      if (line === '' || line.startsWith('#') || line === 'npm run sandbox') continue;
      let argv = words(line).map((w) => w.replace(/\$AWS_ENDPOINT_URL/g, env.AWS_ENDPOINT_URL ?? ''));
      if (argv[0] === 'export') {
        for (const pair of argv.slice(1)) {
          const [key = '', value = ''] = pair.split('=');
          env[key] = value;
          vi.stubEnv(key, value);
        }
        continue;
      }
      const local: Record<string, string> = {};
      while (/^[A-Z_]+=/.test(argv[0] ?? '')) {
        const [key = '', value = ''] = (argv.shift() ?? '').split('=');
        local[key] = value;
      }
      if (argv[0] === 'aws') {
        const starts = argv.includes('start-image-pipeline-execution');
        // without the AWS CLI, the build the block starts is started with the SDK (the commands after it need it)
        if (!AWS_CLI && !starts) {
          skipped.push(line);
          continue;
        }
        let arn: string;
        if (AWS_CLI) {
          // asynchronously: the sandbox answers from this process
          const { stdout: out } = await promisify(execFile)(AWS, [...argv.slice(1), '--output', 'json'], {
            env: { ...process.env, ...env, ...local, AWS_PAGER: '' },
            encoding: 'utf8',
          });
          expect(() => JSON.parse(out), line).not.toThrow();
          arn = starts ? (JSON.parse(out) as { imageBuildVersionArn: string }).imageBuildVersionArn : '';
        } else {
          arn = await startBuild(box, `readme-block-${index}`, argv[argv.indexOf('--image-pipeline-arn') + 1]);
        }
        if (starts) {
          // the build runs its phases; the wired reconciler then finishes the job
          box.clock.advance(2 * 3600_000);
          expect(await box.finalReport(arn, 30_000), 'the reconciler converged the build').toMatchObject({ outcome: 'converged' });
          await box.idle();
        }
        ran.push(`aws ${argv.slice(1, 3).join(' ')}`);
        continue;
      }
      expect(argv.slice(0, 2), `${page}: ${line}`).toStrictEqual(['npx', 'imagebuilder-reconciler']);
      argv = argv.slice(2);
      const { code, out, err } = await cli(argv, 120);
      expect(err, `${page}: ${line}`).toBe('');
      // the wired reconciler has converged the build: read-only commands find nothing to do
      expect(code, `${page}: ${line}\n${out}`).toBe(0);
      if (argv.includes('--json')) expect(() => JSON.parse(out)).not.toThrow();
      ran.push(argv.slice(0, 2).join(' '));
    }
    const reconciler = ran.filter((r) => !r.startsWith('aws '));
    expect(reconciler.length, `${page}: the block runs the command line`).toBeGreaterThan(0);
    const expected = EXPECTED[page];
    if (expected !== undefined) expect(reconciler).toStrictEqual(expected);
    if (AWS_CLI) expect(skipped).toStrictEqual([]);
  });
});

describe('every page', () => {
  let box: Sandbox;
  const sandboxes = useSandbox();
  beforeAll(async () => {
    box = await sandboxes.start({ scenario: demoScenario(), wire: true, clockSpeed: 3000 });
  });
  afterAll(() => {
    vi.unstubAllEnvs();
  });

  it('every imagebuilder-reconciler command on a page is one the command line accepts', async () => {
    vi.stubEnv('AWS_ENDPOINT_URL', box.url);
    vi.stubEnv('AWS_ACCESS_KEY_ID', '111111111111');
    vi.stubEnv('RECONCILER_EVENT_BUS', 'default');
    const lines = PAGES.flatMap((page) =>
      (TEXT.get(page) ?? '').split('\n').flatMap((line) => {
        const at = line.indexOf('imagebuilder-reconciler ');
        const inline = /`((?:npx )?imagebuilder-reconciler [^`]+)`/.exec(line)?.[1];
        if (inline !== undefined && !inline.includes('<') && !inline.includes('[')) return [{ page, line: inline }];
        return at >= 0 && /^\s*(\$ |npx |imagebuilder-reconciler )/.test(line) ? [{ page, line: line.slice(at) }] : [];
      }),
    );
    expect(lines.length).toBeGreaterThanOrEqual(5);
    for (const { page, line } of lines) {
      const argv = words(line).slice(1);
      if (argv[0] === 'demo' || argv[0] === 'sandbox') continue; // they keep running (npm start, npm run sandbox)
      const { code, err } = await cli(
        argv[0] === 'lint' && !argv[1]?.startsWith('arn:') ? [...argv.slice(0, 1), 'test/fixtures/lint/good.json'] : argv,
        120,
      );
      expect(code, `${page}: ${line}\n${err}`).not.toBe(2);
    }
  });
});
