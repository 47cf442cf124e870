// After a reload of a bucket's view, the records that can still change are
// checked against the stream's LEADER, and the view shows the leader's where
// it holds a later state.
//
// Why: nats-server 2.9.10, after kill -9 and restart of a server, can leave
// that server's replica of a stream with other content than the leader's at
// the same sequence, records missing or older, while it reports itself
// current (docs/cluster.md "Reads from a replica that diverged"). A view is
// filled by a watch, a consumer on ONE replica, and every watch starts with
// the bucket's last value per key (kv-watch.ts): a watch started on such a
// replica loads its stale records (a fresh reader showed 2 of 12 finished
// jobs `running`; a host's hold stayed at an older epoch). What the watch
// delivers afterwards comes from the leader's log and is right, so only the
// loaded records need the check. Compare-and-swaps are checked at the leader
// anyway (kv-rebase.ts); this is about what the view shows and what the hub
// decides from it.
//
// Which records: those the store's RecordProgress (store/types.ts) does not
// call settled, newest revision first (the records that moved last are the
// ones still moving: open jobs, fresh claims), at most MAX_RECORDS per
// reload, MAX_IN_FLIGHT lookups at a time, within TIME_BOUND_MS. Which
// answers: a PUT the store accepts that `ahead` calls a later state than
// the view's record; anything else (the same or an older state, a deletion,
// no record at all) leaves the view as it is, since the leader's being
// "later" is the only thing known for sure. A leader that does not answer
// is asked again every RETRY_MS within the time bound, then the view stays
// as loaded (said once).
//
// A replica can also LACK records the leader holds (4 of 16 divergences in
// cluster-replica-check's runs: 20 keys missing, not older). The view does
// not know such a key to ask for, so a reload's check (with leaderKeys)
// lists the keys the leader holds once its own lookups are done, and shows
// the leader's record of each key the view lacks, whatever its state (a PUT
// the store accepts; a deletion or a refused record leaves it absent), within
// the same cap and time bound. Sweeps and the outcomes check do not list:
// one listing of a 45,000-key bucket is ~2.5 MB, fine per reload, not every
// 30 s per bucket and hub.
//
// The other way round (mode 'outcomes'), after the stream elected a new
// leader (kv-load.ts): the view's irreversible records (an agent's outcome)
// are looked up at the new leader, and where it holds an earlier state, NATS
// lost an acknowledged write when a replica that missed it took over; the
// view keeps the outcome and the store writes it back (kv-view-content.ts adopt,
// kv-write-back.ts). The hub's watch does not show this: it goes on
// delivering new writes from the new leader's log, and the lost one is not a
// new write. Same limits.
//
// And every SWEEP_MS (kv-load.ts), the records that can still change and did
// not change since the previous sweep (at or below the revision the view knew
// then; at most SWEEP_LIMITS.maxRecords): a live watch on a replica that
// missed a write (2.9.10, diverged) never delivers it, so a job another hub
// ended stayed `running` in this hub's view until the next reload (a 20-cycle
// soak, two cycles long).
import type { Logger } from '../../common/platform/log.js';
import { inPool } from '../../common/platform/pool.js';
import type { RecordProgress, Versioned } from '../store/types.js';
import type { LeaderRecord } from './kv-leader.js';

/** What the check needs of the view (kv-view.ts). */
export interface CheckedView<T> {
  confirmedEntries(): Iterable<[string, Versioned<T>]>;
  basis(key: string): Versioned<T> | undefined;
  correct(key: string, basis: Versioned<T>, value: unknown): boolean;
  adopt(key: string, basis: Versioned<T> | undefined, rec: { revision: number; kind: 'PUT' | 'DEL' | 'PURGE'; raw: unknown; parsed: boolean }): boolean;
}

export interface CheckLimits {
  /** Records checked per reload at most (the newest first). */
  maxRecords: number;
  /** Lookups at the leader in flight at once. */
  inFlight: number;
  /** No lookup starts later than this after the check began. */
  timeBoundMs: number;
  /** After the leader did not answer: the pause before asking again. */
  retryMs: number;
}

