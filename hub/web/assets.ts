// The dashboard's stylesheet and script, served from /static/ (same origin,
// so the strict CSP allows them). The script is progressive: every page and
// form works without it; with it, tables update live and a triggered job's
// output streams into the page.
import { BASE_CSS } from '../../common/platform/web-html.js';
import { SHARED_SCRIPT } from '../../common/platform/web-script.js';

export const DASHBOARD_CSS = `${BASE_CSS}
#outputs .panel pre.output { max-height: 22rem; }
#hosts td:last-child { white-space: nowrap; }
`;

const APP = String.raw`
(function () {
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
    var pre = document.createElement('pre');
    pre.className = 'output';
    pre.setAttribute('role', 'log');
    pre.setAttribute('aria-label', 'Output of the job on ' + host);
    panel.appendChild(h);
    panel.appendChild(pre);
    if (jobId) {
      var a = document.createElement('a');
      a.href = '/jobs/' + jobId;
      a.textContent = 'Job page';
      panel.appendChild(a);
    }
    var heading = outputs.querySelector('h2');
    outputs.insertBefore(panel, heading ? heading.nextSibling : outputs.firstChild);
    return panel;
  }

  function setStatus(panel, text, cls) {
    var s = panel.querySelector('.job-status');
    s.textContent = text;
    s.className = 'job-status badge ' + (cls || 's-run');
  }

  function endText(d) {
    var t = d.outcome + (d.exitCode != null ? ' (exit ' + d.exitCode + ')' : '') + (d.durationMs != null ? ' in ' + bento.fmtDuration(d.durationMs) : '');
    return d.reason ? t + ': ' + d.reason : t;
  }

  function showJob(host, r) {
    if (r.ev === 'accepted') {
      var panel = panelFor(host, r.jobId);
      panel.querySelector('.job-title').textContent = host + ' · ' + r.action + ' · ' + r.jobId;
      setStatus(panel, r.disposition === 'dispatched' ? 'running' : r.disposition, 's-run');
      if (panel.getAttribute('data-following') === 'yes') return;
      panel.setAttribute('data-following', 'yes');
      bento.follow('/jobs/' + encodeURIComponent(r.jobId) + '/events', panel.querySelector('pre'), function (kind, d) {
        if (kind === 'started') setStatus(panel, 'running', 's-run');
        if (kind === 'end') setStatus(panel, endText(d), d.outcome === 'success' ? 's-ok' : 's-bad');
      });
    } else {
      var p = panelFor(host, null);
      p.querySelector('.job-title').textContent = host;
      setStatus(p, 'refused: ' + (r.message || r.error || 'unknown error'), 's-bad');
    }
  }

  document.addEventListener('submit', function (ev) {
    var form = ev.target;
    if (!form.classList || !form.classList.contains('trigger')) return;
    ev.preventDefault();
    var btn = form.querySelector('button');
    btn.disabled = true;
    var body = { action: form.elements.action.value };
    if (form.elements.queue) body.queue = form.elements.queue.value;
    var host = form.getAttribute('data-host');
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
  });

  document.addEventListener('DOMContentLoaded', function () {
    var url = document.body.getAttribute('data-events');
    if (url) bento.live(url);
    var pre = document.querySelector('pre[data-follow]');
    if (pre) {
      var state = document.getElementById('job-state');
      bento.follow('/jobs/' + encodeURIComponent(pre.getAttribute('data-follow')) + '/events', pre, function (kind, d) {
        if (!state) return;
        if (kind === 'started') state.innerHTML = '<span class="badge s-run">running</span>';
        if (kind === 'end') {
          state.textContent = '';
          var b = document.createElement('span');
          b.className = 'badge ' + (d.outcome === 'success' ? 's-ok' : 's-bad');
          b.textContent = endText(d);
          state.appendChild(b);
        }
      });
    }
  });
})();
`;

export const DASHBOARD_JS = `${SHARED_SCRIPT}\n${APP}`;
