// The host-local page: what this machine runs, whether it reaches its hub,
// its last jobs, and one big "Upgrade now" button. Server-rendered (works
// without JavaScript); the script streams the output and keeps it current.
import { html, timeTag, formatDuration, BASE_CSS, type SafeHtml } from '../../common/platform/web-html.js';
import { SHARED_SCRIPT } from '../../common/platform/web-script.js';
import type { Action, Outcome } from '../../common/protocol/messages.js';

export interface LocalJob {
  jobId: string; action: Action;
  /** Who started it: this host's page or CLI (local), its config pull / self-update (pull, autoupdate), or the hub. */
  origin: 'local' | 'pull' | 'autoupdate' | 'hub';
  startedAt: string; endedAt: string | null; outcome: Outcome | null; exitCode: number | null; durationMs: number | null; reason: string | null;
}

export interface LocalState {
  name: string;
  connected: boolean;
  endpoint: string | null;
  connectedSince: string | null;
  lastDisconnectedAt: string | null;
  system: string | null;
  generation: number | null;
  running: LocalJob | null;
  queued: number;
}

const OUTCOME_CLASS: Record<string, string> = { success: 's-ok', failure: 's-bad', 'rolled-back': 's-bad', interrupted: 's-warn' };

export function stateHtml(s: LocalState): SafeHtml {
  return html`<section id="state" aria-labelledby="state-h">
<h2 id="state-h" class="visually-hidden">State</h2>
<dl class="facts">
<dt>Hub</dt><dd>${s.connected
    ? html`<span class="s-ok">connected</span> via <span class="mono">${s.endpoint ?? ''}</span> since ${timeTag(s.connectedSince)}`
    : html`<span class="s-bad">not connected</span>${s.lastDisconnectedAt ? html` since ${timeTag(s.lastDisconnectedAt)}` : ''} <span class="muted">(the agent keeps retrying; an upgrade still runs, with the configuration it has)</span>`}</dd>
<dt>System</dt><dd class="mono">${s.system ?? '–'}</dd>
<dt>Generation</dt><dd>${s.generation ?? '–'}</dd>
<dt>Job</dt><dd>${s.running
    ? html`<span class="badge s-run">running</span> ${s.running.action} <span class="mono">${s.running.jobId}</span> since ${timeTag(s.running.startedAt)}${s.queued ? html` <span class="muted">(one more queued)</span>` : ''}`
    : html`<span class="muted">idle</span>`}</dd>
</dl>
</section>`;
}

export function jobsHtml(jobs: LocalJob[]): SafeHtml {
  return html`<tbody id="jobs">${jobs.length === 0 ? html`<tr><td colspan="7" class="muted">No jobs yet.</td></tr>` : jobs.map((j) => html`<tr>
<th scope="row" class="mono">${j.jobId}</th><td>${j.action}</td><td>${j.origin === 'hub' ? 'hub' : j.origin === 'local' ? 'this host' : `this host (${j.origin})`}</td>
<td>${j.outcome ? html`<span class="badge ${OUTCOME_CLASS[j.outcome] ?? ''}">${j.outcome}</span>` : html`<span class="badge s-run">running</span>`}</td>
<td>${timeTag(j.startedAt)}</td><td>${formatDuration(j.durationMs)}</td><td>${j.exitCode ?? '–'}${j.reason ? html` <span class="muted">${j.reason}</span>` : ''}</td>
</tr>`)}</tbody>`;
}