/**
 * 10,000 records: about 1 s of lookups at the 10,000 a second a 3-node
 * loopback cluster answered with 32 in flight (16 in flight: about 7,500),
 * measured on the 2-core development machine. It covers every open job of
 * a fan-out to 10,000 hosts and the holds of as many hosts, while a larger
 * fleet's hub, restarted, waits about a second more per bucket, not more
 * (its first load waits for the check, kv-load.ts). 10 s: room for a leader
 * under load, well within the 60 s a store's open allows.
 */
export const CHECK_LIMITS: CheckLimits = { maxRecords: 10_000, inFlight: 32, timeBoundMs: 10_000, retryMs: 1000 };

/** The periodic sweep: how often, and its smaller limits (1,000 lookups per 30 s is about 33 a second per bucket and hub at most). */
export const SWEEP_MS = 30_000;
export const SWEEP_LIMITS: Partial<CheckLimits> = { maxRecords: 1000, inFlight: 8 };

export interface CheckOptions<T> {
  bucket: string;
  log: Logger;
  view: CheckedView<T>;
  /** The store's guard: a leader's record it refuses is not shown. */
  accept: (key: string, value: unknown) => value is T;
  progress: RecordProgress<T>;
  /** KEY's last record as the stream leader holds it (kv-leader.ts leaderLast; never a direct get); rejects when the leader does not answer. */
  leader: (key: string) => Promise<LeaderRecord | null>;
  limits?: Partial<CheckLimits>;
  /** 'loaded' (default): a reload's records that can still change; 'outcomes': irreversible records, after a leader election. */
  mode?: 'loaded' | 'outcomes';
  /** Only records at or below this revision (the sweep: records that did not change since the previous one). */
  maxRevision?: number;
  /** Given (a reload's check, mode 'loaded'): the keys the stream leader holds that the reload did not deliver (kv-leader.ts leaderKeys, kv-load.ts); those the view lacks are looked up. */
  leaderKeys?: () => Promise<string[]>;
}

export interface CheckResult {
  /** Records that could still change when the check began. */
  candidates: number;
  /** Looked up at the leader (or gone, or settled, by the time their turn came). */
  checked: number;
  corrected: string[];
  /** Keys the view lacked and now shows with the leader's record (with leaderKeys). */
  found: string[];
  /** Keys the leader listed that the view lacked; null: not listed (no leaderKeys, the listing failed, or no time was left). */
  absent: number | null;
  /** Beyond the cap, or left when the time bound passed, the leader did not answer or the check was stopped. */
  unchecked: number;
  outcome: 'done' | 'timed-out' | 'leader-unavailable' | 'stopped';
}

export interface ViewCheck {
  readonly done: Promise<CheckResult>;
  /** No lookup starts after this; resolves once those in flight are over. */
  stop(): Promise<void>;
}

/** Whether the view's record is one the check looks up. */
function wanted<T>(mode: 'loaded' | 'outcomes', progress: RecordProgress<T>, v: T): boolean {
  return mode === 'loaded' ? !progress.settled(v) : progress.irreversible(v);
}

/** Keys of the view's records the check looks up, newest revision first. */
function candidates<T>(view: CheckedView<T>, progress: RecordProgress<T>, mode: 'loaded' | 'outcomes', maxRevision = Infinity): string[] {
  const open: Array<[string, number]> = [];
  for (const [key, e] of view.confirmedEntries()) if (e.revision <= maxRevision && wanted(mode, progress, e.value)) open.push([key, e.revision]);
  return open.sort((a, b) => b[1] - a[1]).map(([key]) => key);
}

