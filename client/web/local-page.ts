// The host-local "upgrade now" page, served by the agent itself on loopback
// (default 127.0.0.1:51337) and on a unix socket for `bento-client upgrade`.
// "Upgrade now" starts exactly the job a hub trigger starts (JobManager
// onJobStart with a fresh "local-..." id); the hub records it when it hears
// of it. Requests with a foreign Host (DNS rebinding) or Origin (another
// site's script or form) are refused.
import http from 'node:http';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { nanoid } from 'nanoid';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../common/platform/log.js';
import { writeJsonAtomic } from '../../common/platform/atomic.js';
import {
  HttpError, SseStream, foreignOrigin, hostAllowed, originAllowed, readForm, send, sendHtml, sendJson, sendText, setSecurityHeaders, html,
  type SafeHtml,
} from '../../common/platform/web.js';
import { MetricsRegistry, JOB_DURATION_BUCKETS, PROMETHEUS_CONTENT_TYPE } from '../../common/platform/prometheus.js';
import { BENTO_VERSION } from '../../common/protocol/version.js';
import { isAction, type Action, type JobEnd, type JobStart } from '../../common/protocol/messages.js';
import type { Agent, AgentPlugin } from '../agent.js';
import type { JobHooks } from '../jobs/manager.js';
import type { HubConnection } from '../net/hub-connection.js';
import type { Endpoint } from '../net/endpoint.js';
import type { ClientConfig } from '../config.js';
import { currentSystemPath, profileGeneration } from '../system.js';
import { parseLoopbackListen, type LocalPageSettings } from './settings.js';
import { localPage, stateHtml, jobsHtml, LOCAL_CSS, LOCAL_JS, type LocalJob, type LocalState } from './page.js';

/** Same prefix the hub uses to recognise agent-initiated jobs. */
export const LOCAL_JOB_PREFIX = 'local-';
const HISTORY_MAX = 20;
const OUTPUT_MAX_BYTES = 512 * 1024;

interface Line { stream: 'stdout' | 'stderr'; data: string }
interface JobView { job: LocalJob; lines: Line[]; bytes: number; dropped: number }
interface Stream { sse: SseStream; want: string | null }

export class LocalPage implements AgentPlugin, JobHooks {
  private connectedVia: string | null = null;
  private connectedSince: string | null = null;
  private lastDisconnectedAt: string | null = null;
  private current: JobView | null = null;
  private last: JobView | null = null;
  private history: LocalJob[] = [];
  /** Local requests not yet started -> the job that was running when they were made. */
  private readonly requested = new Map<string, string | null>();
  /** A request merged into another run (coalescing) -> the job that ran for it. */
  private readonly aliases = new Map<string, string>();
  private readonly streams = new Set<Stream>();
  private readonly servers: http.Server[] = [];
  private socketPath: string | null = null;
  private tcpPort: number | null = null;
  private readonly historyFile: string;
  readonly metrics = new MetricsRegistry();
  private readonly m;

  constructor(private readonly agent: Agent, private readonly config: ClientConfig, private readonly settings: LocalPageSettings, private readonly log: Logger) {
    this.historyFile = path.join(config.stateDir, 'local-page-history.json');
    const r = this.metrics;
    r.gauge('bento_agent_info', 'This agent (value is always 1).', () => [[{ version: BENTO_VERSION, host: config.name }, 1]]);
    r.gauge('bento_agent_connected', '1 while the agent has a live session with the hub.', () => [[{}, this.agent.connected ? 1 : 0]]);
    r.gauge('bento_agent_job_running', '1 while a job runs on this host.', () => [[{}, this.current ? 1 : 0]]);
    this.m = {
      connections: r.counter('bento_agent_connections_total', 'Sessions with the hub established by this agent process.'),
      jobs: r.counter('bento_agent_jobs_total', 'Finished jobs on this host by outcome and who started them (hub, local).'),
      durations: r.histogram('bento_agent_job_duration_seconds', 'How long jobs ran on this host.', JOB_DURATION_BUCKETS),
      requests: r.counter('bento_agent_local_upgrades_total', 'Upgrades requested on this host (page or bento-client upgrade).'),
      refused: r.counter('bento_agent_local_refused_total', 'Local page requests refused, by reason (host, origin).'),
    };
  }

