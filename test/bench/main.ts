// `npm run bench`: one real hub, N simulated agents on loopback, and Debian's
// OpenSSH side by side. See docs/performance.md for the method and results.
//
//   node dist/test/bench/main.js [--clients N] [--json FILE] [--quick] [options]
//
// Phases: fleet setup -> hub start (baseline) -> connect N -> idle window ->
// sequential trigger latency -> fan-out to all -> reconnect storm (SIGKILL +
// restart) -> OpenSSH tunnels and `ssh host true`. Every phase is bounded in
// time; every process started here is killed on exit, failure or Ctrl-C.
import { fork, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { FromWorker, PollResult, ToWorker, WorkerStats } from './ipc.js';
import {
  adminRequest, deployOne, hostName, killAllHubs, killHub, listCount, makeFleet, ping, startHubProcess,
  type Fleet, type HubProcess,
} from './hub.js';
import { cpuSeconds, cpuSplit, machineBusySeconds, memOf, threadCpu, percentile, renderMarkdown, renderTable, round, type Row } from './metrics.js';
import { killOpenSshSync, openSshAvailable, runOpenSsh, type OpenSshResult } from './openssh.js';
import { sftpOverFreshConnection } from '../../client/pull/connect.js';
import { readRemoteState } from '../../client/pull/remote.js';
import { parseEndpoint } from '../../client/net/endpoint.js';
import { silentLogger } from '../../common/platform/log.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const WORKER = path.join(here, 'agent-worker.js');

// ---------------------------------------------------------------- options
const { values: argv } = parseArgs({
  options: {
    clients: { type: 'string' },
    json: { type: 'string' },
    quick: { type: 'boolean', default: false },
    workers: { type: 'string' },
    'in-flight': { type: 'string' },
    'storm-in-flight': { type: 'string' },
    triggers: { type: 'string' },
    'idle-seconds': { type: 'string' },
    'heartbeat-ms': { type: 'string' },
    'openssh-tunnels': { type: 'string' },
    'ssh-true': { type: 'string' },
    'no-openssh': { type: 'boolean', default: false },
    skip: { type: 'string' },
    base: { type: 'string' },
    'hub-cpu-prof': { type: 'string' },
    markdown: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});

if (argv.help) {
  process.stdout.write(`usage: node dist/test/bench/main.js [options]
  --clients N          simulated agents (default 10000; --quick: 50)
  --json FILE          write all results as JSON
  --quick              smoke run: 50 agents, 4 s idle window, 100 triggers, 6 OpenSSH tunnels, 3 ssh runs
  --workers W          load-generator processes (default: N/2500, 2..8)
  --in-flight C        SSH handshakes in flight, all workers together (default 64)
  --storm-in-flight C  the same during the reconnect storm (default 512: a real fleet does not queue politely)
  --triggers T         sequential single-host triggers (default 1000)
  --idle-seconds S     idle CPU window (default 60)
  --heartbeat-ms MS    hub.json heartbeatMs (default 25000, production; --quick: 2000)
  --openssh-tunnels M  reverse tunnels held by OpenSSH sshd (default 200)
  --ssh-true K         fresh \`ssh host true\` runs (default 30)
  --no-openssh         skip the OpenSSH comparison (same as --skip openssh)
  --skip LIST          skip phases: idle,poll,triggers,fanout,storm,openssh (comma-separated); without
                       storm the first hub stops with SIGTERM, so --hub-cpu-prof profiles it
  --base DIR           where the temporary fleet directory is made (default: os.tmpdir())
  --hub-cpu-prof DIR   run the hub with --cpu-prof (profile written when the restarted hub stops)
  --markdown           also print the table as Markdown
  --keep               keep the temporary directory
`);
  process.exit(0);
}

function intOpt(name: string, v: string | undefined, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`--${name} must be an integer >= ${min}\n`);
    process.exit(2);
  }
  return n;
}

const quick = argv.quick === true;
const PHASES = ['idle', 'poll', 'triggers', 'fanout', 'storm', 'openssh'] as const;
const SKIP = new Set((argv.skip ?? '').split(',').map((x) => x.trim()).filter(Boolean));
for (const x of SKIP) {
  if (!(PHASES as readonly string[]).includes(x)) { process.stderr.write(`--skip: unknown phase "${x}" (phases: ${PHASES.join(', ')})\n`); process.exit(2); }
}
if (argv['no-openssh']) SKIP.add('openssh');
const runs = (p: (typeof PHASES)[number]): boolean => !SKIP.has(p);
const N = intOpt('clients', argv.clients, quick ? 50 : 10_000, 1);
const W = intOpt('workers', argv.workers, Math.min(8, Math.max(2, Math.ceil(N / 2500))), 1);
const IN_FLIGHT = intOpt('in-flight', argv['in-flight'], 64, 1);
const STORM_IN_FLIGHT = intOpt('storm-in-flight', argv['storm-in-flight'], 512, 1);
const TRIGGERS = intOpt('triggers', argv.triggers, quick ? 100 : 1000, 1);
const IDLE_S = intOpt('idle-seconds', argv['idle-seconds'], quick ? 4 : 60, 1);
const HEARTBEAT_MS = intOpt('heartbeat-ms', argv['heartbeat-ms'], quick ? 2000 : 25_000, 100);
const M = intOpt('openssh-tunnels', argv['openssh-tunnels'], quick ? 6 : 200, 1);
const SSH_TRUE = intOpt('ssh-true', argv['ssh-true'], quick ? 3 : 30, 1);
const WARMUP_TRIGGERS = Math.min(50, Math.ceil(TRIGGERS / 10));
// Reconnect policy of the simulated agents: the real agent's defaults (client/config.ts).
const BACKOFF = quick ? { initialMs: 200, maxMs: 2000 } : { initialMs: 1000, maxMs: 60_000 };
// Phase bounds (seconds); generous, so a slow machine still yields numbers.
const CONNECT_LIMIT_S = Math.max(60, N / 40);
const FANOUT_LIMIT_S = Math.max(30, N / 40);
const STORM_LIMIT_S = Math.max(60, N / 40);
const TOTAL_LIMIT_S = quick ? 150 : Math.max(1200, N / 5);
// The hub needs one descriptor per agent. Without CAP_SYS_RESOURCE the hard
// limit cannot be raised, so the soft limit goes up to the hard one at most.
const NOFILE_HARD = (() => {
  try {
    const v = execFileSync('sh', ['-c', 'ulimit -Hn']).toString().trim();
    return v === 'unlimited' ? 1_048_576 : Number(v);
  } catch {
    return 1024;
  }
})();
const NOFILE = Math.min(NOFILE_HARD, Math.max(65_536, N * 2 + 1024));
if (N + 256 > NOFILE) {
  process.stderr.write(`--clients ${N} needs about ${N + 256} file descriptors in the hub, but the hard limit here is ${NOFILE_HARD} (raising it needs CAP_SYS_RESOURCE)\n`);
  process.exit(2);
}

