import Table from 'cli-table3';
import { createColors } from 'picocolors';
import type { CleanupReport } from '../lib/cleanup/cleanup.ts';
import type { ReconcileReport } from '../lib/reconcile/report.ts';
import type { CellStatus } from '../lib/reconcile/types.ts';

type Colors = ReturnType<typeof createColors>;

function colors(enabled: boolean): Colors {
  return createColors(enabled);
}

function statusColor(c: Colors, status: string): string {
  switch (status) {
    case 'ok':
    case 'converged':
    case 'applied':
    case 'already-done':
      return c.green(status);
    case 'repaired':
    case 'drift':
    case 'planned':
      return c.cyan(status);
    case 'pending':
    case 'skipped':
    case 'warning':
      return c.yellow(status);
    case 'failed':
      return c.red(status);
    default:
      return status;
  }
}

function table(head: string[], c: Colors): Table.Table {
  return new Table({
    head: head.map((h) => c.bold(h)),
    style: { head: [], border: [], compact: true },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
    wordWrap: true,
  });
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** One line a person can read: what happened and what comes next. */
function reportSummary(report: ReconcileReport, c: Colors): string {
  const cells = report.counts.cells;
  const parts = (['ok', 'repaired', 'drift', 'pending', 'failed', 'skipped'] as CellStatus[])
    .filter((s) => cells[s] > 0)
    .map((s) => `${cells[s]} ${statusColor(c, s)}`);
  const actions = report.counts.actions;
  const acted =
    report.mode === 'plan'
      ? `${plural(actions.planned, 'action')} planned (plan mode: nothing changed)`
      : `${plural(actions.applied, 'action')} applied, ${actions.failed} failed`;
  const next = report.next.recheck ? `; recheck queued (attempt ${report.next.attempt} in ${report.next.delaySeconds} s)` : report.outcome === 'pending' ? `; ${report.next.reason}` : '';
  return `${statusColor(c, report.outcome).toUpperCase()}: ${plural(cells.total, 'cell')} (${parts.join(', ') || 'none'}); ${acted}${next}.`;
}

/** The whole report as tables: image, cells, actions, notes, summary. */
function renderReport(report: ReconcileReport, c: Colors): string {
  const lines: string[] = [];
  const img = report.image;
  lines.push(`${c.bold('Image')}   ${img.name} ${img.version}/${img.buildNumber} (${img.platform ?? 'platform unknown'}, ${img.status})`);
  lines.push(`        ${c.dim(img.arn)}`);
  if (img.stateReason !== null) lines.push(`        reason: ${img.stateReason}`);
  if (img.supersededBy !== null) lines.push(`        ${c.yellow('superseded by')} ${img.supersededBy}`);
  lines.push(`${c.bold('Run')}     ${report.mode} mode, attempt ${report.attempt}, ${report.awsCalls} AWS calls, ${report.durationMs} ms`);
  if (report.cells.length > 0) {
    const cells = table(['Region', 'Account', 'AMI', 'Status', 'Details'], c);
    for (const cell of report.cells) {
      const details = cell.reasons.length === 0 ? c.dim(cell.checks.map((k) => k.check).filter((k, i, all) => all.indexOf(k) === i).join(', ') + ' ok') : cell.reasons.join('\n');
      cells.push([cell.region, cell.accountId, cell.imageId ?? '-', statusColor(c, cell.status), details]);
    }
    lines.push('', cells.toString());
  }
  if (report.actions.length > 0) {
    const actions = table(['Action', 'Cell', 'Target', 'Outcome', 'Why / result'], c);
    for (const a of report.actions) {
      const result = a.error !== null ? `${a.reason}\n${c.red(a.error.message)}` : a.detail === null ? a.reason : `${a.reason}\n${c.dim(a.detail)}`;
      actions.push([a.kind, `${a.region}/${a.accountId}`, a.target, statusColor(c, a.outcome), result]);
    }
    lines.push('', actions.toString());
  }
  for (const note of report.notes) lines.push(`${c.yellow('note')}: ${note}`);
  lines.push('', reportSummary(report, c));
  return lines.join('\n');
}

/** The cleanup report: every AMI looked at, with its decision and reason, then the totals. */
function renderCleanup(report: CleanupReport, c: Colors): string {
  const lines: string[] = [];
  lines.push(`${c.bold('Configuration')} ${report.configuration.name} (${report.configuration.arn})`);
  lines.push(`${c.bold('Cells today')}   ${report.configuration.currentCells.join(', ')}`);
  lines.push(`${c.bold('Run')}           ${report.mode} mode, strategy ${report.settings.strategy}, min age ${report.settings.minAgeDays} d, keep tag ${report.settings.keepTagKey}, shared: ${report.settings.shared}; ${report.awsCalls} AWS calls`);
  for (const build of report.builds.filter((b) => b.note !== undefined)) lines.push(`${c.yellow('build')} ${build.arn}: ${build.note ?? ''}`);
  const outside = report.candidates.filter((x) => x.guard !== 'current-cell');
  if (outside.length > 0) {
    const t = table(['Region', 'Account', 'AMI', 'Build', 'Decision', 'Outcome', 'Reason'], c);
    for (const x of outside) {
      const decision = x.decision === 'skip' ? c.yellow(`keep (${x.guard ?? ''})`) : c.cyan(x.decision);
      const outcome = x.outcome === 'done' ? c.green(x.verified ?? 'done') : statusColor(c, x.outcome);
      const snaps = x.snapshots.length === 0 ? '' : `\n${c.dim(x.snapshots.map((s) => `${s.snapshotId} ${s.sizeGiB} GiB ${s.result}`).join(', '))}`;
      t.push([x.region, x.accountId, x.imageId, x.buildArn.split('/').slice(-2).join('/'), decision, outcome, `${x.reason}${x.error === null ? '' : `\n${c.red(x.error.message)}`}${snaps}`]);
    }
    lines.push('', t.toString());
  }
  for (const problem of report.problems) lines.push(`${c.yellow('problem')}: ${problem}`);
  lines.push('', cleanupSummary(report, c));
  return lines.join('\n');
}

function cleanupSummary(report: CleanupReport, c: Colors): string {
  const n = report.counts;
  const inCurrent = n.amis - n.candidates;
  const acted =
    report.mode === 'plan'
      ? `${n.planned} would be ${report.settings.strategy === 'deregister' ? 'deregistered' : report.settings.strategy === 'disable' ? 'disabled' : 'deprecated'} (plan mode: nothing changed; --apply acts)`
      : `${n.deregistered} deregistered, ${n.disabled} disabled, ${n.deprecated} deprecated, ${n.failed} failed; ${report.snapshotsDeleted} snapshot(s), ${report.gibFreed} GiB freed, about $${report.estimatedMonthlySavingUsd.toFixed(2)}/month`;
  const kept = report.candidates.filter((x) => x.decision === 'skip' && x.guard !== 'current-cell').length;
  return `${c.bold(report.mode === 'plan' ? 'PLAN' : 'CLEANUP')}: ${n.candidates} AMI(s) in removed cells (${inCurrent} in current cells untouched); ${acted}; ${kept} kept by a guard.`;
}

export { colors, renderCleanup, renderReport, reportSummary, statusColor, table };
export type { Colors };
