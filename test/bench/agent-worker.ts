// Load-generator worker, forked by main.ts. Each simulated agent is a real
// ssh2 Client that does what the real agent (client/net/hub-connection.ts)
// does on the wire: authenticates with its host's ed25519 key, opens the
// control subsystem, says hello, keeps the connection alive at the welcome's
// period (SSH keepalive@openssh.com when the hub offers it, else heartbeat
// messages; see client/net/hub-connection.ts),
// requests the reverse forward of 127.0.0.1:22, and answers job.start at once
// with job.started + job.end (success). A lost connection is retried with the
// real agent's backoff (capped exponential, full jitter).
//
// It deliberately skips the real agent's disk work (outbox, rebuild runner):
// the bench measures the hub, so the agents must be as cheap as possible.
import net from 'node:net';
import ssh2 from 'ssh2';
import type { ClientChannel, ParsedKey } from 'ssh2';
import { CONTROL_SUBSYSTEM, PROTOCOL_VERSION } from '../../common/protocol/version.js';
import { sftpOverClient } from '../../client/pull/connect.js';
import { readRemoteState } from '../../client/pull/remote.js';
import type { AgentSpec, FromWorker, PollResult, ToWorker, WorkerInit, WorkerStats } from './ipc.js';
import { sshPing } from './ssh-ping.js';

const send = (m: FromWorker): void => { process.send?.(m); };

const stats: WorkerStats = {
  t: 'stats', ready: 0, inFlight: 0, jobStarts: 0, acks: 0, lastAckAt: 0, errors: 0, drops: 0,
  heartbeatsSent: 0, heartbeatsEchoed: 0, hubErrors: 0, lastError: '',
};

let cfg: WorkerInit | null = null;
let stopping = false;
/** Between servers (floor.ts): connections that close are not retried until the next 'connect'. */
let paused = false;
const agents: Agent[] = [];
const queue: Agent[] = [];

class Agent {
  client: ssh2.Client | null = null;
  sock: net.Socket | null = null;
  channel: ClientChannel | null = null;
  heartbeat: NodeJS.Timeout | null = null;
  retry: NodeJS.Timeout | null = null;
  welcomed = false;
  forwarded = false;
  ready = false;
  counted = false;
  failures = 0;
  seq = 0;
  /** The hub's period from the last welcome; 25 s (the default) before the first. */
  hubHeartbeatMs = 25_000;
  pending = '';

  constructor(readonly name: string, readonly key: ParsedKey) {}

  start(): void {
    const c = cfg!;
    stats.inFlight++;
    this.counted = true;
    const client = new ssh2.Client();
    this.client = client;
    let auth = 0;
    this.welcomed = false;
    this.forwarded = false;
    this.ready = false;
    this.pending = '';
    client.on('ready', () => {
      client.subsys(CONTROL_SUBSYSTEM, (err, ch) => {
        if (err) { this.fail(`subsystem refused: ${err.message}`); return; }
        this.channel = ch;
        ch.on('data', (d: Buffer) => this.onData(d));
        ch.stderr.resume();
        ch.on('close', () => client.end());
        ch.write(`${JSON.stringify({
          type: 'hello', protocol: PROTOCOL_VERSION, name: this.name, agentVersion: 'bench', system: null,
          generation: null, configHash: null, capabilities: [],
        })}\n`);
      });
      client.forwardIn('127.0.0.1', 22, (err) => {
        if (err) { this.fail(`reverse forward refused: ${err.message}`); return; }
        this.forwarded = true;
        this.maybeReady();
      });
    });
    client.on('tcp connection', (_info, _accept, reject) => reject());
    client.on('error', (err: Error) => {
      stats.errors++;
      stats.lastError = `${this.name}: ${err.message}`;
    });
    client.on('close', () => this.onClose(client));
    // Like the real agent (client/net/transport.ts): our own TCP socket, Nagle off.
    const sock = net.connect({ host: c.host, port: c.port, localAddress: c.localAddress });
    sock.setNoDelay(true);
    this.sock = sock;
    client.connect({
      sock,
      username: this.name,
      // The same order as ssh2's default for a privateKey ("none" probe, then
      // the key), but with the key parsed once per agent instead of per attempt.
      authHandler: ((_left: unknown, _partial: unknown, next: (a: unknown) => void) => {
        const step = auth++;
        if (step === 0) next({ type: 'none', username: this.name });
        else if (step === 1) next({ type: 'publickey', username: this.name, key: this.key });
        else next(false);
      }) as unknown as ssh2.ConnectConfig['authHandler'],
      readyTimeout: 120_000,
      // The keepalive is sent below, by hand, so each reply can be counted.
      keepaliveInterval: 0,
    });
  }

