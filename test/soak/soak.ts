// The cluster soak (`npm run soak`, docs/cluster.md "Soak"): a real 3-node
// NATS JetStream cluster, H real hubs and N simulated agents (the cluster
// bench's load generators, test/bench/cluster-*.ts), a steady trigger load
// (trigger-load.ts), and cycle after cycle: kill -9 of a random hub (and,
// every natsEvery-th cycle, of a random NATS server too) while jobs run,
// down for a moment, restarted; once every agent is connected again the
// triggers pause and the invariant is checked over every job accepted since
// the start (test/bench/cluster-check.ts, the logic of
// test/helpers/cluster-invariants.ts): each ended exactly once in one final
// state, the same at every hub; no agent got a job twice; every job an agent
// ran is recorded as its result. Used by the command (main.ts) and by CI
// (test/integration/cluster-soak.test.ts, a few cycles on a small fleet).
// Every hub's and NATS server's output is kept in files under the dir (hubs
// at level info, a marker line at each cycle's kill), and a cycle that finds
// a problem prints the log lines naming its first problem jobs and hosts
// (problem-report.ts).
import { ClusterFleet } from '../bench/cluster-fleet.js';
import { ClusterLoad } from '../bench/cluster-pool.js';
import { checkJobs, checkText, type JobCheck } from '../bench/cluster-check.js';
import { hostName } from '../bench/hub.js';
import { TriggerLoad, type TriggerCounts } from './trigger-load.js';
import { reportProblems } from './problem-report.js';

export interface SoakOptions {
  /** Working directory (fleets, NATS stores go under it; the caller removes it). */
  dir: string;
  hubs: number;
  clients: number;
  cycles: number;
  /** Kill a NATS server as well in cycles natsEvery, 2*natsEvery, ... (0: never). */
  natsEvery: number;
  triggersPerS: number;
  /** How long each job takes at the agents (so kills find jobs in flight). */
  jobMs: number;
  /** How long what was killed stays down. */
  downMs: number;
  seed: number;
  /** Load-generator processes. */
  workers: number;
  /** File descriptor limit for each hub. */
  nofile: number;
  log: (s: string) => void;
  /** Called with the processes started, as they start (the command kills them on exit). */
  started?: (handles: { fleet: ClusterFleet; load: ClusterLoad | null }) => void;
  /** Called as soon as a cycle finds a problem (the command then keeps its temp dir, even if stopped early). */
  problem?: () => void;
}

export interface CycleResult {
  cycle: number;
  killedHub: string;
  killedNats: string | null;
  /** Kill to every agent connected again, seconds. */
  backS: number;
  check: JobCheck;
  /** What this cycle found wrong ([] if nothing). */
  problems: string[];
  seconds: number;
}

export interface SoakResult {
  cycles: CycleResult[];
  triggers: TriggerCounts;
  problems: string[];
}

/** A small seeded generator (mulberry32): the same seed kills the same processes in the same order. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Bounds (seconds) of a cycle's waits; generous, for a loaded shared machine. */
const BACK_LIMIT_S = 120;
const CHECK_LIMIT_S = 90;

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const random = seeded(o.seed);
  const fleet = await ClusterFleet.create({ dir: o.dir, hubs: o.hubs, clients: o.clients, heartbeatMs: 2000, livenessMs: 2000, nofile: o.nofile, nodeArgs: [], log: o.log, logs: { level: 'info' } });
  o.started?.({ fleet, load: null });
  let load: ClusterLoad | null = null;
  let triggers: TriggerLoad | null = null;
  try {
    await Promise.all(fleet.hubs.map((_, i) => fleet.startHub(i)));
    load = await ClusterLoad.start({ agents: fleet.agents, endpoints: fleet.endpoints, workers: o.workers, inFlight: 64, backoff: { initialMs: 200, maxMs: 2000 }, jobMs: o.jobMs, addressBase: 1 });
    o.started?.({ fleet, load });
    load.tell({ t: 'connect' });
    const conn = await load.waitReady('soak connect', o.clients, BACK_LIMIT_S, o.log);
    if (!conn.ok) throw new Error(`soak: only ${conn.last.ready}/${o.clients} agents connected (${conn.last.lastError})`);
    o.log(`soak: ${o.clients} agents on ${o.hubs} hubs (${conn.last.perHub.join('/')}), ${o.cycles} cycles, seed ${o.seed}`);
    const running = (): string[] => fleet.hubs.filter((h) => h.proc).map((h) => h.fleet.socket);
    triggers = new TriggerLoad({ sockets: running, hosts: fleet.agents.map((_, i) => hostName(i)), perSecond: o.triggersPerS, random });
    const cycles: CycleResult[] = [];
    let startsBefore = 0;
    const reported = new Set<string>();
    for (let c = 1; c <= o.cycles; c++) {
      const r = await cycle({ o, fleet, load, triggers, random, c, startsBefore, reported });
      startsBefore = r.check.duplicateStarts;
      cycles.push(r);
      o.log(`cycle ${c}/${o.cycles}: kill -9 ${r.killedHub}${r.killedNats ? ` and ${r.killedNats}` : ''}; all agents back ${r.backS.toFixed(1)} s; ${checkText(r.check)}${r.problems.length ? `; PROBLEMS: ${r.problems.join('; ')}` : ''}`);
    }
    return { cycles, triggers: triggers.counts, problems: cycles.flatMap((x) => x.problems.map((p) => `cycle ${x.cycle}: ${p}`)) };
  } finally {
    await triggers?.pause();
    await load?.stop();
    await fleet.stop();
  }
}