// ---------------------------------------------------------------- cleanup
const workers: ChildProcess[] = [];
let baseDir = '';
let fsType = 'unknown';
function cleanupSync(): void {
  for (const w of workers) {
    try { w.kill('SIGKILL'); } catch { /* gone */ }
  }
  killAllHubs();
  killOpenSshSync();
  if (baseDir && !argv.keep) {
    try { rmSync(baseDir, { recursive: true, force: true }); } catch { /* best effort */ }
  }
}
process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    log(`${sig}: stopping everything`);
    process.exit(130);
  });
}
const watchdog = setTimeout(() => {
  log(`bench exceeded its ${TOTAL_LIMIT_S} s limit; aborting`);
  process.exit(3);
}, TOTAL_LIMIT_S * 1000);
watchdog.unref();

const tStart = performance.now();
function log(msg: string): void {
  process.stderr.write(`[bench ${((performance.now() - tStart) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- workers
interface Waiter { want: FromWorker['t']; fn: (m: FromWorker) => void }
interface WorkerHandle { child: ChildProcess; stats: WorkerStats | null; waiters: Waiter[] }
const handles: WorkerHandle[] = [];

let workerFailure = '';
let stopping = false;

/** Send one message; resolve with the worker's next answer of type `want` (answers come in order). */
function request(h: WorkerHandle, msg: ToWorker, want: FromWorker['t'], timeoutMs = 30_000): Promise<FromWorker> {
  return new Promise((resolve, reject) => {
    if (workerFailure && !stopping) { reject(new Error(workerFailure)); return; }
    const w: Waiter = {
      want,
      fn: (m) => {
        clearTimeout(t);
        if (m.t !== want) reject(new Error(workerFailure || `worker answered ${m.t}`));
        else resolve(m);
      },
    };
    const t = setTimeout(() => {
      h.waiters = h.waiters.filter((x) => x !== w);
      reject(new Error(`worker did not answer ${msg.t} within ${timeoutMs} ms`));
    }, timeoutMs);
    h.waiters.push(w);
    h.child.send(msg);
  });
}

async function startWorkers(fleet: Fleet): Promise<void> {
  const per = Math.ceil(N / W);
  const perWorkerFlight = Math.max(1, Math.ceil(IN_FLIGHT / W));
  for (let i = 0; i < W; i++) {
    const slice = fleet.agents.slice(i * per, (i + 1) * per);
    if (slice.length === 0) break;
    const child = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
    workers.push(child);
    const h: WorkerHandle = { child, stats: null, waiters: [] };
    child.on('message', (m: FromWorker) => {
      if (m.t === 'stats') h.stats = m;
      const at = h.waiters.findIndex((w) => w.want === m.t);
      if (at >= 0) h.waiters.splice(at, 1)[0]!.fn(m);
    });
    child.on('exit', (code, sig) => {
      if (stopping) return;
      workerFailure = `load-generator worker ${i} exited unexpectedly (${code ?? sig})`;
      log(workerFailure);
      for (const w of h.waiters.splice(0)) w.fn({ t: 'stopped' });
    });
    handles.push(h);
    // Each worker has its own source address, so its own ephemeral port range.
    const localAddress = `127.0.${1 + Math.floor(i / 250)}.${(i % 250) + 1}`;
    await request(h, { t: 'init', host: '127.0.0.1', port: fleet.port, localAddress, maxInFlight: perWorkerFlight, backoff: BACKOFF, agents: slice }, 'inited', 120_000);
  }
}

async function allStats(): Promise<WorkerStats> {
  if (workerFailure && !stopping) throw new Error(workerFailure);
  const got = await Promise.all(handles.map((h) => request(h, { t: 'stats' }, 'stats', 10_000).catch(() => h.stats)));
  const sum: WorkerStats = {
    t: 'stats', ready: 0, inFlight: 0, jobStarts: 0, acks: 0, lastAckAt: 0, errors: 0, drops: 0,
    heartbeatsSent: 0, heartbeatsEchoed: 0, hubErrors: 0, lastError: '',
  };
  for (const s of got as Array<WorkerStats | null>) {
    if (!s) continue;
    sum.ready += s.ready;
    sum.inFlight += s.inFlight;
    sum.jobStarts += s.jobStarts;
    sum.acks += s.acks;
    sum.lastAckAt = Math.max(sum.lastAckAt, s.lastAckAt);
    sum.errors += s.errors;
    sum.drops += s.drops;
    sum.heartbeatsSent += s.heartbeatsSent;
    sum.heartbeatsEchoed += s.heartbeatsEchoed;
    sum.hubErrors += s.hubErrors;
    if (s.lastError) sum.lastError = s.lastError;
  }
  return sum;
}

async function stopWorkers(): Promise<void> {
  stopping = true;
  await Promise.all(handles.map(async (h) => {
    await request(h, { t: 'stop' }, 'stopped', 5000).catch(() => undefined);
    const exited = h.child.exitCode !== null || h.child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((r) => h.child.once('exit', () => r()));
    await Promise.race([exited, sleep(3000)]);
    if (h.child.exitCode === null && h.child.signalCode === null) h.child.kill('SIGKILL');
  }));
}

// ---------------------------------------------------------------- phases
interface Results {
  [k: string]: number;
}
const M_: Results = {};
const complete: Record<string, boolean> = {};
const notes: string[] = [];
const extras: Record<string, unknown> = {};

/** CPU accounting over a window: the hub, the load generator (workers + this process), the whole machine. */
interface Snap { t: number; hubUser: number; hubSys: number; loadgen: number; machine: number }
function snap(hubPid: number): Snap {
  const h = cpuSplit(hubPid);
  let loadgen = 0;
  for (const w of workers) if (w.pid !== undefined && w.exitCode === null) loadgen += cpuSeconds(w.pid) || 0;
  const u = process.cpuUsage();
  return { t: performance.now(), hubUser: h.user, hubSys: h.sys, loadgen: loadgen + (u.user + u.system) / 1e6, machine: machineBusySeconds() };
}
function recordCpu(prefix: string, a: Snap, b: Snap): void {
  const wall = (b.t - a.t) / 1000;
  const hub = b.hubUser - a.hubUser + (b.hubSys - a.hubSys);
  M_[`${prefix}_hub_user_s`] = b.hubUser - a.hubUser;
  M_[`${prefix}_hub_sys_s`] = b.hubSys - a.hubSys;
  M_[`${prefix}_loadgen_cpu_s`] = b.loadgen - a.loadgen;
  M_[`${prefix}_machine_busy_cores`] = (b.machine - a.machine) / wall;
  // Everything else that ran meanwhile: other processes on the machine, interrupts.
  M_[`${prefix}_other_cpu_s`] = b.machine - a.machine - hub - (b.loadgen - a.loadgen);
  M_[`${prefix}_other_cores`] = M_[`${prefix}_other_cpu_s`]! / wall;
}

async function waitReady(what: string, want: number, limitS: number): Promise<{ seconds: number; ok: boolean; last: WorkerStats }> {
  const t0 = performance.now();
  let last = await allStats();
  let lastLog = 0;
  while (last.ready < want) {
    if (workerFailure) throw new Error(workerFailure);
    const el = (performance.now() - t0) / 1000;
    if (el > limitS) return { seconds: el, ok: false, last };
    if (el - lastLog >= 10) {
      lastLog = el;
      log(`${what}: ${last.ready}/${want} ready, ${last.inFlight} in flight, ${last.errors} errors${last.lastError ? ` (last: ${last.lastError})` : ''}`);
    }
    await sleep(100);
    last = await allStats();
  }
  return { seconds: (performance.now() - t0) / 1000, ok: true, last };
}

async function waitAdmin(fleet: Fleet, hub: HubProcess, limitS: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await ping(fleet.socket)) return (performance.now() - t0) / 1000;
    if (hub.child.exitCode !== null) throw new Error(`hub exited during start:\n${hub.output()}`);
    if ((performance.now() - t0) / 1000 > limitS) throw new Error(`hub admin socket did not answer within ${limitS} s:\n${hub.output()}`);
    await sleep(50);
  }
}

/**
 * Bytes on the wire for one no-change config poll, both ways the agent's pull
 * makes it (client/pull/puller.ts): over its open tunnel (a new sftp channel),
 * and over a connection of its own (tunnel down: handshake included).
 */
async function phasePoll(fleet: Fleet, hash: string): Promise<void> {
  const host = hostName(0);
  const samples: PollResult[] = [];
  for (let i = 0; i < 8 && samples.length < 5; i++) {
    const r = (await request(handles[0]!, { t: 'poll', name: host, expectHash: hash }, 'polled', 30_000)) as PollResult;
    if (r.ok && r.status === 'unchanged') samples.push(r);
    else if (!r.ok && !/heartbeat/.test(r.error)) throw new Error(`poll over the tunnel failed: ${r.error || r.status}`);
    else if (r.ok) throw new Error(`poll over the tunnel: expected "unchanged", got ${r.status}`);
  }
  if (samples.length === 0) throw new Error('poll over the tunnel: no clean sample');
  const med = (f: (r: PollResult) => number): number => percentile(samples.map(f), 50);
  M_['poll_tunnel_bytes'] = med((r) => r.bytesIn + r.bytesOut);
  M_['poll_tunnel_bytes_in'] = med((r) => r.bytesIn);
  M_['poll_tunnel_bytes_out'] = med((r) => r.bytesOut);
  M_['poll_tunnel_segments'] = med((r) => r.reads + r.writes);
  M_['poll_tunnel_ms'] = med((r) => r.ms);

  const fresh: Array<{ in: number; out: number; ms: number }> = [];
  const endpoint = parseEndpoint({ url: `ssh://127.0.0.1:${fleet.port}` });
  const privateKey = Buffer.from(fleet.agents[0]!.privateKey);
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const sess = await sftpOverFreshConnection({ endpoints: [endpoint], user: host, privateKey, fingerprint: fleet.fingerprint, timeoutMs: 30_000, log: silentLogger() });
    let status = '';
    try {
      const remote = await readRemoteState(sess.sftp);
      status = remote?.layout === 'bento' && remote.hash === hash ? 'unchanged' : 'changed';
    } finally {
      sess.close();
    }
    const ms = performance.now() - t0;
    await sleep(300); // the disconnect's last packets
    if (status !== 'unchanged') throw new Error(`poll over a fresh connection: expected "unchanged", got ${status}`);
    fresh.push({ in: sess.meter!.bytesIn, out: sess.meter!.bytesOut, ms });
  }
  M_['poll_fresh_bytes'] = percentile(fresh.map((f) => f.in + f.out), 50);
  M_['poll_fresh_bytes_in'] = percentile(fresh.map((f) => f.in), 50);
  M_['poll_fresh_bytes_out'] = percentile(fresh.map((f) => f.out), 50);
  M_['poll_fresh_ms'] = percentile(fresh.map((f) => f.ms), 50);
}