  private onData(d: Buffer): void {
    this.pending += d.toString('utf8');
    let nl: number;
    while ((nl = this.pending.indexOf('\n')) !== -1) {
      const line = this.pending.slice(0, nl);
      this.pending = this.pending.slice(nl + 1);
      if (line) this.onLine(line);
    }
    if (this.pending.length > 1 << 20) this.fail('hub line too long');
  }

  private onLine(line: string): void {
    let msg: { type?: string; jobId?: string; action?: string; heartbeatMs?: number; message?: string };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      this.fail('hub sent a line that is not JSON');
      return;
    }
    switch (msg.type) {
      case 'welcome': {
        this.welcomed = true;
        const every = Math.max(100, Number(msg.heartbeatMs) || 25_000);
        const sshKeepalive = (msg as { keepalive?: string }).keepalive === 'ssh' && this.hubHeartbeatMs <= every;
        const interval = sshKeepalive ? this.hubHeartbeatMs : every;
        this.hubHeartbeatMs = every;
        // Like the real agent: the first one a period after the welcome, so a
        // fleet that connected over a minute spreads them.
        this.heartbeat = setInterval(() => {
          if (!this.channel || !this.ready || !this.client) return;
          stats.heartbeatsSent++;
          if (sshKeepalive) {
            sshPing(this.client, () => { stats.heartbeatsEchoed++; }); // the hub's ssh2 answers it
          } else {
            this.channel.write(`{"type":"heartbeat","seq":${this.seq++}}\n`);
          }
        }, interval);
        this.maybeReady();
        break;
      }
      case 'heartbeat':
        stats.heartbeatsEchoed++;
        break;
      case 'job.start': {
        stats.jobStarts++;
        const jobId = String(msg.jobId);
        const action = String(msg.action);
        const startedAt = new Date().toISOString();
        this.channel?.write(
          `{"type":"job.started","jobId":"${jobId}","action":"${action}"}\n` +
          `{"type":"job.end","jobId":"${jobId}","action":"${action}","outcome":"success","exitCode":0,"startedAt":"${startedAt}","durationMs":0}\n`,
        );
        break;
      }
      case 'job.ack':
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

  private maybeReady(): void {
    if (this.ready || !this.welcomed || !this.forwarded) return;
    this.ready = true;
    this.failures = 0;
    stats.ready++;
    if (this.counted) { this.counted = false; stats.inFlight--; pump(); }
  }

  private fail(why: string): void {
    stats.errors++;
    stats.lastError = `${this.name}: ${why}`;
    this.client?.end();
  }

  private onClose(client: ssh2.Client): void {
    if (client !== this.client) return;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    this.channel = null;
    this.client = null;
    if (this.ready) { this.ready = false; stats.ready--; stats.drops++; }
    if (this.counted) { this.counted = false; stats.inFlight--; }
    if (!stopping && !paused) {
      // The real agent's reconnect policy (client/net/backoff.ts, defaults 1 s .. 60 s).
      const { initialMs, maxMs } = cfg!.backoff;
      const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(this.failures, 30));
      const floor = Math.min(ceiling, Math.max(10, Math.floor(initialMs / 10)));
      this.failures++;
      this.retry = setTimeout(() => { this.retry = null; queue.push(this); pump(); }, Math.round(floor + Math.random() * (ceiling - floor)));
    }
    pump();
  }

