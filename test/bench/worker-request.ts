// One request to a forked load-generator worker and its answer, shared by the
// single-hub pool (pool.ts) and the cluster pool (cluster-pool.ts): workers
// answer in order, so the first waiter for a type gets the next answer of it.
import type { ChildProcess } from 'node:child_process';

export interface Waiter<A extends { t: string }> { want: A['t']; fn: (m: A) => void }
export interface Requestable<A extends { t: string }> { child: ChildProcess; waiters: Array<Waiter<A>> }

/** Send `msg`; resolve with the worker's next answer of type `want`. `failure` is why the pool already failed, if it did (ignored while it stops). */
export function requestWorker<A extends { t: string }>(
  h: Requestable<A>, msg: { t: string }, want: A['t'], opts: { timeoutMs: number; failure: () => string | null; stopping: () => boolean },
): Promise<A> {
  return new Promise((resolve, reject) => {
    const failed = opts.failure();
    if (failed && !opts.stopping()) { reject(new Error(failed)); return; }
    const w: Waiter<A> = {
      want,
      fn: (m) => {
        clearTimeout(t);
        if (m.t !== want) reject(new Error(opts.failure() || `worker answered ${m.t}`));
        else resolve(m);
      },
    };
    const t = setTimeout(() => {
      h.waiters = h.waiters.filter((x) => x !== w);
      reject(new Error(`worker did not answer ${msg.t} within ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    h.waiters.push(w);
    h.child.send(msg);
  });
}
