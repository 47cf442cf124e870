// The measured phases after "connect all N": no-change poll, sequential
// trigger latency, fan-out to all, reconnect storm. Each records into the
// shared results (state.ts) and is bounded in time.
import type { PollResult, ToWorker } from './ipc.js';
import { adminRequest, hostName, killHub, listCount, startHubProcess, type Fleet, type HubProcess } from './hub.js';
import { cpuSeconds, percentile } from './metrics.js';
import { snap } from './cpu.js';
import { FANOUT_LIMIT_S, N, NOFILE, STORM_IN_FLIGHT, STORM_LIMIT_S, TRIGGERS, WARMUP_TRIGGERS } from './options.js';
import { allStats, request, waitReady } from './pool.js';
import { M_, complete, handles, log, notes, sleep } from './state.js';
import { sftpOverFreshConnection } from '../../client/pull/connect.js';
import { readRemoteState } from '../../client/pull/remote.js';
import { parseEndpoint } from '../../client/net/endpoint.js';
import { silentLogger } from '../../common/platform/log.js';

/**
 * Bytes on the wire for one no-change config poll, both ways the agent's pull
 * makes it (client/pull/puller.ts): over its open tunnel (a new sftp channel),
 * and over a connection of its own (tunnel down: handshake included).
 */
export async function phasePoll(fleet: Fleet, hash: string): Promise<void> {
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

export async function phaseTriggers(fleet: Fleet): Promise<void> {
  const t = await timeTriggers(fleet, hostName(0), TRIGGERS, Math.max(120, TRIGGERS * 0.2));
  const { started, accepted, ended } = t;
  if (t.stoppedAt !== null) notes.push(`trigger latency: stopped after ${t.stoppedAt} triggers (phase time limit)`);
  if (t.notDispatched) notes.push(`trigger latency: ${t.notDispatched} triggers were not dispatched at once (coalesced/queued)`);
  M_['trigger_count'] = started.length;
  M_['trigger_to_accepted_p50_ms'] = percentile(accepted, 50);
  M_['trigger_to_start_p50_ms'] = percentile(started, 50);
  M_['trigger_to_start_p90_ms'] = percentile(started, 90);
  M_['trigger_to_start_p99_ms'] = percentile(started, 99);
  M_['trigger_to_start_max_ms'] = Math.max(...started);
  M_['trigger_to_end_p50_ms'] = percentile(ended, 50);
  complete['triggers'] = started.length >= TRIGGERS;
}

/** `count` sequential triggers of `host` (after the warm-up ones), within `limitS`: ms to accepted, started and end. */
export async function timeTriggers(fleet: Fleet, host: string, count: number, limitS: number): Promise<{ started: number[]; accepted: number[]; ended: number[]; notDispatched: number; stoppedAt: number | null }> {
  const started: number[] = [];
  const accepted: number[] = [];
  const ended: number[] = [];
  const phaseDeadline = performance.now() + limitS * 1000;
  let notDispatched = 0;
  let stoppedAt: number | null = null;
  const warmup = Math.min(WARMUP_TRIGGERS, Math.ceil(count / 10));
  for (let i = 0; i < count + warmup; i++) {
    if (performance.now() > phaseDeadline) { stoppedAt = i; break; }
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
    if (i < warmup) continue;
    accepted.push(a);
    started.push(s);
    ended.push(e);
  }
  return { started, accepted, ended, notDispatched, stoppedAt };
}

export async function phaseFanout(fleet: Fleet, hub: HubProcess): Promise<void> {
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

/**
 * SIGKILL the hub, start it again at once, and time until every agent is back.
 * Results go under `prefix` (storm_converged_s, ...); the attack phase runs it
 * again as storm_attack while hostile connections are held (attack.ts).
 */
export async function phaseStorm(fleet: Fleet, hub: HubProcess, nodeArgs: string[], prefix = 'storm'): Promise<HubProcess> {
  log(`${prefix}: SIGKILL the hub, start it again at once`);
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
  // at 10,000 hosts is ~4 MiB of JSON, so polling faster would load the hub);
  // four times a second up to 2,000 hosts, where a storm takes seconds.
  const everyMs = N <= 2000 ? 250 : 1000;
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
    if (elapsed() - lastLog >= 10) { lastLog = elapsed(); log(`${prefix}: ${lastCount}/${N} back after ${elapsed().toFixed(0)} s`); }
    const spent = performance.now() - tryStart;
    await sleep(Number.isFinite(adminUpS) ? Math.max(0, everyMs - spent) : 100);
  }
  const seconds = elapsed();
  const cpu = cpuSeconds(next.pid);
  const s1 = snap(next.pid);
  await agentsView;
  M_[`${prefix}_loadgen_cpu_s`] = s1.loadgen - s0.loadgen;
  M_[`${prefix}_machine_busy_cores`] = (s1.machine - s0.machine) / ((s1.t - s0.t) / 1000);
  M_[`${prefix}_other_cores`] = (s1.machine - s0.machine - (s1.loadgen - s0.loadgen) - cpu) / ((s1.t - s0.t) / 1000);
  M_[`${prefix}_hub_user_s`] = s1.hubUser;
  M_[`${prefix}_hub_sys_s`] = s1.hubSys;
  M_[`${prefix}_converged_s`] = seconds;
  M_[`${prefix}_agents_back_s`] = agentsBackS;
  M_[`${prefix}_hub_admin_up_s`] = adminUpS;
  M_[`${prefix}_hub_startup_cpu_s`] = startupCpu;
  M_[`${prefix}_hub_cpu_s`] = cpu;
  M_[`${prefix}_hub_cpu_pct_core`] = (cpu / seconds) * 100;
  M_[`${prefix}_hub_cpu_ms_per_reconnect`] = ((cpu - startupCpu) * 1000) / N;
  M_[`${prefix}_list_calls`] = listMs.length;
  M_[`${prefix}_list_p50_ms`] = percentile(listMs, 50);
  M_[`${prefix}_list_max_ms`] = listMs.length ? Math.max(...listMs) : NaN;
  // The smoke test expects exactly the main phases in `complete`; other runs of this phase say it as a metric.
  if (prefix === 'storm') complete['storm'] = converged;
  else M_[`${prefix}_complete`] = converged ? 1 : 0;
  if (listErrors.length) notes.push(`${prefix}: ${listErrors.length} list calls failed (first: ${listErrors[0]})`);
  if (!converged) notes.push(`${prefix}: only ${lastCount}/${N} back within ${STORM_LIMIT_S} s`);
  if (!Number.isFinite(agentsBackS)) {
    const w = await waitReady(`${prefix} (agents)`, N, 30);
    if (w.ok) M_[`${prefix}_agents_back_s`] = elapsed();
  }
  return next;
}