async function phaseTriggers(fleet: Fleet): Promise<void> {
  const host = hostName(0);
  const started: number[] = [];
  const accepted: number[] = [];
  const ended: number[] = [];
  const phaseDeadline = performance.now() + Math.max(120, TRIGGERS * 0.2) * 1000;
  let notDispatched = 0;
  for (let i = 0; i < TRIGGERS + WARMUP_TRIGGERS; i++) {
    if (performance.now() > phaseDeadline) { notes.push(`trigger latency: stopped after ${i} triggers (phase time limit)`); break; }
    let a = NaN;
    let s = NaN;
    let e = NaN;
    let problem = '';
    await adminRequest(fleet.socket, { op: 'trigger', hosts: [host], all: false, tags: [], action: 'switch', queue: false, follow: true }, (ev, ms) => {
      if (ev.ev === 'accepted') { a = ms; if (ev['disposition'] !== 'dispatched') notDispatched++; }
      else if (ev.ev === 'started') s = ms;
      else if (ev.ev === 'end') e = ms;
      else if (ev.ev === 'rejected' || ev.ev === 'error') problem = `${ev.ev}: ${String(ev['message'])}`;
      return ev.ev === 'done';
    }, 10_000);
    if (problem || !Number.isFinite(s)) throw new Error(`trigger ${i} failed: ${problem || 'no started event within 10 s'}`);
    if (i < WARMUP_TRIGGERS) continue;
    accepted.push(a);
    started.push(s);
    ended.push(e);
  }
  if (notDispatched) notes.push(`trigger latency: ${notDispatched} triggers were not dispatched at once (coalesced/queued)`);
  M_['trigger_count'] = started.length;
  M_['trigger_to_accepted_p50_ms'] = percentile(accepted, 50);
  M_['trigger_to_start_p50_ms'] = percentile(started, 50);
  M_['trigger_to_start_p90_ms'] = percentile(started, 90);
  M_['trigger_to_start_p99_ms'] = percentile(started, 99);
  M_['trigger_to_start_max_ms'] = Math.max(...started);
  M_['trigger_to_end_p50_ms'] = percentile(ended, 50);
  complete['triggers'] = started.length >= TRIGGERS;
}

