// The dashboard's routes: the fleet, host and job pages, their event streams
// (fleet changes, one job's output), uploaded logs, and triggers, which go
// through the admin API's own handler so the dashboard can do nothing the
// admin socket cannot, and does it the same way.
import type http from 'node:http';
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { HttpError, readForm, send, sendHtml, sendJson, sendStatic, sendText } from '../../common/platform/web.js';
import { SseStream } from '../../common/platform/web-sse.js';
import { PROMETHEUS_CONTENT_TYPE } from '../../common/platform/prometheus.js';
import type { AdminEvent, AdminRequest } from '../../common/protocol/admin.js';
import { APPLYING_ACTIONS, isAction, type Action } from '../../common/protocol/messages.js';
import { asBentoError } from '../../common/protocol/errors.js';
import { isHostName, isJobId } from '../../common/protocol/names.js';
import type { AdminHandler } from '../admin/server.js';
import type { EventBus } from '../events/types.js';
import type { Logger } from '../../common/platform/log.js';
import type { ReadSources } from '../status/read-model.js';
import { FINAL_STATES, type JobRecord, type JobStore } from '../store/jobs.js';
import type { LogReader } from '../publish/logs.js';
import { SlotGate } from '../cluster/slot-gate.js';
import { LOG_NAME_RE } from '../sftp/vpath.js';
import type { HubMetrics } from '../metrics/hub-metrics.js';
import type { FollowerPolicy } from '../events/follower.js';
import { fleetRows } from './model.js';
import { FleetView } from './fleet-view.js';
import { JobOutputBuffer, type OutputLine } from './job-output.js';
import { lastPart, pageLines, streamJob } from './job-stream.js';
import { DASHBOARD_CSS, DASHBOARD_JS } from './assets.js';
import { fleetPage, messagePage } from './pages.js';
import { confirmTriggerPage, hostPage, jobPage, logPage } from './host-pages.js';
import type { Handler } from './guard.js';
import { RolloutPanel, type RolloutSource } from './rollout-view.js';

/** Uploaded logs the dashboard reads at once; more wait up to LOG_READ_WAIT_MS, then get 503. */
const LOG_READS = 2;
const LOG_READ_WAIT_MS = 10_000;

const MARK: Record<OutputLine['stream'], string> = { stdout: '  ', stderr: '! ', note: '# ' };

/**
 * The downloadable log's text: every physical line carries its stream's mark
 * ("  " stdout, "! " stderr, "# " the agent's note), so output can never pass
 * for stderr or for Bento's own words.
 */
function logText(l: Pick<OutputLine, 'stream' | 'data'>): string {
  const mark = MARK[l.stream];
  return l.data.split('\n').map((d) => `${mark}${d}\n`).join('');
}

export interface DashboardDeps {
  /** The read model's sources (hub/status/read-model.ts): the fleet and host pages. */
  sources: ReadSources;
  /** Job history per host, one job's record and stored output. */
  jobs: Pick<JobStore, 'get' | 'forHost' | 'readOutput'>;
  bus: EventBus;
  /** The admin API's own handler: the dashboard triggers exactly as the admin socket does. */
  admin: AdminHandler;
  fleetDir: string;
  /**
   * Uploaded logs, read as `bento-hub logs` reads them (content-hub.ts): in a
   * cluster the archive too, since a log leaves the jail once shipped there
   * (found by review: the dashboard listed none and answered 404).
   */
  logs: LogReader;
  /** Running and halted rollouts, for the fleet page's panel (rollout-view.ts). */
  rollouts: RolloutSource;
  log: Logger;
  /** The bound every event stream gets (hub/events/follower.ts); absent: the SSE default. */
  followers?: FollowerPolicy;
  /** How long a job page's stream waits for lines the bus lost to be stored, ms (default: admin/output-order.ts). */
  fillWaitMs?: number;
}

export class Dashboard {
  private readonly view: FleetView;
  private readonly rollouts: RolloutPanel;
  private readonly outputs = new JobOutputBuffer();
  private readonly stopWatching: () => void;
  private readonly streams = new Set<SseStream>();
  /** Uploaded logs read at once: each may hold a compressed log from the archive and up to 32 MiB of its text. */
  private readonly logReads = new SlotGate(LOG_READS);

  constructor(private readonly deps: DashboardDeps, private readonly metrics: HubMetrics) {
    this.view = new FleetView(deps, deps.bus);
    this.rollouts = new RolloutPanel(deps.rollouts);
    const sub = deps.bus.subscribe({ all: true }, (e) => { if (e.kind === 'job') this.outputs.onEvent(e.event); });
    this.stopWatching = () => sub.unsubscribe();
    metrics.registry.gauge('bento_dashboard_streams', 'Open dashboard event streams.', () => [[{}, this.streams.size]]);
  }

