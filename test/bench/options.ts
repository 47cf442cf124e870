// Command-line flags of `npm run bench` (see main.ts) and the constants derived
// from them. Importing this module parses process.argv: --help and invalid
// flags end the process here, before anything is started.
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';

export const { values: argv } = parseArgs({
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
    'attack-connections': { type: 'string' },
    'compromised-jobs': { type: 'string' },
    'no-openssh': { type: 'boolean', default: false },
    skip: { type: 'string' },
    base: { type: 'string' },
    'hub-cpu-prof': { type: 'string' },
    'heap-snapshots': { type: 'string' },
    hubs: { type: 'string' },
    'job-ms': { type: 'string' },
    'victim-share': { type: 'string' },
    markdown: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    'hub-logs': { type: 'boolean', default: false },
    'nats-cpu-prof': { type: 'string' },
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
  --attack-connections A  hostile connections held in the attack phase (default 500; --quick: 100)
  --compromised-jobs J    jobs the compromised host invents, 256 KiB of output each (default 2000; --quick: 200)
  --no-openssh         skip the OpenSSH comparison (same as --skip openssh)
  --skip LIST          skip phases: floor,idle,poll,triggers,fanout,storm,attack,compromised,openssh (comma-separated); without
                       storm the first hub stops with SIGTERM, so --hub-cpu-prof profiles it; attack
                       needs storm (it compares a storm under attack with it)
  --base DIR           where the temporary fleet directory is made (default: os.tmpdir())
  --hub-cpu-prof DIR   run the hub with --cpu-prof (profile written when the restarted hub stops)
  --heap-snapshots DIR heap snapshots of the floor and the hub with 0 and with N agents connected, into DIR
                       (floor-0, floor-N, hub-0, hub-N .heapsnapshot; compare with heap-diff.js; each snapshot
                       runs a full GC, so the run's memory figures after it are not comparable)
  --markdown           also print the table as Markdown
  --keep               keep the temporary directory
  --hub-logs           --hubs: keep every cluster hub's output (level warn) in hubN/hub-output.log and keep the directory
  --hubs H             the cluster bench (cluster-main.ts): a 3-node NATS cluster and H hubs with N agents spread over
                       them, after a single hub with N/H agents (the baseline); phases baseline,triggers,fanout,failover
  --nats-cpu-prof DIR  --hubs: a Go CPU profile of each NATS server over the fan-out's first 10 s, into DIR/nN.pb.gz
                       (summarise with pprof-summary.js)
  --job-ms MS          --hubs: how long the agents' jobs take during the failover's fan-out (default 3000)
  --victim-share F     --hubs: hub2, the failover's victim, starts with this fraction of the agents, the others spread
                       over the rest (0.5 with 30000 on 3 hubs: a 15,000-agent hub dies, survivors end at 15,000)
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

export const quick = argv.quick === true;
/** --hubs H > 1: the cluster bench (cluster-main.ts), with phases of its own. */
export const HUBS = intOpt('hubs', argv.hubs, 1, 1);
export const JOB_MS = intOpt('job-ms', argv['job-ms'], 3000, 0);
/** --victim-share F: the failover's victim (hub2) starts with this share of the agents (the others spread over the rest). */
export const VICTIM_SHARE = (() => {
  const v = argv['victim-share'];
  if (v === undefined) return null;
  const f = Number(v);
  if (!(f > 0 && f < 1) || HUBS < 2) { process.stderr.write(`--victim-share: a fraction between 0 and 1, with --hubs 2 or more (got "${v}")\n`); process.exit(2); }
  return f;
})();
const PHASES = HUBS > 1 ? ['baseline', 'triggers', 'fanout', 'failover'] as const : ['floor', 'idle', 'poll', 'triggers', 'fanout', 'storm', 'attack', 'compromised', 'openssh'] as const;
const SKIP = new Set((argv.skip ?? '').split(',').map((x) => x.trim()).filter(Boolean));
for (const x of SKIP) {
  if (!(PHASES as readonly string[]).includes(x)) { process.stderr.write(`--skip: unknown phase "${x}" (phases: ${PHASES.join(', ')})\n`); process.exit(2); }
}
if (argv['no-openssh']) SKIP.add('openssh');
if (SKIP.has('storm')) SKIP.add('attack');
export const runs = (p: (typeof PHASES)[number] | 'floor' | 'idle' | 'poll' | 'storm' | 'attack' | 'compromised' | 'openssh' | 'baseline' | 'failover'): boolean => !SKIP.has(p);
export const N = intOpt('clients', argv.clients, quick ? 50 : 10_000, 1);
export const W = intOpt('workers', argv.workers, Math.min(8, Math.max(2, Math.ceil(N / 2500))), 1);
export const IN_FLIGHT = intOpt('in-flight', argv['in-flight'], 64, 1);
export const STORM_IN_FLIGHT = intOpt('storm-in-flight', argv['storm-in-flight'], 512, 1);
export const TRIGGERS = intOpt('triggers', argv.triggers, quick ? 100 : 1000, 1);
export const IDLE_S = intOpt('idle-seconds', argv['idle-seconds'], quick ? 4 : 60, 1);
export const HEARTBEAT_MS = intOpt('heartbeat-ms', argv['heartbeat-ms'], quick ? 2000 : 25_000, 100);
export const M = intOpt('openssh-tunnels', argv['openssh-tunnels'], quick ? 6 : 200, 1);
export const SSH_TRUE = intOpt('ssh-true', argv['ssh-true'], quick ? 3 : 30, 1);
/** Attack phase (attack.ts): hostile connections held, from 1 and from ATTACK_SOURCES addresses; probe connects per case. */
export const ATTACK_N = intOpt('attack-connections', argv['attack-connections'], quick ? 100 : 500, 1);
export const ATTACK_SOURCES = quick ? 10 : 50;
/** Compromised-host phase (compromised.ts): jobs the attacker invents. */
export const COMPROMISED_JOBS = intOpt('compromised-jobs', argv['compromised-jobs'], quick ? 200 : 2000, 1);
export const PROBES = quick ? 2 : 5;
export const WARMUP_TRIGGERS = Math.min(50, Math.ceil(TRIGGERS / 10));
// Reconnect policy of the simulated agents: the real agent's defaults (client/config.ts).
export const BACKOFF = quick ? { initialMs: 200, maxMs: 2000 } : { initialMs: 1000, maxMs: 60_000 };
// Phase bounds (seconds); generous, so a slow machine still yields numbers.
export const CONNECT_LIMIT_S = Math.max(60, N / 40);
export const FANOUT_LIMIT_S = Math.max(30, N / 40);
export const STORM_LIMIT_S = Math.max(60, N / 40);
export const TOTAL_LIMIT_S = quick ? 150 : Math.max(1200, N / 5);
// The hub needs one descriptor per agent. Without CAP_SYS_RESOURCE the hard
// limit cannot be raised, so the soft limit goes up to the hard one at most.
export const NOFILE_HARD = (() => {
  try {
    const v = execFileSync('sh', ['-c', 'ulimit -Hn']).toString().trim();
    return v === 'unlimited' ? 1_048_576 : Number(v);
  } catch {
    return 1024;
  }
})();
export const NOFILE = Math.min(NOFILE_HARD, Math.max(65_536, N * 2 + 1024));
// A hub of a cluster holds its share of the agents (each agent's own stable choice: about N/H).
const PER_HUB = VICTIM_SHARE === null ? Math.ceil(N / HUBS) : Math.ceil(N * Math.max(VICTIM_SHARE, (1 - VICTIM_SHARE) / (HUBS - 1)));
if (PER_HUB + 256 > NOFILE) {
  process.stderr.write(`--clients ${N}${HUBS > 1 ? ` on ${HUBS} hubs` : ''} needs about ${PER_HUB + 256} file descriptors in ${HUBS > 1 ? 'each hub' : 'the hub'}, but the hard limit here is ${NOFILE_HARD} (raising it needs CAP_SYS_RESOURCE)\n`);
  process.exit(2);
}
