/** The `reconcile` command, and the reconcile run it shares with `status`. */
import { randomUUID } from 'node:crypto';
import { type Command, Option } from 'commander';
import { type ImageBuildArn, parseImageBuildArn, parseImagePipelineArn } from '../../lib/core/arn.ts';
import { InputError } from '../../lib/core/errors.ts';
import { reconcile } from '../../lib/reconcile/reconcile.ts';
import type { ReconcileReport } from '../../lib/reconcile/report.ts';
import { latestBuildOf } from '../../lib/sweep/sweep.ts';
import { diagnose } from '../diagnose.ts';
import { renderReport } from '../format.ts';
import { type AwsCheck, type CommandContext, EXIT, type GlobalOptions, exitFor, globalsOf, progress, quietLog } from '../session.ts';

/**
 * An image build ARN as the command line takes it: well formed, and with its image name in lower case (Image
 * Builder lower-cases names in ARNs, and answers a capitalised one as an invalid parameter, not as missing).
 */
function checkBuildArn(arg: string): ImageBuildArn {
  const arn = parseImageBuildArn(arg);
  if (/[A-Z]/.test(arn.imageName)) {
    const lower = arn.arn.replace(`:image/${arn.imageName}/`, `:image/${arn.imageName.toLowerCase()}/`);
    throw new InputError(
      `no image build ARN has capitals in its image name (Image Builder writes names in lower case): did you mean ${lower}?`,
    );
  }
  return arn;
}

/** A build ARN, or `--pipeline <arn>` instead. */
const check: AwsCheck = (arg, opts) => {
  if (opts.pipeline === undefined) return checkBuildArn(arg);
  if (arg !== '') throw new InputError('give an image build ARN or --pipeline <arn>, not both');
  return parseImagePipelineArn(opts.pipeline);
};

/** Reconcile from the command line (reconcile, status), with a progress counter on stderr. */
async function runReconcile(ctx: CommandContext, arn: string, mode: 'plan' | undefined, publish: boolean): Promise<ReconcileReport> {
  const { config, clients } = ctx.session();
  const counter = progress(ctx.io);
  try {
    return await reconcile(
      { imageBuildVersionArn: arn, trigger: 'cli', mode },
      { config, clients, log: quietLog(ctx.io), now: () => new Date(), newRunId: randomUUID, publish, onProgress: counter.onProgress },
    );
  } finally {
    counter.end();
  }
}

/**
 * A report whose image could not be read says nothing about the image, so no table is printed: when the
 * reason is the caller's setup (denied, expired, unreachable), one line says so and the command exits 5; an
 * image that does not exist exits 6 (not found); any other failure of the read says what it was and exits 1.
 * Returns whether the report was handled here.
 */
function unreadable(ctx: CommandContext, report: ReconcileReport, globals: GlobalOptions): boolean {
  if (report.error === undefined) return false;
  const { io, result } = ctx;
  const diagnosis = diagnose(report.error, ctx.session().target, `imagebuilder:GetImage on ${report.image.arn}`);
  if (globals.json === true) io.out(JSON.stringify(report, null, 2));
  if (diagnosis !== undefined) {
    io.err(`error: ${diagnosis.message}`);
    result.code = EXIT.cannotRun;
  } else if (report.error.kind === 'not-found') {
    io.err(
      `error: no such image build in ${report.image.ownerAccountId}/${report.image.region}: ${report.image.arn} (${report.error.code})`,
    );
    result.code = EXIT.notFound;
  } else {
    io.err(`error: cannot read the image build ${report.image.arn}: ${report.error.code}: ${report.error.message}`);
    result.code = EXIT.failed;
  }
  return true;
}

function register(cli: Command, ctx: CommandContext): void {
  const { io, result } = ctx;
  cli
    .command('reconcile')
    .description('reconcile an image build now: check every cell and repair what differs')
    .argument('[image-build-arn]', 'arn:aws:imagebuilder:<region>:<account>:image/<name>/<x.y.z>/<build>')
    .option('--pipeline <arn>', 'instead of a build: the latest AVAILABLE build of this image pipeline')
    .option('--plan', 'only report what would be done; change nothing')
    .addOption(new Option('--publish', 'also publish the report on the configured EventBridge bus and queue rechecks').default(false))
    .addHelpText(
      'after',
      `
Examples:
  $ imagebuilder-reconciler reconcile arn:aws:imagebuilder:us-east-1:111122223333:image/golden/1.0.0/3 --plan
  $ imagebuilder-reconciler reconcile --pipeline arn:aws:imagebuilder:us-east-1:111122223333:image-pipeline/golden
  $ imagebuilder-reconciler reconcile arn:aws:imagebuilder:us-east-1:111122223333:image/golden/1.0.0/3 --json > report.json`,
    )
    .action(async (given: string | undefined, opts: { plan?: boolean; publish: boolean; pipeline?: string }, command: Command) => {
      const globals = globalsOf(command);
      let arn = given ?? '';
      if (opts.pipeline !== undefined) {
        const latest = await latestBuildOf(ctx.session().clients, opts.pipeline);
        if (latest === undefined) {
          io.err(`error: ${opts.pipeline} has no AVAILABLE build to reconcile`);
          result.code = EXIT.failed;
          return;
        }
        arn = latest;
      }
      const report = await runReconcile(ctx, arn, opts.plan === true ? 'plan' : undefined, opts.publish);
      if (unreadable(ctx, report, globals)) return;
      io.out(globals.json === true ? JSON.stringify(report, null, 2) : renderReport(report, ctx.colorsFor(globals), ctx.widthFor(globals)));
      result.code = exitFor(report.outcome);
    });
}

export { check, checkBuildArn, register, runReconcile, unreadable };
