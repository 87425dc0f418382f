import Table from 'cli-table3';
import { createColors } from 'picocolors';
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

export { colors, renderReport, reportSummary, statusColor, table };
export type { Colors };