  // ------------------------------------------------------------ agent plugin

  onConnected(_conn: HubConnection, ep: Endpoint): void {
    this.connectedVia = ep.label;
    this.connectedSince = new Date().toISOString();
    this.m.connections.inc();
    this.pushState();
  }

  onDisconnected(): void {
    this.connectedVia = null;
    this.connectedSince = null;
    this.lastDisconnectedAt = new Date().toISOString();
    this.pushState();
  }

  // ------------------------------------------------------------ job hooks

  async prepare(job: JobStart): Promise<void> {
    this.begin(job);
  }

  output(job: JobStart, stream: 'stdout' | 'stderr', data: string): void {
    const v = this.begin(job);
    v.lines.push({ stream, data });
    v.bytes += data.length + 8;
    while (v.bytes > OUTPUT_MAX_BYTES && v.lines.length > 1) {
      v.bytes -= v.lines.shift()!.data.length + 8;
      v.dropped++;
    }
    for (const s of this.streams) if (this.follows(s, job.jobId)) s.sse.send('line', { stream, data });
  }

  async ended(job: JobStart, end: JobEnd): Promise<void> {
    const v = this.begin(job);
    Object.assign(v.job, { endedAt: new Date().toISOString(), outcome: end.outcome, exitCode: end.exitCode, durationMs: end.durationMs, reason: end.reason ?? null });
    this.m.jobs.inc({ outcome: end.outcome, origin: v.job.origin });
    this.m.durations.observe({}, end.durationMs / 1000);
    this.last = v;
    if (this.current === v) this.current = null;
    this.history = [{ ...v.job }, ...this.history.filter((h) => h.jobId !== v.job.jobId)].slice(0, HISTORY_MAX);
    const endData = { jobId: v.job.jobId, outcome: end.outcome, exitCode: end.exitCode, durationMs: end.durationMs, reason: end.reason ?? null };
    for (const s of [...this.streams]) {
      if (!this.follows(s, job.jobId)) continue;
      s.sse.send('end', endData);
      if (s.want !== null) s.sse.close();
    }
    this.pushState();
    await writeJsonAtomic(this.historyFile, this.history, { mode: 0o600, durable: false }).catch((err: Error) => this.log.warn({ err: err.message }, 'could not save the local job history'));
  }

  /** The view of a job, created when its first hook runs (the rebuild's or a pull's prepare line). */
  private begin(job: JobStart): JobView {
    if (this.current?.job.jobId === job.jobId) return this.current;
    if (this.last?.job.jobId === job.jobId) return this.last;
    const origin = (/^(local|pull|autoupdate)-/.exec(job.jobId)?.[1] ?? 'hub') as LocalJob['origin'];
    const v: JobView = {
      job: { jobId: job.jobId, action: job.action, origin, startedAt: new Date().toISOString(), endedAt: null, outcome: null, exitCode: null, durationMs: null, reason: null },
      lines: [], bytes: 0, dropped: 0,
    };
    this.current = v;
    // Requests made while another job ran were merged into this run if it is not theirs.
    this.requested.delete(job.jobId);
    for (const [id, behind] of [...this.requested]) {
      if (behind !== null && behind !== job.jobId) {
        this.requested.delete(id);
        this.aliases.set(id, job.jobId);
        if (this.aliases.size > 200) this.aliases.delete(this.aliases.keys().next().value!);
      }
    }
    for (const s of this.streams) {
      if (s.want === null) {
        s.sse.send('reset', { job: v.job });
      } else if (this.resolve(s.want) === job.jobId) {
        if (s.want !== job.jobId) s.sse.send('note', { text: `bento: your request was merged into job ${job.jobId} (one follow-up run per host)` });
        s.sse.send('started', { jobId: job.jobId, action: job.action });
      }
    }
    this.pushState();
    return v;
  }

