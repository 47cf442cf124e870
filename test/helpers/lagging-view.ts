// One hub's view of a keyed store shared by several "hubs" in one process,
// that can lag behind the store the way a cluster hub's view lags behind its
// KV bucket: writes go to the shared store (which decides every compare-and-
// swap, as the bucket's leader does), and a hub sees its own writes once they
// resolve, but other hubs' changes only when the test lets them through
// (release()). Unit tests of races between hubs (two starts of overlapping
// rollouts at once) use it over one memory store.
import { MemoryBackend } from '../../hub/store/memory-backend.js';
import type { KeyedStore, OpenKeyedOptions, StateBackend, StoreChange, Versioned, WriteOptions } from '../../hub/store/types.js';

export interface LaggingView<T> extends KeyedStore<T> {
  /** Hold other writers' changes back from this view until release(). */
  hold(): void;
  /** Show every change held back, in order, and stop holding. */
  release(): void;
}

/** WRITEDELAY: how long each write waits before it reaches the shared store (ms; default none), so racing writers interleave. */
export function laggingView<T>(shared: KeyedStore<T>, o: { writeDelay?: () => number } = {}): LaggingView<T> {
  const delay = async (): Promise<void> => {
    const ms = o.writeDelay?.() ?? 0;
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  };
  const view = new Map<string, Versioned<T>>();
  /** The newest revision this view applied per key (a delete included), so an older change never undoes a newer one. */
  const seen = new Map<string, number>();
  const watchers = new Set<(c: StoreChange<T>) => void>();
  let held: StoreChange<T>[] | null = null;
  for (const k of shared.keys()) {
    const e = shared.entry(k)!;
    view.set(k, e);
    seen.set(k, e.revision);
  }
  const apply = (c: StoreChange<T>): void => {
    if ((seen.get(c.key) ?? 0) >= c.revision) return;
    seen.set(c.key, c.revision);
    if (c.op === 'set') view.set(c.key, { value: c.value, revision: c.revision });
    else view.delete(c.key);
    for (const fn of watchers) fn(c);
  };
  const unwatch = shared.watch((c) => { if (held) held.push(c); else apply(c); });
  return {
    get: (k) => view.get(k)?.value,
    entry: (k) => view.get(k),
    // The shared store decides, as the bucket's leader does: it never lags.
    latest: (k) => shared.latest(k),
    has: (k) => view.has(k),
    keys: () => view.keys(),
    *values() { for (const e of view.values()) yield e.value; },
    get size() { return view.size; },
    async set(key: string, value: T, opts?: WriteOptions) {
      await delay();
      const revision = await shared.set(key, value, opts);
      apply({ op: 'set', key, value, revision });
      return revision;
    },
    async delete(key: string, opts?: WriteOptions) {
      await delay();
      await shared.delete(key, opts);
      // Its own delete, held back with the others' changes: shown now (the store's change feed has its revision).
      const mine = held?.filter((c) => c.key === key && c.op === 'delete').at(-1);
      if (mine) apply(mine);
    },
    watch(fn) { watchers.add(fn); return () => { watchers.delete(fn); }; },
    settled: () => shared.settled(),
    close: async () => { unwatch(); },
    hold() { held ??= []; },
    release() {
      const changes = held ?? [];
      held = null;
      for (const c of changes) apply(c);
    },
  };
}

/** A hub of laggingHubs(): its backend, and hold/release of every view it opened. */
export interface LaggingHub { backend: StateBackend; hold(): void; release(): void }

/**
 * Keyed stores shared by several hubs, each hub opening them through its own
 * backend as lagging views (above). `kv(name)`: the shared store itself.
 */
export function laggingHubs(): { hub(o?: { writeDelay?: () => number }): LaggingHub; kv<T>(name: string): KeyedStore<T> | undefined; close(): Promise<void> } {
  const memory = new MemoryBackend();
  const shared = new Map<string, Promise<KeyedStore<unknown>>>();
  const open = <T>(name: string, opts: OpenKeyedOptions<T>): Promise<KeyedStore<T>> => {
    if (!shared.has(name)) shared.set(name, memory.openKeyed<T>(name, opts) as Promise<KeyedStore<unknown>>);
    return shared.get(name)! as Promise<KeyedStore<T>>;
  };
  const opened = new Map<string, KeyedStore<unknown>>();
  return {
    hub(o = {}) {
      const views: LaggingView<unknown>[] = [];
      let holding = false;
      const backend: StateBackend = {
        kind: 'memory',
        async openKeyed<T>(name: string, opts: OpenKeyedOptions<T>) {
          const kv = await open(name, opts);
          opened.set(name, kv as KeyedStore<unknown>);
          const v = laggingView(kv, o);
          if (holding) v.hold();
          views.push(v as LaggingView<unknown>);
          return v;
        },
        openOutput: () => memory.openOutput(),
        close: async () => { await Promise.all(views.map((v) => v.close())); },
      };
      return {
        backend,
        hold() { holding = true; for (const v of views) v.hold(); },
        release() { holding = false; for (const v of views) v.release(); },
      };
    },
    kv: <T>(name: string) => opened.get(name) as KeyedStore<T> | undefined,
    close: () => memory.close(),
  };
}
