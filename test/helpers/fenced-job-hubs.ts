// Job stores of several "hubs" on one real 3-node NATS cluster, each with a
// fixed fence (the claim it believes it holds), for the fencing tests
// (cluster-stale-writer, cluster-verdict-final): what the holders would
// stamp, without the holders, so a test can make a hub stale on purpose.
import { silentLogger } from '../../common/platform/log.js';
import { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import { parseClusterOptions } from '../../hub/cluster/options.js';
import { JobStore, type JobFence } from '../../hub/store/jobs.js';
import { startNatsCluster } from '../fixtures/nats.js';

export interface FencedJobHubs {
  /** Hub NAME's job store on its own connection (server SERVER first), writing as epoch EPOCH. */
  hub(name: string, epoch: number, server: number): Promise<JobStore>;
  /** A plain backend on its own connection (server SERVER first): a reader of what NATS holds. */
  backend(name: string, server: number): Promise<NatsStateBackend>;
  /** Closes every store and connection, then stops the cluster. */
  close(): Promise<void>;
}

export async function fencedJobHubs(prefix: string): Promise<FencedJobHubs> {
  const log = silentLogger();
  const cluster = await startNatsCluster();
  const backends: NatsStateBackend[] = [];
  const stores: JobStore[] = [];
  const backend = async (name: string, server: number): Promise<NatsStateBackend> => {
    const b = await NatsStateBackend.open(parseClusterOptions({ servers: [cluster.urls[server]!, ...cluster.urls], hubName: name, prefix, outputMaxBytes: 16 * 1024 * 1024 }), log);
    backends.push(b);
    return b;
  };
  return {
    backend,
    async hub(name, epoch, server) {
      const b = await backend(name, server);
      const fence: JobFence = { stamp: () => ({ hub: name, epoch }) };
      const s = await JobStore.open(b, { history: 1000, log, fence });
      stores.push(s);
      return s;
    },
    async close() {
      for (const s of stores) await s.close();
      for (const b of backends) await b.close();
      await cluster.stop();
    },
  };
}