  private resolve(id: string): string {
    return this.aliases.get(id) ?? id;
  }

  private follows(s: Stream, jobId: string): boolean {
    return s.want === null || this.resolve(s.want) === jobId;
  }

  // ------------------------------------------------------------ upgrade

  /** Start (or queue behind the running job) the job a trigger would run. */
  upgrade(action: Action): { jobId: string; disposition: 'started' | 'queued' } {
    const jobId = `${LOCAL_JOB_PREFIX}${nanoid(16)}`;
    const behind = this.agent.jobs.runningJobId;
    this.requested.set(jobId, behind);
    this.m.requests.inc();
    this.log.info({ jobId, action, behind }, 'upgrade requested on this host');
    this.agent.jobs.onJobStart({ type: 'job.start', jobId, action });
    return { jobId, disposition: behind ? 'queued' : 'started' };
  }

  // ------------------------------------------------------------ state

  private async state(): Promise<LocalState> {
    return {
      name: this.config.name,
      connected: this.agent.connected,
      endpoint: this.connectedVia,
      connectedSince: this.connectedSince,
      lastDisconnectedAt: this.lastDisconnectedAt,
      system: await currentSystemPath(this.config.currentSystem),
      generation: await profileGeneration(this.config.systemProfile),
      running: this.current?.job ?? null,
      queued: this.requested.size,
    };
  }

  private stateTimer: NodeJS.Timeout | null = null;

  /** Send the state block and the job table to open pages (coalesced within 50 ms). */
  private pushState(): void {
    if (this.stateTimer || ![...this.streams].some((s) => s.want === null)) return;
    this.stateTimer = setTimeout(() => {
      this.stateTimer = null;
      void this.state().then((st) => {
        for (const s of this.streams) {
          if (s.want !== null) continue;
          s.sse.send('replace', { id: 'state', html: stateHtml(st).value });
          s.sse.send('replace', { id: 'jobs', html: jobsHtml(this.jobs()).value });
        }
      });
    }, 50);
    this.stateTimer.unref();
  }

  private jobs(): LocalJob[] {
    const running = this.current ? [this.current.job] : [];
    return [...running, ...this.history.filter((h) => h.jobId !== this.current?.job.jobId)];
  }

  private shownJob(): JobView | null {
    return this.current ?? this.last;
  }

  // ------------------------------------------------------------ HTTP

  private handle = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> => {
    const p = url.pathname;
    const post = req.method === 'POST';
    let m: RegExpExecArray | null;
    if (p === '/static/style.css') return send(res, 200, 'text/css; charset=utf-8', LOCAL_CSS, { 'Cache-Control': 'max-age=300' });
    if (p === '/static/app.js') return send(res, 200, 'text/javascript; charset=utf-8', LOCAL_JS, { 'Cache-Control': 'max-age=300' });
    if (p === '/favicon.ico') return send(res, 204, 'image/x-icon', '');
    if (p === '/' && !post) {
      const v = this.shownJob();
      const text: SafeHtml = html`${(v?.lines ?? []).map((l) => html`<span${l.stream === 'stderr' ? html` class="err"` : ''}>${l.data}\n</span>`)}`;
      return sendHtml(res, 200, localPage(await this.state(), this.jobs(), { job: v?.job ?? null, text }));
    }
    if (p === '/api/state' && !post) return sendJson(res, 200, { ...(await this.state()), jobs: this.jobs() });
    if (p === '/events' && !post) return this.pageEvents(res);
    if (p === '/metrics' && !post && this.settings.metrics) return send(res, 200, PROMETHEUS_CONTENT_TYPE, this.metrics.render());
    if ((p === '/api/upgrade' || p === '/upgrade') && post) {
      const form = await readForm(req);
      const action = form['action'] ?? 'switch';
      if (!isAction(action)) throw new HttpError(400, `unknown action "${action.slice(0, 20)}"`);
      const r = this.upgrade(action);
      if (p === '/upgrade') {
        res.writeHead(303, { Location: '/', 'Content-Length': 0 });
        res.end();
        return;
      }
      return sendJson(res, 202, r);
    }
    if ((m = /^\/api\/jobs\/([A-Za-z0-9_-]{8,64})\/events$/.exec(p)) && !post) return this.jobEvents(res, m[1]!);
    sendText(res, 404, 'not found');
  };

