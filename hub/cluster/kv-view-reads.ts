// The layers of a NATS keyed store's local view and the reads over them
// (kv-view.ts has what the layers are and how they change; this part only
// reads them, so a read never waits and never touches NATS).
import type { Versioned } from '../store/types.js';

export type Op = { op: 'set'; value: unknown } | { op: 'delete' };

export interface Pending { gen: number; op: Op }

export abstract class ViewReads<T> {
  /** The newest acknowledged value per key (kv-view.ts "confirmed"). */
  protected readonly confirmed = new Map<string, Versioned<T>>();
  /** This hub's latest unacknowledged plain set/delete per key (kv-view.ts "pending"). */
  protected readonly pending = new Map<string, Pending>();

  // --- reads (guarantee 1) ---

  get(key: string): T | undefined {
    const p = this.pending.get(key);
    if (p) return p.op.op === 'set' ? p.op.value as T : undefined;
    return this.confirmed.get(key)?.value;
  }

  /** While a plain set is unacknowledged: its value with the revision it replaces (0 for a new key). */
  entry(key: string): Versioned<T> | undefined {
    const p = this.pending.get(key);
    const c = this.confirmed.get(key);
    if (!p) return c;
    return p.op.op === 'set' ? { value: p.op.value as T, revision: c?.revision ?? 0 } : undefined;
  }

  has(key: string): boolean {
    const p = this.pending.get(key);
    return p ? p.op.op === 'set' : this.confirmed.has(key);
  }

  *keys(): IterableIterator<string> {
    for (const k of this.confirmed.keys()) if (!this.pending.has(k)) yield k;
    for (const [k, p] of this.pending) if (p.op.op === 'set') yield k;
  }

  *values(): IterableIterator<T> {
    for (const k of this.keys()) yield this.get(k)!;
  }

  get size(): number {
    let n = this.confirmed.size;
    for (const [k, p] of this.pending) {
      const had = this.confirmed.has(k);
      if (p.op.op === 'set' && !had) n += 1;
      else if (p.op.op === 'delete' && had) n -= 1;
    }
    return n;
  }

  /** What the view holds of KEY now, to hand back to adopt() or correct() after a lookup (compared by identity: every change is a new object). */
  basis(key: string): Versioned<T> | undefined {
    return this.confirmed.get(key);
  }

  /** Every acknowledged record the view holds (this hub's unacknowledged writes aside), with the revision it holds it at. */
  confirmedEntries(): IterableIterator<[string, Versioned<T>]> {
    return this.confirmed.entries();
  }
}
