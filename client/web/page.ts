// The host-local page: what this machine runs, whether it reaches its hub,
// its last jobs, and one big "Upgrade now" button. Server-rendered (works
// without JavaScript); the script streams the output and keeps it current.
import { html, timeTag, formatDuration, BASE_CSS, type SafeHtml } from '../../common/platform/web-html.js';
import { LOG_CSS, logViewHtml, type LogLine } from '../../common/platform/log-view.js';
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
    ? html`<span class="badge s-run">running</span> ${s.running.action} <a class="mono" href="/jobs/${s.running.jobId}">${s.running.jobId}</a> started ${timeTag(s.running.startedAt)}${s.queued ? html` <span class="muted">(one more queued)</span>` : ''}`
    : html`<span class="muted">idle</span>`}</dd>
</dl>
</section>`;
}

export function jobsHtml(jobs: LocalJob[]): SafeHtml {
  return html`<tbody id="jobs">${jobs.length === 0 ? html`<tr><td colspan="7" class="muted">No jobs yet.</td></tr>` : jobs.map((j) => html`<tr>
<th scope="row"><a class="mono" href="/jobs/${j.jobId}">${j.jobId}</a></th><td data-label="Action">${j.action}</td><td data-label="Started by">${j.origin === 'hub' ? 'hub' : j.origin === 'local' ? 'this host' : `this host (${j.origin})`}</td>
<td data-label="Outcome">${j.outcome ? html`<span class="badge ${OUTCOME_CLASS[j.outcome] ?? ''}">${j.outcome}</span>` : html`<span class="badge s-run">running</span>`}</td>
<td data-label="Started">${timeTag(j.startedAt)}</td><td data-label="Duration">${formatDuration(j.durationMs)}</td><td data-label="Exit">${j.exitCode ?? '–'}${j.reason ? html` <span class="muted">${j.reason}</span>` : ''}</td>
</tr>`)}</tbody>`;
}

/** The page frame: header, main, the shared stylesheet and script. */
function layout(title: string, name: string, body: SafeHtml, opts: { events?: string; head?: SafeHtml } = {}): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Bento</title>
<link rel="stylesheet" href="/static/style.css">
<script src="/static/app.js" defer></script>
${opts.head ?? ''}
</head>
<body${opts.events ? html` data-events="${opts.events}"` : ''}>
<header class="top"><a class="brand" href="/">Bento · ${name}</a><span class="muted">this host's own page (loopback only)</span>
<span id="live" class="live muted" role="status" aria-live="polite">${opts.events ? 'connecting…' : ''}</span></header>
<main id="main">
${body}
</main>
</body>
</html>
`;
}

export interface ShownOutput { job: LocalJob | null; lines: LogLine[]; dropped: number }

export function localPage(s: LocalState, jobs: LocalJob[], output: ShownOutput): SafeHtml {
  return layout(s.name, s.name, html`<h1>${s.name}</h1>
${stateHtml(s)}
<form id="upgrade" method="post" action="/upgrade" data-confirm="switch">
<input type="hidden" name="action" value="switch">
<p><button class="primary" type="submit">Upgrade now</button>
<span id="upgrade-status" role="status" aria-live="polite"></span></p>
<p class="muted">Runs the same job a trigger from the hub runs (<code>switch</code>), with this host's published configuration, after you confirm. A press during a running job queues one follow-up run.</p>
</form>
<section aria-labelledby="output-h">
<h2 id="output-h">Output <span class="muted" id="output-job">${output.job ? html`${output.job.action} <a class="mono" href="/jobs/${output.job.jobId}">${output.job.jobId}</a>` : ''}</span></h2>
<p id="output-end" role="status">${output.job?.outcome ? endLine(output.job) : ''}</p>
${logViewHtml({ id: 'output', label: 'Job output', lines: output.lines, live: true, note: output.dropped ? `${output.dropped} earlier lines not shown` : null })}
</section>
<section aria-labelledby="jobs-h">
<h2 id="jobs-h">Last jobs</h2>
<table class="stack">
<thead><tr><th scope="col">Job</th><th scope="col">Action</th><th scope="col">Started by</th><th scope="col">Outcome</th><th scope="col">Started</th><th scope="col">Duration</th><th scope="col">Exit</th></tr></thead>
${jobsHtml(jobs)}
</table>
</section>`, { events: '/events', head: s.running ? html`<noscript><meta http-equiv="refresh" content="3"></noscript>` : undefined });
}

