// The worker side of list-probe.ts: `list` asked the CLI's way (gzip, the
// CLI's admin client) on this thread's own event loop, timed here from
// connect to parsed, and how many of the watched hosts have left a hub.
import { parentPort } from 'node:worker_threads';
import { listed } from './hub.js';

export interface ProbeAsk { socket: string; timeoutMs: number; watch: { hosts: string[]; leftHub: string } }
export type ProbeAnswer = { ms: number; count: number; moved: number } | { error: string };

parentPort?.on('message', (ask: ProbeAsk) => {
  const t0 = performance.now();
  listed(ask.socket, ask.timeoutMs).then((clients) => {
    const ms = performance.now() - t0;
    const at = new Map(clients.map((c) => [c.name, c.hub]));
    const moved = ask.watch.hosts.filter((h) => { const hub = at.get(h); return hub !== undefined && hub !== ask.watch.leftHub; }).length;
    parentPort!.postMessage({ ms, count: clients.length, moved } satisfies ProbeAnswer);
  }, (err: Error) => parentPort!.postMessage({ error: err.message } satisfies ProbeAnswer));
});
