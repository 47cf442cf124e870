// The dashboard's stylesheet and script, served from /static/ (same origin,
// so the strict CSP allows them). The script is progressive: every page and
// form works without it; with it, tables update live, the hosts table filters
// as you choose, a switch asks in a dialog, and a triggered job's output
// streams into the page.
import { BASE_CSS } from '../../common/platform/web-html.js';
import { LOG_CSS } from '../../common/platform/log-view.js';
import { SHARED_SCRIPT } from '../../common/platform/web-script.js';
import { APPLYING_ACTIONS } from '../../common/protocol/messages.js';
import { ATTENTION } from '../status/order.js';

export const DASHBOARD_CSS = `${BASE_CSS}${LOG_CSS}
#outputs .panel .log { max-height: 22rem; }
#hosts td:last-child { white-space: nowrap; }
#hosts .queued:not(:first-child) { margin-top: .25rem; }
#hosts th .tags { font-weight: normal; font-size: .85em; }
.filters { display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: center; margin: 0 0 .6rem; }
.state-link { text-decoration: none; color: inherit; }
`;

const APP = String.raw`
(function () {
  var APPLYING = ${JSON.stringify(APPLYING_ACTIONS)};
  var ATTENTION = ${JSON.stringify([...ATTENTION])};

  function panelFor(host, jobId) {
    var outputs = document.getElementById('outputs');
    if (!outputs) return null;
    outputs.hidden = false;
    var id = 'job-' + (jobId || host + '-refused-' + Date.now());
    var panel = document.getElementById(id);
    if (panel) return panel;
    panel = document.createElement('div');
    panel.className = 'panel';
    panel.id = id;
    var h = document.createElement('h3');
    var title = document.createElement('span');
    title.className = 'job-title';
    var status = document.createElement('span');
    status.className = 'job-status';
    status.setAttribute('role', 'status');
    h.appendChild(title);
    h.appendChild(document.createTextNode(' '));
    h.appendChild(status);
    panel.appendChild(h);
    if (jobId) panel.appendChild(bento.newLogView('Output of the job on ' + host));
    var heading = outputs.querySelector('h2');
    outputs.insertBefore(panel, heading ? heading.nextSibling : outputs.firstChild);
    return panel;
  }

  function setStatus(panel, text, cls) {
    var s = panel.querySelector('.job-status');
    s.textContent = text;
    s.className = 'job-status badge ' + (cls || 's-run');
  }

  function showJob(host, r) {
    if (r.ev === 'accepted') {
      var panel = panelFor(host, r.jobId);
      var title = panel.querySelector('.job-title');
      title.textContent = host + ' · ' + r.action + ' · ';
      title.appendChild(bento.jobLink(r.jobId));
      setStatus(panel, r.disposition === 'dispatched' ? 'running' : r.disposition, 's-run');
      if (panel.getAttribute('data-following') === 'yes') return;
      panel.setAttribute('data-following', 'yes');
      bento.follow('/jobs/' + encodeURIComponent(r.jobId) + '/events', panel.querySelector('.log'), function (kind, d) {
        if (kind === 'started') setStatus(panel, 'running', 's-run');
        if (kind === 'end') setStatus(panel, bento.endText(d), d.outcome === 'success' ? 's-ok' : 's-bad');
      });
    } else {
      var p = panelFor(host, null);
      p.querySelector('.job-title').textContent = host;
      setStatus(p, 'refused: ' + (r.message || r.error || 'unknown error'), 's-bad');
    }
  }

  function send(form, body) {
    var btn = form.querySelector('button');
    var host = form.getAttribute('data-host');
    btn.disabled = true;
    fetch(form.getAttribute('action'), {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
      body: JSON.stringify(body)
    }).then(function (res) {
      return res.json().catch(function () { return { ev: 'rejected', message: 'HTTP ' + res.status }; });
    }).then(function (r) {
      btn.disabled = false;
      showJob(host, r);
    }, function (err) {
      btn.disabled = false;
      showJob(host, { ev: 'rejected', message: String(err) });
    });
  }

  document.addEventListener('submit', function (ev) {
    var form = ev.target;
    if (!form.classList || !form.classList.contains('trigger')) return;
    ev.preventDefault();
    var body = { action: form.elements.action.value };
    if (form.elements.queue) body.queue = form.elements.queue.value;
    var host = form.getAttribute('data-host');
    if (APPLYING.indexOf(body.action) < 0) return send(form, body);
    var queued = body.queue === 'true';
    bento.confirmDialog({
      title: 'Run ' + body.action + ' on ' + host + '?',
      text: 'This runs nixos-rebuild ' + body.action + ' on ' + host
        + (body.action === 'boot' ? ': the new system becomes the default at its next boot.' : ': the new system is activated at once.')
        + (queued ? ' If the host is offline, the job waits until it connects.' : ''),
      ok: 'Yes, ' + body.action + ' ' + host
    }).then(function (yes) {
      if (!yes) return;
      body.confirmed = 'yes';
      send(form, body);
    });
  });

  // The hosts table's filter: rows are rendered hidden when they do not match,
  // live rows arrive unfiltered, so each one is filtered as it lands (one row,
  // not the table: a big fleet sends many rows at once) and the count follows.
  function filterValues() {
    var form = document.getElementById('filter');
    return form ? { state: form.elements.state.value, tag: form.elements.tag.value } : null;
  }
  function filterRow(row, f) {
    var s = row.getAttribute('data-state');
    var tags = (row.getAttribute('data-tags') || '').split(' ');
    var ok = (!f.state || (f.state === 'attention' ? ATTENTION.indexOf(s) >= 0 : s === f.state)) && (!f.tag || tags.indexOf(f.tag) >= 0);
    row.hidden = !ok;
    return ok;
  }
  var counting = false;
  function updateCount() {
    counting = false;
    var f = filterValues(), tbody = document.getElementById('hosts-body');
    if (!f || !tbody) return;
    var rows = tbody.querySelectorAll('tr[data-state]');
    var shown = tbody.querySelectorAll('tr[data-state]:not([hidden])').length;
    document.getElementById('filter-count').textContent = f.state || f.tag ? shown + ' of ' + rows.length + ' hosts shown' : '';
  }
  function applyFilter() {
    var f = filterValues(), tbody = document.getElementById('hosts-body');
    if (!f || !tbody) return;
    var rows = tbody.querySelectorAll('tr[data-state]');
    for (var i = 0; i < rows.length; i++) filterRow(rows[i], f);
    updateCount();
  }
  function onLive(kind, d) {
    if (kind === 'replace' && d.id === 'hosts-body') return applyFilter();
    if (kind !== 'row' || d.tbody !== 'hosts-body') return;
    var f = filterValues(), row = document.getElementById(d.id);
    if (!f) return;
    if (row) filterRow(row, f);
    if (!counting) { counting = true; setTimeout(updateCount, 100); }
  }

  function initFilter() {
    var form = document.getElementById('filter');
    if (!form) return;
    var plain = form.querySelectorAll('.no-js');
    for (var i = 0; i < plain.length; i++) plain[i].hidden = true;
    form.addEventListener('change', function () {
      applyFilter();
      var q = [];
      if (form.elements.state.value) q.push('state=' + encodeURIComponent(form.elements.state.value));
      if (form.elements.tag.value) q.push('tag=' + encodeURIComponent(form.elements.tag.value));
      history.replaceState(null, '', q.length ? '/?' + q.join('&') : '/');
    });
    form.addEventListener('submit', function (ev) { ev.preventDefault(); applyFilter(); });
  }

  document.addEventListener('DOMContentLoaded', function () {
    initFilter();
    var url = document.body.getAttribute('data-events');
    if (url) bento.live(url, onLive);
    var box = document.querySelector('#job-log[data-follow]');
    if (box) {
      var state = document.getElementById('job-state');
      bento.follow('/jobs/' + encodeURIComponent(box.getAttribute('data-follow')) + '/events', box.querySelector('.log'), function (kind, d) {
        if (!state) return;
        if (kind === 'started') state.innerHTML = '<span class="badge s-run">running</span>';
        if (kind === 'end') {
          state.textContent = '';
          var b = document.createElement('span');
          b.className = 'badge ' + (d.outcome === 'success' ? 's-ok' : 's-bad');
          b.textContent = bento.endText(d);
          state.appendChild(b);
        }
      });
    }
  });
})();
`;

export const DASHBOARD_JS = `${SHARED_SCRIPT}\n${APP}`;