  handle: Handler = async (req, res, url) => {
    const p = url.pathname;
    const post = req.method === 'POST';
    let m: RegExpExecArray | null;
    if (sendStatic(res, p, { css: DASHBOARD_CSS, js: DASHBOARD_JS })) return;
    if (p === '/' && !post) {
      const filter = { state: url.searchParams.get('state') ?? '', tag: url.searchParams.get('tag') ?? '' };
      return sendHtml(res, 200, fleetPage(fleetRows(this.deps.sources), { filter, rollouts: this.rollouts.html() }));
    }
    if (p === '/api/rollouts' && !post) return sendJson(res, 200, { rollouts: this.deps.rollouts.active() });
    if (p === '/events' && !post) return this.events(res, url.searchParams.get('host'));
    if (p === '/metrics' && !post) return send(res, 200, PROMETHEUS_CONTENT_TYPE, this.metrics.render());
    if (p === '/api/hosts' && !post) return sendJson(res, 200, { hosts: fleetRows(this.deps.sources) });
    if (p === '/api/trigger' && post) return this.apiTrigger(req, res);
    if ((m = /^\/hosts\/([^/]+)$/.exec(p)) && !post) return this.hostPage(res, decodeURIComponent(m[1]!));
    if ((m = /^\/hosts\/([^/]+)\/trigger$/.exec(p)) && post) return this.hostTrigger(req, res, decodeURIComponent(m[1]!));
    if ((m = /^\/hosts\/([^/]+)\/logs\/([^/]+)$/.exec(p)) && !post) return this.uploadedLog(res, decodeURIComponent(m[1]!), decodeURIComponent(m[2]!));
    if ((m = /^\/jobs\/([^/]+)(\/log|\/events)?$/.exec(p)) && isJobId(m[1]) && !post) {
      if (m[2] === '/log') return this.jobLog(res, m[1]);
      return m[2] === '/events' ? this.jobEvents(res, m[1]) : this.jobPage(res, m[1]);
    }
    sendHtml(res, 404, messagePage('Not found', `Nothing at ${p}.`));
  };

  /** An event stream bounded like every follower; a job's lines are skipped past the bound, with a note naming the full log. */
  private stream(res: http.ServerResponse, jobId?: string): SseStream {
    const f = this.deps.followers;
    return new SseStream(res, {
      ...(f ? { maxQueuedBytes: f.maxQueuedBytes, stats: f.stats } : {}),
      ...(jobId ? { fullLog: () => `/jobs/${jobId}/log` } : {}),
    });
  }

  private track(sse: SseStream): SseStream {
    this.streams.add(sse);
    sse.onClose(() => this.streams.delete(sse));
    return sse;
  }

  private events(res: http.ServerResponse, host: string | null): void {
    if (host !== null && !isHostName(host)) throw new HttpError(400, 'bad host name');
    const sse = this.track(this.stream(res));
    this.view.subscribe(sse, host);
    if (host === null) this.rollouts.subscribe(sse);
  }

  private hostPage(res: http.ServerResponse, name: string): Promise<void> | void {
    if (!isHostName(name)) return sendHtml(res, 404, messagePage('Unknown host', `"${name}" is not a host name.`));
    const row = fleetRows(this.deps.sources, new Set([name]))[0];
    if (!row) return sendHtml(res, 404, messagePage('Unknown host', `No host "${name}" in the registry.`));
    return this.deps.logs.list(name).then((logs) => {
      sendHtml(res, 200, hostPage(row, this.deps.jobs.forHost(name).reverse(), logs));
    });
  }

  private async uploadedLog(res: http.ServerResponse, host: string, name: string): Promise<void> {
    if (!isHostName(host) || !LOG_NAME_RE.test(name)) return sendHtml(res, 404, messagePage('Not found', 'No such log.'));
    const logs = await this.deps.logs.list(host);
    if (!logs.some((l) => l.name === name)) return sendHtml(res, 404, messagePage('Not found', `${host} has no log named ${name}.`));
    const release = await this.logReads.acquire(LOG_READ_WAIT_MS);
    if (!release) return sendHtml(res, 503, messagePage('Busy', 'Other logs are being read; try again shortly.'));
    let got;
    try {
      got = await this.deps.logs.read(host, name); // decodeLog's cap: at most 32 MiB of text
    } finally {
      release();
    }
    if (!got) return sendHtml(res, 404, messagePage('Not found', `${host} has no log named ${name}.`));
    sendHtml(res, 200, logPage(host, name, got.text, got.complete, got.cutAt));
  }

  /** The admin API's trigger, without following (the page follows the job's own stream). */
  private async trigger(req: Extract<AdminRequest, { op: 'trigger' }>): Promise<AdminEvent[]> {
    const events: AdminEvent[] = [];
    const sock = new EventEmitter() as unknown as net.Socket;
    try {
      await this.deps.admin(req, (e) => events.push(e), sock);
    } catch (err) {
      const e = asBentoError(err);
      events.push({ ev: 'error', code: e.code, message: e.message });
    }
    for (const e of events) if (e.ev === 'accepted') this.deps.bus.publish({ kind: 'changed', host: e.host, action: e.action });
    this.deps.log.info({ hosts: req.hosts, all: req.all, tags: req.tags, action: req.action, via: 'dashboard' }, 'trigger from the dashboard');
    return events;
  }

