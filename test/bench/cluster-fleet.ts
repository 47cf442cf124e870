// What the cluster bench and the soak run against: a real 3-node NATS
// JetStream cluster (test/fixtures/nats.ts) and H `bento-hub serve`
// processes, each with its own fleet directory, port and admin socket,
// sharing one hub key (agents pin one fingerprint; docs/cluster.md allows
// either) and one registry of N generated hosts, and sharing state through
// NATS under one prefix. Also the single hub of the baseline, on a fleet of
// its own. Every process is killed by PID (hub.ts, the fixture's daemons).
// With `logs` (the soak), every hub's and NATS server's output is also kept in
// files, so what went wrong in a cycle can be read afterwards.
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';
import { freePort } from '../helpers/proc.js';
import { LogFile } from '../helpers/log-file.js';
import { hostName, makeFleet, ping, startHubProcess, type Fleet, type HubProcess } from './hub.js';
import { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import { parseClusterOptions } from '../../hub/cluster/options.js';
import { silentLogger } from '../../common/platform/log.js';
import { JOBS_STORE, isJobRecord, type JobRecord } from '../../hub/store/jobs.js';
import { leaderLast } from '../../hub/cluster/kv-leader.js';
import type { HubEndpoint } from './cluster-ipc.js';

export interface BenchHub {
  name: string;
  fleet: Fleet;
  proc: HubProcess | null;
  /** Where its output goes across restarts (with ClusterFleetOptions.logs), else null. */
  log: LogFile | null;
}

export interface ClusterFleetOptions {
  /** Working directory (fleets go under it). */
  dir: string;
  hubs: number;
  clients: number;
  heartbeatMs: number;
  /** cluster.livenessMs (the hubs' heartbeats). */
  livenessMs: number;
  nofile: number;
  nodeArgs: string[];
  log: (s: string) => void;
  /**
   * Keep every hub's output in HUBDIR/hub-output.log and every NATS server's
   * in DIR/nats/<name>.log (appended across restarts, a line at each start,
   * kill and exit), hubs logging at this level. Default: output in memory
   * only, hubs at warn (the bench: logging costs the hub it measures).
   */
  logs?: { level: string };
  /** Serve each NATS server's pprof endpoint (NatsNode.profUrl). */
  natsProfile?: boolean;
}

/** A hub's output file in its fleet dir (with ClusterFleetOptions.logs). */
export const HUB_LOG = 'hub-output.log';

/** The NATS prefix of the hubs' buckets and subjects (hub/cluster/names.ts). */
export const PREFIX = 'bench';

export class ClusterFleet {
  private constructor(
    readonly o: ClusterFleetOptions,
    readonly nats: NatsCluster,
    readonly hubs: BenchHub[],
  ) {}

  /** The hosts' keys and the registry once (hub1's fleet), copied to the others with their own port and cluster name. */
  static async create(o: ClusterFleetOptions): Promise<ClusterFleet> {
    const t0 = performance.now();
    const first = await makeFleet(path.join(o.dir, 'hub1'), await freePort(), o.clients, o.heartbeatMs);
    o.log(`fleet of ${o.clients} hosts ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const nats = await startNatsCluster({ readyTimeoutMs: 60_000, monitor: true, profile: o.natsProfile === true, ...(o.logs ? { logDir: path.join(o.dir, 'nats') } : {}) });
    const hubs: BenchHub[] = [];
    try {
      for (let i = 0; i < o.hubs; i++) {
        const name = `hub${i + 1}`;
        const dir = path.join(o.dir, name);
        const port = i === 0 ? first.port : await freePort();
        if (i > 0) await cp(first.dir, dir, { recursive: true });
        const hubJson = path.join(dir, 'hub.json');
        const settings = JSON.parse(await readFile(hubJson, 'utf8')) as Record<string, unknown>;
        await writeFile(hubJson, JSON.stringify({
          ...settings,
          listen: `127.0.0.1:${port}`,
          // The checks want every accepted job's record (cluster-check.ts): a soak of 3,000 jobs on 90 hosts
          // passed the default 50 per host on a host or two, whose oldest jobs were pruned and read "lost".
          jobHistory: 1000,
          cluster: {
            servers: nats.urls, hubName: name, prefix: PREFIX, replicas: 3, livenessMs: o.livenessMs,
            // Below the fixture's JetStream max_file (1 GB), with room for the buckets.
            outputMaxBytes: 256 * 1024 * 1024, agentUrl: `ssh://127.0.0.1:${port}`,
          },
        }, null, 2));
        hubs.push({ name, fleet: { ...first, dir, port, socket: path.join(dir, 'hub.sock') }, proc: null, log: o.logs ? new LogFile(path.join(dir, HUB_LOG)) : null });
      }
    } catch (err) {
      await nats.stop();
      throw err;
    }
    return new ClusterFleet(o, nats, hubs);
  }

  /** A single hub (no cluster section) over the first N hosts: the baseline, measured in the same run. */
  static async baseline(cluster: ClusterFleet, n: number): Promise<Fleet> {
    const src = cluster.hubs[0]!.fleet;
    const dir = path.join(cluster.o.dir, 'single');
    await cp(src.dir, dir, { recursive: true });
    const port = await freePort();
    const hubJson = path.join(dir, 'hub.json');
    const settings = JSON.parse(await readFile(hubJson, 'utf8')) as Record<string, unknown>;
    delete settings['cluster'];
    await writeFile(hubJson, JSON.stringify({ ...settings, listen: `127.0.0.1:${port}` }, null, 2));
    const reg = JSON.parse(await readFile(path.join(dir, 'registry.json'), 'utf8')) as { version: number; hosts: Record<string, unknown> };
    const keep = new Set(Array.from({ length: n }, (_, i) => hostName(i)));
    reg.hosts = Object.fromEntries(Object.entries(reg.hosts).filter(([k]) => keep.has(k)));
    await writeFile(path.join(dir, 'registry.json'), `${JSON.stringify(reg)}\n`);
    return { ...src, dir, port, socket: path.join(dir, 'hub.sock'), agents: src.agents.slice(0, n) };
  }

  get agents(): Fleet['agents'] {
    return this.hubs[0]!.fleet.agents;
  }

  get endpoints(): HubEndpoint[] {
    return this.hubs.map((h) => ({ host: '127.0.0.1', port: h.fleet.port }));
  }

  /** Start hub I and wait until its admin socket answers; seconds it took. */
  async startHub(i: number): Promise<number> {
    const h = this.hubs[i]!;
    const log = h.log;
    const proc = startHubProcess(h.fleet, this.o.nofile, this.o.nodeArgs, log ? { logLevel: this.o.logs!.level, onOutput: (c) => log.write(c) } : {});
    h.proc = proc;
    if (log) {
      log.mark(`start ${h.name} (pid ${proc.pid})`);
      proc.child.once('exit', (code, signal) => log.mark(`exit ${h.name} (pid ${proc.pid}, ${signal ?? `code ${String(code)}`})`));
    }
    // Generous: 3 hubs seeding and loading a 45,000-host cluster take about 100 s on 2 cores, more when
    // the machine is busy; the time it took is reported (cluster_hub_start_s).
    return waitAdmin(h.fleet, proc, 300);
  }

  /** A marker line in every hub's and NATS server's log file (with logs; otherwise nothing). */
  mark(text: string): void {
    for (const h of this.hubs) h.log?.mark(text);
    this.nats.mark(text);
  }

  /** kill -9 hub I (by PID). */
  async killHub(i: number): Promise<void> {
    const p = this.hubs[i]!.proc;
    if (!p) return;
    this.hubs[i]!.log?.mark(`kill -9 ${this.hubs[i]!.name} (pid ${p.pid})`);
    p.child.kill('SIGKILL');
    await p.exited;
    this.hubs[i]!.proc = null;
  }

  /** PIDs of the NATS servers that run. */
  natsPids(): number[] {
    return this.nats.nodes.map((n) => n.daemon?.child.pid).filter((p): p is number => p !== undefined);
  }

  /**
   * Every job record in NATS, through a connection of its own, each as the
   * jobs stream's LEADER holds it. The keys come from a bucket watch (what a
   * new hub would load), but a watch reads one replica, and nats-server
   * 2.9.10 after kill -9 and restart can hold stale records on one replica
   * for good (docs/cluster.md, "Soak", issue 16): the leader is what every
   * write is checked against, so it is what "in NATS" means here.
   */
  async jobRecords(): Promise<JobRecord[]> {
    const b = await this.reader();
    try {
      const s = await b.openKeyed<JobRecord>(JOBS_STORE, { accept: isJobRecord });
      const h = await b.openBucket(JOBS_STORE);
      const stream = `KV_${h.bucket}`;
      const keys = [...s.keys()];
      const out: JobRecord[] = [];
      // A few requests at a time: a soak checks thousands of jobs per cycle.
      for (let i = 0; i < keys.length; i += 32) {
        const got = await Promise.all(keys.slice(i, i + 32).map((k) => leaderRead(() => leaderLast(h.jsm, stream, b.names.kvSubject(h.bucket, k)))));
        got.forEach((r, j) => { if (r?.kind === 'PUT' && r.parsed && isJobRecord(keys[i + j]!, r.value)) out.push(r.value); });
      }
      return out;
    } finally {
      await b.close();
    }
  }

  /**
   * The last sequence of the jobs bucket's stream and of the output stream,
   * from their leaders: the difference across a fan-out is the replicated
   * writes it cost (job records; output batches).
   */
  async streamSeqs(): Promise<{ jobs: number; output: number }> {
    const b = await this.reader();
    try {
      const h = await b.openBucket(JOBS_STORE);
      const jobs = (await h.jsm.streams.info(`KV_${h.bucket}`)).state.last_seq;
      const output = (await h.jsm.streams.info(b.names.outputStream)).state.last_seq;
      return { jobs, output };
    } finally {
      await b.close();
    }
  }

  /** A connection of the bench's own to the hubs' NATS state (close it after use). */
  private reader(): Promise<NatsStateBackend> {
    return NatsStateBackend.open(parseClusterOptions({ servers: this.nats.urls, hubName: 'reader', prefix: PREFIX, replicas: 3 }), silentLogger());
  }

  async stop(): Promise<void> {
    for (const h of this.hubs) {
      if (!h.proc) continue;
      h.proc.child.kill('SIGTERM');
      const t = setTimeout(() => h.proc?.child.kill('SIGKILL'), 15_000);
      await h.proc.exited;
      clearTimeout(t);
      h.proc = null;
    }
    for (const h of this.hubs) h.log?.close();
    await this.nats.stop();
  }
}

/** A read from a stream leader, tried again (at most 20 times, 1 s apart) while there is none: a NATS server was just killed. */
async function leaderRead<T>(read: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (err) {
      if (attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

export async function waitAdmin(fleet: Fleet, hub: HubProcess, limitS: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await ping(fleet.socket)) return (performance.now() - t0) / 1000;
    if (hub.child.exitCode !== null) throw new Error(`hub exited during start:\n${hub.output()}`);
    if ((performance.now() - t0) / 1000 > limitS) throw new Error(`hub admin socket did not answer within ${limitS} s:\n${hub.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
