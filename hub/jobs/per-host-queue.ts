// Runs async work one at a time per host, in arrival order: an admin trigger,
// the agent's messages and its disconnect never interleave for one host,
// while different hosts proceed concurrently. Holds nothing for idle hosts.
export class PerHostQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(host: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(host) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.tails.set(host, tail);
    void tail.then(() => { if (this.tails.get(host) === tail) this.tails.delete(host); });
    return run;
  }
}
