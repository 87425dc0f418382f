/**
 * The report page: one self-contained HTML document (inline CSS and script, no request at view time) drawn
 * from {@link PageData}. The matrix is drawn here, so the page reads without its script; the script adds the
 * details of a clicked cell, the filters and the build tabs (./client.ts).
 */
import type { CellReport, ReconcileReport } from '../../lib/reconcile/report.ts';
import type { CellStatus } from '../../lib/reconcile/types.ts';
import { CHECK_LABELS } from '../format.ts';
import { CLIENT_SCRIPT } from './client.ts';
import { type PageBuild, type PageData, STATUS_ORDER } from './model.ts';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text as HTML: markup characters escaped, control characters shown as \xNN (never sent raw). */
function esc(text: string | number | null | undefined): string {
  return (
    String(text ?? '')
      .replace(/[&<>"']/g, (ch) => ESCAPES[ch] ?? ch)
      // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is escaped
      .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`)
  );
}

/** JSON inside a <script> element: `<` written as \u003c, so no `</script>` can end it early. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

const MARK: Record<string, string> = { ok: '✓', drift: '≠', pending: '…', failed: '✗', warning: '!', skipped: '–' };

/** A check's mark from its results, as `status` shows it (format.ts): the worst result wins. */
function markOf(results: string[]): string {
  for (const r of ['failed', 'drift', 'pending', 'warning']) if (results.includes(r)) return r;
  return results.every((r) => r === 'skipped') ? 'skipped' : 'ok';
}

function cellMarks(cell: CellReport): string {
  if (cell.checks.some((k) => k.check === 'access')) return '<span class="m m-failed">no access</span>';
  return Object.entries(CHECK_LABELS)
    .filter(([check]) => cell.checks.some((k) => k.check === check))
    .map(([check, label]) => {
      const result = markOf(cell.checks.filter((k) => k.check === check).map((k) => k.result));
      return `<span class="m m-${result}" title="${esc(check)}: ${result}">${esc(label)}${MARK[result] ?? ''}</span>`;
    })
    .join('');
}

function worst(statuses: CellStatus[]): CellStatus {
  return STATUS_ORDER.find((s) => statuses.includes(s)) ?? 'ok';
}

function countsLine(report: ReconcileReport): string {
  return STATUS_ORDER.filter((s) => report.counts.cells[s] > 0)
    .map((s) => `<span class="chip s-${s}">${report.counts.cells[s]} ${s}</span>`)
    .join(' ');
}

/**
 * The regions × accounts matrix of one build, transposed for scale: one row per account (there may be
 * hundreds), one column per region; accounts grouped by their worst cell, the worst group first.
 */
function matrix(build: PageBuild, index: number): string {
  const cells = build.report.cells;
  const regions = [...new Set(cells.map((c) => c.region))].sort();
  const byAccount = new Map<string, Map<string, number>>();
  cells.forEach((cell, i) => {
    const row = byAccount.get(cell.accountId) ?? new Map<string, number>();
    row.set(cell.region, i);
    byAccount.set(cell.accountId, row);
  });
  const groups = new Map<CellStatus, string[]>();
  for (const [account, row] of [...byAccount].sort(([a], [b]) => a.localeCompare(b))) {
    const status = worst([...row.values()].map((i) => cells[i]?.status ?? 'ok'));
    groups.set(status, [...(groups.get(status) ?? []), account]);
  }
  const head = `<thead><tr><th class="corner">Account \\ Region</th>${regions.map((r) => `<th>${esc(r)}</th>`).join('')}</tr></thead>`;
  const bodies = STATUS_ORDER.filter((s) => groups.has(s)).map((status) => {
    const accounts = groups.get(status) ?? [];
    const rows = accounts.map((account) => {
      const row = byAccount.get(account) ?? new Map<string, number>();
      const tds = regions.map((region) => {
        const i = row.get(region);
        const cell = i === undefined ? undefined : cells[i];
        if (i === undefined || cell === undefined) return '<td class="none" title="not a cell">·</td>';
        return `<td class="cell s-${cell.status}" data-build="${index}" data-cell="${i}" data-status="${cell.status}" tabindex="0" title="${esc(`${region}/${account}: ${cell.status}`)}"><b>${esc(cell.status)}</b><span class="ami">${esc(cell.imageId ?? 'no AMI')}</span><span class="marks">${cellMarks(cell)}</span></td>`;
      });
      const origins = [...new Set([...row.values()].map((i) => cells[i]?.origin ?? ''))].join(', ');
      return `<tr class="acct" data-key="${esc(`${account} ${[...row.values()].map((i) => `${cells[i]?.region ?? ''} ${cells[i]?.imageId ?? ''}`).join(' ')}`)}"><th title="${esc(origins)}">${esc(account)}</th>${tds.join('')}</tr>`;
    });
    return `<tbody class="group g-${status}" data-group="${status}"><tr class="group-head"><th colspan="${regions.length + 1}"><button type="button" class="toggle" aria-expanded="true">▾</button> <span class="chip s-${status}">${status}</span> ${accounts.length} account${accounts.length === 1 ? '' : 's'} whose worst cell is ${status}</th></tr>${rows.join('')}</tbody>`;
  });
  return `<div class="wrap"><table class="matrix">${head}${bodies.join('')}</table></div>`;
}

function timeline(build: PageBuild): string {
  const items = build.timeline.map(
    (e) =>
      `<li class="t-${esc(e.kind)}"><time>${esc(e.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z'))}</time> <b>${esc(e.label)}</b> <span class="chip s-${esc(e.outcome)}">${esc(e.outcome)}</span> ${esc(e.summary)}</li>`,
  );
  return `<h3>Timeline</h3><ol class="timeline">${items.join('')}</ol>`;
}

function buildSection(build: PageBuild, index: number): string {
  const r = build.report;
  const notes = [
    ...(r.image.stateReason === null ? [] : [`Image Builder: ${r.image.stateReason}`]),
    ...(r.image.supersededBy === null ? [] : [`superseded by ${r.image.supersededBy}`]),
    ...r.notes,
    ...(r.error === undefined ? [] : [`the image could not be read: ${r.error.code}: ${r.error.message}`]),
  ];
  return `<section class="build" data-build="${index}"${index === 0 ? '' : ' hidden'}>
<h2>${esc(build.title)} <span class="chip s-${esc(r.outcome)}">${esc(r.outcome)}</span></h2>
<p class="arn">${esc(r.image.arn)} · ${esc(r.image.platform ?? 'platform unknown')}, ${esc(r.image.status)} · ${esc(r.mode)} mode, attempt ${r.attempt}</p>
<p class="counts">${r.counts.cells.total} cells: ${countsLine(r)}</p>
${notes.length === 0 ? '' : `<ul class="notes">${notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`}
${matrix(build, index)}
${timeline(build)}
</section>`;
}

/** A pipeline's builds side by side: each cell's status per build, and which build its pointers name now. */
function sideBySide(data: PageData): string {
  if (data.pipelineArn === null || data.builds.length === 0) return '';
  const keys = new Map<string, { region: string; accountId: string }>();
  for (const b of data.builds) for (const c of b.report.cells) keys.set(`${c.accountId}/${c.region}`, c);
  const statusOf = data.builds.map((b) => new Map(b.report.cells.map((c) => [`${c.accountId}/${c.region}`, c.status])));
  const titleOf = new Map(data.builds.map((b) => [b.arn, b.title]));
  const rows = [...keys].sort(([a], [b]) => a.localeCompare(b));
  const body = rows.map(([key, cell]) => {
    const pointers = data.pointers
      .filter((p) => p.accountId === cell.accountId && p.region === cell.region)
      .map(
        (p) =>
          `<div class="ptr">${p.pointer === 'launch-template' ? 'LT' : 'SSM'} ${esc(p.subject)} → ${
            p.namesBuild === null
              ? `<span class="chip s-failed" title="${esc(p.reason)}">none of these</span>`
              : esc(titleOf.get(p.namesBuild))
          }</div>`,
      )
      .join('');
    const tds = statusOf.map((m) => {
      const s = m.get(key);
      return s === undefined ? '<td class="none">·</td>' : `<td><span class="chip s-${s}">${s}</span></td>`;
    });
    return `<tr class="acct" data-key="${esc(`${cell.accountId} ${cell.region}`)}"><th>${esc(cell.accountId)}</th><th>${esc(cell.region)}</th>${tds.join('')}<td>${pointers || '<span class="dim">no pointer</span>'}</td></tr>`;
  });
  return `<section class="pipeline"><h2>Builds side by side</h2>
<div class="wrap"><table class="matrix side"><thead><tr><th>Account</th><th>Region</th>${data.builds.map((b) => `<th>${esc(b.title)}</th>`).join('')}<th>Launch templates and parameters name now</th></tr></thead><tbody>${body.join('')}</tbody></table></div></section>`;
}

const STYLE = `
:root{--ok:#1a7f37;--repaired:#0969da;--drift:#0a7ea4;--pending:#9a6700;--failed:#cf222e;--skipped:#6e7781;--warning:#bc4c00}
*{box-sizing:border-box}body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1f2328;background:#fff}
header{padding:12px 16px;border-bottom:1px solid #d0d7de;position:sticky;top:0;background:#fff;z-index:5}
h1{font-size:18px;margin:0 0 4px}h2{font-size:16px;margin:12px 0 4px}h3{font-size:14px;margin:16px 0 4px}
main{padding:0 16px 24px}.arn,.dim,.src{color:#57606a;font-size:12px;word-break:break-all}
.chip{display:inline-block;border-radius:10px;padding:0 7px;font-size:12px;color:#fff;background:#6e7781;white-space:nowrap}
.s-ok,.s-converged{background:var(--ok)}.s-repaired{background:var(--repaired)}.s-drift{background:var(--drift)}.s-pending{background:var(--pending)}.s-failed{background:var(--failed)}.s-skipped{background:var(--skipped)}
.filters label{margin-right:10px;white-space:nowrap}.filters input[type=search]{width:260px}
.tabs button{margin:4px 4px 0 0}.tabs button[aria-pressed=true]{font-weight:bold}
.wrap{overflow:auto;max-height:70vh;border:1px solid #d0d7de}
table.matrix{border-collapse:separate;border-spacing:0}
.matrix th,.matrix td{border-bottom:1px solid #eaeef2;border-right:1px solid #eaeef2;padding:3px 6px;text-align:left;vertical-align:top}
.matrix thead th{position:sticky;top:0;background:#f6f8fa;z-index:3;white-space:nowrap}
.matrix tbody th{position:sticky;left:0;background:#f6f8fa;z-index:2;font-family:ui-monospace,monospace;font-weight:normal;white-space:nowrap}
.matrix thead th.corner{left:0;z-index:4}
.group-head th{background:#fff!important;font-family:inherit!important;text-align:left}
td.cell{cursor:pointer;min-width:150px;border-left:4px solid #6e7781}
td.cell.s-ok,td.cell.s-repaired,td.cell.s-drift,td.cell.s-pending,td.cell.s-failed,td.cell.s-skipped{background:#fff}
td.cell.s-ok{border-left-color:var(--ok)}td.cell.s-repaired{border-left-color:var(--repaired)}td.cell.s-drift{border-left-color:var(--drift)}td.cell.s-pending{border-left-color:var(--pending);background:#fff8c5}td.cell.s-failed{border-left-color:var(--failed);background:#ffebe9}td.cell.s-skipped{border-left-color:var(--skipped)}
td.cell b{display:block;font-size:12px}td.cell .ami{display:block;font-family:ui-monospace,monospace;font-size:12px;white-space:nowrap}
td.cell:focus,td.cell.sel{outline:2px solid #0969da;outline-offset:-2px}
.marks{display:block;font-size:11px}.m{margin-right:4px;white-space:nowrap}.m-ok{color:var(--ok)}.m-drift{color:var(--drift)}.m-pending,.m-warning{color:var(--pending)}.m-failed{color:var(--failed);font-weight:bold}.m-skipped{color:var(--skipped)}
td.none{color:#afb8c1;text-align:center}td.cell.off{visibility:hidden}tr.hide,tbody.shut tr.acct{display:none}
.timeline{padding-left:20px}.timeline time{font-family:ui-monospace,monospace;font-size:12px;color:#57606a}.timeline .t-revoke b{color:var(--failed)}
aside{position:fixed;right:0;top:0;bottom:0;width:min(560px,100%);background:#fff;border-left:1px solid #d0d7de;box-shadow:-4px 0 12px #0002;padding:12px 16px;overflow:auto;z-index:10}
aside table{border-collapse:collapse;width:100%;font-size:12px}aside td,aside th{border-bottom:1px solid #eaeef2;padding:3px 4px;text-align:left;vertical-align:top}
aside .close{float:right}.reasons li{color:var(--failed)}.mono{font-family:ui-monospace,monospace;word-break:break-all}
.ptr{white-space:nowrap;font-size:12px}
`;

/** The whole page. */
function renderPage(data: PageData): string {
  const tabs =
    data.builds.length > 1
      ? `<div class="tabs">${data.builds.map((b, i) => `<button type="button" data-tab="${i}" aria-pressed="${i === 0}">${esc(b.title)} <span class="chip s-${esc(b.report.outcome)}">${esc(b.report.outcome)}</span></button>`).join('')}</div>`
      : '';
  const filters = `<div class="filters">Show: ${STATUS_ORDER.map(
    (s) => `<label><input type="checkbox" data-status="${s}" checked> <span class="chip s-${s}">${s}</span></label>`,
  ).join('')}<input type="search" id="q" placeholder="filter: account, region or AMI" aria-label="filter by account, region or AMI"></div>`;
  // the script needs the cells and actions for the details; the rest of each report is drawn above
  const payload = data.builds.map((b) => ({ arn: b.arn, cells: b.report.cells, actions: b.report.actions }));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(data.title)} · imagebuilder-reconciler</title><style>${STYLE}</style></head>
<body><header><h1>${esc(data.title)}</h1><div class="src">${esc(data.source)} · ${esc(data.generatedAt)}${data.pipelineArn === null ? '' : ` · ${esc(data.pipelineArn)}`}</div>${tabs}${filters}</header>
<main>${data.builds.length === 0 ? '<p>No build to show.</p>' : data.builds.map(buildSection).join('\n')}
${sideBySide(data)}</main>
<aside id="details" hidden></aside>
<script type="application/json" id="data">${scriptJson(payload)}</script>
<script>${CLIENT_SCRIPT}</script>
</body></html>
`;
}

export { esc, renderPage };
