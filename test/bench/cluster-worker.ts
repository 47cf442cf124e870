// Load-generator worker of the cluster bench and the soak (forked by
// cluster-pool.ts). Each simulated agent is a real ssh2 Client doing on the
// wire what the real agent does (client/agent.ts, client/net/hub-connection.ts),
// as the single-hub worker (agent-worker.ts) does, plus what a cluster needs:
//
//   - several hubs, tried in the agent's own stable order (rendezvous hashing
//     of its name, client/net/endpoint-order.ts: endpointOrder "spread"); a
//     refused endpoint moves on to the next at once, a lost session starts
//     again from the preferred one after the real agent's backoff;
//   - jobs that take `jobMs`, and an outbox: a result stays until the hub's
//     job.ack, is named in the next hello (`unreported`, and `runningJobId`
//     for a job still running) and replayed after the welcome, so a hub that
//     dies mid-job loses nothing the agent knows;
//   - every job id an agent ran, so the orchestrator can count a job run
//     twice (duplicateStarts) and compare the runs with the job records.
//
// Agents do no disk work: the bench measures the hubs.
import { createHash } from 'node:crypto';
import net from 'node:net';
import ssh2 from 'ssh2';
import type { ClientChannel, ParsedKey } from 'ssh2';
import { CONTROL_SUBSYSTEM, PROTOCOL_VERSION } from '../../common/protocol/version.js';
import { MAX_UNREPORTED } from '../../common/protocol/messages.js';
import { rendezvous } from '../../client/net/endpoint-order.js';
import { parseEndpoint } from '../../client/net/endpoint.js';
import type { AgentSpec } from './ipc.js';
import type { ClusterWorkerInit, ClusterWorkerStats, FromClusterWorker, ToClusterWorker } from './cluster-ipc.js';
import { sshPing } from './ssh-ping.js';

const send = (m: FromClusterWorker): void => { process.send?.(m); };

let cfg: ClusterWorkerInit | null = null;
let stopping = false;
const agents: Agent[] = [];
const queue: Agent[] = [];
const stats: ClusterWorkerStats = {
  t: 'stats', ready: 0, perHub: [], inFlight: 0, jobStarts: 0, duplicateStarts: 0, acks: 0, lastAckAt: 0, outbox: 0, running: 0,
  errors: 0, drops: 0, heartbeatsSent: 0, heartbeatsEchoed: 0, hubErrors: 0, lastError: '', marked: 0, markedBack: 0,
};

interface End { type: 'job.end'; jobId: string; action: string; outcome: 'success'; exitCode: 0; startedAt: string; durationMs: number; replayed?: boolean }

class Agent {
  private client: ssh2.Client | null = null;
  private channel: ClientChannel | null = null;
  private keepalive: NodeJS.Timeout | null = null;
  private welcomed = false;
  private forwarded = false;
  ready = false;
  /** Connected to this hub (index), while ready. */
  hub = -1;
  /** Counted in stats.inFlight. */
  private counted = false;
  private failures = 0;
  /** Position in `order` of the endpoint this round is at. */
  private at = 0;
  private hubHeartbeatMs = 25_000;
  private pending = '';
  /** Results not acknowledged yet, by job id. */
  readonly outbox = new Map<string, End>();
  /** The job running now (one at a time, as the hub sends them). */
  running: { jobId: string; timer: NodeJS.Timeout } | null = null;
  /** The job.start that came while a job ran: it runs next. */
  private followUp: { jobId: string; action: string } | null = null;
  readonly ran: string[] = [];
  private readonly started = new Set<string>();
  /** Set by `mark`: the hub this agent was at when it was about to die. */
  markedFrom = -1;

  constructor(readonly name: string, private readonly key: ParsedKey, private readonly order: number[]) {}

