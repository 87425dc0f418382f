/**
 * The `report` command: the report page of an image build (or of a pipeline's last builds), one
 * self-contained HTML file drawn from the same report `status` reads (a reconcile in plan mode), with the
 * timeline of the reports its runs published when they are given (--reports).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { InputError } from '../../lib/core/errors.ts';
import type { ReconcileReport } from '../../lib/reconcile/report.ts';
import { latestBuildsOf } from '../../lib/sweep/sweep.ts';
import { escapeControl } from '../format.ts';
import { renderPage } from '../page/html.ts';
import { pageData } from '../page/model.ts';
import { type CommandContext, EXIT, exitFor, globalsOf } from '../session.ts';
import { check as reconcileCheck, runReconcile, unreadable } from './reconcile.ts';

const check = reconcileCheck;

/**
 * Report events from a file: a JSON array, or one JSON value a line (what `aws logs` or an archive gives),
 * each a report or an EventBridge event whose `detail` is one.
 */
function readReports(path: string): unknown[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error: unknown) {
    throw new InputError(`--reports ${escapeControl(path)}: cannot read it (${error instanceof Error ? error.message : String(error)})`, {
      cause: error,
    });
  }
  const values: unknown[] = [];
  const trimmed = text.trim();
  try {
    if (trimmed.startsWith('[')) values.push(...(JSON.parse(trimmed) as unknown[]));
    else for (const line of trimmed.split('\n')) if (line.trim() !== '') values.push(JSON.parse(line) as unknown);
  } catch (error: unknown) {
    throw new InputError(`--reports ${escapeControl(path)}: not JSON (an array, or one report or event a line)`, { cause: error });
  }
  return values.map((v) => (typeof v === 'object' && v !== null && 'detail' in v ? (v as { detail: unknown }).detail : v));
}

function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 20) throw new InvalidArgumentError(`expected a number of builds from 1 to 20, got "${value}"`);
  return n;
}

interface ReportOptions {
  html?: string;
  pipeline?: string;
  builds: number;
  reports?: string;
}

function register(cli: Command, ctx: CommandContext): void {
  const { io, result } = ctx;
  cli
    .command('report')
    .description('the report page of an image build or a pipeline: one HTML file with the matrix, the details and the timeline (read only)')
    .argument('[image-build-arn]', 'arn:aws:imagebuilder:<region>:<account>:image/<name>/<x.y.z>/<build>')
    .option('--pipeline <arn>', 'instead of a build: the last builds of this image pipeline, side by side')
    .addOption(new Option('--builds <n>', 'with --pipeline: how many of its last AVAILABLE builds').argParser(parseCount).default(3))
    .option('--html <file>', 'write the page to this file (- for stdout)')
    .option(
      '--reports <file>',
      'report events for the timeline: a JSON array or JSON lines of reports or EventBridge events (default: none)',
    )
    .addHelpText(
      'after',
      `
The page is one file with no request at view time: open it in any browser. Each cell is coloured by its
status, with a mark per check; a click shows its checks, actions, reasons and AMI. With --json the page's
data is printed instead. The sandbox serves the same page live (npm start and npm run sandbox print its address).

Examples:
  $ imagebuilder-reconciler report arn:aws:imagebuilder:us-east-1:111122223333:image/golden/1.0.0/3 --html report.html
  $ imagebuilder-reconciler report --pipeline arn:aws:imagebuilder:us-east-1:111122223333:image-pipeline/golden --builds 2 --html golden.html`,
    )
    .action(async (given: string | undefined, opts: ReportOptions, command: Command) => {
      const globals = globalsOf(command);
      if (opts.html === undefined && globals.json !== true) throw new InputError('report needs --html <file> (or --json for its data)');
      const history = opts.reports === undefined ? [] : readReports(opts.reports);
      let arns = [given ?? ''];
      if (opts.pipeline !== undefined) {
        arns = await latestBuildsOf(ctx.session().clients, opts.pipeline, opts.builds);
        if (arns.length === 0) {
          io.err(`error: ${opts.pipeline} has no AVAILABLE build`);
          result.code = EXIT.failed;
          return;
        }
      }
      const current: ReconcileReport[] = [];
      for (const arn of arns) {
        const report = await runReconcile(ctx, arn, 'plan', false);
        if (unreadable(ctx, report, { ...globals, json: false })) return;
        current.push(report);
      }
      const data = pageData({
        current,
        history,
        pipelineArn: opts.pipeline ?? null,
        source: 'imagebuilder-reconciler report (read only: a reconcile in plan mode)',
        now: new Date(),
      });
      if (globals.json === true) io.out(JSON.stringify(data, null, 2));
      if (opts.html !== undefined) {
        const html = renderPage(data);
        if (opts.html === '-') io.out(html);
        else {
          writeFileSync(opts.html, html);
          io.err(`wrote ${escapeControl(opts.html)} (${Math.ceil(Buffer.byteLength(html) / 1024)} KiB): open it in a browser`);
        }
      }
      result.code = exitFor(current[0]?.outcome ?? 'converged');
    });
}

export { check, readReports, register };
