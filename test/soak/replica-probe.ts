// For a soak problem: what each NATS server's replica holds of one KV key,
// next to what the stream leader says, to tell a Bento bug (every replica
// holds the same, and it is not what the hubs should have written) from a
// nats-server one (the replicas hold different content, or an acknowledged
// write is missing: docs/cluster.md "Soak", the 2.9.10 divergence).
// A direct get (the KV buckets allow it) is answered by a replica of the
// stream, and NATS hands a request to a queue subscriber on the server the
// client is connected to first: so a connection to one server only reads
// that server's replica (a replica still catching up does not answer direct
// gets; then another does, which the line cannot tell: read it as a hint).
import { connect } from '@nats-io/transport-node';
import { jetstreamManager, type StoredMsg } from '@nats-io/jetstream';
import { encodeToken } from '../../hub/cluster/names.js';

export interface ProbeServer { name: string; url: string }

/** The fields worth a glance of a job record or a holds record. */
function summary(m: StoredMsg | null): string {
  if (!m) return 'none';
  const op = m.header?.get('KV-Operation');
  if (op) return `rev ${m.seq} ${op}`;
  try {
    const v = JSON.parse(new TextDecoder().decode(m.data)) as Record<string, unknown>;
    const keep = ['state', 'hub', 'run', 'epoch', 'startedAt', 'endedAt', 'reason'].filter((k) => k in v);
    return `rev ${m.seq} ${JSON.stringify(Object.fromEntries(keep.map((k) => [k, v[k]])))}`;
  } catch {
    return `rev ${m.seq} (not JSON, ${m.data.length} bytes)`;
  }
}

/** One line per server: "n1: leader says ...; its replica ...", for KEY of BUCKET (its stream KV_<bucket>). */
export async function probeReplicas(servers: ProbeServer[], bucket: string, key: string): Promise<string[]> {
  const stream = `KV_${bucket}`;
  const subject = `$KV.${bucket}.${encodeToken(key)}`;
  return Promise.all(servers.map(async (s) => {
    let nc;
    try {
      nc = await connect({ servers: s.url, timeout: 3000, maxReconnectAttempts: 0 });
      const jsm = await jetstreamManager(nc, { timeout: 5000 });
      const [leader, replica, info] = await Promise.all([
        jsm.streams.getMessage(stream, { last_by_subj: subject }).then(summary, (e: Error) => `error: ${e.message}`),
        jsm.direct.getMessage(stream, { last_by_subj: subject }).then(summary, (e: Error) => `error: ${e.message}`),
        jsm.streams.info(stream).then((i) => `leader ${i.cluster?.leader ?? '?'}, last ${i.state.last_seq}`, (e: Error) => `error: ${e.message}`),
      ]);
      return `${s.name}: ${bucket}/${key}: via leader (${info}): ${leader}; direct (this server's replica): ${replica}`;
    } catch (err) {
      return `${s.name}: ${bucket}/${key}: cannot ask (${(err as Error).message})`;
    } finally {
      await nc?.close().catch(() => undefined);
    }
  }));
}
