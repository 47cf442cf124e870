// The load generator: W forked agent-worker processes, each simulating a slice
// of the fleet, driven over IPC (ipc.ts). Their handles live in state.ts.
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FromWorker, ToWorker, WorkerStats } from './ipc.js';
import type { Fleet } from './hub.js';
import { BACKOFF, IN_FLIGHT, N, W } from './options.js';
import { handles, log, run, sleep, workers, type WorkerHandle } from './state.js';
import { requestWorker } from './worker-request.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const WORKER = path.join(here, 'agent-worker.js');

/** Send one message; resolve with the worker's next answer of type `want` (answers come in order). */
export function request(h: WorkerHandle, msg: ToWorker, want: FromWorker['t'], timeoutMs = 30_000): Promise<FromWorker> {
  return requestWorker(h, msg, want, { timeoutMs, failure: () => run.workerFailure || null, stopping: () => run.stopping });
}

export async function startWorkers(fleet: Fleet): Promise<void> {
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
      if (run.stopping) return;
      run.workerFailure = `load-generator worker ${i} exited unexpectedly (${code ?? sig})`;
      log(run.workerFailure);
      for (const w of h.waiters.splice(0)) w.fn({ t: 'stopped' });
    });
    handles.push(h);
    // Each worker has its own source address, so its own ephemeral port range.
    const localAddress = `127.0.${1 + Math.floor(i / 250)}.${(i % 250) + 1}`;
    await request(h, { t: 'init', host: '127.0.0.1', port: fleet.port, localAddress, maxInFlight: perWorkerFlight, backoff: BACKOFF, agents: slice }, 'inited', 120_000);
  }
}

export async function allStats(): Promise<WorkerStats> {
  if (run.workerFailure && !run.stopping) throw new Error(run.workerFailure);
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

export async function stopWorkers(): Promise<void> {
  run.stopping = true;
  await Promise.all(handles.map(async (h) => {
    await request(h, { t: 'stop' }, 'stopped', 5000).catch(() => undefined);
    const exited = h.child.exitCode !== null || h.child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((r) => h.child.once('exit', () => r()));
    await Promise.race([exited, sleep(3000)]);
    if (h.child.exitCode === null && h.child.signalCode === null) h.child.kill('SIGKILL');
  }));
}

/** Poll the workers until `want` agents are ready, or `limitS` seconds have passed. */
export async function waitReady(what: string, want: number, limitS: number): Promise<{ seconds: number; ok: boolean; last: WorkerStats }> {
  const t0 = performance.now();
  let last = await allStats();
  let lastLog = 0;
  while (last.ready < want) {
    if (run.workerFailure) throw new Error(run.workerFailure);
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