  /** The page's stream: state changes, and the output of whatever job runs. */
  private pageEvents(res: http.ServerResponse): void {
    const sse = new SseStream(res);
    const s: Stream = { sse, want: null };
    this.streams.add(s);
    sse.onClose(() => this.streams.delete(s));
    const v = this.shownJob();
    sse.send('reset', { job: v?.job ?? null });
    if (v?.dropped) sse.send('note', { text: `${v.dropped} earlier lines not shown` });
    for (const l of v?.lines ?? []) sse.send('line', l);
    if (v && v.job.outcome) sse.send('end', { jobId: v.job.jobId, outcome: v.job.outcome, exitCode: v.job.exitCode, durationMs: v.job.durationMs, reason: v.job.reason });
    this.pushState();
  }

  /** One job's stream (bento-client upgrade): backlog, live lines, end. Follows a merged request to the run that serves it. */
  private jobEvents(res: http.ServerResponse, want: string): void {
    const id = this.resolve(want);
    const v = this.current?.job.jobId === id ? this.current : this.last?.job.jobId === id ? this.last : null;
    const done = this.history.find((h) => h.jobId === id);
    if (!v && !done && !this.requested.has(id)) return sendText(res, 404, 'no such job (only the running, queued and last job can be followed)');
    const sse = new SseStream(res);
    if (want !== id) sse.send('note', { text: `bento: your request was merged into job ${id} (one follow-up run per host)` });
    if (v) {
      sse.send('started', { jobId: id, action: v.job.action });
      if (v.dropped) sse.send('note', { text: `${v.dropped} earlier lines not shown` });
      for (const l of v.lines) sse.send('line', l);
    } else if (!done && this.requested.get(id)) {
      sse.send('queued', { jobId: id, behind: this.requested.get(id) });
    }
    const fin = v?.job.outcome ? v.job : done;
    if (fin?.outcome) {
      sse.send('end', { jobId: id, outcome: fin.outcome, exitCode: fin.exitCode, durationMs: fin.durationMs, reason: fin.reason });
      sse.close();
      return;
    }
    const s: Stream = { sse, want };
    this.streams.add(s);
    sse.onClose(() => this.streams.delete(s));
  }

  private listener(kind: 'tcp' | 'unix'): http.RequestListener {
    return (req, res) => {
      setSecurityHeaders(res);
      const refuse = (reason: string, text: string): void => {
        this.m.refused.inc({ reason });
        this.log.warn({ reason, method: req.method, path: req.url?.slice(0, 200), host: req.headers.host, origin: req.headers.origin }, 'local page request refused');
        sendText(res, 403, text);
      };
      // DNS rebinding: only 127.0.0.1 / localhost / [::1] on our own port. The
      // unix socket is not reachable from a browser; its file mode decides.
      if (kind === 'tcp' && !hostAllowed(req, { allowedHosts: [], loopbackPort: this.tcpPort ?? -1 })) return refuse('host', 'refused: foreign Host header (this page answers only to 127.0.0.1, localhost and [::1])');
      const method = req.method ?? 'GET';
      if (method !== 'GET' && method !== 'HEAD' && method !== 'POST') return sendText(res, 405, 'method not allowed', { Allow: 'GET, HEAD, POST' });
      if (foreignOrigin(req) || (method === 'POST' && !originAllowed(req))) return refuse('origin', 'refused: cross-origin request');
      let url: URL;
      try {
        url = new URL(req.url ?? '/', 'http://local.invalid');
      } catch {
        return sendText(res, 400, 'bad request');
      }
      this.handle(req, res, url).catch((err: unknown) => {
        if (err instanceof HttpError) return sendJson(res, err.status, { error: err.message });
        this.log.error({ err: (err as Error).message }, 'local page request failed');
        sendText(res, 500, 'internal error');
      });
    };
  }

