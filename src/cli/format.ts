import Table from 'cli-table3';
import { createColors } from 'picocolors';
import type { CleanupReport } from '../lib/cleanup/cleanup.ts';
import type { Finding } from '../lib/preflight/lint.ts';
import type { ReconcileReport } from '../lib/reconcile/report.ts';
import type { RevokeReport } from '../lib/revoke/revoke.ts';
import type { SweepReport } from '../lib/sweep/sweep.ts';
import type { CellStatus, CheckName } from '../lib/reconcile/types.ts';

type Colors = ReturnType<typeof createColors>;

/**
 * Text from outside (an argument, a name read from AWS) made safe to echo on a terminal: control characters
 * (ESC, CR, BEL, …) shown as \\xNN, so that they cannot move the cursor, recolour or hide what follows.
 */
function escapeControl(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is escaped
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

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

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour sequences start with ESC
const ANSI = /\x1b\[[0-9;]*m/g;

/** Columns a string takes on a terminal (colour codes take none). */
function visibleWidth(text: string): number {
  return [...text.replace(ANSI, '')].length;
}

/** Break words longer than `max` columns, keeping colour codes whole (cli-table3 would cut them off with "…"). */
function breakLongWords(text: string, max: number): string {
  return text
    .split('\n')
    .map((line) =>
      line
        .split(/(\s+)/)
        .map((word) => {
          if (visibleWidth(word) <= max) return word;
          let out = '';
          let count = 0;
          // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour sequences start with ESC
          for (const part of word.split(/(\x1b\[[0-9;]*m)/)) {
            if (part.startsWith('\x1b[')) {
              out += part;
              continue;
            }
            for (const ch of part) {
              if (count === max) {
                out += '\n';
                count = 0;
              }
              out += ch;
              count += 1;
            }
          }
          return out;
        })
        .join(''),
    )
    .join('\n');
}

/** The longest run of a cell's text that must not be split (an ID, an ARN, a region: no spaces in it). */
function longestWord(text: string): number {
  return Math.max(0, ...text.split(/\s+/).map(visibleWidth));
}

/**
 * Column widths (padding included) that fit `width` terminal columns: the widest columns give way first,
 * down to their heading (at least 10) and never below their longest word, so that no ID, ARN or region is
 * split (the table is then wider than the terminal). `Infinity` (--wide, or output that is not a terminal)
 * keeps every column as wide as its content.
 */
function fitColumns(rows: string[][], width: number): number[] | undefined {
  const columns = rows[0]?.length ?? 0;
  const natural = Array.from(
    { length: columns },
    (_, j) => Math.max(...rows.map((row) => Math.max(...(row[j] ?? '').split('\n').map(visibleWidth)))) + 2,
  );
  const available = width - (columns + 1);
  if (!Number.isFinite(width) || natural.reduce((a, b) => a + b, 0) <= available) return undefined;
  const minimum = natural.map((n, j) =>
    Math.min(n, Math.max(visibleWidth(rows[0]?.[j] ?? '') + 2, 10, ...rows.map((row) => longestWord(row[j] ?? '') + 2))),
  );
  const widths = [...natural];
  let total = widths.reduce((a, b) => a + b, 0);
  while (total > available) {
    let widest = -1;
    for (let j = 0; j < columns; j++)
      if ((widths[j] ?? 0) > (minimum[j] ?? 0) && (widest === -1 || (widths[j] ?? 0) > (widths[widest] ?? 0))) widest = j;
    if (widest === -1) break; // every column at its minimum: wider than the terminal, unavoidably
    widths[widest] = (widths[widest] ?? 0) - 1;
    total -= 1;
  }
  return widths;
}

/** Whether a table of these rows fits `width` columns without splitting a word. */
function fits(rows: string[][], width: number): boolean {
  if (!Number.isFinite(width)) return true;
  const widths = fitColumns(rows, width);
  return widths === undefined || widths.reduce((a, b) => a + b, 0) + widths.length + 1 <= width;
}

/** A table that fits the terminal: rows are collected, and laid out when printed. */
class FitTable {
  private readonly rows: string[][] = [];

  constructor(
    private readonly head: string[],
    private readonly c: Colors,
    private readonly width: number,
  ) {}

  push(...rows: string[][]): void {
    this.rows.push(...rows);
  }

  toString(): string {
    const widths = fitColumns([this.head, ...this.rows], this.width);
    const fitted = (cells: string[]) =>
      widths === undefined ? cells : cells.map((cell, j) => breakLongWords(cell, (widths[j] ?? 12) - 2));
    const t = new Table({
      head: fitted(this.head).map((h) => this.c.bold(h)),
      style: { head: [], border: [], compact: true },
      chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
      wordWrap: true,
      ...(widths === undefined ? {} : { colWidths: widths }),
    });
    for (const row of this.rows) t.push(fitted(row));
    return t.toString();
  }
}

/** Wrap plain text at `separator` boundaries to lines of at most `width` columns. */
function wrapWords(text: string, width: number, separator = ' '): string[] {
  if (visibleWidth(text) <= width) return [text];
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(separator)) {
    const next = line === '' ? word : `${line}${separator}${word}`;
    if (line !== '' && visibleWidth(next) > width) {
      lines.push(line);
      line = word;
    } else line = next;
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** A long line wrapped at spaces to `width`, continuation lines indented by two. */
function hanging(text: string, width: number): string[] {
  if (visibleWidth(text) <= width) return [text];
  const [first = '', ...rest] = wrapWords(text, width - 2);
  return [first, ...wrapWords(rest.join(' '), width - 2).map((line) => `  ${line}`)];
}

/** @param width terminal columns the table may take (default: no limit) */
function table(head: string[], c: Colors, width = Number.POSITIVE_INFINITY): FitTable {
  return new FitTable(head, c, width);
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
  const next = report.next.recheck
    ? `; recheck queued (attempt ${report.next.attempt} in ${report.next.delaySeconds} s)`
    : report.outcome === 'pending'
      ? `; ${report.next.reason}`
      : '';
  return `${statusColor(c, report.outcome).toUpperCase()}: ${plural(cells.total, 'cell')} (${parts.join(', ') || 'none'}); ${acted}${next}.`;
}

/** The whole report as tables: image, cells, actions, notes, summary. */
function renderReport(report: ReconcileReport, c: Colors, width = Number.POSITIVE_INFINITY): string {
  const lines: string[] = [];
  const img = report.image;
  lines.push(`${c.bold('Image')}   ${img.name} ${img.version}/${img.buildNumber} (${img.platform ?? 'platform unknown'}, ${img.status})`);
  lines.push(`        ${c.dim(img.arn)}`);
  if (img.stateReason !== null) lines.push(`        reason: ${img.stateReason}`);
  if (img.supersededBy !== null) lines.push(`        ${c.yellow('superseded by')} ${img.supersededBy}`);
  lines.push(`${c.bold('Run')}     ${report.mode} mode, attempt ${report.attempt}, ${report.awsCalls} AWS calls, ${report.durationMs} ms`);
  if (report.cells.length > 0) {
    const cells = table(['Region', 'Account', 'AMI', 'Status', 'Details'], c, width);
    for (const cell of report.cells) {
      const details =
        cell.reasons.length === 0
          ? c.dim(
              `${cell.checks
                .map((k) => k.check)
                .filter((k, i, all) => all.indexOf(k) === i)
                .join(', ')} ok`,
            )
          : cell.reasons.join('\n');
      cells.push([cell.region, cell.accountId, cell.imageId ?? '-', statusColor(c, cell.status), details]);
    }
    lines.push('', cells.toString());
  }
  if (report.actions.length > 0) {
    const actions = table(['Action', 'Cell', 'Target', 'Outcome', 'Why / result'], c, width);
    for (const a of report.actions) {
      const result =
        a.error !== null ? `${a.reason}\n${c.red(a.error.message)}` : a.detail === null ? a.reason : `${a.reason}\n${c.dim(a.detail)}`;
      actions.push([a.kind, `${a.region}/${a.accountId}`, a.target, statusColor(c, a.outcome), result]);
    }
    lines.push('', actions.toString());
  }
  // the organizations listed for shared cells (the ones not listed are among the notes, with why)
  for (const o of report.organizations ?? []) {
    if (o.status === 'listed')
      lines.push(
        ...hanging(
          `${c.bold('shared with')} ${o.arn}: ${o.accounts.length} account(s) listed${o.accounts.length === 0 ? '' : ` (${o.accounts.join(', ')})`}`,
          width,
        ),
      );
  }
  for (const note of report.notes) lines.push(...hanging(`${c.yellow('note')}: ${note}`, width));
  lines.push('', ...hanging(reportSummary(report, c), width));
  return lines.join('\n');
}

/**
 * The label of each check's mark in the `status` matrix, in the order shown. Every check has one (the type
 * says so): `access` is not a mark, a cell that cannot be accessed shows "no access" instead.
 */
const CHECK_LABELS: Record<Exclude<CheckName, 'access'>, string> = {
  ami: 'AMI',
  name: 'name',
  tags: 'tags',
  'launch-permission': 'share',
  encryption: 'kms',
  'launch-template': 'LT',
  'fast-launch': 'FL',
  'ssm-parameter': 'SSM',
  'license-configuration': 'lic',
  's3-export': 'S3',
};
const CHECK_CODES = Object.entries(CHECK_LABELS);

function mark(c: Colors, results: string[]): string {
  if (results.includes('failed')) return c.red('✗');
  if (results.includes('drift')) return c.cyan('≠');
  if (results.includes('pending')) return c.yellow('…');
  if (results.includes('warning')) return c.yellow('!');
  if (results.every((r) => r === 'skipped')) return c.dim('–');
  return c.green('✓');
}

/**
 * The cells of a build, regions × accounts, in a form that stays readable with hundreds of accounts: one row
 * per account (accounts are many, regions few), one column per region, `·` for a (region, account) that is
 * not a cell. Accounts come in the order of `rank` (the worst first), then by id. When that table does not
 * fit `width` without splitting an ID, each account is a heading with one line per cell instead. Used by
 * `status` and `doctor`.
 */
function cellMatrix<T extends { region: string; accountId: string }>(
  cells: T[],
  c: Colors,
  width: number,
  render: (cell: T) => string,
  rank: (cell: T) => number = () => 0,
): string {
  const regions = [...new Set(cells.map((cell) => cell.region))].sort();
  const byAccount = new Map<string, Map<string, T>>();
  for (const cell of cells) {
    const row = byAccount.get(cell.accountId) ?? new Map<string, T>();
    row.set(cell.region, cell);
    byAccount.set(cell.accountId, row);
  }
  const worst = (row: Map<string, T>) => Math.min(...[...row.values()].map(rank));
  const accounts = [...byAccount].sort(([a, ra], [b, rb]) => worst(ra) - worst(rb) || a.localeCompare(b));
  const rows = accounts.map(([account, row]) => [
    account,
    ...regions.map((region) => {
      const cell = row.get(region);
      return cell === undefined ? c.dim('·') : render(cell);
    }),
  ]);
  const head = ['Account', ...regions];
  if (fits([head, ...rows], width)) {
    const t = table(head, c, width);
    t.push(...rows);
    return t.toString();
  }
  // one line per cell under its account, the columns aligned across all of them
  const lines: { account: string; parts: string[] }[] = [];
  for (const [account, row] of accounts)
    for (const [region, cell] of [...row].sort(([a], [b]) => a.localeCompare(b)))
      lines.push({ account, parts: [region, ...render(cell).split('\n')] });
  const columns = Math.max(...lines.map((l) => l.parts.length));
  const pad = Array.from({ length: columns }, (_, j) => Math.max(...lines.map((l) => visibleWidth(l.parts[j] ?? ''))));
  const out: string[] = [];
  let current = '';
  for (const line of lines) {
    if (line.account !== current) {
      current = line.account;
      out.push(c.bold(current));
    }
    const text = line.parts.map((p, j) => (j === line.parts.length - 1 ? p : p + ' '.repeat((pad[j] ?? 0) - visibleWidth(p)))).join('  ');
    out.push(...hanging(`  ${text}`, width).map((l, i) => (i === 0 ? l : `    ${l}`)));
  }
  return out.join('\n');
}

const STATUS_RANK: Record<CellStatus, number> = { failed: 0, pending: 1, drift: 2, repaired: 3, skipped: 4, ok: 5 };

/**
 * The distribution matrix: the summary line first, then each account's cells (the worst first), each with
 * its status, AMI and a mark per check, then the reasons of the cells that are not ok.
 */
function renderStatus(report: ReconcileReport, c: Colors, width = Number.POSITIVE_INFINITY): string {
  const matrix = cellMatrix(
    report.cells,
    c,
    width,
    (cell) => {
      const status = cell.status === 'drift' ? c.cyan('drift') : statusColor(c, cell.status);
      const marks = CHECK_CODES.filter(([check]) => cell.checks.some((k) => k.check === check))
        .map(
          ([check, label]) =>
            `${label}${mark(
              c,
              cell.checks.filter((k) => k.check === check).map((k) => k.result),
            )}`,
        )
        .join(' ');
      const access = cell.checks.find((k) => k.check === 'access');
      return `${status}\n${cell.imageId ?? c.dim('no AMI')}\n${access !== undefined ? c.red('no access') : marks}`;
    },
    (cell) => STATUS_RANK[cell.status],
  );
  const lines = [
    ...hanging(reportSummary(report, c).replace('(plan mode: nothing changed)', '(read only)'), width),
    `${c.bold('Image')}   ${escapeControl(report.image.name)} ${report.image.version}/${report.image.buildNumber} (${report.image.platform ?? 'platform unknown'}, ${report.image.status})`,
  ];
  if (report.error !== undefined) lines.push(...hanging(`${c.red('error')}: ${report.error.code}: ${report.error.message}`, width));
  if (report.cells.length > 0) lines.push('', matrix);
  lines.push(
    ...wrapWords(
      '✓ as configured  ≠ differs (reconcile repairs it)  … pending  ✗ failed  ! warning  – skipped  · not a cell',
      width,
      '  ',
    ).map((line) => c.dim(line)),
  );
  const problems = report.cells.filter((cell) => cell.reasons.length > 0);
  if (problems.length > 0) {
    lines.push('');
    for (const cell of problems)
      for (const reason of cell.reasons) lines.push(...hanging(`${cell.region}/${cell.accountId}: ${reason}`, width));
  }
  for (const note of report.notes) lines.push(...hanging(`${c.yellow('note')}: ${note}`, width));
  return lines.join('\n');
}

/** Lint findings as a table and a count. */
function renderFindings(findings: Finding[], source: string, c: Colors, width = Number.POSITIVE_INFINITY): string {
  const errors = findings.filter((f) => f.severity === 'error').length;
  const warnings = findings.filter((f) => f.severity === 'warning').length;
  const lines = [`${c.bold('Lint')} ${source}`];
  if (findings.length > 0) {
    const t = table(['Severity', 'Path', 'Finding', 'Fix'], c, width);
    for (const f of findings)
      t.push([
        f.severity === 'error' ? c.red('error') : f.severity === 'warning' ? c.yellow('warning') : 'info',
        f.path,
        `${f.message}\n${c.dim(f.rule)}`,
        f.fix,
      ]);
    lines.push('', t.toString());
  }
  lines.push('', `${errors} error(s), ${warnings} warning(s)${errors === 0 && warnings === 0 ? ': looks good.' : '.'}`);
  return lines.join('\n');
}

/** The cleanup report: every AMI looked at, with its decision and reason, then the totals. */
function renderCleanup(report: CleanupReport, c: Colors, width = Number.POSITIVE_INFINITY): string {
  const lines: string[] = [];
  lines.push(`${c.bold('Configuration')} ${report.configuration.name} (${report.configuration.arn})`);
  lines.push(`${c.bold('Cells today')}   ${report.configuration.currentCells.join(', ')}`);
  lines.push(
    `${c.bold('Run')}           ${report.mode} mode, strategy ${report.settings.strategy}, min age ${report.settings.minAgeDays} d, keep tag(s) ${report.settings.keepTagKeys.join(', ')}, shared: ${report.settings.shared}; ${report.awsCalls} AWS calls`,
  );
  for (const build of report.builds.filter((b) => b.note !== undefined))
    lines.push(`${c.yellow('build')} ${build.arn}: ${build.note ?? ''}`);
  const outside = report.candidates.filter((x) => x.guard !== 'current-cell');
  if (outside.length > 0) {
    const t = table(['Region', 'Account', 'AMI', 'Build', 'Decision', 'Outcome', 'Reason'], c, width);
    for (const x of outside) {
      const decision = x.decision === 'skip' ? c.yellow(`keep (${x.guard ?? ''})`) : c.cyan(x.decision);
      const outcome = x.outcome === 'done' ? c.green(x.verified ?? 'done') : statusColor(c, x.outcome);
      const snaps =
        x.snapshots.length === 0 ? '' : `\n${c.dim(x.snapshots.map((s) => `${s.snapshotId} ${s.sizeGiB} GiB ${s.result}`).join(', '))}`;
      t.push([
        x.region,
        x.accountId,
        x.imageId,
        x.buildArn.split('/').slice(-2).join('/'),
        decision,
        outcome,
        `${x.reason}${x.error === null ? '' : `\n${c.red(x.error.message)}`}${snaps}`,
      ]);
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
      : `${n.deregistered} deregistered, ${n.disabled} disabled, ${n.deprecated} deprecated, ${n.failed} failed${n.planned > 0 ? `, ${n.planned} left for a later run (cap of ${report.settings.maxPerRun} per run)` : ''}; ${report.snapshotsDeleted} snapshot(s), ${report.gibFreed} GiB freed, about $${report.estimatedMonthlySavingUsd.toFixed(2)}/month`;
  const kept = report.candidates.filter((x) => x.decision === 'skip' && x.guard !== 'current-cell').length;
  return `${c.bold(report.mode === 'plan' ? 'PLAN' : 'CLEANUP')}: ${n.candidates} AMI(s) in removed cells (${inCurrent} in current cells untouched); ${acted}; ${kept} kept by a guard.`;
}

/** The sweep: one row per pipeline with its latest build and the reconcile's outcome, then the totals. */
function renderSweep(report: SweepReport, c: Colors, width = Number.POSITIVE_INFINITY): string {
  const lines = [
    `${c.bold('Sweep')}   ${report.mode} mode, ${plural(report.counts.pipelines, 'pipeline')}, ${report.counts.awsCalls} AWS calls`,
  ];
  if (report.pipelines.length > 0) {
    const t = table(['Pipeline', 'Latest AVAILABLE build', 'Outcome', 'Cells / note'], c, width);
    for (const p of report.pipelines) {
      const r = report.reports.find((x) => x.image.arn === p.imageBuildVersionArn);
      const cells =
        r === undefined
          ? (p.note ?? '')
          : (['ok', 'repaired', 'drift', 'pending', 'failed'] as const)
              .filter((s) => r.counts.cells[s] > 0)
              .map((s) => `${r.counts.cells[s]} ${statusColor(c, s)}`)
              .join(', ');
      t.push([
        p.pipelineArn.split('/').pop() ?? p.pipelineArn,
        p.imageBuildVersionArn?.split('/').slice(-3).join('/') ?? c.dim('none'),
        p.outcome === 'none' ? c.dim('none') : statusColor(c, p.outcome),
        cells,
      ]);
    }
    lines.push('', t.toString());
  }
  const n = report.counts;
  const parts = (['converged', 'repaired', 'drift', 'pending', 'failed', 'none'] as const)
    .filter((k) => n[k] > 0)
    .map((k) => `${n[k]} ${k === 'none' ? 'with no AVAILABLE build' : statusColor(c, k)}`);
  lines.push(
    '',
    ...hanging(
      `${c.bold('SWEEP')}: ${plural(n.pipelines, 'pipeline')} (${parts.join(', ') || 'none'})${report.mode === 'plan' ? ' (plan mode: nothing changed)' : ''}.`,
      width,
    ),
  );
  return lines.join('\n');
}

/** A revoke (or unrevoke): the mark, one row per pointer and AMI of each cell with before and after, then the totals. */
function renderRevoke(report: RevokeReport, c: Colors, width = Number.POSITIVE_INFINITY): string {
  const lines = [
    `${c.bold(report.kind === 'revoke' ? 'Revoke' : 'Unrevoke')}  ${report.image.arn}`,
    `${c.bold('Run')}     ${report.mode} mode${report.kind === 'revoke' ? `, AMIs ${report.retire === 'disable' ? 'disabled' : 'deprecated'}` : ''}, ${report.awsCalls} AWS calls`,
    `${c.bold('Mark')}    ${report.mark.key}: ${report.mark.before ?? c.dim('none')} → ${report.mark.after ?? c.dim('none')} (${statusColor(c, report.mark.outcome)})`,
  ];
  const rows = report.cells.flatMap((cell) => [
    ...cell.pointers.map((p) => [
      cell.region,
      cell.accountId,
      `${p.kind === 'launch-template' ? 'LT' : 'SSM'} ${p.subject}${p.version === null ? '' : ` ${p.version}`}`,
      p.before ?? '-',
      p.after ?? '-',
      statusColor(c, p.outcome),
      p.detail,
    ]),
    ...cell.amis.flatMap((a) => [
      ...(a.fastLaunch.outcome === 'not-configured'
        ? []
        : [
            [
              cell.region,
              cell.accountId,
              `Fast Launch ${a.imageId}`,
              a.fastLaunch.before ?? '-',
              '-',
              statusColor(c, a.fastLaunch.outcome),
              a.fastLaunch.detail,
            ],
          ]),
      [
        cell.region,
        cell.accountId,
        `${a.retire.action} ${a.imageId}`,
        a.retire.before ?? '-',
        '-',
        statusColor(c, a.retire.outcome),
        a.retire.detail,
      ],
    ]),
    ...(cell.pointers.length === 0 && cell.amis.length === 0
      ? [[cell.region, cell.accountId, '-', '-', '-', statusColor(c, cell.status), cell.reasons.join('\n')]]
      : []),
  ]);
  if (rows.length > 0) {
    const t = table(['Region', 'Account', 'What', 'Before', 'After', 'Outcome', 'Detail'], c, width);
    for (const row of rows) t.push(row);
    lines.push('', t.toString());
  }
  for (const note of report.notes) lines.push(...hanging(`${c.yellow('note')}: ${note}`, width));
  if (report.error !== undefined) lines.push(...hanging(`${c.red('error')}: ${report.error.message}`, width));
  const n = report.counts;
  const parts = (['ok', 'planned', 'changed', 'left', 'failed'] as const)
    .filter((k) => n[k] > 0)
    .map((k) => `${n[k]} ${statusColor(c, k)}`);
  const summary =
    report.kind === 'unrevoke'
      ? `mark ${report.mark.outcome === 'applied' ? 'lifted' : report.mark.outcome === 'planned' ? 'would be lifted (plan mode: nothing changed; --apply acts)' : 'not present'}`
      : `${plural(n.cells, 'cell')} (${parts.join(', ') || 'none'}); ${n.pointersMoved} pointer(s) ${report.mode === 'plan' ? 'to move (plan mode: nothing changed; --apply acts)' : 'moved'}, ${n.pointersLeft} left`;
  lines.push('', ...hanging(`${statusColor(c, report.outcome).toUpperCase()}: ${summary}.`, width));
  return lines.join('\n');
}

export {
  CHECK_LABELS,
  cellMatrix,
  cleanupSummary,
  colors,
  escapeControl,
  fitColumns,
  renderSweep,
  renderCleanup,
  renderFindings,
  renderReport,
  renderRevoke,
  renderStatus,
  reportSummary,
  statusColor,
  table,
  visibleWidth,
};
export type { Colors };
