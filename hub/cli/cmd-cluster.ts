// `bento-hub cluster status`: the hubs of a cluster (alive or not, agents
// each holds), the NATS server this hub talks to, and JetStream's health per
// stream (leader, replicas current or lagging). On a single hub it says so.
// `bento-hub cluster sweep`: configuration trees and uploaded logs no record
// keeps, removed (hub/cluster/content-sweep.ts), and the keyed stores' old
// deletion markers purged (hub/cluster/marker-sweep.ts); it talks to NATS
// itself, as deploy does.
import type { CommandContext, CommandSpec } from '../../common/platform/cli.js';
import { BentoError } from '../../common/protocol/errors.js';
import type { ClusterStatus } from '../../common/protocol/admin.js';
import { parseDuration } from '../../common/protocol/rollout.js';
import { adminCall } from '../admin/client.js';
import { sweepContent, type ContentSweep } from '../cluster/content-cli.js';
import { SWEEP_LIST_LIMIT } from '../cluster/content-sweep.js';
import { ago, fleetDir, printJson, printTable, str, withHub } from './util.js';

const DEFAULT_MIN_AGE = '1h';

export const clusterCommand: CommandSpec = {
  name: 'cluster',
  usage: 'cluster status [--json] [--dir DIR] | cluster sweep [--dry-run] [--min-age DURATION] [--json] [--dir DIR]',
  summary: 'Cluster health (the hubs and their agents, the NATS servers, JetStream streams); sweep objects no record keeps and old deletion markers.',
  details: [
    'status asks the hub of --dir. HUBS: every hub with a heartbeat record, ALIVE while its beats arrive, AGENTS it holds.',
    'NATS: the server this hub is connected to and the servers it announces. STREAMS: each bucket and the output',
    'stream of this fleet, its leader and each replica (current, lagging by N messages, or offline).',
    'A single hub (no "cluster" in hub.json) answers that it is not clustered.',
    '',
    'sweep talks to NATS with hub.json\'s cluster settings (no running hub needed) and removes the objects no record',
    'keeps: configuration trees no host\'s published record keeps, and uploaded logs no host\'s log manifest lists, left',
    'by a hub killed between storing the object and its record, or by a failed delete (no quota counts them). An',
    'object stays while it is younger than --min-age (a writer may be between its two steps), whenever the stream',
    'leader\'s record keeps it (a lagging replica is never trusted to say "unreferenced"), and when that record is not',
    'one this version reads. Exit 0 also when some objects could not be removed (FAILED, with why); run it again later.',
    `At most ${SWEEP_LIST_LIMIT} objects of each kind are listed; the counts (JSON: "counts") are complete.`,
    'It also purges the deletion markers older than --min-age from every keyed store\'s bucket (one per deleted key:',
    'pruned jobs, removed hosts, released claims), each only while the stream leader still has it as its key\'s last',
    'record, and bounded by its sequence (a key written again meanwhile keeps its new record). Per bucket: KEYS,',
    'MARKERS, PURGED, YOUNG (younger than --min-age), CHANGED (written again since the scan), FAILED (JSON: "markers").',
  ].join('\n'),
  options: {
    json: { type: 'boolean', help: 'print JSON (stable field names)' },
    'dry-run': { type: 'boolean', help: 'sweep: list what would be removed, remove nothing' },
    'min-age': { type: 'string', arg: 'DURATION', help: `sweep: leave objects and deletion markers younger than this, e.g. 30m or 2h (default ${DEFAULT_MIN_AGE})` },
  },
  positionals: { min: 1, max: 1 },
  async run({ values, positionals }) {
    if (positionals[0] === 'sweep') return sweep(values);
    if (positionals[0] !== 'status') throw new BentoError('USAGE', `unknown cluster command "${positionals[0]}" (try: cluster status, cluster sweep)`);
    const { ev: _ev, ...s } = await withHub(values, (socket) => adminCall(socket, { op: 'cluster' }, 'cluster'));
    if (values['json']) {
      printJson(s);
      return 0;
    }
    print(s);
    return 0;
  },
};

