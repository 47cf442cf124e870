// `npm run soak`: the cluster soak (soak.ts; docs/cluster.md "Soak"). Exits
// 0 when every cycle's check held, 1 when one did not, 2 on bad flags. Every
// process it starts is killed by PID on exit, failure or Ctrl-C. Its temp dir
// (every hub's output in hubN/hub-output.log, every NATS server's in
// nats/nN.log) is removed at exit unless --keep, a cycle found a problem, or
// the soak failed: then it stays and its path is printed.
//
//   node dist/test/soak/main.js [--cycles 20] [--clients 300] [--hubs 3] [--nats-every 3] ...
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { killAllHubs } from '../bench/hub.js';
import type { ClusterLoad } from '../bench/cluster-pool.js';
import { runSoak } from './soak.js';

const { values: argv } = parseArgs({
  options: {
    cycles: { type: 'string' },
    clients: { type: 'string' },
    hubs: { type: 'string' },
    'nats-every': { type: 'string' },
    rate: { type: 'string' },
    'job-ms': { type: 'string' },
    'down-ms': { type: 'string' },
    seed: { type: 'string' },
    workers: { type: 'string' },
    base: { type: 'string' },
    json: { type: 'string' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});

if (argv.help) {
  process.stdout.write(`usage: node dist/test/soak/main.js [options]
  --cycles C       kill/restart cycles (default 20)
  --clients N      simulated agents (default 300)
  --hubs H         hubs (default 3; NATS is always a 3-node cluster)
  --nats-every K   also kill -9 a NATS server in every K-th cycle (default 3; 0: never)
  --rate R         triggers per second, each of a random host at a random running hub (default 20)
  --job-ms MS      how long each job runs at the agent (default 1500)
  --down-ms MS     how long what was killed stays down (default 2000)
  --seed S         seed of the random choices (default: the time; printed, so a run can be repeated)
  --workers W      load-generator processes (default 2)
  --base DIR       where the temporary directory is made (default: os.tmpdir())
  --json FILE      write the per-cycle results as JSON
  --keep           keep the temporary directory (kept anyway when a cycle finds a problem)
`);
  process.exit(0);
}

function intOpt(name: string, v: string | undefined, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`--${name} must be an integer >= ${min}\n`);
    process.exit(2);
  }
  return n;
}

const hubs = intOpt('hubs', argv.hubs, 3, 2);
const clients = intOpt('clients', argv.clients, 300, hubs);
const nofileHard = (() => {
  try {
    const v = execFileSync('sh', ['-c', 'ulimit -Hn']).toString().trim();
    return v === 'unlimited' ? 1_048_576 : Number(v);
  } catch {
    return 1024;
  }
})();
const nofile = Math.min(nofileHard, clients * 2 + 1024);
if (clients + 256 > nofile) {
  process.stderr.write(`--clients ${clients}: a hub may hold every agent after kills (one descriptor each), above the hard limit here (${nofileHard})\n`);
  process.exit(2);
}

const t0 = performance.now();
const log = (s: string): void => { process.stderr.write(`[soak ${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${s}\n`); };
const dir = mkdtempSync(path.join(argv.base ? path.resolve(argv.base) : os.tmpdir(), 'bento-soak-'));
let load: ClusterLoad | null = null;
let keep = argv.keep;

process.on('exit', () => {
  load?.kill();
  killAllHubs(); // NATS servers: the fixture's own exit hook (test/helpers/proc.ts)
  if (keep) process.stderr.write(`[soak] kept ${dir} (hub logs: ${dir}/hub*/hub-output.log, NATS logs: ${dir}/nats/*.log)\n`);
  else rmSync(dir, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => { log(`${sig}: stopping everything`); process.exit(130); });

const seed = intOpt('seed', argv.seed, Date.now() % 1_000_000, 0);
log(`load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
try {
  const r = await runSoak({
    dir, hubs, clients, nofile, seed,
    cycles: intOpt('cycles', argv.cycles, 20, 1),
    natsEvery: intOpt('nats-every', argv['nats-every'], 3, 0),
    triggersPerS: intOpt('rate', argv.rate, 20, 1),
    jobMs: intOpt('job-ms', argv['job-ms'], 1500, 0),
    downMs: intOpt('down-ms', argv['down-ms'], 2000, 0),
    workers: intOpt('workers', argv.workers, 2, 1),
    log,
    started: (h) => { load = h.load; },
    problem: () => { keep = true; },
  });
  const last = r.cycles[r.cycles.length - 1];
  const back = r.cycles.map((c) => c.backS).sort((a, b) => a - b);
  const summary = {
    seed, hubs, clients, cycles: r.cycles.length,
    natsKills: r.cycles.filter((c) => c.killedNats).length,
    triggers: r.triggers,
    finalStates: last?.check.byState ?? {},
    lost: last?.check.lost.length ?? 0,
    duplicateStarts: last?.check.duplicateStarts ?? 0,
    allBackS: { median: back[Math.floor(back.length / 2)] ?? NaN, max: back[back.length - 1] ?? NaN },
    loadavgAtEnd: os.loadavg(),
    problems: r.problems,
  };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  if (argv.json) writeFileSync(argv.json, `${JSON.stringify({ summary, cycles: r.cycles }, null, 2)}\n`);
  log(r.problems.length ? `FAILED: ${r.problems.length} problems` : `ok: ${r.cycles.length} cycles, ${r.triggers.accepted} accepted jobs, 0 lost, 0 duplicated`);
  process.exit(r.problems.length ? 1 : 0);
} catch (err) {
  log(`soak failed: ${(err as Error).stack ?? String(err)}`);
  keep = true;
  process.exit(1);
}