async function phaseFanout(fleet: Fleet, hub: HubProcess): Promise<void> {
  // Quiesce first: the hub acks a job once its end is on disk, which can be
  // just after the admin saw "end", so the last trigger's ack may still be
  // on its way and must not count as a fan-out ack.
  let before = await allStats();
  const quiet = Date.now() + 10_000;
  while (before.acks < before.jobStarts && Date.now() < quiet) {
    await sleep(50);
    before = await allStats();
  }
  const cpu0 = cpuSeconds(hub.pid);
  const wall0 = Date.now();
  const counts = { accepted: 0, rejected: 0, started: 0, end: 0, success: 0 };
  let lastEndMs = NaN;
  let lastAcceptedMs = NaN;
  let rejectedWhy = '';
  const r = await adminRequest(fleet.socket, { op: 'trigger', hosts: [], all: true, tags: [], action: 'switch', queue: false, follow: true }, (ev, ms) => {
    if (ev.ev === 'accepted') { counts.accepted++; lastAcceptedMs = ms; }
    else if (ev.ev === 'rejected') { counts.rejected++; rejectedWhy = String(ev['message']); }
    else if (ev.ev === 'started') counts.started++;
    else if (ev.ev === 'end') { counts.end++; lastEndMs = ms; if (ev['outcome'] === 'success') counts.success++; }
    else if (ev.ev === 'error') rejectedWhy = String(ev['message']);
    return ev.ev === 'done';
  }, FANOUT_LIMIT_S * 1000);
  // Every agent must also have received its job.ack.
  let after = await allStats();
  const ackDeadline = Date.now() + 30_000;
  while (after.acks - before.acks < N && Date.now() < ackDeadline && r.closedBy !== 'timeout') {
    await sleep(100);
    after = await allStats();
  }
  const cpu1 = cpuSeconds(hub.pid);
  const acked = after.acks - before.acks;
  if (counts.rejected) notes.push(`fan-out: ${counts.rejected} hosts rejected (last: ${rejectedWhy})`);
  M_['fanout_hosts'] = counts.accepted;
  M_['fanout_acked'] = acked;
  M_['fanout_last_accepted_s'] = lastAcceptedMs / 1000;
  M_['fanout_all_end_s'] = (Number.isFinite(lastEndMs) ? lastEndMs : r.ms) / 1000;
  M_['fanout_all_acked_s'] = acked >= N ? (after.lastAckAt - wall0) / 1000 : r.ms / 1000;
  M_['fanout_hub_cpu_s'] = cpu1 - cpu0;
  M_['fanout_admin_end_events'] = counts.end;
  complete['fanout'] = acked >= N;
  if (!complete['fanout']) {
    notes.push(`fan-out incomplete after ${(r.ms / 1000).toFixed(1)} s (${r.closedBy}): ${acked}/${N} acknowledged at the agents`);
  }
  if (counts.end < N && r.closedBy !== 'timeout') {
    notes.push(`fan-out: the admin stream said "done" after only ${counts.end}/${N} "end" events although ${acked}/${N} agents got their job.ack ` +
      '(hub/admin/handlers.ts trigger(): finish() fires as soon as the jobs dispatched so far have ended, while later hosts are still being dispatched)');
  }
}