/** One job of this host: its record and, for the running or the last job, its output (older output lives on the hub). */
export function localJobPage(name: string, j: LocalJob, output: ShownOutput | null): SafeHtml {
  return layout(`Job ${j.jobId}`, name, html`<h1>${j.action} on ${name}</h1>
<dl class="facts">
<dt>Job</dt><dd class="mono">${j.jobId}</dd>
<dt>Started by</dt><dd>${j.origin === 'hub' ? 'the hub' : j.origin === 'local' ? 'this host (its page or bento-client upgrade)' : `this host (${j.origin})`}</dd>
<dt>Outcome</dt><dd>${j.outcome ? html`<span class="badge ${OUTCOME_CLASS[j.outcome] ?? ''}">${endLine(j)}</span>` : html`<span class="badge s-run">running</span>`}</dd>
<dt>Started</dt><dd>${timeTag(j.startedAt)}</dd>
<dt>Ended</dt><dd>${timeTag(j.endedAt)}</dd>
</dl>
<h2>Output</h2>
${output ? logViewHtml({ id: 'job-output', label: `Output of job ${j.jobId}`, lines: output.lines, note: output.dropped ? `${output.dropped} earlier lines not shown` : null })
    : html`<p class="muted">This host keeps the output of its running and its last job only; the hub's dashboard has every job's output.</p>`}
<p><a href="/">Back to this host's page</a></p>`);
}

/** Without JavaScript, "Upgrade now" asks here before it switches (with it, a dialog asks). */
export function confirmPage(name: string, action: string): SafeHtml {
  return layout('Confirm', name, html`<h1>Run <code>${action}</code> on ${name} now?</h1>
<p>This runs <code>nixos-rebuild ${action}</code> on this host with its published configuration${action === 'switch' ? ', and activates the result at once' : ''}.</p>
<form method="post" action="/upgrade"><input type="hidden" name="action" value="${action}"><input type="hidden" name="confirmed" value="yes">
<p><button class="primary" type="submit">Yes, ${action} now</button> <a href="/">Cancel</a></p></form>`);
}

export function endLine(j: LocalJob): string {
  return `${j.outcome}${j.exitCode !== null ? ` (exit ${j.exitCode})` : ''}${j.durationMs !== null ? ` in ${formatDuration(j.durationMs)}` : ''}${j.reason ? `: ${j.reason}` : ''}`;
}

export const LOCAL_CSS = `${BASE_CSS}${LOG_CSS}
main { max-width: 64rem; }
#upgrade { margin: 1.2rem 0; }
#output-end { font-weight: 600; }
`;

const APP = String.raw`
(function () {
  document.addEventListener('DOMContentLoaded', function () {
    var out = document.getElementById('output');
    if (!out) return;
    var endEl = document.getElementById('output-end');
    var jobEl = document.getElementById('output-job');
    var status = document.getElementById('upgrade-status');
    var es = bento.live('/events');
    es.addEventListener('reset', function (m) {
      var d = JSON.parse(m.data);
      bento.resetLog(out);
      endEl.textContent = '';
      endEl.className = '';
      jobEl.textContent = '';
      if (d.job) { jobEl.appendChild(document.createTextNode(d.job.action + ' ')); jobEl.appendChild(bento.jobLink(d.job.jobId)); }
    });
    es.addEventListener('line', function (m) { bento.appendLine(out, JSON.parse(m.data)); });
    es.addEventListener('note', function (m) { var d = JSON.parse(m.data); bento.appendLine(out, { stream: 'note', data: d.text }, 'page-note'); });
    es.addEventListener('end', function (m) {
      var d = JSON.parse(m.data);
      endEl.textContent = bento.endText(d);
      endEl.className = d.outcome === 'success' ? 's-ok' : 's-bad';
    });
    var form = document.getElementById('upgrade');
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var btn = form.querySelector('button');
      var action = form.elements.action.value;
      bento.confirmDialog({
        title: 'Run ' + action + ' on this host now?',
        text: 'This runs nixos-rebuild ' + action + ' with this host\'s published configuration and activates the result at once.',
        ok: 'Yes, ' + action + ' now'
      }).then(function (yes) {
        if (!yes) { status.textContent = 'Not started.'; return; }
        btn.disabled = true;
        status.textContent = 'Starting…';
        return fetch('/api/upgrade', {
          method: 'POST', headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
          body: JSON.stringify({ action: action })
        }).then(function (r) { return r.json(); }).then(function (r) {
          btn.disabled = false;
          if (r.error) { status.textContent = 'Refused: ' + r.error; return; }
          status.textContent = r.disposition === 'queued' ? 'Queued after the running job: ' : 'Started ';
          status.appendChild(bento.jobLink(r.jobId));
          status.appendChild(document.createTextNode('.'));
        }, function (err) {
          btn.disabled = false;
          status.textContent = 'Could not reach the agent: ' + err;
        });
      });
    });
  });
})();
`;

export const LOCAL_JS = `${SHARED_SCRIPT}\n${APP}`;