async function sweep(values: CommandContext['values']): Promise<number> {
  const minAgeMs = parseDuration(str(values, 'min-age') ?? DEFAULT_MIN_AGE, '--min-age');
  const dryRun = values['dry-run'] === true;
  const r = await sweepContent(fleetDir(values), { minAgeMs, dryRun });
  if (values['json']) {
    printJson(r ? { clustered: true, dryRun, minAgeS: minAgeMs / 1000, ...r } : { clustered: false });
    return 0;
  }
  if (!r) {
    process.stdout.write('this hub is not clustered (no "cluster" section in hub.json): its configurations and logs are files, which it drops itself\n');
    return 0;
  }
  printSweep(r, dryRun);
  return 0;
}

function printSweep(r: ContentSweep, dryRun: boolean): void {
  const stores = [['configs', r.configs], ['logs', r.logs]] as const;
  const rows = stores.flatMap(([store, s]) => [
    ...s.removed.map((o) => [store, dryRun ? 'WOULD REMOVE' : 'REMOVED', o.name, String(o.bytes), `${o.ageS} s`, '']),
    ...s.young.map((o) => [store, 'YOUNG', o.name, String(o.bytes), `${o.ageS} s`, 'younger than --min-age']),
    ...s.failed.map((o) => [store, 'FAILED', o.name, String(o.bytes), `${o.ageS} s`, o.error]),
  ]);
  if (rows.length) printTable(['STORE', 'RESULT', 'OBJECT', 'BYTES', 'AGE', 'NOTE'], rows);
  for (const [store, s] of stores) {
    const c = s.counts;
    const listed = s.removed.length + s.young.length + s.failed.length;
    process.stdout.write(`${store}: ${s.objects} objects, ${s.kept} kept by a record${s.keptByLeader ? ` (${s.keptByLeader} only by the stream leader's)` : ''}, ${c.removed} ${dryRun ? 'would be removed' : 'removed'} (${c.removedBytes} bytes), ${c.young} unreferenced but young, ${c.failed} failed, ${s.foreign} not Bento's${listed < c.removed + c.young + c.failed ? ` (the first ${SWEEP_LIST_LIMIT} of each listed)` : ''}\n`);
  }
  const buckets = Object.entries(r.markers);
  if (buckets.length === 0) return;
  process.stdout.write(`\ndeletion markers older than --min-age ${dryRun ? '(would be purged)' : 'purged'}:\n`);
  printTable(['BUCKET', 'KEYS', 'MARKERS', dryRun ? 'WOULD PURGE' : 'PURGED', 'YOUNG', 'CHANGED', 'FAILED', 'FIRST ERROR'],
    buckets.map(([store, m]) => [store, String(m.keys), String(m.markers), String(m.purged), String(m.young), String(m.changed), String(m.failed), m.error ?? '']));
}

function print(s: ClusterStatus): void {
  const out = process.stdout;
  if (!s.clustered) {
    out.write('this hub is not clustered (no "cluster" section in hub.json): it holds every agent itself\n');
    return;
  }
  out.write(`asked hub ${s.hub}\n\nHUBS\n`);
  printTable(['HUB', 'ALIVE', 'AGENTS', 'STARTED', 'LAST BEAT', 'VERSION'],
    s.hubs.map((h) => [`${h.name}${h.self ? ' (this)' : ''}`, h.alive ? 'yes' : 'NO', String(h.agents), `${ago(h.startedAt)} ago`, `${ago(h.lastBeatAt)} ago`, h.version]));
  const n = s.nats;
  if (!n) return;
  out.write(`\nNATS: connected to ${n.connectedTo.name} (${n.connectedTo.url}, nats-server ${n.connectedTo.version}${n.connectedTo.cluster ? `, cluster ${n.connectedTo.cluster}` : ''})${n.connected ? '' : ' - DISCONNECTED'}\n`);
  if (n.knownServers.length) out.write(`servers announced: ${n.knownServers.join(', ')}\n`);
  const js = n.jetstream;
  out.write(js.ok ? `JetStream: ${js.streams} streams, ${js.storageBytes} bytes on disk, ${js.apiErrors} API errors\n` : `JetStream: NOT ANSWERING (${js.error ?? '?'})\n`);
  out.write('\nSTREAMS\n');
  printTable(['STREAM', 'MESSAGES', 'LEADER', 'REPLICAS'], n.streams.map((st) => [
    st.name, String(st.messages), st.leader ?? (st.error ? `error: ${st.error}` : '-'),
    st.replicas.filter((r) => !r.leader).map((r) => `${r.server}:${r.offline ? 'offline' : r.current ? 'current' : `lag ${r.lagMessages}`}`).join(' ') || '-',
  ]));
}
