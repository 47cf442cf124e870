// The dashboard's HTML: whole pages and the fragments the live stream swaps
// in (one table row, one facts block). Server-rendered, so the pages work
// without JavaScript; the script only keeps them current. Every value goes
// through the escaping `html` template.
import { html, timeTag, formatDuration, type SafeHtml } from '../../common/platform/web-html.js';
import { ACTIONS } from '../../common/protocol/messages.js';
import type { JobRecord } from '../store/jobs.js';
import type { LogInfo } from '../publish/logs.js';
import type { HostRow, JobSummary } from './model.js';
import { proxyKind } from '../status/read-model.js';
import { AGENT_JOB_ID } from '../jobs/job-ids.js';
import type { OutputLine } from './job-output.js';

export function layout(title: string, body: SafeHtml, opts: { events?: string; head?: SafeHtml } = {}): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Bento hub</title>
<link rel="stylesheet" href="/static/style.css">
<script src="/static/app.js" defer></script>
${opts.head ?? ''}
</head>
<body${opts.events ? html` data-events="${opts.events}"` : ''}>
<a class="visually-hidden" href="#main">Skip to content</a>
<header class="top">
<a class="brand" href="/">Bento hub</a>
<nav aria-label="Main"><a href="/">Fleet</a><a href="/metrics">Metrics</a></nav>
<span id="live" class="live muted" role="status" aria-live="polite">${opts.events ? 'connecting…' : ''}</span>
</header>
<main id="main">
${body}
</main>
</body>
</html>
`;
}

const STATE_CLASS: Record<string, string> = {
  'up to date': 's-ok', 'auto updated': 's-ok', success: 's-ok',
  running: 's-run', dispatched: 's-run', queued: 's-run', 'rebuild pending': 's-warn', 'sync pending': 's-warn',
  failing: 's-bad', failure: 's-bad', 'rolled back': 's-bad', 'rolled-back': 's-bad', interrupted: 's-warn',
  offline: 's-off', 'new machine': 's-warn',
};

export function badge(state: string): SafeHtml {
  return html`<span class="badge ${STATE_CLASS[state] ?? 's-off'}">${state}</span>`;
}

function shortSystem(p: string | null | undefined): string {
  if (!p) return '–';
  const base = p.split('/').pop() ?? p;
  return base.length > 44 ? `${base.slice(0, 8)}…${base.slice(-30)}` : base;
}

function connection(row: HostRow): SafeHtml {
  const c = row.client;
  if (c) return html`<span class="s-ok">connected</span> via ${c.carrier}${proxyKind(c.endpoint) !== 'direct' ? html` + ${proxyKind(c.endpoint)}` : ''} since ${timeTag(c.connectedSince)}`;
  const seen = row.facts?.lastSeenAt;
  return seen ? html`<span class="muted">last seen ${timeTag(seen)}</span>` : html`<span class="muted">never connected</span>`;
}

function jobCell(j: JobSummary | null): SafeHtml {
  if (!j) return html`<span class="muted">none</span>`;
  return html`<a href="/jobs/${j.id}">${j.action}</a> ${badge(j.state)} ${timeTag(j.endedAt ?? j.startedAt ?? j.requestedAt)}${j.durationMs !== null ? html` <span class="muted">(${formatDuration(j.durationMs)})</span>` : ''}`;
}

/** Action menu + button. `connected: null` (a page that does not follow the connection): "Run", queued if the host is offline. */
export function triggerForm(host: string, opts: { connected: boolean | null }): SafeHtml {
  const id = `act-${host}`;
  const label = opts.connected === false ? 'Queue' : 'Run';
  return html`<form class="inline trigger" method="post" action="/hosts/${host}/trigger" data-host="${host}">
<label class="visually-hidden" for="${id}">Action for ${host}</label>
<select id="${id}" name="action">${ACTIONS.map((a) => html`<option value="${a}"${a === 'switch' ? ' selected' : ''}>${a}</option>`)}</select>
${opts.connected === true ? '' : html`<input type="hidden" name="queue" value="true">`}
<button type="submit" id="run-${host}" aria-label="${label} on ${host}">${label}</button>
</form>`;
}

export function hostRowHtml(row: HostRow): SafeHtml {
  const sys = row.client?.system ?? row.facts?.system ?? null;
  const gen = row.client?.generation ?? row.facts?.generation ?? null;
  return html`<tr id="host-${row.name}" data-key="${row.name}" data-state="${row.state}">
