// The host-local "upgrade now" page, served by the agent itself on loopback
// (default 127.0.0.1:51337) and on a unix socket for `bento-client upgrade`.
// "Upgrade now" starts exactly the job a hub trigger starts (JobManager
// onJobStart with a fresh "local-..." id); the hub records it when it hears
// of it. This file wires the page into the agent and answers its routes;
// local-jobs.ts keeps the jobs and their streams, local-http.ts the servers
// and the Host / Origin checks (DNS rebinding, other sites' scripts and
// forms are refused).
import type http from 'node:http';
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../common/platform/log.js';
import { HttpError, readForm, send, sendHtml, sendJson, sendStatic, sendText } from '../../common/platform/web.js';
import { MetricsRegistry, JOB_DURATION_BUCKETS, PROMETHEUS_CONTENT_TYPE } from '../../common/platform/prometheus.js';
import { BENTO_VERSION } from '../../common/protocol/version.js';
import { APPLYING_ACTIONS, isAction, type Action } from '../../common/protocol/messages.js';
import { isJobId, newJobIdBody } from '../../common/protocol/names.js';
import type { Agent, AgentPlugin } from '../agent.js';
import type { HubConnection } from '../net/hub-connection.js';
import type { Endpoint } from '../net/endpoint.js';
import type { ClientConfig } from '../config.js';
import { currentSystemPath, profileGeneration } from '../system.js';
import { parseLoopbackListen, type LocalPageSettings } from './settings.js';
import { confirmPage, localJobPage, localPage, LOCAL_CSS, LOCAL_JS, type LocalState, type ShownOutput } from './page.js';
import { LocalJobs } from './local-jobs.js';
import { closeServer, listenSocket, listenTcp, localServer, type GuardOptions } from './local-http.js';

/** Same prefix the hub uses to recognise agent-initiated jobs. */
export const LOCAL_JOB_PREFIX = 'local-';

export class LocalPage implements AgentPlugin {
  private connectedVia: string | null = null;
  private connectedSince: string | null = null;
  private lastDisconnectedAt: string | null = null;
  /** The jobs the page shows; also the agent's job hooks (installLocalPage). */
  readonly jobs: LocalJobs;
  private readonly servers: http.Server[] = [];
  private socketPath: string | null = null;
  private tcpPort: number | null = null;
  private readonly guard: GuardOptions;
  readonly metrics = new MetricsRegistry();
  private readonly m;

  constructor(private readonly agent: Agent, private readonly config: ClientConfig, private readonly settings: LocalPageSettings, private readonly log: Logger) {
    const r = this.metrics;
    r.gauge('bento_agent_info', 'This agent (value is always 1).', () => [[{ version: BENTO_VERSION, host: config.name }, 1]]);
    r.gauge('bento_agent_connected', '1 while the agent has a live session with the hub.', () => [[{}, this.agent.connected ? 1 : 0]]);
    r.gauge('bento_agent_job_running', '1 while a job runs on this host.', () => [[{}, this.jobs.running ? 1 : 0]]);
    this.m = {
      connections: r.counter('bento_agent_connections_total', 'Sessions with the hub established by this agent process.'),
      jobs: r.counter('bento_agent_jobs_total', 'Finished jobs on this host by outcome and who started them (hub, local).'),
      durations: r.histogram('bento_agent_job_duration_seconds', 'How long jobs ran on this host.', JOB_DURATION_BUCKETS),
      requests: r.counter('bento_agent_local_upgrades_total', 'Upgrades requested on this host (page or bento-client upgrade).'),
      refused: r.counter('bento_agent_local_refused_total', 'Local page requests refused, by reason (host, origin).'),
    };
    this.jobs = new LocalJobs({
      historyFile: path.join(config.stateDir, 'local-page-history.json'),
      log,
      state: () => this.state(),
      onEnd: (job, end) => {
        this.m.jobs.inc({ outcome: end.outcome, origin: job.origin });
        this.m.durations.observe({}, end.durationMs / 1000);
      },
    });
    this.guard = { log, refused: this.m.refused, tcpPort: () => this.tcpPort ?? -1 };
  }

  // ------------------------------------------------------------ agent plugin

  onConnected(_conn: HubConnection, ep: Endpoint): void {
    this.connectedVia = ep.label;
    this.connectedSince = new Date().toISOString();
    this.m.connections.inc();
    this.jobs.pushState();
  }

  onDisconnected(): void {
    this.connectedVia = null;
    this.connectedSince = null;
    this.lastDisconnectedAt = new Date().toISOString();
    this.jobs.pushState();
  }

  // ------------------------------------------------------------ upgrade

