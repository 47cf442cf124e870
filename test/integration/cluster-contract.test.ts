// The store and event bus contracts (test/contract/*) against the NATS
// backend on a real 3-node JetStream cluster with replicas 3. Every case gets
// its own prefix (so its own buckets, stream and subjects) on one shared
// cluster; `peer` is a second connection, as a second hub would have.
import { after } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { silentLogger } from '../../common/platform/log.js';
import { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import { parseClusterOptions } from '../../hub/cluster/options.js';
import { eventBusContract } from '../contract/event-bus.js';
import { jobOutputContract } from '../contract/job-output.js';
import { keyedStoreContract, type Harness } from '../contract/keyed-store.js';
import { startNatsCluster } from '../fixtures/nats.js';

const cluster = await startNatsCluster();
after(() => cluster.stop());

let cases = 0;
const log = silentLogger();

function backend(prefix: string, hubName: string): Promise<NatsStateBackend> {
  return NatsStateBackend.open(parseClusterOptions({ servers: cluster.urls, hubName, prefix, replicas: 3 }), log);
}

/** Delete every stream (buckets are streams) of one case, so the cluster stays small. */
async function dropPrefix(prefix: string): Promise<void> {
  const nc = await connect({ servers: cluster.urls, timeout: 5000 });
  try {
    const jsm = await jetstreamManager(nc);
    for await (const name of jsm.streams.names()) {
      if (name.startsWith(`KV_${prefix}_`) || name.startsWith(`${prefix}_`)) await jsm.streams.delete(name);
    }
  } finally {
    await nc.close();
  }
}

const harness: Harness = {
  name: 'nats',
  shared: true,
  async fresh() {
    const prefix = `c${++cases}-${process.pid}`;
    return {
      open: () => backend(prefix, 'hub-a'),
      peer: () => backend(prefix, 'hub-b'),
      cleanup: () => dropPrefix(prefix),
    };
  },
};

keyedStoreContract(harness);
jobOutputContract(harness);
eventBusContract({
  name: 'nats',
  shared: true,
  async fresh() {
    const prefix = `b${++cases}-${process.pid}`;
    const a = await backend(prefix, 'hub-a');
    const b = await backend(prefix, 'hub-b');
    return {
      bus: a.eventBus(),
      peer: b.eventBus(),
      async cleanup() {
        await a.close();
        await b.close();
      },
    };
  },
});