async function phaseStorm(fleet: Fleet, hub: HubProcess, nodeArgs: string[]): Promise<HubProcess> {
  log('storm: SIGKILL the hub, start it again at once');
  const s0 = snap(hub.pid);
  for (const h of handles) h.child.send({ t: 'inFlight', max: Math.ceil(STORM_IN_FLIGHT / handles.length) } satisfies ToWorker);
  await killHub(hub, 'SIGKILL');
  const next = startHubProcess(fleet, NOFILE, nodeArgs);
  const t0 = performance.now();
  const elapsed = (): number => (performance.now() - t0) / 1000;
  const listMs: number[] = [];
  const listErrors: string[] = [];
  let adminUpS = NaN;
  let startupCpu = NaN;
  let converged = false;
  let agentsBackS = NaN;
  let lastCount = 0;
  let lastLog = 0;
  // The agents' own view (cheap, no hub work): when did every one have a welcome + forward again?
  const agentsView = (async () => {
    while (!converged && elapsed() < STORM_LIMIT_S) {
      const st = await allStats();
      if (st.ready >= N && !Number.isFinite(agentsBackS)) { agentsBackS = elapsed(); return; }
      await sleep(250);
    }
  })();
  // The hub's view, as an admin sees it: `list`, once a second (each answer
  // at 10,000 hosts is ~4 MiB of JSON, so polling faster would load the hub).
  while (elapsed() < STORM_LIMIT_S) {
    if (next.child.exitCode !== null) throw new Error(`restarted hub exited:\n${next.output()}`);
    const tryStart = performance.now();
    try {
      const r = await listCount(fleet.socket, 10_000);
      if (!Number.isFinite(adminUpS)) { adminUpS = (tryStart - t0) / 1000; startupCpu = cpuSeconds(next.pid); }
      listMs.push(r.ms);
      lastCount = r.count;
      if (r.count >= N) { converged = true; break; }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (Number.isFinite(adminUpS) || (code !== 'ENOENT' && code !== 'ECONNREFUSED')) listErrors.push(String((err as Error).message));
    }
    if (elapsed() - lastLog >= 10) { lastLog = elapsed(); log(`storm: ${lastCount}/${N} back after ${elapsed().toFixed(0)} s`); }
    const spent = performance.now() - tryStart;
    await sleep(Number.isFinite(adminUpS) ? Math.max(0, 1000 - spent) : 100);
  }
  const seconds = elapsed();
  const cpu = cpuSeconds(next.pid);
  const s1 = snap(next.pid);
  await agentsView;
  M_['storm_loadgen_cpu_s'] = s1.loadgen - s0.loadgen;
  M_['storm_machine_busy_cores'] = (s1.machine - s0.machine) / ((s1.t - s0.t) / 1000);
  M_['storm_other_cores'] = (s1.machine - s0.machine - (s1.loadgen - s0.loadgen) - cpu) / ((s1.t - s0.t) / 1000);
  M_['storm_hub_user_s'] = s1.hubUser;
  M_['storm_hub_sys_s'] = s1.hubSys;
  M_['storm_converged_s'] = seconds;
  M_['storm_agents_back_s'] = agentsBackS;
  M_['storm_hub_admin_up_s'] = adminUpS;
  M_['storm_hub_startup_cpu_s'] = startupCpu;
  M_['storm_hub_cpu_s'] = cpu;
  M_['storm_hub_cpu_pct_core'] = (cpu / seconds) * 100;
  M_['storm_hub_cpu_ms_per_reconnect'] = ((cpu - startupCpu) * 1000) / N;
  M_['storm_list_calls'] = listMs.length;
  M_['storm_list_p50_ms'] = percentile(listMs, 50);
  M_['storm_list_max_ms'] = listMs.length ? Math.max(...listMs) : NaN;
  complete['storm'] = converged;
  if (listErrors.length) notes.push(`storm: ${listErrors.length} list calls failed (first: ${listErrors[0]})`);
  if (!converged) notes.push(`storm: only ${lastCount}/${N} back within ${STORM_LIMIT_S} s`);
  if (!Number.isFinite(agentsBackS)) {
    const w = await waitReady('storm (agents)', N, 30);
    if (w.ok) M_['storm_agents_back_s'] = elapsed();
  }
  return next;
}