  private start(): void {
    const c = cfg!;
    const hub = this.order[this.at]!;
    const ep = c.endpoints[hub]!;
    stats.inFlight++;
    this.counted = true;
    const client = new ssh2.Client();
    this.client = client;
    this.welcomed = false;
    this.forwarded = false;
    this.pending = '';
    let auth = 0;
    client.on('ready', () => {
      client.subsys(CONTROL_SUBSYSTEM, (err, ch) => {
        if (err) { this.fail(`subsystem refused: ${err.message}`); return; }
        this.channel = ch;
        ch.on('data', (d: Buffer) => this.onData(d, hub));
        ch.stderr.resume();
        ch.on('close', () => client.end());
        ch.write(`${JSON.stringify({
          type: 'hello', protocol: PROTOCOL_VERSION, name: this.name, agentVersion: 'bench', system: null, generation: null, configHash: null,
          capabilities: ['jobs'], runningJobId: this.running?.jobId ?? null, unreported: [...this.outbox.keys()].slice(0, MAX_UNREPORTED),
        })}\n`);
      });
      client.forwardIn('127.0.0.1', 22, (err) => {
        if (err) { this.fail(`reverse forward refused: ${err.message}`); return; }
        this.forwarded = true;
        this.maybeReady(hub);
      });
    });
    client.on('tcp connection', (_info, _accept, reject) => reject());
    client.on('error', (err: Error) => { stats.errors++; stats.lastError = `${this.name}: ${err.message}`; });
    client.on('close', () => this.onClose(client));
    const sock = net.connect({ host: ep.host, port: ep.port, localAddress: c.localAddress });
    sock.setNoDelay(true);
    client.connect({
      sock,
      username: this.name,
      authHandler: ((_l: unknown, _p: unknown, next: (a: unknown) => void) => {
        const step = auth++;
        if (step === 0) next({ type: 'none', username: this.name });
        else if (step === 1) next({ type: 'publickey', username: this.name, key: this.key });
        else next(false);
      }) as unknown as ssh2.ConnectConfig['authHandler'],
      readyTimeout: 120_000,
      keepaliveInterval: 0,
    });
  }

  private onData(d: Buffer, hub: number): void {
    this.pending += d.toString('utf8');
    let nl: number;
    while ((nl = this.pending.indexOf('\n')) !== -1) {
      const line = this.pending.slice(0, nl);
      this.pending = this.pending.slice(nl + 1);
      if (line) this.onLine(line, hub);
    }
    if (this.pending.length > 1 << 20) this.fail('hub line too long');
  }

  private onLine(line: string, hub: number): void {
    let msg: { type?: string; jobId?: string; action?: string; heartbeatMs?: number; keepalive?: string; message?: string };
    try { msg = JSON.parse(line) as typeof msg; } catch { this.fail('hub sent a line that is not JSON'); return; }
    switch (msg.type) {
      case 'welcome': {
        this.welcomed = true;
        const every = Math.max(100, Number(msg.heartbeatMs) || 25_000);
        const ssh = msg.keepalive === 'ssh' && this.hubHeartbeatMs <= every;
        const interval = ssh ? this.hubHeartbeatMs : every;
        this.hubHeartbeatMs = every;
        this.keepalive = setInterval(() => {
          if (!this.channel || !this.ready || !this.client) return;
          stats.heartbeatsSent++;
          if (ssh) sshPing(this.client, () => { stats.heartbeatsEchoed++; });
          else this.channel.write('{"type":"heartbeat","seq":0}\n');
        }, interval);
        // The outbox first, as the real agent replays it right after the welcome.
        for (const end of this.outbox.values()) this.channel?.write(`${JSON.stringify({ ...end, replayed: true })}\n`);
        this.maybeReady(hub);
        break;
      }
      case 'heartbeat':
        stats.heartbeatsEchoed++;
        break;
      case 'job.start':
        this.jobStart(String(msg.jobId), String(msg.action));
        break;
      case 'job.ack':
        if (this.outbox.delete(String(msg.jobId))) stats.outbox--;
        stats.acks++;
        stats.lastAckAt = Date.now();
        break;
      case 'error':
        stats.hubErrors++;
        stats.lastError = `${this.name}: hub error: ${String(msg.message).slice(0, 200)}`;
        break;
      default:
        break;
    }
  }

  private jobStart(jobId: string, action: string): void {
    stats.jobStarts++;
    if (this.started.has(jobId) || this.followUp?.jobId === jobId) { stats.duplicateStarts++; return; }
    // As the real agent (client/jobs/manager.ts): a job.start while a job runs is its follow-up, run after it.
    // (A hub that has no record of the running job, its holder having died before writing it, may send one.)
    if (this.running) { this.followUp = { jobId, action }; return; }
    this.run(jobId, action);
  }

  private run(jobId: string, action: string): void {
    this.started.add(jobId);
    this.ran.push(jobId);
    const startedAt = new Date().toISOString();
    this.channel?.write(`{"type":"job.started","jobId":"${jobId}","action":"${action}"}\n`);
    const finish = (): void => {
      if (this.running?.jobId === jobId) { this.running = null; stats.running--; }
      const end: End = { type: 'job.end', jobId, action, outcome: 'success', exitCode: 0, startedAt, durationMs: cfg!.jobMs };
      this.outbox.set(jobId, end);
      stats.outbox++;
      this.channel?.write(`${JSON.stringify(end)}\n`);
      const next = this.followUp;
      this.followUp = null;
      if (next) this.run(next.jobId, next.action);
    };
    if (cfg!.jobMs <= 0) { finish(); return; }
    stats.running++;
    this.running = { jobId, timer: setTimeout(finish, cfg!.jobMs) };
  }

