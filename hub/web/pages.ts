// The dashboard's fleet page and the fragments the live stream swaps in (one
// table row, the summary). Server-rendered, so the pages work without
// JavaScript; the script only keeps them current. Every value goes through
// the escaping `html` template. Host and job pages: host-pages.ts.
import { html, timeTag, formatDuration, type SafeHtml } from '../../common/platform/web-html.js';
import { ACTIONS } from '../../common/protocol/messages.js';
import { HOST_STATES } from '../../common/protocol/admin.js';
import type { HostRow, JobSummary } from './model.js';
import { proxyKind } from '../status/read-model.js';
import { ATTENTION, byAttention, sortKey } from '../status/order.js';

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

/** Host states and job states to colours (BASE_CSS): each host state that means something different looks different. */
const STATE_CLASS: Record<string, string> = {
  'up to date': 's-ok', 'auto updated': 's-ok', success: 's-ok',
  running: 's-run', dispatched: 's-run', queued: 's-run', 'rebuild pending': 's-warn', 'sync pending': 's-warn',
  failing: 's-bad', failure: 's-bad', 'rolled back': 's-bad', 'rolled-back': 's-bad', interrupted: 's-warn',
  offline: 's-off', 'never connected': 's-never', 'new machine': 's-new', 'nothing published': 's-none',
};

export function badge(state: string): SafeHtml {
  return html`<span class="badge ${STATE_CLASS[state] ?? 's-off'}">${state}</span>`;
}

/** Free text with the given job ids turned into links to their pages. */
export function linkJobIds(text: string, ids: Array<string | null | undefined>): SafeHtml {
  const known = [...new Set(ids.filter((i): i is string => !!i && text.includes(i)))];
  if (known.length === 0) return html`${text}`;
  const parts: Array<string | SafeHtml> = [];
  const re = new RegExp(known.map((i) => i.replace(/[-]/g, '\\-')).join('|'), 'g');
  let at = 0;
  for (const m of text.matchAll(re)) {
    parts.push(text.slice(at, m.index));
    parts.push(html`<a class="mono" href="/jobs/${m[0]}">${m[0]}</a>`);
    at = m.index! + m[0].length;
  }
  parts.push(text.slice(at));
  return html`${parts}`;
}

/** A store path shortened for a table cell (the full path is in its title). */
export function shortSystem(p: string | null | undefined): string {
  if (!p) return '–';
  const base = p.split('/').pop() ?? p;
  return base.length > 44 ? `${base.slice(0, 8)}…${base.slice(-30)}` : base;
}

export function connection(row: HostRow): SafeHtml {
  const c = row.client;
  if (c) return html`<span class="s-ok">connected</span> via ${c.carrier}${proxyKind(c.endpoint) !== 'direct' ? html` + ${proxyKind(c.endpoint)}` : ''} <span class="nowrap">since ${timeTag(c.connectedSince)}</span>`;
  const seen = row.facts?.lastSeenAt;
  return seen ? html`<span class="muted">last seen <span class="nowrap">${timeTag(seen)}</span></span>` : html`<span class="muted">never connected</span>`;
}

/** "started 3 min ago", "ended 5 s ago", "queued 2 h ago" (the script makes the times relative). */
export function jobWhen(j: JobSummary): SafeHtml {
  if (j.state === 'queued') return html`<span class="nowrap">requested ${timeTag(j.requestedAt)}</span>`;
  if (j.endedAt) return html`<span class="nowrap">ended ${timeTag(j.endedAt)}</span>`;
  return html`<span class="nowrap">started ${timeTag(j.startedAt ?? j.requestedAt)}</span>`;
}

export function jobCell(j: JobSummary | null): SafeHtml {
  if (!j) return html`<span class="muted">none</span>`;
  return html`<a href="/jobs/${j.id}" title="job ${j.id}">${j.action}</a> ${badge(j.state)} ${jobWhen(j)}${j.durationMs !== null ? html` <span class="muted nowrap">(${formatDuration(j.durationMs)})</span>` : ''}`;
}