  // ------------------------------------------------------------ lifecycle

  /** Open the TCP page and the socket. A failure is logged, never fatal: the agent's job is the hub connection. */
  async start(): Promise<{ url: string | null; socket: string | null }> {
    try {
      this.history = JSON.parse(await readFile(this.historyFile, 'utf8')) as LocalJob[];
      if (!Array.isArray(this.history)) this.history = [];
    } catch {
      this.history = [];
    }
    let url: string | null = null;
    if (this.settings.listen) {
      const hp = parseLoopbackListen(this.settings.listen)!;
      const server = this.server('tcp');
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(hp.port, hp.host, () => { server.off('error', reject); resolve(); });
        });
        this.servers.push(server);
        this.tcpPort = (server.address() as AddressInfo).port;
        url = `http://${hp.host.includes(':') ? `[${hp.host}]` : hp.host}:${this.tcpPort}/`;
        this.log.info({ url }, 'local page serving');
      } catch (err) {
        this.log.warn({ listen: this.settings.listen, err: (err as Error).message }, 'local page not started (address in use?)');
      }
    }
    let socket: string | null = null;
    if (this.settings.socket) {
      try {
        socket = await this.listenSocket(this.settings.socket);
        this.log.info({ socket }, 'local socket serving');
      } catch (err) {
        this.log.warn({ socket: this.settings.socket, err: (err as Error).message }, 'local socket not started');
      }
    }
    return { url, socket };
  }

  private server(kind: 'tcp' | 'unix'): http.Server {
    const server = http.createServer(this.listener(kind));
    server.headersTimeout = 10_000;
    server.requestTimeout = 0;
    return server;
  }

  private async listenSocket(file: string): Promise<string> {
    await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
    // A socket file left by a dead agent is removed; a live one (another agent) is not touched.
    const live = await new Promise<boolean>((resolve) => {
      const c = net.connect(file);
      c.once('connect', () => { c.destroy(); resolve(true); });
      c.once('error', () => resolve(false));
    });
    if (live) throw new Error(`${file} is in use by another process`);
    await unlink(file).catch(() => undefined);
    const server = this.server('unix');
    const old = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(file, () => { server.off('error', reject); resolve(); });
      });
    } finally {
      process.umask(old);
    }
    if (this.settings.socketGroup) {
      const gid = Number(execFileSync('getent', ['group', this.settings.socketGroup]).toString().split(':')[2]);
      await chown(file, process.getuid?.() ?? 0, gid);
      await chmod(file, 0o660);
    } else {
      await chmod(file, 0o600);
    }
    this.servers.push(server);
    this.socketPath = file;
    return file;
  }

  async close(): Promise<void> {
    if (this.stateTimer) clearTimeout(this.stateTimer);
    for (const s of this.streams) s.sse.close();
    this.streams.clear();
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => { s.close(() => resolve()); s.closeAllConnections(); })));
    if (this.socketPath) await unlink(this.socketPath).catch(() => undefined);
  }
}

/**
 * Wire the local page into an agent (after the rollback guard, so its hooks
 * see the guard's verdict):
 *   const page = await installLocalPage(agent, config, log); ... await page?.close();
 */
export async function installLocalPage(agent: Agent, config: ClientConfig, log: Logger): Promise<LocalPage | null> {
  if (!config.localPage) return null;
  const page = new LocalPage(agent, config, config.localPage, log);
  agent.use(page);
  agent.addJobHooks(page);
  await page.start();
  return page;
}
