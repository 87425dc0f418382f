/**
 * What the report page shows, from report data only (pure): the builds, each with its current report (what
 * `status` reads) and its timeline (the reports its runs published), and for a pipeline which build each
 * cell's launch template and SSM parameter names now. `report --html` and the sandbox's live page both build
 * it; ./html.ts draws it.
 */
import type { CellStatus } from '../../lib/reconcile/types.ts';
import type { ReconcileReport } from '../../lib/reconcile/report.ts';

/** One event of a build's life, oldest first: a reconcile run (the first attempt or a recheck), a revoke, … */
interface TimelineEntry {
  at: string;
  /** The report's `kind`: `reconcile`, or another kind of report (`revoke`) shown as it comes. */
  kind: string;
  /** `first run`, `recheck 2`, `sweep`, `read only (status)`, `revoke`… */
  label: string;
  outcome: string;
  /** One line: counts, what was applied, what comes next. */
  summary: string;
}

interface PageBuild {
  arn: string;
  /** `name version/build`. */
  title: string;
  report: ReconcileReport;
  timeline: TimelineEntry[];
}

/** A pointer (a launch template's default version, an SSM parameter) of a cell, and the build whose AMI it names. */
interface PointerRow {
  region: string;
  accountId: string;
  pointer: 'launch-template' | 'ssm-parameter';
  subject: string;
  /** The ARN of the build (among those shown) whose check of this pointer is ok; null when none is. */
  namesBuild: string | null;
  /** Why not, when no build shown owns it: the newest build's reason. */
  reason: string;
}

interface PageData {
  title: string;
  generatedAt: string;
  /** Where the data comes from, in words (`status, read only`, `the sandbox's report events`). */
  source: string;
  pipelineArn: string | null;
  /** Newest first. */
  builds: PageBuild[];
  pointers: PointerRow[];
}

/** A report of a kind this page does not know in detail (a revoke report): what any report has. */
interface OtherReport {
  kind: string;
  startedAt?: string;
  finishedAt?: string;
  outcome?: string;
  mode?: string;
  summary?: string;
  image?: { arn?: string };
}

const STATUS_ORDER: readonly CellStatus[] = ['failed', 'pending', 'drift', 'repaired', 'skipped', 'ok'];

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function triggerLabel(report: ReconcileReport): string {
  if (report.trigger === 'cli' && report.mode === 'plan') return 'read only (status)';
  if (report.trigger === 'schedule') return 'sweep';
  if (report.attempt > 1) return `recheck ${report.attempt}`;
  return report.trigger === 'eventbridge' ? 'first run (build event)' : `run (${report.trigger})`;
}

function reconcileSummary(report: ReconcileReport): string {
  const cells = STATUS_ORDER.filter((s) => report.counts.cells[s] > 0)
    .map((s) => `${report.counts.cells[s]} ${s}`)
    .join(', ');
  const a = report.counts.actions;
  const acted = report.mode === 'plan' ? `${plural(a.planned, 'action')} planned` : `${a.applied} applied, ${a.failed} failed`;
  const next = report.next.recheck ? `recheck in ${report.next.delaySeconds} s` : report.next.reason;
  return `${plural(report.counts.cells.total, 'cell')} (${cells || 'none'}); ${acted}; ${next}`;
}

/**
 * The timeline of one build from the reports of its runs (any order, any kind; another build's are left out).
 * A report of another kind (a revoke) is shown with what every report has: its time, outcome and summary.
 */
function timelineOf(arn: string, reports: readonly unknown[]): TimelineEntry[] {
  const entries: TimelineEntry[] = [];
  for (const raw of reports) {
    if (typeof raw !== 'object' || raw === null) continue;
    const r = raw as OtherReport;
    if (r.image?.arn !== arn) continue;
    if (r.kind === 'reconcile') {
      const report = raw as ReconcileReport;
      entries.push({
        at: report.finishedAt,
        kind: 'reconcile',
        label: triggerLabel(report),
        outcome: report.outcome,
        summary: reconcileSummary(report),
      });
    } else if (typeof r.kind === 'string') {
      entries.push({
        at: r.finishedAt ?? r.startedAt ?? '',
        kind: r.kind,
        label: `${r.kind}${r.mode === undefined ? '' : ` (${r.mode})`}`,
        outcome: r.outcome ?? '',
        summary: r.summary ?? '',
      });
    }
  }
  return entries.sort((a, b) => a.at.localeCompare(b.at));
}

function buildTitle(report: ReconcileReport): string {
  return `${report.image.name} ${report.image.version}/${report.image.buildNumber}`;
}

/**
 * Which build each cell's pointers name now: the build (newest first) whose check of that launch template or
 * parameter is ok. Builds are given newest first.
 */
function pointersOf(builds: readonly ReconcileReport[]): PointerRow[] {
  const rows = new Map<string, PointerRow>();
  for (const report of builds) {
    for (const cell of report.cells) {
      for (const check of cell.checks) {
        if (check.check !== 'launch-template' && check.check !== 'ssm-parameter') continue;
        const key = `${cell.region}/${cell.accountId}/${check.check}/${check.subject}`;
        const row = rows.get(key);
        if (row === undefined)
          rows.set(key, {
            region: cell.region,
            accountId: cell.accountId,
            pointer: check.check,
            subject: check.subject,
            namesBuild: check.result === 'ok' ? report.image.arn : null,
            reason: check.result === 'ok' ? '' : `${check.result}: ${check.reason}`,
          });
        else if (row.namesBuild === null && check.result === 'ok') row.namesBuild = report.image.arn;
      }
    }
  }
  return [...rows.values()].sort(
    (a, b) => a.accountId.localeCompare(b.accountId) || a.region.localeCompare(b.region) || a.subject.localeCompare(b.subject),
  );
}

/**
 * The page of one build, or of a pipeline's last builds (newest first). `history` is every report known
 * (the reports the runs published); each build's timeline is its own, and its current report ends it.
 */
function pageData(input: {
  current: readonly ReconcileReport[];
  history?: readonly unknown[];
  pipelineArn?: string | null;
  source: string;
  now: Date;
}): PageData {
  const builds = input.current.map((report) => {
    const timeline = timelineOf(report.image.arn, input.history ?? []);
    const last = timeline.at(-1);
    // the current report ends the timeline, unless it is the last published one itself
    if (last === undefined || last.at !== report.finishedAt)
      timeline.push({
        at: report.finishedAt,
        kind: 'reconcile',
        label: triggerLabel(report),
        outcome: report.outcome,
        summary: reconcileSummary(report),
      });
    return { arn: report.image.arn, title: buildTitle(report), report, timeline };
  });
  const first = builds[0];
  const pipelineArn = input.pipelineArn ?? null;
  return {
    title:
      pipelineArn !== null
        ? `${pipelineArn.split('/').pop() ?? pipelineArn}: last ${plural(builds.length, 'build')}`
        : first === undefined
          ? 'no build'
          : first.title,
    generatedAt: input.now.toISOString(),
    source: input.source,
    pipelineArn,
    builds,
    pointers: pipelineArn === null ? [] : pointersOf(input.current),
  };
}

export { STATUS_ORDER, pageData, pointersOf, timelineOf };
export type { PageBuild, PageData, PointerRow, TimelineEntry };
