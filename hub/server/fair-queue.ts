// Connections waiting for a handshake slot, fair across sources: one FIFO per
// source, served round robin, so one source's 500 connections never stand in
// front of another source's one. When it is full, the largest source loses
// its oldest entry (longest-queue drop) rather than a newcomer from a small
// source being turned away.
export class FairQueue<T> {
  /** Insertion order of the keys is the round-robin order. */
  private readonly bySource = new Map<string, T[]>();
  private total = 0;

  get length(): number {
    return this.total;
  }

  /** Sources with at least one entry. */
  get sources(): number {
    return this.bySource.size;
  }

  count(source: string): number {
    return this.bySource.get(source)?.length ?? 0;
  }

  push(source: string, item: T): void {
    const q = this.bySource.get(source);
    if (q) q.push(item);
    else this.bySource.set(source, [item]);
    this.total++;
  }

  /** The next entry: the oldest of the source whose turn it is; that source goes to the back. */
  shift(): T | undefined {
    const first = this.bySource.entries().next();
    if (first.done) return undefined;
    const [source, q] = first.value;
    const item = q.shift()!;
    this.bySource.delete(source);
    if (q.length > 0) this.bySource.set(source, q);
    this.total--;
    return item;
  }

  remove(source: string, item: T): boolean {
    const q = this.bySource.get(source);
    const at = q ? q.indexOf(item) : -1;
    if (!q || at < 0) return false;
    q.splice(at, 1);
    if (q.length === 0) this.bySource.delete(source);
    this.total--;
    return true;
  }

  /** The source with the most entries (the first such in turn order), or undefined. */
  largest(): string | undefined {
    let best: string | undefined;
    let n = 0;
    for (const [source, q] of this.bySource) {
      if (q.length > n) { best = source; n = q.length; }
    }
    return best;
  }

  /** Remove and return the oldest entry of `source`. */
  shiftFrom(source: string): T | undefined {
    const q = this.bySource.get(source);
    if (!q) return undefined;
    const item = q.shift()!;
    if (q.length === 0) this.bySource.delete(source);
    this.total--;
    return item;
  }

  drain(): T[] {
    const all = [...this.bySource.values()].flat();
    this.bySource.clear();
    this.total = 0;
    return all;
  }
}
