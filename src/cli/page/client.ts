/**
 * The report page's script, inlined in the page (plain browser JavaScript, no library): a clicked cell's
 * details (checks, actions, reasons, AMI), the status filters and the text filter, the groups that fold, and
 * the build tabs of a pipeline. The page reads without it (the matrix is drawn by ./html.ts).
 */
const CLIENT_SCRIPT = `(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('data').textContent);
  var aside = document.getElementById('details');
  function esc(s) {
    return String(s == null ? '' : s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }
  function chip(s) { return '<span class="chip s-' + esc(s) + '">' + esc(s) + '</span>'; }
  function show(td) {
    var build = data[Number(td.dataset.build)];
    var cell = build.cells[Number(td.dataset.cell)];
    var actions = build.actions.filter(function (a) { return a.region === cell.region && a.accountId === cell.accountId; });
    var sel = document.querySelector('td.cell.sel');
    if (sel) sel.classList.remove('sel');
    td.classList.add('sel');
    var html = '<button type="button" class="close" aria-label="close">✕</button>' +
      '<h2>' + esc(cell.region) + ' / ' + esc(cell.accountId) + ' ' + chip(cell.status) + '</h2>' +
      '<p>AMI <span class="mono ami-id">' + esc(cell.imageId || 'none') + '</span> · origin ' + esc(cell.origin) + '</p>';
    if (cell.reasons.length > 0)
      html += '<h3>Reasons</h3><ul class="reasons">' + cell.reasons.map(function (r) { return '<li>' + esc(r) + '</li>'; }).join('') + '</ul>';
    html += '<h3>Checks</h3><table class="checks"><tr><th>Check</th><th>Subject</th><th>Result</th><th>Reason</th></tr>' +
      cell.checks.map(function (k) {
        return '<tr><td>' + esc(k.check) + '</td><td class="mono">' + esc(k.subject) + '</td><td>' + chip(k.result) + '</td><td>' + esc(k.reason) + '</td></tr>';
      }).join('') + '</table>';
    html += '<h3>Actions</h3>' + (actions.length === 0 ? '<p class="dim">none</p>' :
      '<table class="actions"><tr><th>Action</th><th>Target</th><th>Outcome</th><th>Why / result</th></tr>' +
      actions.map(function (a) {
        return '<tr><td>' + esc(a.kind) + '</td><td class="mono">' + esc(a.target) + '</td><td>' + chip(a.outcome) + '</td><td>' + esc(a.reason) +
          (a.detail ? '<div class="dim">' + esc(a.detail) + '</div>' : '') +
          (a.error ? '<div class="reasons">' + esc(a.error.code + ': ' + a.error.message) + '</div>' : '') + '</td></tr>';
      }).join('') + '</table>');
    aside.innerHTML = html;
    aside.hidden = false;
  }
  function close() {
    aside.hidden = true;
    var sel = document.querySelector('td.cell.sel');
    if (sel) sel.classList.remove('sel');
  }
  document.addEventListener('click', function (e) {
    var t = e.target;
    if (!(t instanceof Element)) return;
    var td = t.closest('td.cell');
    if (td) return show(td);
    if (t.closest('aside .close')) return close();
    var toggle = t.closest('button.toggle');
    if (toggle) {
      var body = toggle.closest('tbody');
      var shut = body.classList.toggle('shut');
      toggle.textContent = shut ? '▸' : '▾';
      toggle.setAttribute('aria-expanded', String(!shut));
      return;
    }
    var tab = t.closest('button[data-tab]');
    if (tab) {
      document.querySelectorAll('button[data-tab]').forEach(function (b) { b.setAttribute('aria-pressed', String(b === tab)); });
      document.querySelectorAll('section.build').forEach(function (s) { s.hidden = s.dataset.build !== tab.dataset.tab; });
      close();
    }
  });
  document.addEventListener('keydown', function (e) {
    if (e.key === 'Escape') close();
    if (e.key === 'Enter' && e.target instanceof Element && e.target.matches('td.cell')) show(e.target);
  });
  function filter() {
    var on = {};
    document.querySelectorAll('.filters input[type=checkbox]').forEach(function (c) { on[c.dataset.status] = c.checked; });
    var q = document.getElementById('q').value.trim().toLowerCase();
    document.querySelectorAll('td.cell').forEach(function (td) { td.classList.toggle('off', !on[td.dataset.status]); });
    document.querySelectorAll('tr.acct').forEach(function (tr) {
      var cells = tr.querySelectorAll('td.cell');
      var any = cells.length === 0 || Array.prototype.some.call(cells, function (td) { return !td.classList.contains('off'); });
      tr.classList.toggle('hide', !any || (q !== '' && tr.dataset.key.toLowerCase().indexOf(q) < 0));
    });
  }
  document.querySelectorAll('.filters input').forEach(function (i) { i.addEventListener('input', filter); });
})();`;

export { CLIENT_SCRIPT };