  /**
   * What the agent's periodic pull does when its tunnel is up and nothing
   * changed (client/pull/puller.ts checkNow): a new sftp channel on the
   * connection, read version.json, compare, close. Bytes are counted at the
   * TCP socket; a heartbeat that falls into the window spoils the sample.
   */
  async poll(expectHash: string): Promise<PollResult> {
    const res: PollResult = { t: 'polled', ok: false, error: '', status: '', bytesIn: 0, bytesOut: 0, writes: 0, reads: 0, ms: 0 };
    const client = this.client;
    const sock = this.sock;
    if (!client || !sock || !this.ready) { res.error = 'agent not connected'; return res; }
    const onData = (c: Buffer): void => { res.bytesIn += c.length; res.reads++; };
    const origWrite = sock.write;
    sock.write = ((chunk: unknown, ...rest: unknown[]) => {
      res.bytesOut += typeof chunk === 'string' ? Buffer.byteLength(chunk) : (chunk as Buffer).length;
      res.writes++;
      return (origWrite as (...a: unknown[]) => boolean).call(sock, chunk, ...rest);
    }) as typeof sock.write;
    sock.on('data', onData);
    const hb = this.seq;
    const t0 = performance.now();
    try {
      const s = await sftpOverClient(client, 15_000);
      const closed = new Promise<void>((resolve) => { s.sftp.once('close', () => resolve()); });
      try {
        const remote = await readRemoteState(s.sftp);
        res.status = !remote ? 'not-published' : remote.layout === 'bento' && remote.hash === expectHash ? 'unchanged' : 'changed';
      } finally {
        s.close();
      }
      await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
      res.ms = performance.now() - t0;
      // Let the last packets (channel close confirmations) arrive.
      await new Promise((r) => setTimeout(r, 200));
      res.ok = this.seq === hb;
      if (!res.ok) res.error = 'a heartbeat fell into the measurement window';
    } catch (err) {
      res.error = (err as Error).message;
    } finally {
      sock.off('data', onData);
      sock.write = origWrite;
    }
    return res;
  }

  stop(): void {
    if (this.retry) clearTimeout(this.retry);
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.client?.end();
  }
}

function pump(): void {
  if (!cfg || stopping || paused) return;
  while (stats.inFlight < cfg.maxInFlight && queue.length > 0) queue.shift()!.start();
}

function init(m: WorkerInit): void {
  cfg = m;
  for (const a of m.agents as AgentSpec[]) {
    const parsed = ssh2.utils.parseKey(a.privateKey);
    if (parsed instanceof Error || Array.isArray(parsed)) throw new Error(`bad key for ${a.name}`);
    agents.push(new Agent(a.name, parsed));
  }
  send({ t: 'inited' });
}

process.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'init':
      init(m);
      break;
    case 'connect':
      paused = false;
      queue.length = 0;
      queue.push(...agents);
      pump();
      break;
    case 'stats':
      send({ ...stats });
      break;
    case 'inFlight':
      if (cfg) cfg.maxInFlight = Math.max(1, m.max);
      pump();
      break;
    case 'poll': {
      const a = agents.find((x) => x.name === m.name);
      if (!a) { send({ t: 'polled', ok: false, error: `no agent ${m.name} in this worker`, status: '', bytesIn: 0, bytesOut: 0, writes: 0, reads: 0, ms: 0 }); break; }
      void a.poll(m.expectHash).then(send);
      break;
    }
    case 'disconnect': {
      // Close every connection and wait until all are gone (bounded), so the next server starts from none.
      paused = true;
      queue.length = 0;
      for (const a of agents) a.stop();
      const t0 = Date.now();
      const check = (): void => {
        if ((stats.ready === 0 && stats.inFlight === 0) || Date.now() - t0 > 30_000) send({ t: 'disconnected', ready: stats.ready });
        else setTimeout(check, 50);
      };
      check();
      break;
    }
    case 'stop': {
      stopping = true;
      queue.length = 0;
      for (const a of agents) a.stop();
      send({ t: 'stopped' });
      // Give the ends a moment to leave, then go; the parent kills us anyway.
      setTimeout(() => process.exit(0), 300).unref();
      break;
    }
  }
});
// The orchestrator is gone (crash, Ctrl-C): never outlive it.
process.on('disconnect', () => process.exit(0));
