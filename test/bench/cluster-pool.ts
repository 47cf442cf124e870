// The cluster bench's load generator: W forked cluster-worker processes, each
// simulating a slice of the fleet from a source address of its own (its own
// ephemeral port range), none holding more than the descriptor limit allows.
// Driven over IPC (cluster-ipc.ts); used by cluster-main.ts and the soak.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AgentSpec } from './ipc.js';
import type { ClusterWorkerStats, FromClusterWorker, HubEndpoint, ToClusterWorker } from './cluster-ipc.js';
import { requestWorker, type Waiter } from './worker-request.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const WORKER = path.join(here, 'cluster-worker.js');

interface Handle { child: ChildProcess; waiters: Array<Waiter<FromClusterWorker>>; stats: ClusterWorkerStats | null }

export interface LoadOptions {
  agents: AgentSpec[];
  endpoints: HubEndpoint[];
  workers: number;
  /** Handshakes in flight, all workers together. */
  inFlight: number;
  backoff: { initialMs: number; maxMs: number };
  jobMs: number;
  /** Source addresses 127.0.<base>.x onward (the single-hub worker pool uses 127.0.1.x..). */
  addressBase: number;
  /** A hub holding more than its share (cluster-ipc.ts ClusterWorkerInit.first). */
  first?: { hub: number; share: number };
}

export class ClusterLoad {
  private readonly handles: Handle[] = [];
  private failure = '';
  private stopping = false;

  private constructor(private readonly o: LoadOptions) {}

  static async start(o: LoadOptions): Promise<ClusterLoad> {
    const load = new ClusterLoad(o);
    try {
      await load.fork();
    } catch (err) {
      load.kill();
      throw err;
    }
    return load;
  }

  get pids(): number[] {
    return this.handles.map((h) => h.child.pid!).filter((p) => p !== undefined);
  }

  private async fork(): Promise<void> {
    const per = Math.ceil(this.o.agents.length / this.o.workers);
    const flight = Math.max(1, Math.ceil(this.o.inFlight / this.o.workers));
    for (let i = 0; i < this.o.workers; i++) {
      const slice = this.o.agents.slice(i * per, (i + 1) * per);
      if (slice.length === 0) break;
      const child = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
      const h: Handle = { child, waiters: [], stats: null };
      child.on('message', (m: FromClusterWorker) => {
        if (m.t === 'stats') h.stats = m;
        const at = h.waiters.findIndex((w) => w.want === m.t);
        if (at >= 0) h.waiters.splice(at, 1)[0]!.fn(m);
      });
      child.on('exit', (code, sig) => {
        if (this.stopping) return;
        this.failure = `cluster load-generator worker ${i} exited unexpectedly (${code ?? sig})`;
        for (const w of h.waiters.splice(0)) w.fn({ t: 'stopped' });
      });
      this.handles.push(h);
      const localAddress = `127.0.${this.o.addressBase + Math.floor(i / 250)}.${(i % 250) + 1}`;
      await this.request(h, { t: 'init', endpoints: this.o.endpoints, localAddress, maxInFlight: flight, backoff: this.o.backoff, jobMs: this.o.jobMs, agents: slice, ...(this.o.first ? { first: this.o.first } : {}) }, 'inited', 120_000);
    }
  }

  private request(h: Handle, msg: ToClusterWorker, want: FromClusterWorker['t'], timeoutMs = 30_000): Promise<FromClusterWorker> {
    return requestWorker(h, msg, want, { timeoutMs, failure: () => this.failure || null, stopping: () => this.stopping });
  }

  /** To every worker, no answer expected. */
  tell(msg: Exclude<ToClusterWorker, { t: 'init' | 'stats' | 'runs' | 'stop' | 'inFlight' }>): void {
    for (const h of this.handles) h.child.send(msg);
  }

  inFlight(max: number): void {
    for (const h of this.handles) h.child.send({ t: 'inFlight', max: Math.max(1, Math.ceil(max / this.handles.length)) } satisfies ToClusterWorker);
  }

  async stats(): Promise<ClusterWorkerStats> {
    if (this.failure && !this.stopping) throw new Error(this.failure);
    const got = await Promise.all(this.handles.map((h) => this.request(h, { t: 'stats' }, 'stats', 10_000).catch(() => h.stats)));
    const sum: ClusterWorkerStats = {
      t: 'stats', ready: 0, perHub: this.o.endpoints.map(() => 0), inFlight: 0, jobStarts: 0, duplicateStarts: 0, acks: 0, lastAckAt: 0,
      outbox: 0, running: 0, errors: 0, drops: 0, heartbeatsSent: 0, heartbeatsEchoed: 0, hubErrors: 0, lastError: '', marked: 0, markedBack: 0,
    };
    for (const s of got as Array<ClusterWorkerStats | null>) {
      if (!s) continue;
      for (const k of ['ready', 'inFlight', 'jobStarts', 'duplicateStarts', 'acks', 'outbox', 'running', 'errors', 'drops', 'heartbeatsSent', 'heartbeatsEchoed', 'hubErrors', 'marked', 'markedBack'] as const) sum[k] += s[k];
      s.perHub.forEach((n, i) => { sum.perHub[i] = (sum.perHub[i] ?? 0) + n; });
      sum.lastAckAt = Math.max(sum.lastAckAt, s.lastAckAt);
      if (s.lastError) sum.lastError = s.lastError;
    }
    return sum;
  }

  /** Every job each agent ran, as "host jobId". */
  async runs(): Promise<string[]> {
    const got = await Promise.all(this.handles.map((h) => this.request(h, { t: 'runs' }, 'runs', 30_000)));
    return got.flatMap((m) => (m.t === 'runs' ? m.runs : []));
  }

  /** Until `want` agents are ready (or the limit passed); logs progress every 10 s. */
  async waitReady(what: string, want: number, limitS: number, log: (s: string) => void): Promise<{ seconds: number; ok: boolean; last: ClusterWorkerStats }> {
    const t0 = performance.now();
    let last = await this.stats();
    let lastLog = 0;
    while (last.ready < want) {
      const el = (performance.now() - t0) / 1000;
      if (el > limitS) return { seconds: el, ok: false, last };
      if (el - lastLog >= 10) {
        lastLog = el;
        log(`${what}: ${last.ready}/${want} ready (${last.perHub.join('/')} per hub), ${last.inFlight} in flight, ${last.errors} errors${last.lastError ? ` (last: ${last.lastError})` : ''}`);
      }
      await new Promise((r) => setTimeout(r, 100));
      last = await this.stats();
    }
    return { seconds: (performance.now() - t0) / 1000, ok: true, last };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.handles.map(async (h) => {
      await this.request(h, { t: 'stop' }, 'stopped', 5000).catch(() => undefined);
      const exited = h.child.exitCode !== null || h.child.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => h.child.once('exit', () => r()));
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (h.child.exitCode === null && h.child.signalCode === null) h.child.kill('SIGKILL');
    }));
  }

  /** On exit or failure: no answers awaited. */
  kill(): void {
    this.stopping = true;
    for (const h of this.handles) {
      try { h.child.kill('SIGKILL'); } catch { /* gone */ }
    }
  }
}