/** The running or last job, and under it the one that waits (a queued job is news: it will run). */
function jobsCell(row: HostRow): SafeHtml {
  const q = row.queuedJob;
  const now = row.activeJob ?? row.lastJob;
  if (!q) return jobCell(now);
  return html`${now ? jobCell(now) : ''}<div class="queued">${jobCell(q)}${row.client ? '' : html` <span class="muted">(runs when it connects)</span>`}</div>`;
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

/** What the fleet page is narrowed to (?state=..&tag=..); rows that do not match are rendered hidden. */
export interface Filter { state: string; tag: string }

export function matches(row: HostRow, f: Filter): boolean {
  const stateOk = !f.state || (f.state === 'attention' ? ATTENTION.has(row.state as never) : row.state === f.state);
  return stateOk && (!f.tag || row.tags.includes(f.tag));
}

export function hostRowHtml(row: HostRow, filter: Filter = { state: '', tag: '' }): SafeHtml {
  const sys = row.client?.system ?? row.facts?.system ?? null;
  const gen = row.client?.generation ?? row.facts?.generation ?? null;
  const ids = [row.activeJob?.id, row.lastJob?.id, row.queuedJob?.id];
  const detail = row.stateDetail;
  return html`<tr id="host-${row.name}" data-key="${sortKey(row.state, row.name)}" data-state="${row.state}" data-tags="${row.tags.join(' ')}"${matches(row, filter) ? '' : ' hidden'}>
<th scope="row"><a href="/hosts/${row.name}">${row.name}</a>${row.tags.length ? html` <span class="muted tags">${row.tags.join(', ')}</span>` : ''}${row.registered ? '' : html` <span class="badge s-warn">not registered</span>`}</th>
<td data-label="State">${badge(row.state)}${detail ? html` <span class="muted detail"${detail.length > 80 ? html` title="${detail}"` : ''}>${linkJobIds(detail.length > 80 ? `${detail.slice(0, 80)}…` : detail, ids)}</span>` : ''}</td>
<td data-label="Connection">${connection(row)}</td>
<td data-label="System"><span class="mono" title="${sys ?? ''}">${shortSystem(sys)}</span>${gen !== null ? html` <span class="muted nowrap">gen ${gen}</span>` : ''}</td>
<td data-label="Job">${jobsCell(row)}</td>
<td>${row.registered ? triggerForm(row.name, { connected: row.client !== null }) : ''}</td>
</tr>`;
}

export function clientRowHtml(row: HostRow): SafeHtml | null {
  const c = row.client;
  if (!c) return null;
  return html`<tr id="client-${row.name}" data-key="${row.name}">
<th scope="row"><a href="/hosts/${row.name}">${row.name}</a></th>
<td data-label="Carrier">${c.carrier}</td>
<td data-label="Came via" class="mono">${c.endpoint}</td>
<td data-label="Remote address" class="mono">${c.remoteAddress}</td>
<td data-label="Since">${timeTag(c.connectedSince)}</td>
<td data-label="Agent">${c.agentVersion}</td>
<td data-label="Job">${c.runningJob ? html`<a href="/jobs/${c.runningJob.jobId}">${c.runningJob.action}</a> <span class="nowrap">started ${timeTag(c.runningJob.startedAt)}</span>` : html`<span class="muted">idle</span>`}${c.queuedJob ? html` <span class="nowrap">+ <a href="/jobs/${c.queuedJob.jobId}">${c.queuedJob.action}</a> queued</span>` : ''}</td>
</tr>`;
}

export function summaryHtml(rows: HostRow[]): SafeHtml {
  const registered = rows.filter((r) => r.registered).length;
  const connected = rows.filter((r) => r.client).length;
  const running = rows.filter((r) => r.activeJob).length;
  const queued = rows.filter((r) => r.queuedJob).length;
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
  const states = byAttention([...counts.entries()], ([s]) => ({ state: s, name: '' }));
  return html`<p id="summary"><strong>${registered}</strong> hosts · <strong>${connected}</strong> connected · <strong>${running}</strong> running${queued ? html` · <strong>${queued}</strong> queued` : ''}${states.map(([s, n]) => html` · <a class="nowrap state-link" href="/?state=${encodeURIComponent(s)}">${badge(s)} ${n}</a>`)}</p>`;
}

export function hostsBody(rows: HostRow[], filter?: Filter): SafeHtml {
  return html`<tbody id="hosts-body">${byAttention(rows, (r) => r).map((r) => hostRowHtml(r, filter))}</tbody>`;
}

export function clientsBody(rows: HostRow[]): SafeHtml {
  return html`<tbody id="clients-body">${rows.map(clientRowHtml)}</tbody>`;
}

/** Narrow the table by state and tag: a GET form (works without JavaScript); the script applies it as you choose. */
function filterForm(rows: HostRow[], f: Filter): SafeHtml {
  const tags = [...new Set(rows.flatMap((r) => r.tags))].sort();
  const shown = rows.filter((r) => matches(r, f)).length;
  const opt = (value: string, label: string, current: string): SafeHtml => html`<option value="${value}"${value === current ? ' selected' : ''}>${label}</option>`;
  return html`<form id="filter" class="filters" method="get" action="/">
<label>State <select name="state" id="filter-state">${opt('', 'any', f.state)}${opt('attention', 'needs attention', f.state)}${HOST_STATES.map((s) => opt(s, s, f.state))}</select></label>
<label>Tag <select name="tag" id="filter-tag">${opt('', 'any', f.tag)}${tags.map((t) => opt(t, t, f.tag))}</select></label>
<button type="submit" class="no-js">Filter</button>
<span id="filter-count" class="muted" role="status">${f.state || f.tag ? `${shown} of ${rows.length} hosts shown` : ''}</span>
</form>`;
}

export function fleetPage(rows: HostRow[], opts: { filter?: Filter; rollouts?: SafeHtml } = {}): SafeHtml {
  const filter = opts.filter ?? { state: '', tag: '' };
  return layout('Fleet', html`<h1>Fleet</h1>
${summaryHtml(rows)}
${opts.rollouts ?? ''}
<section aria-labelledby="hosts-h">
<h2 id="hosts-h">Hosts</h2>
${filterForm(rows, filter)}
<table id="hosts" class="stack">
<caption class="visually-hidden">Every registered host, those that need attention first: state, connection, running system, jobs, and a button to run a job</caption>
<thead><tr><th scope="col">Host</th><th scope="col">State</th><th scope="col">Connection</th><th scope="col">System</th><th scope="col">Job</th><th scope="col"><span class="visually-hidden">Run a job</span></th></tr></thead>
${hostsBody(rows, filter)}
</table>
</section>
<section id="outputs" aria-labelledby="outputs-h" hidden>
<h2 id="outputs-h">Live output</h2>
</section>
<section aria-labelledby="clients-h">
<h2 id="clients-h">Connected clients</h2>
<table id="clients" class="stack">
<caption class="visually-hidden">Agents connected to this hub right now</caption>
<thead><tr><th scope="col">Host</th><th scope="col">Carrier</th><th scope="col">Came via</th><th scope="col">Remote address</th><th scope="col">Since</th><th scope="col">Agent</th><th scope="col">Job</th></tr></thead>
${clientsBody(rows)}
</table>
</section>`, { events: '/events' });
}

export function messagePage(title: string, text: string): SafeHtml {
  return layout(title, html`<h1>${title}</h1><p>${text}</p><p><a href="/">Back to the fleet</a></p>`);
}