  private async hostTrigger(req: http.IncomingMessage, res: http.ServerResponse, host: string): Promise<void> {
    const form = await readForm(req);
    const action = form['action'] ?? 'switch';
    const wantsJson = /application\/json/.test(String(req.headers.accept ?? '')) || /application\/json/.test(String(req.headers['content-type'] ?? ''));
    if (!isAction(action)) throw new HttpError(400, 'unknown action');
    if (!isHostName(host)) throw new HttpError(404, 'unknown host');
    // A plain form (no JavaScript) asks on a page of its own before it changes a machine; the script asks in a dialog.
    if (!wantsJson && APPLYING_ACTIONS.includes(action) && form['confirmed'] !== 'yes') return sendHtml(res, 200, confirmTriggerPage(host, action, form['queue'] === 'true'));
    const events = await this.trigger({ op: 'trigger', hosts: [host], all: false, tags: [], action: action as Action, queue: form['queue'] === 'true', follow: false });
    const r = events.find((e) => e.ev === 'accepted' || e.ev === 'rejected' || e.ev === 'error') ?? { ev: 'error', code: 'INTERNAL', message: 'no answer' };
    if (wantsJson) return sendJson(res, r.ev === 'accepted' ? 202 : 409, r);
    if (r.ev === 'accepted') {
      res.writeHead(303, { Location: `/jobs/${r.jobId}`, 'Content-Length': 0 });
      res.end();
      return;
    }
    sendHtml(res, 409, messagePage(`Not started on ${host}`, 'message' in r ? r.message : 'refused'));
  }

  private async apiTrigger(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const text = await readForm(req);
    const hosts = (text['hosts'] ?? '').split(/[\s,]+/).filter(Boolean);
    const tags = (text['tags'] ?? '').split(/[\s,]+/).filter(Boolean);
    const action = text['action'] ?? 'switch';
    if (!isAction(action)) throw new HttpError(400, 'unknown action');
    if (!hosts.every(isHostName) || hosts.length > 10_000) throw new HttpError(400, 'bad host list');
    const events = await this.trigger({ op: 'trigger', hosts, all: text['all'] === 'true', tags, action: action as Action, queue: text['queue'] === 'true', follow: false });
    sendJson(res, events.some((e) => e.ev === 'accepted') ? 202 : 409, { events });
  }

  private jobPage(res: http.ServerResponse, id: string): Promise<void> | void {
    const rec = this.deps.jobs.get(id);
    if (!rec) return sendHtml(res, 404, messagePage('Unknown job', `No job ${id} (it may have been pruned from the history).`));
    const live = !FINAL_STATES.has(rec.state);
    const buf = this.outputs.get(id);
    if (buf) return sendHtml(res, 200, jobPage(rec, pageLines(buf.lines), buf.dropped ? `${buf.dropped} earlier lines are only in the full log.` : null, live));
    return this.fileLines(rec).then(({ lines, truncated }) => {
      sendHtml(res, 200, jobPage(rec, lines, truncated ? 'Only the end of the output is shown here.' : null, live));
    });
  }

  private async jobLog(res: http.ServerResponse, id: string): Promise<void> {
    const rec = this.deps.jobs.get(id);
    if (!rec) return sendText(res, 404, 'no such job');
    const text = (await this.deps.jobs.readOutput(id)).map(logText).join('');
    sendText(res, 200, text || '(no output)', { 'Content-Disposition': `inline; filename="${rec.host}-${id}.log"` });
  }

  /** A job's stored output as lines (the last 2 MiB at most). */
  private async fileLines(rec: JobRecord): Promise<{ lines: OutputLine[]; truncated: boolean }> {
    return lastPart(await this.deps.jobs.readOutput(rec.id));
  }

  /** One job's output: what was missed, then live lines, then "end" (job-stream.ts). */
  private async jobEvents(res: http.ServerResponse, id: string): Promise<void> {
    if (!isJobId(id)) return sendText(res, 404, 'no such job');
    const rec = this.deps.jobs.get(id);
    if (!rec) return sendText(res, 404, 'no such job');
    const { jobs, bus, log, fillWaitMs } = this.deps;
    await streamJob({ jobs, bus, log, outputs: this.outputs, ...(fillWaitMs !== undefined ? { fillWaitMs } : {}) }, this.track(this.stream(res, id)), rec);
  }

  close(): void {
    this.stopWatching();
    this.view.close();
    this.rollouts.close();
    this.outputs.close();
    for (const s of this.streams) s.close();
  }
}