  /** Start (or queue behind the running job) the job a trigger would run. */
  upgrade(action: Action): { jobId: string; disposition: 'started' | 'queued' } {
    const jobId = `${LOCAL_JOB_PREFIX}${newJobIdBody()}`;
    const behind = this.agent.jobs.runningJobId;
    this.jobs.request(jobId, behind);
    this.m.requests.inc();
    this.log.info({ jobId, action, behind }, 'upgrade requested on this host');
    this.agent.jobs.onJobStart({ type: 'job.start', jobId, action });
    return { jobId, disposition: behind ? 'queued' : 'started' };
  }

  private async state(): Promise<LocalState> {
    return {
      name: this.config.name,
      connected: this.agent.connected,
      endpoint: this.connectedVia,
      connectedSince: this.connectedSince,
      lastDisconnectedAt: this.lastDisconnectedAt,
      system: await currentSystemPath(this.config.currentSystem),
      generation: await profileGeneration(this.config.systemProfile),
      running: this.jobs.running,
      queued: this.jobs.queued,
    };
  }

  // ------------------------------------------------------------ routes

  private handle = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> => {
    const p = url.pathname;
    const post = req.method === 'POST';
    let m: RegExpExecArray | null;
    if (sendStatic(res, p, { css: LOCAL_CSS, js: LOCAL_JS })) return;
    if (p === '/' && !post) {
      const v = this.jobs.shown();
      const output: ShownOutput = { job: v?.job ?? null, lines: v?.lines ?? [], dropped: v?.dropped ?? 0 };
      return sendHtml(res, 200, localPage(await this.state(), this.jobs.list(), output));
    }
    if ((m = /^\/jobs\/([^/]+)$/.exec(p)) && isJobId(m[1]) && !post) {
      const job = this.jobs.list().find((j) => j.jobId === m![1]);
      if (!job) return sendText(res, 404, 'no such job (this host keeps its last 20 jobs)');
      const v = this.jobs.view(job.jobId);
      return sendHtml(res, 200, localJobPage(this.config.name, job, v ? { job: v.job, lines: v.lines, dropped: v.dropped } : null));
    }
    if (p === '/api/state' && !post) return sendJson(res, 200, { ...(await this.state()), jobs: this.jobs.list() });
    if (p === '/events' && !post) return this.jobs.pageEvents(res);
    if (p === '/metrics' && !post && this.settings.metrics) return send(res, 200, PROMETHEUS_CONTENT_TYPE, this.metrics.render());
    if ((p === '/api/upgrade' || p === '/upgrade') && post) {
      const form = await readForm(req);
      const action = form['action'] ?? 'switch';
      if (!isAction(action)) throw new HttpError(400, `unknown action "${action.slice(0, 20)}"`);
      // The form without JavaScript: a job that changes this machine is confirmed on a page of its own first.
      if (p === '/upgrade' && form['confirmed'] !== 'yes' && APPLYING_ACTIONS.includes(action)) return sendHtml(res, 200, confirmPage(this.config.name, action));
      const r = this.upgrade(action);
      if (p === '/upgrade') {
        res.writeHead(303, { Location: '/', 'Content-Length': 0 });
        res.end();
        return;
      }
      return sendJson(res, 202, r);
    }
    if ((m = /^\/api\/jobs\/([^/]+)\/events$/.exec(p)) && isJobId(m[1]) && !post) return this.jobs.jobEvents(res, m[1]!);
    sendText(res, 404, 'not found');
  };

  // ------------------------------------------------------------ lifecycle

  /** Open the TCP page and the socket. A failure is logged, never fatal: the agent's job is the hub connection. */
  async start(): Promise<{ url: string | null; socket: string | null }> {
    await this.jobs.loadHistory();
    let url: string | null = null;
    if (this.settings.listen) {
      const hp = parseLoopbackListen(this.settings.listen)!;
      const server = localServer('tcp', this.guard, this.handle);
      try {
        this.tcpPort = await listenTcp(server, hp.host, hp.port);
        this.servers.push(server);
        url = `http://${hp.host.includes(':') ? `[${hp.host}]` : hp.host}:${this.tcpPort}/`;
        this.log.info({ url }, 'local page serving');
      } catch (err) {
        this.log.warn({ listen: this.settings.listen, err: (err as Error).message }, 'local page not started (address in use?)');
      }
    }
    let socket: string | null = null;
    if (this.settings.socket) {
      try {
        const server = localServer('unix', this.guard, this.handle);
        await listenSocket(server, this.settings.socket, this.settings.socketGroup);
        this.servers.push(server);
        socket = this.socketPath = this.settings.socket;
        this.log.info({ socket }, 'local socket serving');
      } catch (err) {
        this.log.warn({ socket: this.settings.socket, err: (err as Error).message }, 'local socket not started');
      }
    }
    return { url, socket };
  }

  async close(): Promise<void> {
    this.jobs.close();
    await Promise.all(this.servers.map(closeServer));
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
  agent.addJobHooks(page.jobs);
  await page.start();
  return page;
}
