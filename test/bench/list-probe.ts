// `list` timed on a thread of its own (list-probe-worker.ts). During the
// failover the bench's main thread also follows a fan-out to every host and
// polls the load generators; a `list` timed there waited for that too (a
// 3.4 s maximum while the hub's own part stayed under 0.8 s). A CLI is a
// process of its own, so its wait is the hub's and the transfer's, which is
// what this measures.
import { Worker } from 'node:worker_threads';
import type { ProbeAnswer, ProbeAsk } from './list-probe-worker.js';

export class ListProbe {
  private readonly worker = new Worker(new URL('./list-probe-worker.js', import.meta.url));

  /** One `list` at SOCKET: its time, how many hosts it listed, and how many of WATCH.hosts are at a hub other than WATCH.leftHub. */
  ask(a: ProbeAsk): Promise<{ ms: number; count: number; moved: number }> {
    return new Promise((resolve, reject) => {
      const done = (m: ProbeAnswer): void => {
        this.worker.off('error', reject);
        if ('error' in m) reject(new Error(m.error));
        else resolve(m);
      };
      this.worker.once('message', done);
      this.worker.once('error', reject);
      this.worker.postMessage(a);
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