export function startViewCheck<T>(o: CheckOptions<T>): ViewCheck {
  const lim: CheckLimits = { ...CHECK_LIMITS, ...o.limits };
  let stopped = false;
  let wake: (() => void) | null = null;
  const pause = (ms: number): Promise<void> => new Promise((r) => {
    const t = setTimeout(r, ms);
    wake = () => { clearTimeout(t); r(); };
  });

  const mode = o.mode ?? 'loaded';
  const run = async (): Promise<CheckResult> => {
    const all = candidates(o.view, o.progress, mode, o.maxRevision);
    let queue = all.slice(0, lim.maxRecords);
    const deadline = Date.now() + lim.timeBoundMs;
    const corrected: string[] = [];
    let checked = 0;
    let failure: Error | null = null;
    for (;;) {
      // A round that asked nothing (its pause ran past the deadline: a busy event loop) keeps the last
      // round's failure: the leader was not heard from, which is not the same as running out of time.
      const before: Error | null = failure;
      let asked = 0;
      failure = null;
      const left: string[] = [];
      await inPool(queue, lim.inFlight, async (key) => {
        if (stopped || failure || Date.now() >= deadline) { left.push(key); return; }
        const basis = o.view.basis(key);
        if (!basis || !wanted(mode, o.progress, basis.value)) { checked++; return; }
        let rec: LeaderRecord | null;
        asked++;
        try {
          rec = await o.leader(key);
        } catch (err) {
          // The leader away (an election after a kill): the rest waits for the next round instead of piling up timeouts.
          failure ??= err as Error;
          left.push(key);
          return;
        }
        checked++;
        if (!rec || rec.kind !== 'PUT' || !rec.parsed || !o.accept(key, rec.value)) return;
        if (mode === 'loaded') {
          if (o.progress.ahead(rec.value, basis.value) && o.view.correct(key, basis, rec.value)) corrected.push(key);
        } else if (o.progress.ahead(basis.value, rec.value) && o.view.adopt(key, basis, { revision: rec.revision, kind: rec.kind, raw: rec.value, parsed: rec.parsed })) {
          corrected.push(key); // kept in the view, and written back (kv-view-progress.ts keepSettled)
        }
      });
      queue = left;
      if (asked === 0 && queue.length > 0) failure ??= before;
      if (!failure || stopped || queue.length === 0 || Date.now() + lim.retryMs >= deadline) break;
      await pause(lim.retryMs);
    }
    const unchecked = all.length - checked;
    const outcome = stopped ? 'stopped' : failure ? 'leader-unavailable' : queue.length > 0 ? 'timed-out' : 'done';
    const missing = outcome === 'done' && o.leaderKeys && mode === 'loaded' && o.maxRevision === undefined
      ? await findMissing(o, lim, deadline, () => stopped) : { found: [], absent: null };
    return { candidates: all.length, checked, corrected, unchecked, outcome, ...missing };
  };

  const say = mode === 'loaded' ? report : reportOutcomes;
  const done = run().then((r) => { say(o, lim, r, null); return r; }, (err: unknown) => {
    say(o, lim, null, err as Error);
    return { candidates: 0, checked: 0, corrected: [], found: [], absent: null, unchecked: 0, outcome: 'done' as const };
  });
  return {
    done,
    async stop() {
      stopped = true;
      wake?.();
      await done;
    },
  };
}

/**
 * The keys the leader lists and the view lacks: each looked up at the leader
 * (at most lim.maxRecords, none past DEADLINE), and shown where the leader's
 * last record is a PUT the store accepts and the view still lacks the key
 * (the watch may bring it meanwhile: adopt() keeps the watch's). A listing
 * or lookup that fails leaves the view as it is.
 */