  private maybeReady(hub: number): void {
    if (this.ready || !this.welcomed || !this.forwarded) return;
    this.ready = true;
    this.hub = hub;
    this.failures = 0;
    stats.ready++;
    stats.perHub[hub] = (stats.perHub[hub] ?? 0) + 1;
    if (this.markedFrom >= 0 && hub !== this.markedFrom) stats.markedBack++;
    if (this.counted) { this.counted = false; stats.inFlight--; pump(); }
  }

  private fail(why: string): void {
    stats.errors++;
    stats.lastError = `${this.name}: ${why}`;
    this.client?.end();
  }

  private onClose(client: ssh2.Client): void {
    if (client !== this.client) return;
    if (this.keepalive) clearInterval(this.keepalive);
    this.keepalive = null;
    this.channel = null;
    this.client = null;
    const wasReady = this.ready;
    if (this.ready) {
      this.ready = false;
      stats.ready--;
      stats.perHub[this.hub]!--;
      stats.drops++;
      if (this.markedFrom >= 0 && this.hub !== this.markedFrom) stats.markedBack--;
      this.hub = -1;
    }
    if (this.counted) { this.counted = false; stats.inFlight--; }
    if (stopping) { pump(); return; }
    // As the real agent: a refused endpoint moves on to the next at once; after a session, or a whole round of refusals, back off.
    if (!wasReady && this.at + 1 < this.order.length) {
      this.at++;
      queue.push(this);
    } else {
      const { initialMs, maxMs } = cfg!.backoff;
      const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(this.failures, 30));
      const floor = Math.min(ceiling, Math.max(10, Math.floor(initialMs / 10)));
      this.failures++;
      this.at = 0;
      setTimeout(() => { queue.push(this); pump(); }, Math.round(floor + Math.random() * (ceiling - floor)));
    }
    pump();
  }

  resume(): void {
    this.start();
  }

  stop(): void {
    if (this.keepalive) clearInterval(this.keepalive);
    if (this.running) clearTimeout(this.running.timer);
    this.client?.end();
  }
}

function pump(): void {
  if (!cfg || stopping) return;
  while (stats.inFlight < cfg.maxInFlight && queue.length > 0) queue.shift()!.resume();
}

function init(m: ClusterWorkerInit): void {
  cfg = m;
  stats.perHub = m.endpoints.map(() => 0);
  const indexes = m.endpoints.map((_, i) => i);
  const labels = m.endpoints.map((e) => parseEndpoint({ url: `ssh://${e.host}:${e.port}` }).label);
  for (const a of m.agents as AgentSpec[]) {
    const parsed = ssh2.utils.parseKey(a.privateKey);
    if (parsed instanceof Error || Array.isArray(parsed)) throw new Error(`bad key for ${a.name}`);
    // The same order as the real agent's: rendezvous over the endpoints' labels.
    const own = rendezvous(a.name, indexes, (i) => labels[i]!);
    agents.push(new Agent(a.name, parsed, m.first ? placed(own, a.name, m.first) : own));
  }
  send({ t: 'inited' });
}

/**
 * ORDER with endpoint FIRST.hub moved to the front for FIRST.share of the
 * agents (by a hash of NAME) and to the back for the others: a hub holding
 * more than its 1/H, whose agents still spread evenly over the rest when it
 * dies (the failover of a 15,000-agent hub within 20,000 descriptors).
 */
function placed(order: number[], name: string, first: { hub: number; share: number }): number[] {
  const rest = order.filter((i) => i !== first.hub);
  const h = createHash('sha256').update(name).digest().readUInt32BE(0) / 2 ** 32;
  return h < first.share ? [first.hub, ...rest] : [...rest, first.hub];
}

process.on('message', (m: ToClusterWorker) => {
  switch (m.t) {
    case 'init':
      init(m);
      break;
    case 'connect':
      queue.push(...agents);
      pump();
      break;
    case 'stats':
      send({ ...stats, perHub: [...stats.perHub] });
      break;
    case 'inFlight':
      if (cfg) cfg.maxInFlight = Math.max(1, m.max);
      pump();
      break;
    case 'jobMs':
      if (cfg) cfg.jobMs = Math.max(0, m.ms);
      break;
    case 'mark':
      stats.marked = 0;
      stats.markedBack = 0;
      for (const a of agents) {
        a.markedFrom = a.ready && a.hub === m.hub ? m.hub : -1;
        if (a.markedFrom >= 0) stats.marked++;
      }
      break;
    case 'runs':
      send({ t: 'runs', runs: agents.flatMap((a) => a.ran.map((j) => `${a.name} ${j}`)) });
      break;
    case 'stop':
      stopping = true;
      queue.length = 0;
      for (const a of agents) a.stop();
      send({ t: 'stopped' });
      setTimeout(() => process.exit(0), 300).unref();
      break;
  }
});
process.on('disconnect', () => process.exit(0));
