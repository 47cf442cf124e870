// Connections waiting for a handshake slot, fair across sources: one FIFO per
// source, and the sources served in proportion to their weights (stride
// scheduling: each source has a "pass" that advances by 1/weight each time it
// is served; the lowest pass goes next; a source that was idle starts at the
// current pass, so it cannot bank turns). With equal weights this is round
// robin: one source's 500 connections never stand in front of another
// source's one. The gate weighs a source by its credit (1 + hosts connected
// from it, source-book.ts): a NAT with 500 hosts gets 501 turns for every one
// of a stranger's, however many addresses the strangers use.
//
// Shares are weighted too: the gate's random early drop only hits sources
// above their weighted share of the queue (overShare), and when full the
// source furthest above its share loses its oldest entry (longest-queue
// drop, largest()) rather than a newcomer from a small source being turned
// away.
interface Lane<T> { items: T[]; pass: number; weight: number }

export class FairQueue<T> {
  private readonly lanes = new Map<string, Lane<T>>();
  private total = 0;
  private totalWeight = 0;
  /** The pass of the last source served: where a newly active source starts. */
  private now = 0;

  get length(): number {
    return this.total;
  }

  /** Sources with at least one entry. */
  get sources(): number {
    return this.lanes.size;
  }

  count(source: string): number {
    return this.lanes.get(source)?.items.length ?? 0;
  }

  weightOf(source: string): number {
    return this.lanes.get(source)?.weight ?? 1;
  }

  push(source: string, item: T, weight = 1): void {
    const lane = this.lanes.get(source);
    if (lane) {
      lane.items.push(item);
      this.totalWeight += weight - lane.weight;
      lane.weight = weight;
    } else {
      this.lanes.set(source, { items: [item], pass: this.now, weight });
      this.totalWeight += weight;
    }
    this.total++;
  }

  /** Would `source` (with `weight`) hold at least its weighted share of the queue with one more entry? */
  overShare(source: string, weight: number): boolean {
    const lane = this.lanes.get(source);
    const total = this.totalWeight + (lane ? weight - lane.weight : weight);
    return (lane?.items.length ?? 0) >= (this.total * weight) / total;
  }

  /**
   * The next entry: the oldest of the source with the lowest pass (the first
   * such, on a tie), among sources weighing at least `minWeight`.
   */
  shift(minWeight = 0): T | undefined {
    let best: Lane<T> | undefined;
    let bestSource = '';
    for (const [source, lane] of this.lanes) {
      if (lane.weight >= minWeight && (!best || lane.pass < best.pass)) { best = lane; bestSource = source; }
    }
    if (!best) return undefined;
    const item = best.items.shift()!;
    this.now = best.pass;
    best.pass += 1 / Math.max(1, best.weight);
    // To the back of the map, so that among equal passes the others go first.
    this.lanes.delete(bestSource);
    if (best.items.length > 0) this.lanes.set(bestSource, best);
    else this.totalWeight -= best.weight;
    this.total--;
    return item;
  }

  remove(source: string, item: T): boolean {
    const lane = this.lanes.get(source);
    const at = lane ? lane.items.indexOf(item) : -1;
    if (!lane || at < 0) return false;
    lane.items.splice(at, 1);
    if (lane.items.length === 0) this.drop(source, lane);
    this.total--;
    return true;
  }

  /** The source with the most entries for its weight (the first such), or undefined. */
  largest(): string | undefined {
    let best: string | undefined;
    let n = 0;
    for (const [source, lane] of this.lanes) {
      const x = lane.items.length / Math.max(1, lane.weight);
      if (x > n) { best = source; n = x; }
    }
    return best;
  }

  /** Remove and return the oldest entry of `source`. */
  shiftFrom(source: string): T | undefined {
    const lane = this.lanes.get(source);
    if (!lane) return undefined;
    const item = lane.items.shift()!;
    if (lane.items.length === 0) this.drop(source, lane);
    this.total--;
    return item;
  }

  drain(): T[] {
    const all = [...this.lanes.values()].flatMap((l) => l.items);
    this.lanes.clear();
    this.total = 0;
    this.totalWeight = 0;
    return all;
  }

  private drop(source: string, lane: Lane<T>): void {
    this.lanes.delete(source);
    this.totalWeight -= lane.weight;
  }
}
