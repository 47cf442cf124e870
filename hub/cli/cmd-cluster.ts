// `bento-hub cluster status`: the hubs of a cluster (alive or not, agents
// each holds), the NATS server this hub talks to, and JetStream's health per
// stream (leader, replicas current or lagging). On a single hub it says so.
import type { CommandSpec } from '../../common/platform/cli.js';
import { BentoError } from '../../common/protocol/errors.js';
import type { ClusterStatus } from '../../common/protocol/admin.js';
import { adminCall } from '../admin/client.js';
import { ago, printJson, printTable, withHub } from './util.js';

export const clusterCommand: CommandSpec = {
  name: 'cluster',
  usage: 'cluster status [--json] [--dir DIR]',
  summary: 'Cluster health: the hubs and their agents, the NATS servers, JetStream streams and their replicas.',
  details: [
    'Asks the hub of --dir. HUBS: every hub with a heartbeat record, ALIVE while its beats arrive, AGENTS it holds.',
    'NATS: the server this hub is connected to and the servers it announces. STREAMS: each bucket and the output',
    'stream of this fleet, its leader and each replica (current, lagging by N messages, or offline).',
    'A single hub (no "cluster" in hub.json) answers that it is not clustered.',
  ].join('\n'),
  options: { json: { type: 'boolean', help: 'print JSON (the admin API\'s cluster status, stable field names)' } },
  positionals: { min: 1, max: 1 },
  async run({ values, positionals }) {
    if (positionals[0] !== 'status') throw new BentoError('USAGE', `unknown cluster command "${positionals[0]}" (try: cluster status)`);
    const { ev: _ev, ...s } = await withHub(values, (socket) => adminCall(socket, { op: 'cluster' }, 'cluster'));
    if (values['json']) {
      printJson(s);
      return 0;
    }
    print(s);
    return 0;
  },
};

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