// ---------------------------------------------------------------- main
async function main(): Promise<void> {
  const nodeArgs = argv['hub-cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(argv['hub-cpu-prof'])] : [];
  // For experiments only: extra node flags for the hub (e.g. --require a preload).
  if (process.env['BENCH_HUB_NODE_ARGS']) nodeArgs.push(...process.env['BENCH_HUB_NODE_ARGS'].split(' ').filter(Boolean));
  baseDir = mkdtempSync(path.join(argv.base ? path.resolve(argv.base) : os.tmpdir(), 'bento-bench-'));
  const fleetDir = path.join(baseDir, 'fleet');
  try { fsType = execFileSync('findmnt', ['-n', '-o', 'FSTYPE', '-T', baseDir]).toString().trim().split('\n')[0]!; } catch { /* informational */ }
  const port = await new Promise<number>((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
  });
  extras['loadavgAtStart'] = os.loadavg();
  log(`N=${N} workers=${W} in-flight=${IN_FLIGHT} heartbeatMs=${HEARTBEAT_MS} idle=${IDLE_S}s triggers=${TRIGGERS} fleet dir on ${fsType}; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);

  const tKeys = performance.now();
  const fleet = await makeFleet(fleetDir, port, N, HEARTBEAT_MS);
  log(`fleet with ${N} hosts ready in ${((performance.now() - tKeys) / 1000).toFixed(1)} s`);
  let publishedHash = '';
  if (runs('poll')) {
    try {
      publishedHash = await deployOne(fleet, hostName(0));
    } catch (err) {
      notes.push(`poll: could not publish a configuration for ${hostName(0)}: ${(err as Error).message}`);
    }
  }

  let hub = startHubProcess(fleet, NOFILE, nodeArgs);
  M_['hub_start_s'] = await waitAdmin(fleet, hub, 60);
  await sleep(1000);
  const base = memOf(hub.pid);
  M_['hub_rss_baseline_mib'] = base.rssKiB / 1024;

  // -- connect all N
  await startWorkers(fleet);
  const c0 = snap(hub.pid);
  for (const h of handles) h.child.send({ t: 'connect' } satisfies ToWorker);
  log(`connecting ${N} agents`);
  const conn = await waitReady('connect', N, CONNECT_LIMIT_S);
  const c1 = snap(hub.pid);
  recordCpu('connect', c0, c1);
  const connectCpu = M_['connect_hub_user_s']! + M_['connect_hub_sys_s']!;
  M_['connect_all_s'] = conn.seconds;
  M_['connect_rate_per_s'] = conn.last.ready / conn.seconds;
  M_['connect_hub_cpu_s'] = connectCpu;
  M_['connect_hub_cpu_ms_per_handshake'] = (connectCpu * 1000) / Math.max(1, conn.last.ready);
  complete['connect'] = conn.ok;
  if (!conn.ok) {
    notes.push(`connect: only ${conn.last.ready}/${N} within ${CONNECT_LIMIT_S} s`);
    throw new Error(`connect phase incomplete: ${conn.last.ready}/${N} (last error: ${conn.last.lastError})\n${hub.output().slice(-3000)}`);
  }
  const listed = await listCount(fleet.socket, 30_000);
  if (listed.count !== N) notes.push(`after connect, list reported ${listed.count} (expected ${N})`);
  M_['list_full_ms'] = listed.ms;
  log(`all ${N} connected in ${conn.seconds.toFixed(1)} s (hub ${connectCpu.toFixed(1)} CPU s, load generator ${M_['connect_loadgen_cpu_s']!.toFixed(1)} CPU s, machine ${M_['connect_machine_busy_cores']!.toFixed(2)} cores busy); list of ${listed.count} took ${listed.ms.toFixed(0)} ms`);

  // -- memory and idle CPU
  await sleep(quick ? 1000 : 5000);
  const connected = memOf(hub.pid);
  M_['hub_rss_connected_mib'] = connected.rssKiB / 1024;
  M_['hub_rss_per_host_kib'] = (connected.rssKiB - base.rssKiB) / N;
  M_['hub_pss_per_host_kib'] = (connected.pssKiB - base.pssKiB) / N;
  if (runs('idle')) {
    const hb0 = await allStats();
    const i0 = snap(hub.pid);
    const th0 = threadCpu(hub.pid);
    log(`idle window ${IDLE_S} s (heartbeats or SSH keepalives every ${HEARTBEAT_MS} ms)`);
    await sleep(IDLE_S * 1000);
    const i1 = snap(hub.pid);
    const th1 = threadCpu(hub.pid);
    extras['idleHubCpuByThread'] = Object.fromEntries(Object.entries(th1).map(([k, v]) => [k, round(v - (th0[k] ?? 0), 2)]).filter(([, v]) => (v as number) > 0));
    const hb1 = await allStats();
    recordCpu('idle', i0, i1);
    const idleWall = (i1.t - i0.t) / 1000;
    M_['idle_cpu_pct_core'] = ((M_['idle_hub_user_s']! + M_['idle_hub_sys_s']!) / idleWall) * 100;
    M_['idle_heartbeats_per_s'] = (hb1.heartbeatsEchoed - hb0.heartbeatsEchoed) / idleWall;
    M_['idle_hub_cpu_us_per_heartbeat'] = ((M_['idle_hub_user_s']! + M_['idle_hub_sys_s']!) * 1e6) / Math.max(1, hb1.heartbeatsEchoed - hb0.heartbeatsEchoed);
    const afterIdle = memOf(hub.pid);
    M_['hub_rss_after_idle_mib'] = afterIdle.rssKiB / 1024;
    M_['hub_rss_per_host_after_idle_kib'] = (afterIdle.rssKiB - base.rssKiB) / N;
    if (hb1.ready < N) notes.push(`idle: ${N - hb1.ready} agents dropped during the idle window`);
    log(`idle hub CPU by thread: ${JSON.stringify(extras['idleHubCpuByThread'])}`);
    log(`idle: ${M_['idle_cpu_pct_core']!.toFixed(2)}% of a core (user ${M_['idle_hub_user_s']!.toFixed(1)} s, sys ${M_['idle_hub_sys_s']!.toFixed(1)} s), ${M_['idle_heartbeats_per_s']!.toFixed(0)} liveness round trips/s answered; RSS ${(afterIdle.rssKiB / 1024).toFixed(0)} MiB; machine ${M_['idle_machine_busy_cores']!.toFixed(2)} cores busy`);
  }

  // -- no-change poll
  if (runs('poll') && publishedHash) {
    await phasePoll(fleet, publishedHash);
    log(`no-change poll: ${M_['poll_tunnel_bytes']} bytes over the tunnel (${M_['poll_tunnel_bytes_out']} out / ${M_['poll_tunnel_bytes_in']} in, ${M_['poll_tunnel_ms']!.toFixed(1)} ms); ${M_['poll_fresh_bytes']} bytes over a fresh connection (${M_['poll_fresh_ms']!.toFixed(0)} ms)`);
  }

  // -- trigger-to-start latency
  if (runs('triggers')) {
    log(`trigger latency: ${WARMUP_TRIGGERS} warm-up + ${TRIGGERS} sequential triggers of ${hostName(0)}`);
    const t0 = snap(hub.pid);
    await phaseTriggers(fleet);
    recordCpu('triggers', t0, snap(hub.pid));
    log(`trigger-to-start p50 ${M_['trigger_to_start_p50_ms']!.toFixed(2)} ms, p99 ${M_['trigger_to_start_p99_ms']!.toFixed(2)} ms (accepted p50 ${M_['trigger_to_accepted_p50_ms']!.toFixed(2)} ms)`);
  }

  // -- fan-out
  if (runs('fanout')) {
    log(`fan-out: trigger all ${N}`);
    const f0 = snap(hub.pid);
    await phaseFanout(fleet, hub);
    recordCpu('fanout', f0, snap(hub.pid));
    log(`fan-out: last accepted after ${M_['fanout_last_accepted_s']!.toFixed(2)} s, all acknowledged at the agents after ${M_['fanout_all_acked_s']!.toFixed(2)} s (hub CPU ${M_['fanout_hub_cpu_s']!.toFixed(1)} s)`);
  }

  // -- reconnect storm
  if (runs('storm')) {
    hub = await phaseStorm(fleet, hub, nodeArgs);
    log(`storm: ${N} back in ${M_['storm_converged_s']!.toFixed(1)} s by list (agents' view ${M_['storm_agents_back_s']!.toFixed(1)} s; admin up after ${M_['storm_hub_admin_up_s']!.toFixed(2)} s, ${M_['storm_hub_startup_cpu_s']!.toFixed(1)} CPU s), hub CPU ${M_['storm_hub_cpu_s']!.toFixed(1)} s (${M_['storm_hub_cpu_ms_per_reconnect']!.toFixed(2)} ms per reconnect); list max ${M_['storm_list_max_ms']!.toFixed(0)} ms`);
  }

  const final = await allStats();
  extras['agentStats'] = final;
  await stopWorkers();
  await killHub(hub, 'SIGTERM');
  const hubLog = hub.output();
  if (hubLog.trim()) extras['hubLogTail'] = hubLog.slice(-4000);

  // -- OpenSSH side by side
  let ossh: OpenSshResult | null = null;
  const why = !runs('openssh') ? 'skipped' : openSshAvailable();
  if (why) {
    notes.push(`OpenSSH comparison not run: ${why}`);
  } else {
    log(`OpenSSH: ${M} reverse tunnels + ${SSH_TRUE} fresh \`ssh host true\``);
    ossh = await runOpenSsh({ dir: baseDir, tunnels: M, sshTrueRuns: SSH_TRUE, inFlight: 8, deadlineMs: quick ? 40_000 : 180_000, log });
    M_['openssh_tunnels'] = ossh.tunnels;
    M_['openssh_processes'] = ossh.processes;
    M_['openssh_handshakes_per_s'] = ossh.handshakesPerSecond;
    M_['openssh_pss_per_tunnel_kib'] = ossh.pssPerTunnelKiB;
    M_['openssh_rss_per_tunnel_kib'] = ossh.rssPerTunnelKiB;
    M_['ssh_true_runs'] = ossh.sshTrueRuns;
    M_['ssh_true_p50_ms'] = ossh.sshTrueP50Ms;
    M_['ssh_true_p99_ms'] = ossh.sshTrueP99Ms;
    M_['ratio_memory_openssh_pss_over_bento_rss'] = ossh.pssPerTunnelKiB / M_['hub_rss_per_host_kib']!;
    M_['ratio_memory_openssh_pss_over_bento_pss'] = ossh.pssPerTunnelKiB / M_['hub_pss_per_host_kib']!;
    if (runs('triggers')) {
      M_['ratio_push_p50_ssh_true_over_trigger'] = ossh.sshTrueP50Ms / M_['trigger_to_start_p50_ms']!;
      M_['ratio_push_p99_ssh_true_over_trigger'] = ossh.sshTrueP99Ms / M_['trigger_to_start_p99_ms']!;
    }
    if (ossh.tunnels < M) notes.push(`OpenSSH: only ${ossh.tunnels}/${M} tunnels came up`);
  }
  extras['loadavgAtEnd'] = os.loadavg();
  report(ossh);
}

// ---------------------------------------------------------------- report
function fmt(v: number | undefined, digits = 2, unit = ''): string {
  return v === undefined || !Number.isFinite(v) ? 'n/a' : `${v.toFixed(digits)}${unit}`;
}

function verdict(ok: boolean | undefined): 'ok' | 'MISS' | '' {
  return ok === undefined ? '' : ok ? 'ok' : 'MISS';
}

/** Verdict for `value OP limit`; no verdict when the value was not measured. */
function within(value: number | undefined, test: (v: number) => boolean, done = true): 'ok' | 'MISS' | '' {
  return value === undefined || !Number.isFinite(value) ? '' : verdict(done && test(value));
}

function report(ossh: OpenSshResult | null): void {
  const m = M_;
  const rows: Row[] = [
    { metric: `connect all ${N} (${IN_FLIGHT} handshakes in flight)`, value: `${fmt(m['connect_all_s'], 1)} s`, target: `${N} connected`, verdict: verdict(complete['connect']) },
    { metric: '  handshake rate / hub CPU for it', value: `${fmt(m['connect_rate_per_s'], 0)}/s, ${fmt(m['connect_hub_cpu_s'], 1)} CPU s` },
    { metric: '  hub CPU per handshake', value: `${fmt(m['connect_hub_cpu_ms_per_handshake'], 2)} ms` },
    { metric: 'hub RSS idle baseline -> N connected', value: `${fmt(m['hub_rss_baseline_mib'], 0)} -> ${fmt(m['hub_rss_connected_mib'], 0)} MiB` },
    { metric: 'hub RSS per connected host', value: `${fmt(m['hub_rss_per_host_kib'], 1)} KiB`, target: '<= 40 KiB', verdict: within(m['hub_rss_per_host_kib'], (v) => v <= 40) },
    { metric: '  (PSS per host / RSS per host after idle)', value: `${fmt(m['hub_pss_per_host_kib'], 1)} / ${fmt(m['hub_rss_per_host_after_idle_kib'], 1)} KiB` },
    { metric: `idle hub CPU (${IDLE_S} s, heartbeat ${HEARTBEAT_MS / 1000} s)`, value: `${fmt(m['idle_cpu_pct_core'], 2)} % core`, target: '< 10 % core', verdict: within(m['idle_cpu_pct_core'], (v) => v < 10) },
    { metric: '  keepalive / heartbeat round trips', value: `${fmt(m['idle_heartbeats_per_s'], 0)}/s` },
    { metric: `trigger-to-start p50 (${fmt(m['trigger_count'], 0)} sequential)`, value: `${fmt(m['trigger_to_start_p50_ms'], 2)} ms` },
    { metric: 'trigger-to-start p99', value: `${fmt(m['trigger_to_start_p99_ms'], 2)} ms`, target: '< 5 ms', verdict: within(m['trigger_to_start_p99_ms'], (v) => v < 5) },
    { metric: '  (trigger-to-accepted p50 / max start)', value: `${fmt(m['trigger_to_accepted_p50_ms'], 2)} / ${fmt(m['trigger_to_start_max_ms'], 1)} ms` },
    { metric: `fan-out to ${N}, all acknowledged`, value: `${fmt(m['fanout_all_acked_s'], 2)} s`, target: '< 1 s', verdict: within(m['fanout_all_acked_s'], (v) => v < 1, complete['fanout']) },
    { metric: '  (last accepted / hub CPU)', value: `${fmt(m['fanout_last_accepted_s'], 2)} s / ${fmt(m['fanout_hub_cpu_s'], 1)} CPU s` },
    { metric: `reconnect storm, all ${N} back (${STORM_IN_FLIGHT} in flight)`, value: `${fmt(m['storm_converged_s'], 1)} s`, target: '< 60 s', verdict: within(m['storm_converged_s'], (v) => v < 60, complete['storm']) },
    { metric: '  hub restart until admin answers', value: `${fmt(m['storm_hub_admin_up_s'], 1)} s, ${fmt(m['storm_hub_startup_cpu_s'], 1)} CPU s` },
    { metric: '  hub CPU during storm / per reconnect', value: `${fmt(m['storm_hub_cpu_s'], 1)} CPU s (${fmt(m['storm_hub_cpu_pct_core'], 0)} % core) / ${fmt(m['storm_hub_cpu_ms_per_reconnect'], 2)} ms` },
    { metric: '  all back, as the agents see it', value: `${fmt(m['storm_agents_back_s'], 1)} s` },
    { metric: '  `list` during storm (max / p50)', value: `${fmt(m['storm_list_max_ms'], 0)} / ${fmt(m['storm_list_p50_ms'], 0)} ms`, target: '< 1 s', verdict: within(m['storm_list_max_ms'], (v) => v < 1000) },
    { metric: 'no-change poll, over the tunnel', value: M_['poll_tunnel_bytes'] === undefined ? 'n/a' : `${fmt(m['poll_tunnel_bytes'], 0)} B`, target: 'SSH bytes both ways' },
    { metric: '  (out / in, ms)', value: `${fmt(m['poll_tunnel_bytes_out'], 0)} / ${fmt(m['poll_tunnel_bytes_in'], 0)} B, ${fmt(m['poll_tunnel_ms'], 1)} ms` },
    { metric: 'no-change poll, own connection (tunnel down)', value: M_['poll_fresh_bytes'] === undefined ? 'n/a' : `${fmt(m['poll_fresh_bytes'], 0)} B`, target: 'incl. SSH handshake' },
  ];
  rows.push({
    metric: 'noise: other processes (cores of 2)',
    value: ['connect', 'idle', 'triggers', 'fanout', 'storm'].map((p) => fmt(m[`${p}_other_cores`], 2)).join(' / '),
    target: 'connect/idle/trig/fan/storm',
  });
  if (ossh) {
    rows.push(
      { metric: `OpenSSH sshd PSS per tunnel (M=${ossh.tunnels})`, value: `${fmt(ossh.pssPerTunnelKiB, 0)} KiB` },
      { metric: '  ratio OpenSSH PSS / Bento RSS per host', value: `${fmt(m['ratio_memory_openssh_pss_over_bento_rss'], 1)}x`, target: '>= 40x', verdict: within(m['ratio_memory_openssh_pss_over_bento_rss'], (v) => v >= 40) },
      { metric: '  OpenSSH handshakes (8 in flight)', value: `${fmt(ossh.handshakesPerSecond, 1)}/s` },
      { metric: `fresh \`ssh host true\` p50 / p99 (${ossh.sshTrueRuns} runs)`, value: `${fmt(ossh.sshTrueP50Ms, 0)} / ${fmt(ossh.sshTrueP99Ms, 0)} ms` },
      { metric: '  ratio ssh-true / Bento trigger-to-start', value: `p50 ${fmt(m['ratio_push_p50_ssh_true_over_trigger'], 0)}x, p99 ${fmt(m['ratio_push_p99_ssh_true_over_trigger'], 0)}x` },
    );
  }
  const cpus = os.cpus();
  const machine = {
    cpus: cpus.length, cpuModel: cpus[0]?.model ?? '?', memGiB: round(os.totalmem() / 2 ** 30, 1), kernel: os.release(),
    node: process.version, fleetDirFs: fsType,
  };
  const params = {
    clients: N, workers: W, inFlight: IN_FLIGHT, stormInFlight: STORM_IN_FLIGHT, heartbeatMs: HEARTBEAT_MS, idleSeconds: IDLE_S, triggers: TRIGGERS,
    warmupTriggers: WARMUP_TRIGGERS, agentBackoff: BACKOFF, opensshTunnels: M, sshTrueRuns: SSH_TRUE, quick,
  };
  const out = {
    when: new Date().toISOString(), machine, params,
    metrics: Object.fromEntries(Object.entries(M_).map(([k, v]) => [k, round(v, 3)])),
    complete,
    notMeasured: M_['poll_tunnel_bytes'] === undefined ? { noChangePollBytes: 'n/a: the poll phase did not run (see notes)' } : {},
    notes,
    totalSeconds: round((performance.now() - tStart) / 1000, 1),
    extras,
  };
  process.stdout.write(`\nBento bench: ${N} agents, ${machine.cpus} cores (${machine.cpuModel}), node ${machine.node}, fleet dir on ${fsType}\n\n`);
  process.stdout.write(`${renderTable(rows)}\n`);
  if (notes.length) process.stdout.write(`\nnotes:\n${notes.map((n) => `  - ${n}`).join('\n')}\n`);
  if (argv.markdown) process.stdout.write(`\n${renderMarkdown(rows)}\n`);
  if (argv.json) writeFileSync(argv.json, `${JSON.stringify(out, null, 2)}\n`);
  process.stdout.write(`\ntotal ${out.totalSeconds} s\n`);
}

main().then(
  () => { clearTimeout(watchdog); cleanupSync(); process.exit(0); },
  (err: Error) => {
    log(`FAILED: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