interface CycleDeps {
  o: SoakOptions;
  fleet: ClusterFleet;
  load: ClusterLoad;
  triggers: TriggerLoad;
  random: () => number;
  c: number;
  /** Duplicate job starts the agents counted before this cycle (the counter is cumulative). */
  startsBefore: number;
  /** Problem jobs and hosts whose logs were printed in earlier cycles. */
  reported: Set<string>;
}

async function cycle(d: CycleDeps): Promise<CycleResult> {
  const { o, fleet, load, triggers, random, c } = d;
  const t0 = performance.now();
  const cycleStart = Date.now();
  fleet.mark(`soak cycle ${c}: under load`);
  triggers.resume();
  // Under load for a while first: jobs are dispatched, running, their results on the way.
  await sleep(1000 + random() * 2000);
  const victim = Math.floor(random() * fleet.hubs.length);
  const natsNode = o.natsEvery > 0 && c % o.natsEvery === 0 ? Math.floor(random() * fleet.nats.nodes.length) : null;
  const killedAt = performance.now();
  fleet.mark(`soak cycle ${c}: kill -9 ${fleet.hubs[victim]!.name}${natsNode === null ? '' : ` and NATS ${fleet.nats.nodes[natsNode]!.name}`}`);
  await Promise.all([fleet.killHub(victim), natsNode === null ? null : fleet.nats.kill(natsNode)]);
  await sleep(o.downMs);
  if (natsNode !== null) await fleet.nats.restart(natsNode);
  await fleet.startHub(victim);
  const back = await load.waitReady(`cycle ${c}`, o.clients, BACK_LIMIT_S, o.log);
  const backS = (performance.now() - killedAt) / 1000;
  await sleep(1000); // the restarted hub under load too
  await triggers.pause();
  fleet.mark(`soak cycle ${c}: triggers paused, checking`);
  const check = await checkJobs({ fleet, load, accepted: triggers.accepted, sockets: fleet.hubs.map((h) => h.fleet.socket), timeoutS: CHECK_LIMIT_S });
  const problems: string[] = [];
  if (!back.ok) problems.push(`only ${back.last.ready}/${o.clients} agents back after ${BACK_LIMIT_S} s`);
  if (check.lost.length) problems.push(`${check.lost.length} accepted jobs not ended once (e.g. ${check.lost.slice(0, 3).join(', ')})`);
  if (check.duplicateStarts > d.startsBefore) problems.push(`${check.duplicateStarts - d.startsBefore} jobs sent to an agent twice`);
  if (check.ranNotRecorded.length) problems.push(`${check.ranNotRecorded.length} jobs ran but are recorded otherwise (e.g. ${check.ranNotRecorded.slice(0, 3).join(', ')})`);
  if (check.disagreements.length) problems.push(`hubs' views differ on ${check.disagreements.length} hosts (e.g. ${check.disagreements.slice(0, 3).join(', ')})`);
  if (problems.length) {
    o.problem?.();
    await reportProblems({ fleet, check, cycleStart, seen: d.reported, log: (s) => o.log(`cycle ${c}: ${s}`) })
      .catch((err: Error) => o.log(`cycle ${c}: cannot report the problems' logs: ${err.message}`));
    // After the report, which would otherwise find the problem hosts' names in this line.
    fleet.mark(`soak cycle ${c}: PROBLEMS: ${problems.join('; ')}`);
  }
  return {
    cycle: c, killedHub: fleet.hubs[victim]!.name, killedNats: natsNode === null ? null : fleet.nats.nodes[natsNode]!.name,
    backS, check, problems, seconds: (performance.now() - t0) / 1000,
  };
}
