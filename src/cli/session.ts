/**
 * What the commands share: the output they write to, the exit codes, the options every command takes, the
 * session (settings, the one client factory, where it points) the preAction hook opens, and small parsers.
 */
import { GetDistributionConfigurationCommand, type DistributionConfiguration } from '@aws-sdk/client-imagebuilder';
import { type Command, InvalidArgumentError } from 'commander';
import { type ClientFactory, createClientFactory } from '../lib/aws/clients.ts';
import type { DistributionConfigurationArn } from '../lib/core/arn.ts';
import { type Config, cliEnvironment, loadConfig } from '../lib/core/config.ts';
import type { ReconcileReport } from '../lib/reconcile/report.ts';
import { diagnose } from './diagnose.ts';
import { type Colors, colors } from './format.ts';
import { type ResolvedTarget, resolveTarget } from './target.ts';

/** Exit codes (documented in the README and in --help). */
const EXIT = { converged: 0, failed: 1, badInput: 2, changed: 3, pending: 4, cannotRun: 5, notFound: 6 } as const;

interface GlobalOptions {
  region?: string;
  profile?: string;
  endpointUrl?: string;
  json?: boolean;
  color: boolean;
  wide?: boolean;
}

interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  isTTY: boolean;
  /** stderr is a terminal: progress may be shown there. */
  errIsTTY?: boolean;
  /** Write to stderr without a newline (progress). */
  progress?: (text: string) => void;
  /** Width of the terminal stdout is (tables fit it); default COLUMNS, else 80 on a terminal, else no limit. */
  columns?: number | undefined;
}

/**
 * The command could not talk to AWS at all (endpoint unreachable, no or expired credentials, access denied to
 * the first call): nothing about the image is known, so no report is shown. Exit 5.
 */
class CannotRunError extends Error {
  constructor(message: string, options: { cause: unknown }) {
    super(message, { cause: options.cause });
    this.name = 'CannotRunError';
  }
}

/** What every AWS-touching command works with: the settings, the one client factory, where it points. */
interface Session {
  config: Config;
  clients: ClientFactory;
  target: ResolvedTarget;
}

/** One run of the command line: the session the preAction hook opened, and what it checked before any call. */
interface RunState {
  session?: Session;
  checked?: unknown;
}

/**
 * A command's argument and options checked before any AWS call is made (the preAction hook): a malformed
 * ARN or option is bad input (exit 2). What it returns is kept in {@link RunState.checked} for the action.
 */
type AwsCheck = (arg: string, opts: Record<string, unknown>) => unknown;

/** What each command's action works with. */
interface CommandContext {
  io: Io;
  /** The exit code the action sets. */
  result: { code: number };
  state: RunState;
  /** The session the preAction hook opened (every command's action runs after it). */
  session: () => Session;
  colorsFor: (globals: GlobalOptions) => Colors;
  widthFor: (globals: GlobalOptions) => number;
}

function commandContext(io: Io, result: { code: number }, state: RunState): CommandContext {
  return {
    io,
    result,
    state,
    session: () => {
      if (state.session === undefined) throw new Error('no session: the preAction hook did not run');
      return state.session;
    },
    colorsFor: (globals) => colors(globals.color && io.isTTY && !cliEnvironment().noColor),
    // output that is not a terminal is never wrapped (`status … | grep ami-…` finds whole lines), unless COLUMNS asks
    widthFor: (globals) =>
      globals.wide === true
        ? Number.POSITIVE_INFINITY
        : (io.columns ?? cliEnvironment().columns ?? (io.isTTY ? 80 : Number.POSITIVE_INFINITY)),
  };
}

/** The global options as the action of `command` sees them. */
function globalsOf(command: Command): GlobalOptions {
  return command.optsWithGlobals<GlobalOptions>();
}

/** A counter on stderr while cells are observed; only on a terminal, never on stdout. */
function progress(io: Io): { onProgress?: (done: number, total: number) => void; end: () => void } {
  if (io.errIsTTY !== true || io.progress === undefined) return { end: () => undefined };
  const write = io.progress;
  let shown = false;
  return {
    onProgress: (done, total) => {
      shown = true;
      write(`\rchecking cells: ${done}/${total}`);
    },
    end: () => {
      if (shown) write('\r\x1b[K');
    },
  };
}

function exitFor(outcome: ReconcileReport['outcome']): number {
  if (outcome === 'converged') return EXIT.converged;
  if (outcome === 'failed') return EXIT.failed;
  if (outcome === 'pending') return EXIT.pending;
  return EXIT.changed;
}

/**
 * Where the command points (region, profile, endpoint), checked; the settings; the one client factory.
 * `cleanup` assumes the cleanup role in target accounts, every other command the repair role.
 */
async function openSession(globals: GlobalOptions, role: 'repair' | 'cleanup' = 'repair'): Promise<Session> {
  const env = cliEnvironment();
  const target = await resolveTarget({
    regionFlag: globals.region,
    regionEnv: env.region,
    profile: globals.profile ?? env.profile,
    endpoint: globals.endpointUrl ?? env.endpointUrl,
  });
  // the CLI runs with the caller's credentials: their account comes from STS, never from RECONCILER_ACCOUNT_ID
  const loaded = loadConfig();
  const config: Config = Object.freeze({
    ...loaded,
    ...(role === 'cleanup' ? { targetRoleName: loaded.cleanupRoleName } : {}),
    region: target.region,
    accountId: '',
  });
  const clients = createClientFactory({
    ...config,
    profile: target.profile,
    endpoint: target.endpoint,
    s3ForcePathStyle: config.s3ForcePathStyle || target.endpoint !== undefined,
  });
  return { config, clients, target };
}

/** The first call (sts:GetCallerIdentity, which needs no permission): is AWS reachable, and who are we? */
async function preflight(session: Session): Promise<void> {
  try {
    await session.clients.ownAccountId();
  } catch (error: unknown) {
    const diagnosis = diagnose(error, session.target);
    if (diagnosis !== undefined) throw new CannotRunError(diagnosis.message, { cause: error });
    throw error;
  }
}

/**
 * A distribution configuration as Image Builder stores it, read in its own account and region (`lint` by ARN,
 * `doctor`). The SDK's error is thrown as it is: each command words it its own way.
 */
async function readDistributionConfiguration(
  clients: ClientFactory,
  arn: DistributionConfigurationArn,
): Promise<DistributionConfiguration | undefined> {
  const cell = await clients.forCell(arn.accountId, arn.region);
  return (await cell.imagebuilder.send(new GetDistributionConfigurationCommand({ distributionConfigurationArn: arn.arn })))
    .distributionConfiguration;
}

/** The library's log on the command line: warnings and errors on stderr, nothing else. */
function quietLog(io: Io) {
  return {
    info: () => undefined,
    warn: (message: string) => io.err(`warning: ${message}`),
    error: (message: string, ...extra: Record<string, unknown>[]) =>
      io.err(`error: ${message} ${extra.length > 0 ? JSON.stringify(extra) : ''}`),
  };
}

function parseNonNegative(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a whole number of days, got "${value}"`);
  return n;
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError(`expected a port from 1 to 65535, got "${value}"`);
  return n;
}

function parsePositive(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a positive number, got "${value}"`);
  return n;
}

export {
  CannotRunError,
  EXIT,
  commandContext,
  exitFor,
  globalsOf,
  openSession,
  parseNonNegative,
  parsePort,
  parsePositive,
  preflight,
  progress,
  quietLog,
  readDistributionConfiguration,
};
export type { AwsCheck, CommandContext, GlobalOptions, Io, RunState, Session };
