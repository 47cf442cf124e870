// `bento-hub list`: the agents connected right now (on a cluster: to any hub; HUB says which).
import type { CommandSpec } from '../../common/platform/cli.js';
import type { ClientInfo } from '../../common/protocol/admin.js';
import { adminCall } from '../admin/client.js';
import { ago, printJson, printTable, withHub } from './util.js';

export const listCommand: CommandSpec = {
  name: 'list',
  usage: 'list [--json] [--dir DIR]',
  summary: 'Show connected agents: name, the hub holding it, remote address, carrier and path, connected since, agent version, last heartbeat, running and queued job.',
  options: { json: { type: 'boolean', help: 'print JSON ({ "clients": [...] }, stable field names)' } },
  positionals: { min: 0, max: 0 },
  async run({ values }) {
    const { clients } = await withHub(values, (socket) => adminCall(socket, { op: 'list', gzip: true }, 'list'));
    clients.sort((a, b) => a.name.localeCompare(b.name));
    if (values['json']) {
      printJson({ clients });
      return 0;
    }
    if (clients.length === 0) {
      process.stdout.write('no agents connected\n');
      return 0;
    }
    printTable(
      ['NAME', 'HUB', 'CARRIER', 'VIA', 'REMOTE', 'CONNECTED', 'AGENT', 'HEARTBEAT', 'JOB'],
      clients.map((c) => [c.name, c.hub ?? 'local', c.carrier, c.endpoint, c.remoteAddress, ago(c.connectedSince), c.agentVersion, `${ago(c.lastHeartbeat)} ago`, jobText(c)]),
    );
    return 0;
  },
};

/** "switch ID running", plus the job queued behind it: "switch ID running; boot ID2 queued". */
function jobText(c: ClientInfo): string {
  const parts: string[] = [];
  if (c.runningJob) parts.push(`${c.runningJob.action} ${c.runningJob.jobId} running`);
  if (c.queuedJob) parts.push(`${c.queuedJob.action} ${c.queuedJob.jobId} queued`);
  return parts.length ? parts.join('; ') : '-';
}
