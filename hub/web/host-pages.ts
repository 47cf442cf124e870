// The dashboard's host and job pages (and the fragments of the host page the
// live stream swaps in), the confirmation a switch asks for without
// JavaScript, and an uploaded log. The fleet page: pages.ts.
import { html, timeTag, formatDuration, type SafeHtml } from '../../common/platform/web-html.js';
import { logViewHtml, type LogLine } from '../../common/platform/log-view.js';
import type { JobRecord } from '../store/jobs.js';
import type { LogInfo } from '../publish/logs.js';
import type { HostRow } from './model.js';
import { AGENT_JOB_ID } from '../jobs/job-ids.js';
import { statusJob } from '../status/read-model.js';
import { badge, connection, jobCell, jobWhen, layout, linkJobIds, triggerForm } from './pages.js';

export function hostDetailHtml(row: HostRow): SafeHtml {
  const c = row.client;
  const f = row.facts;
  const ids = [row.activeJob?.id, row.lastJob?.id, row.queuedJob?.id];
  return html`<div id="host-detail">
<p>${badge(row.state)}${row.stateDetail ? html` <span class="muted">${linkJobIds(row.stateDetail, ids)}</span>` : ''}</p>
<dl class="facts">
<dt>Tags</dt><dd>${row.tags.length ? row.tags.join(', ') : '–'}</dd>
<dt>Connection</dt><dd>${connection(row)}</dd>
${c ? html`<dt>Came via</dt><dd class="mono">${c.endpoint}</dd><dt>Remote address</dt><dd class="mono">${c.remoteAddress}</dd>` : ''}
<dt>Agent</dt><dd>${c?.agentVersion ?? f?.agentVersion ?? '–'}</dd>
<dt>System</dt><dd class="mono">${c?.system ?? f?.system ?? '–'}</dd>
<dt>Generation</dt><dd>${c?.generation ?? f?.generation ?? '–'}</dd>
<dt>Config hash</dt><dd class="mono">${c?.configHash ?? f?.configHash ?? '–'}</dd>
<dt>Job</dt><dd>${row.activeJob ? jobCell(row.activeJob) : html`<span class="muted">idle</span>`}</dd>
<dt>Queued</dt><dd id="queued-job">${row.queuedJob ? html`${jobCell(row.queuedJob)}${c ? ' (runs after the current job)' : ' (runs when the host connects)'}` : html`<span class="muted">nothing</span>`}</dd>
</dl>
</div>`;
}

export function historyHtml(jobs: JobRecord[]): SafeHtml {
  return html`<tbody id="history">${jobs.length === 0 ? html`<tr><td colspan="8" class="muted">No jobs yet.</td></tr>` : jobs.map((j) => html`<tr>
<th scope="row"><a class="mono" href="/jobs/${j.id}">${j.id}</a></th><td data-label="Action">${j.action}</td><td data-label="Started by">${AGENT_JOB_ID.test(j.id) ? 'host' : 'hub'}</td><td data-label="Outcome">${badge(j.state)}</td>
<td data-label="When">${jobWhen(statusJob(j))}</td><td data-label="Duration">${formatDuration(j.durationMs)}</td><td data-label="Exit">${j.exitCode ?? '–'}</td><td data-label="Reason">${j.reason ?? ''}</td>
</tr>`)}</tbody>`;
}

export function hostPage(row: HostRow, jobs: JobRecord[], logs: LogInfo[]): SafeHtml {
  return layout(row.name, html`<h1>${row.name}</h1>
${hostDetailHtml(row)}
${row.registered ? html`<h2>Run a job</h2><p>${triggerForm(row.name, { connected: null })}</p>
<p class="muted">If the host is not connected, the job is queued and runs when it connects. A switch, boot or test asks first.</p>` : ''}
<section id="outputs" aria-labelledby="outputs-h" hidden>
<h2 id="outputs-h">Live output</h2>
</section>
<section aria-labelledby="history-h">
<h2 id="history-h">History</h2>
<table class="stack">
<caption class="visually-hidden">Jobs of ${row.name}, newest first</caption>
<thead><tr><th scope="col">Job</th><th scope="col">Action</th><th scope="col">Started by</th><th scope="col">Outcome</th><th scope="col">When</th><th scope="col">Duration</th><th scope="col">Exit</th><th scope="col">Reason</th></tr></thead>
${historyHtml(jobs)}
</table>
</section>
<section aria-labelledby="logs-h">
<h2 id="logs-h">Uploaded logs</h2>
${logs.length === 0 ? html`<p class="muted">The agent has uploaded no logs yet.</p>` : html`<table class="stack">
<thead><tr><th scope="col">File</th><th scope="col">Time</th><th scope="col">Outcome</th><th scope="col">Generation</th><th scope="col">Size</th></tr></thead>
<tbody>${[...logs].reverse().map((l) => html`<tr><th scope="row"><a class="mono" href="/hosts/${row.name}/logs/${encodeURIComponent(l.name)}">${l.name}</a></th><td data-label="Time">${timeTag(l.time ?? l.mtime)}</td><td data-label="Outcome">${l.outcome ?? '–'}</td><td data-label="Generation">${l.generation ?? '–'}</td><td data-label="Size">${l.size}</td></tr>`)}</tbody>
</table>`}
</section>`, { events: `/events?host=${encodeURIComponent(row.name)}` });
}

