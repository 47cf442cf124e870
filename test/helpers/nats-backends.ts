// One single-node nats-server for a test file and the hubs' state backends on
// it, each hub named, all closed (and the server stopped) after the file's
// tests. For files that drive the cluster stores directly (follow-remote,
// follow-moved), without hub processes.
import { after } from 'node:test';
import { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import { parseClusterOptions } from '../../hub/cluster/options.js';
import { silentLogger } from '../../common/platform/log.js';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';

export interface FileNats {
  cluster: NatsCluster;
  /** A backend as hub NAME under PREFIX (closed after the file). */
  open(name: string): Promise<NatsStateBackend>;
  /** Open one backend per name; a failure stops the server (after() hooks do not run when setup fails). */
  openAll(names: string[]): Promise<NatsStateBackend[]>;
}

export async function natsForFile(prefix: string): Promise<FileNats> {
  const log = silentLogger();
  const cluster = await startNatsCluster({ nodes: 1 });
  const opened: NatsStateBackend[] = [];
  after(async () => {
    for (const b of opened) await b.close();
    await cluster.stop();
  });
  const open = async (name: string): Promise<NatsStateBackend> => {
    const b = await NatsStateBackend.open(parseClusterOptions({ servers: cluster.urls, hubName: name, prefix, replicas: 1, outputMaxBytes: 64 * 1024 * 1024 }), log);
    opened.push(b);
    return b;
  };
  const openAll = (names: string[]): Promise<NatsStateBackend[]> => Promise.all(names.map(open)).catch(async (err: unknown) => {
    await cluster.stop();
    throw err;
  });
  return { cluster, open, openAll };
}