export function localPage(s: LocalState, jobs: LocalJob[], output: { job: LocalJob | null; text: SafeHtml }): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${s.name} · Bento</title>
<link rel="stylesheet" href="/static/style.css">
<script src="/static/app.js" defer></script>
${s.running ? html`<noscript><meta http-equiv="refresh" content="3"></noscript>` : ''}
</head>
<body data-events="/events">
<header class="top"><span class="brand">Bento · ${s.name}</span><span class="muted">this host's own page (loopback only)</span>
<span id="live" class="live muted" role="status" aria-live="polite">connecting…</span></header>
<main id="main">
<h1>${s.name}</h1>
${stateHtml(s)}
<form id="upgrade" method="post" action="/upgrade">
<input type="hidden" name="action" value="switch">
<p><button class="primary" type="submit">Upgrade now</button>
<span id="upgrade-status" role="status" aria-live="polite"></span></p>
<p class="muted">Runs the same job a trigger from the hub runs (<code>switch</code>), with this host's published configuration. A press during a running job queues one follow-up run.</p>
</form>
<section aria-labelledby="output-h">
<h2 id="output-h">Output${output.job ? html` <span class="muted" id="output-job">${output.job.action} ${output.job.jobId}</span>` : html` <span class="muted" id="output-job"></span>`}</h2>
<p id="output-end" role="status">${output.job?.outcome ? endLine(output.job) : ''}</p>
<pre class="output" id="output" role="log" aria-label="Job output">${output.text}</pre>
</section>
<section aria-labelledby="jobs-h">
<h2 id="jobs-h">Last jobs</h2>
<table>
<thead><tr><th scope="col">Job</th><th scope="col">Action</th><th scope="col">Started by</th><th scope="col">Outcome</th><th scope="col">Started</th><th scope="col">Duration</th><th scope="col">Exit</th></tr></thead>
${jobsHtml(jobs)}
</table>
</section>
</main>
</body>
</html>
`;
}

export function endLine(j: LocalJob): string {
  return `${j.outcome}${j.exitCode !== null ? ` (exit ${j.exitCode})` : ''}${j.durationMs !== null ? ` in ${formatDuration(j.durationMs)}` : ''}${j.reason ? `: ${j.reason}` : ''}`;
}

export const LOCAL_CSS = `${BASE_CSS}
main { max-width: 64rem; }
#upgrade { margin: 1.2rem 0; }
#output-end { font-weight: 600; }
`;

const APP = String.raw`
(function () {
  function endLine(d) {
    return d.outcome + (d.exitCode != null ? ' (exit ' + d.exitCode + ')' : '') + (d.durationMs != null ? ' in ' + bento.fmtDuration(d.durationMs) : '') + (d.reason ? ': ' + d.reason : '');
  }
  document.addEventListener('DOMContentLoaded', function () {
    var pre = document.getElementById('output');
    var endEl = document.getElementById('output-end');
    var jobEl = document.getElementById('output-job');
    var status = document.getElementById('upgrade-status');
    var es = bento.live('/events');
    es.addEventListener('reset', function (m) {
      var d = JSON.parse(m.data);
      pre.textContent = '';
      endEl.textContent = '';
      endEl.className = '';
      jobEl.textContent = d.job ? d.job.action + ' ' + d.job.jobId : '';
    });
    es.addEventListener('line', function (m) { var d = JSON.parse(m.data); bento.appendLine(pre, d.stream, d.data); });
    es.addEventListener('note', function (m) { var d = JSON.parse(m.data); bento.appendLine(pre, 'stderr', d.text, 'note'); });
    es.addEventListener('end', function (m) {
      var d = JSON.parse(m.data);
      endEl.textContent = endLine(d);
      endEl.className = d.outcome === 'success' ? 's-ok' : 's-bad';
    });
    var form = document.getElementById('upgrade');
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var btn = form.querySelector('button');
      btn.disabled = true;
      status.textContent = 'Starting…';
      fetch('/api/upgrade', {
        method: 'POST', headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
        body: JSON.stringify({ action: form.elements.action.value })
      }).then(function (r) { return r.json(); }).then(function (r) {
        btn.disabled = false;
        if (r.error) { status.textContent = 'Refused: ' + r.error; return; }
        status.textContent = r.disposition === 'queued' ? 'Queued after the running job (' + r.jobId + ').' : 'Started ' + r.jobId + '.';
      }, function (err) {
        btn.disabled = false;
        status.textContent = 'Could not reach the agent: ' + err;
      });
    });
  });
})();
`;

export const LOCAL_JS = `${SHARED_SCRIPT}\n${APP}`;