/** "41 → 42", "41 → 41 (unchanged)", "41 → unknown": what the job did to the system profile. */
function generations(j: JobRecord): SafeHtml | null {
  if (j.generationBefore === undefined && j.generationAfter === undefined) return null;
  const v = (g: number | null | undefined, none: string): string => (g === undefined || g === null ? none : String(g));
  const after = j.generationAfter === undefined ? (j.endedAt ? 'not reported' : '…') : v(j.generationAfter, 'unknown');
  const same = j.generationBefore != null && j.generationBefore === j.generationAfter;
  return html`<span class="nowrap">${v(j.generationBefore, 'unknown')} → ${after}</span>${same ? html` <span class="muted">(unchanged)</span>` : ''}`;
}

function systems(j: JobRecord): SafeHtml | null {
  if (j.systemBefore === undefined && j.systemAfter === undefined) return null;
  const p = (s: string | null | undefined): SafeHtml => html`<span class="mono">${s ?? 'unknown'}</span>`;
  if (j.systemAfter !== undefined && j.systemAfter === j.systemBefore) return html`${p(j.systemBefore)} <span class="muted">(unchanged)</span>`;
  return html`before ${p(j.systemBefore)}<br>after ${j.systemAfter === undefined ? html`<span class="muted">${j.endedAt ? 'not reported' : '…'}</span>` : p(j.systemAfter)}`;
}

export function jobPage(j: JobRecord, lines: LogLine[], note: string | null, live: boolean): SafeHtml {
  const gens = generations(j);
  const sys = systems(j);
  return layout(`Job ${j.id}`, html`<h1>${j.action} on <a href="/hosts/${j.host}">${j.host}</a></h1>
<dl class="facts">
<dt>Job</dt><dd><a class="mono" href="/jobs/${j.id}">${j.id}</a></dd>
<dt>Started by</dt><dd>${j.id.startsWith('local-') ? 'the host (its local page or bento-client upgrade)' : AGENT_JOB_ID.test(j.id) ? 'the host (config pull / self-update)' : 'the hub'}</dd>
<dt>State</dt><dd id="job-state" role="status">${badge(j.state)}</dd>
<dt>Requested</dt><dd>${timeTag(j.requestedAt)}</dd>
<dt>Started</dt><dd>${timeTag(j.startedAt)}</dd>
<dt>Ended</dt><dd>${timeTag(j.endedAt)}</dd>
<dt>Duration</dt><dd>${formatDuration(j.durationMs)}</dd>
<dt>Exit status</dt><dd>${j.exitCode ?? '–'}</dd>
${gens ? html`<dt>Generation</dt><dd id="job-generation">${gens}</dd>` : ''}
${sys ? html`<dt>System</dt><dd id="job-system">${sys}</dd>` : ''}
${j.reason ? html`<dt>Reason</dt><dd>${j.reason}</dd>` : ''}
</dl>
<h2>Output</h2>
<p><a href="/jobs/${j.id}/log">Full log as text</a></p>
<div id="job-log"${live ? html` data-follow="${j.id}"` : ''}>${logViewHtml({ id: 'job-output', label: `Output of job ${j.id}`, lines, note, live })}</div>`, {
    head: live ? html`<noscript><meta http-equiv="refresh" content="3"></noscript>` : undefined,
  });
}

/** Without JavaScript, a switch (boot, test) from the web asks here first; with it, a dialog asks. */
export function confirmTriggerPage(host: string, action: string, queue: boolean): SafeHtml {
  return layout('Confirm', html`<h1>Run <code>${action}</code> on <a href="/hosts/${host}">${host}</a>?</h1>
<p>This runs <code>nixos-rebuild ${action}</code> on ${host}${action === 'boot' ? ': the new system becomes the default at its next boot' : ': the new system is activated at once'}${queue ? ' (queued until the host connects, if it is offline)' : ''}.</p>
<form method="post" action="/hosts/${host}/trigger">
<input type="hidden" name="action" value="${action}">${queue ? html`<input type="hidden" name="queue" value="true">` : ''}
<input type="hidden" name="confirmed" value="yes">
<p><button class="primary" type="submit">Yes, ${action} ${host}</button> <a href="/hosts/${host}">Cancel</a></p>
</form>`);
}

export function logPage(host: string, name: string, text: string, complete: boolean, cutAt?: number): SafeHtml {
  return layout(`${host}: ${name}`, html`<h1><a href="/hosts/${host}">${host}</a>: <span class="mono">${name}</span></h1>
${complete ? '' : cutAt !== undefined ? html`<p class="s-warn">Only the first ${String(Math.round(cutAt / 1048576))} MiB of this log's text are shown.</p>` : html`<p class="s-warn">This upload is truncated; what could be read is shown.</p>`}
<pre class="output" role="log">${text}</pre>`);
}