async function findMissing<T>(o: CheckOptions<T>, lim: CheckLimits, deadline: number, stopped: () => boolean): Promise<{ found: string[]; absent: number | null }> {
  let keys: string[];
  try {
    keys = await o.leaderKeys!();
  } catch (err) {
    o.log.info({ bucket: o.bucket, err: (err as Error).message }, 'could not list the keys the stream leader holds; keys the loaded replica lacks, if any, show when they change');
    return { found: [], absent: null };
  }
  const absent = keys.filter((k) => o.view.basis(k) === undefined);
  const found: string[] = [];
  await inPool(absent.slice(0, lim.maxRecords), lim.inFlight, async (key) => {
    if (stopped() || Date.now() >= deadline || o.view.basis(key) !== undefined) return;
    const rec = await o.leader(key).catch(() => null);
    if (!rec || rec.kind !== 'PUT' || !rec.parsed || !o.accept(key, rec.value)) return;
    if (o.view.adopt(key, undefined, { revision: rec.revision, kind: rec.kind, raw: rec.value, parsed: rec.parsed })) found.push(key);
  });
  return { found, absent: absent.length };
}

/** What an operator needs to hear of one check: corrections (the server diverged), records left unchecked and why. */
function report<T>(o: CheckOptions<T>, lim: CheckLimits, r: CheckResult | null, err: Error | null): void {
  if (!r) {
    o.log.error({ bucket: o.bucket, err: err?.message }, 'checking the loaded records against the stream leader failed; showing them as loaded');
    return;
  }
  if (r.corrected.length > 0 || r.found.length > 0) {
    o.log.warn({ bucket: o.bucket, corrected: r.corrected.length, found: r.found.length, keys: [...r.corrected, ...r.found].slice(0, 5) },
      'the replica this hub\'s watch reads missed writes the stream leader holds (nats-server before 2.10 after a restart?); showing the leader\'s records');
  }
  if (r.outcome === 'stopped') return;
  if (o.maxRevision !== undefined) {
    // A sweep (every 30 s): only what it corrected is news; a leader away is said by the reload and the writes.
    o.log.debug({ bucket: o.bucket, checked: r.checked, unchecked: r.unchecked, outcome: r.outcome }, 'swept the unchanged open records against the stream leader');
    return;
  }
  if (r.outcome === 'leader-unavailable') {
    o.log.warn({ bucket: o.bucket, unchecked: r.unchecked, withinMs: lim.timeBoundMs },
      'the stream leader did not answer; the records just loaded that can still change are shown as loaded, unchecked');
  } else if (r.unchecked > 0) {
    o.log.info({ bucket: o.bucket, checked: r.checked, unchecked: r.unchecked, absent: r.absent, cap: lim.maxRecords, timedOut: r.outcome === 'timed-out' },
      'checked the newest records just loaded against the stream leader; the others are shown as loaded');
  } else {
    // absent: keys the leader holds that the reload did not deliver (null: not listed).
    o.log.debug({ bucket: o.bucket, checked: r.checked, absent: r.absent, found: r.found.length }, 'checked the records just loaded against the stream leader');
  }
}

/** The outcomes check after a leader election: what was written back, what was left unchecked. */
function reportOutcomes<T>(o: CheckOptions<T>, lim: CheckLimits, r: CheckResult | null, err: Error | null): void {
  if (!r) {
    o.log.error({ bucket: o.bucket, err: err?.message }, 'checking acknowledged outcomes at the new stream leader failed');
    return;
  }
  if (r.corrected.length > 0) {
    o.log.warn({ bucket: o.bucket, writtenBack: r.corrected.length, keys: r.corrected.slice(0, 5) },
      'the new stream leader holds earlier states of outcomes NATS had acknowledged (it missed writes; nats-server before 2.10 after a restart?); writing them back');
  }
  if (r.outcome === 'stopped') return;
  if (r.outcome === 'leader-unavailable' || r.unchecked > 0) {
    o.log.info({ bucket: o.bucket, checked: r.checked, unchecked: r.unchecked, cap: lim.maxRecords, outcome: r.outcome },
      'checked the newest acknowledged outcomes at the new stream leader; the others were not checked');
  } else {
    o.log.debug({ bucket: o.bucket, checked: r.checked }, 'checked acknowledged outcomes at the new stream leader');
  }
}