<th scope="row"><a href="/hosts/${row.name}">${row.name}</a>${row.tags.length ? html` <span class="muted">${row.tags.join(', ')}</span>` : ''}${row.registered ? '' : html` <span class="badge s-warn">not registered</span>`}</th>
<td>${badge(row.state)}${row.stateDetail ? html` <span class="muted">${row.stateDetail.length > 80 ? `${row.stateDetail.slice(0, 80)}…` : row.stateDetail}</span>` : ''}</td>
<td>${connection(row)}</td>
<td class="mono" title="${sys ?? ''}">${shortSystem(sys)}${gen !== null ? html` <span class="muted">gen ${gen}</span>` : ''}</td>
<td>${row.activeJob ? jobCell(row.activeJob) : jobCell(row.lastJob)}</td>
<td>${row.registered ? triggerForm(row.name, { connected: row.client !== null }) : ''}</td>
</tr>`;
}

export function clientRowHtml(row: HostRow): SafeHtml | null {
  const c = row.client;
  if (!c) return null;
  return html`<tr id="client-${row.name}" data-key="${row.name}">
<th scope="row"><a href="/hosts/${row.name}">${row.name}</a></th>
<td>${c.carrier}</td>
<td class="mono">${c.endpoint}</td>
<td class="mono">${c.remoteAddress}</td>
<td>${timeTag(c.connectedSince)}</td>
<td>${c.agentVersion}</td>
<td>${c.runningJob ? html`<a href="/jobs/${c.runningJob.jobId}">${c.runningJob.action}</a> since ${timeTag(c.runningJob.startedAt)}` : html`<span class="muted">idle</span>`}</td>
</tr>`;
}

export function summaryHtml(rows: HostRow[]): SafeHtml {
  const registered = rows.filter((r) => r.registered).length;
  const connected = rows.filter((r) => r.client).length;
  const running = rows.filter((r) => r.activeJob).length;
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
  return html`<p id="summary"><strong>${registered}</strong> hosts · <strong>${connected}</strong> connected · <strong>${running}</strong> running${[...counts.entries()].sort().map(([s, n]) => html` · ${badge(s)} ${n}`)}</p>`;
}

export function hostsBody(rows: HostRow[]): SafeHtml {
  return html`<tbody id="hosts-body">${rows.map(hostRowHtml)}</tbody>`;
}

export function clientsBody(rows: HostRow[]): SafeHtml {
  return html`<tbody id="clients-body">${rows.map(clientRowHtml)}</tbody>`;
}

export function fleetPage(rows: HostRow[], opts: { rollouts?: SafeHtml } = {}): SafeHtml {
  return layout('Fleet', html`<h1>Fleet</h1>
${summaryHtml(rows)}
${opts.rollouts ?? ''}
<section aria-labelledby="hosts-h">
<h2 id="hosts-h">Hosts</h2>
<table id="hosts">
<caption class="visually-hidden">Every registered host: state, connection, running system, last job, and a button to run a job</caption>
<thead><tr><th scope="col">Host</th><th scope="col">State</th><th scope="col">Connection</th><th scope="col">System</th><th scope="col">Job</th><th scope="col"><span class="visually-hidden">Run a job</span></th></tr></thead>
${hostsBody(rows)}
</table>
</section>
<section id="outputs" aria-labelledby="outputs-h" hidden>
<h2 id="outputs-h">Live output</h2>
</section>
<section aria-labelledby="clients-h">
<h2 id="clients-h">Connected clients</h2>
<table id="clients">
<caption class="visually-hidden">Agents connected to this hub right now</caption>
<thead><tr><th scope="col">Host</th><th scope="col">Carrier</th><th scope="col">Came via</th><th scope="col">Remote address</th><th scope="col">Since</th><th scope="col">Agent</th><th scope="col">Job</th></tr></thead>
${clientsBody(rows)}
</table>
</section>`, { events: '/events' });
}

export function hostDetailHtml(row: HostRow): SafeHtml {
  const c = row.client;
  const f = row.facts;
  return html`<div id="host-detail">
<p>${badge(row.state)}${row.stateDetail ? html` <span class="muted">${row.stateDetail}</span>` : ''}</p>
<dl class="facts">
<dt>Tags</dt><dd>${row.tags.length ? row.tags.join(', ') : '–'}</dd>
<dt>Connection</dt><dd>${connection(row)}</dd>
${c ? html`<dt>Came via</dt><dd class="mono">${c.endpoint}</dd><dt>Remote address</dt><dd class="mono">${c.remoteAddress}</dd>` : ''}
<dt>Agent</dt><dd>${c?.agentVersion ?? f?.agentVersion ?? '–'}</dd>
<dt>System</dt><dd class="mono">${c?.system ?? f?.system ?? '–'}</dd>
<dt>Generation</dt><dd>${c?.generation ?? f?.generation ?? '–'}</dd>
<dt>Config hash</dt><dd class="mono">${c?.configHash ?? f?.configHash ?? '–'}</dd>
<dt>Job</dt><dd>${row.activeJob ? jobCell(row.activeJob) : html`<span class="muted">idle</span>`}</dd>
</dl>
</div>`;
}

export function historyHtml(jobs: JobRecord[]): SafeHtml {
  return html`<tbody id="history">${jobs.length === 0 ? html`<tr><td colspan="8" class="muted">No jobs yet.</td></tr>` : jobs.map((j) => html`<tr>
<th scope="row"><a class="mono" href="/jobs/${j.id}">${j.id}</a></th><td>${j.action}</td><td>${AGENT_JOB_ID.test(j.id) ? 'host' : 'hub'}</td><td>${badge(j.state)}</td>
<td>${timeTag(j.requestedAt)}</td><td>${formatDuration(j.durationMs)}</td><td>${j.exitCode ?? '–'}</td><td>${j.reason ?? ''}</td>
</tr>`)}</tbody>`;
}

export function hostPage(row: HostRow, jobs: JobRecord[], logs: LogInfo[]): SafeHtml {
  return layout(row.name, html`<h1>${row.name}</h1>
${hostDetailHtml(row)}
${row.registered ? html`<h2>Run a job</h2><p>${triggerForm(row.name, { connected: null })}</p>
<p class="muted">If the host is not connected, the job is queued and runs when it connects.</p>` : ''}
<section id="outputs" aria-labelledby="outputs-h" hidden>
<h2 id="outputs-h">Live output</h2>
</section>
<section aria-labelledby="history-h">
<h2 id="history-h">History</h2>
<table>
<caption class="visually-hidden">Jobs of ${row.name}, newest first</caption>
<thead><tr><th scope="col">Job</th><th scope="col">Action</th><th scope="col">Started by</th><th scope="col">Outcome</th><th scope="col">Requested</th><th scope="col">Duration</th><th scope="col">Exit</th><th scope="col">Reason</th></tr></thead>
${historyHtml(jobs)}
</table>
</section>
<section aria-labelledby="logs-h">
<h2 id="logs-h">Uploaded logs</h2>
${logs.length === 0 ? html`<p class="muted">The agent has uploaded no logs yet.</p>` : html`<table>
<thead><tr><th scope="col">File</th><th scope="col">Time</th><th scope="col">Outcome</th><th scope="col">Generation</th><th scope="col">Size</th></tr></thead>
<tbody>${[...logs].reverse().map((l) => html`<tr><th scope="row"><a class="mono" href="/hosts/${row.name}/logs/${encodeURIComponent(l.name)}">${l.name}</a></th><td>${timeTag(l.time ?? l.mtime)}</td><td>${l.outcome ?? '–'}</td><td>${l.generation ?? '–'}</td><td>${l.size}</td></tr>`)}</tbody>
</table>`}
</section>`, { events: `/events?host=${encodeURIComponent(row.name)}` });
}

export function outputLinesHtml(lines: OutputLine[]): SafeHtml {
  return html`${lines.map((l) => html`<span${l.stream === 'stderr' ? html` class="err"` : ''}>${l.data}\n</span>`)}`;
}

export function jobPage(j: JobRecord, lines: OutputLine[], note: string | null, live: boolean): SafeHtml {
  const final = !live;
  return layout(`Job ${j.id}`, html`<h1>${j.action} on <a href="/hosts/${j.host}">${j.host}</a></h1>
<dl class="facts">
<dt>Job</dt><dd class="mono">${j.id}</dd>
<dt>Started by</dt><dd>${j.id.startsWith('local-') ? 'the host (its local page or bento-client upgrade)' : AGENT_JOB_ID.test(j.id) ? 'the host (config pull / self-update)' : 'the hub'}</dd>
<dt>State</dt><dd id="job-state" role="status">${badge(j.state)}</dd>
<dt>Requested</dt><dd>${timeTag(j.requestedAt)}</dd>
<dt>Started</dt><dd>${timeTag(j.startedAt)}</dd>
<dt>Ended</dt><dd>${timeTag(j.endedAt)}</dd>
<dt>Duration</dt><dd>${formatDuration(j.durationMs)}</dd>
<dt>Exit status</dt><dd>${j.exitCode ?? '–'}</dd>
${j.reason ? html`<dt>Reason</dt><dd>${j.reason}</dd>` : ''}
</dl>
<h2>Output</h2>
<p><a href="/jobs/${j.id}/log">Full log as text</a></p>
${note ? html`<p class="muted">${note}</p>` : ''}
<pre class="output" id="job-output" role="log" aria-label="Output of job ${j.id}"${final ? '' : html` data-follow="${j.id}"`}>${outputLinesHtml(lines)}</pre>`, {
    head: final ? undefined : html`<noscript><meta http-equiv="refresh" content="3"></noscript>`,
  });
}

export function messagePage(title: string, text: string): SafeHtml {
  return layout(title, html`<h1>${title}</h1><p>${text}</p><p><a href="/">Back to the fleet</a></p>`);
}

export function logPage(host: string, name: string, text: string, complete: boolean): SafeHtml {
  return layout(`${host}: ${name}`, html`<h1><a href="/hosts/${host}">${host}</a>: <span class="mono">${name}</span></h1>
${complete ? '' : html`<p class="s-warn">This upload is truncated; what could be read is shown.</p>`}
<pre class="output" role="log">${text}</pre>`);
}
