// A NATS keyed store's read side: a BucketFollower (kv-watch.ts) that loads
// the bucket into the store's local view (kv-view.ts) and keeps it current.
// Every watch, the first and each replacement, is a reload of the bucket's
// last values (why: kv-watch.ts); the store is loaded once the first one
// caught up. With the store's RecordProgress, every reload's records that
// can still change are then checked against the stream leader (kv-verify.ts):
// the first load is done only once that check is (or its time bound passed),
// so a fresh reader never reads what the check would correct (records the
// replica holds older, and keys it lacks: the check lists the leader's keys
// and looks up those this reload did not deliver); later reloads
// are checked in the background. And each time the stream elects a new
// leader (its advisory), the view's irreversible records are checked at it
// (kv-verify.ts mode 'outcomes'): a leader that missed writes loses
// acknowledged outcomes, which the watch cannot show. And every 30 s the
// open records that did not change since the previous sweep are checked
// (a watch on a replica that missed a write never delivers it).
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { Logger } from '../../common/platform/log.js';
import { BentoError } from '../../common/protocol/errors.js';
import { withinDeadline } from './deadline.js';
import type { RecordProgress } from '../store/types.js';
import { leaderHoldsAt, leaderKeys, leaderLast } from './kv-leader.js';
import { CHECK_LIMITS, startViewCheck, SWEEP_LIMITS, SWEEP_MS, type CheckLimits, type CheckOptions, type ViewCheck } from './kv-verify.js';
import type { KvView } from './kv-view.js';
import { BucketFollower } from './kv-watch.js';
import { decodeToken, encodeToken } from './names.js';

export interface FollowIntoDeps<T> {
  kv: KV;
  /** Asks the stream's leader (the watchdog's numbering check). */
  jsm: JetStreamManager;
  bucket: string;
  stream: string;
  log: Logger;
  view: KvView<T>;
  /** With check: the stream's leader elections are heard on it (the outcomes check). */
  nc?: NatsConnection;
  /** Given: each reload's records are checked against the stream leader (kv-verify.ts). */
  check?: { accept: (key: string, value: unknown) => value is T; progress: RecordProgress<T>; limits?: Partial<CheckLimits> };
}

/**
 * Start following the bucket into the view; `loaded` resolves once the view
 * holds the whole bucket, the watch is in place and the first check is over.
 * stop(): no further reload and no check runs after it resolves.
 */
export function followInto<T>(d: FollowIntoDeps<T>): { loaded: Promise<void>; stop: () => Promise<void> } {
  let isLoaded = false;
  let resolveLoaded!: () => void;
  const loaded = new Promise<void>((r) => { resolveLoaded = r; });
  let check: ViewCheck | null = null;
  /** Checks stopped by a reload, still finishing their lookups in flight. */
  let stopping: Promise<unknown> = Promise.resolve();
  let bound: NodeJS.Timeout | null = null;
  const markLoaded = (): void => {
    isLoaded = true;
    if (bound) clearTimeout(bound);
    resolveLoaded();
  };
  /**
   * SEEN: the keys the reload delivered (deleted ones too). A key the leader
   * holds beyond them is one the replica lacks (kv-verify.ts findMissing);
   * without the filter every deleted key (a marker stays per pruned job)
   * would be looked up at every reload. The set lives as long as the check.
   */
  const caughtUp = (seen: ReadonlySet<string>): void => {
    const c = d.check;
    if (!c) { markLoaded(); return; }
    check = viewCheck(d, c, {
      leaderKeys: async () => (await leaderKeys(d.jsm, d.stream, d.bucket)).filter((k) => !seen.has(k)),
    });
    if (isLoaded) return;
    // A check stopped by the next reload does not count: that reload's check does, within the first one's bound.
    check.done.then((r) => { if (r.outcome !== 'stopped') markLoaded(); }, () => undefined);
    bound ??= setTimeout(markLoaded, c.limits?.timeBoundMs ?? CHECK_LIMITS.timeBoundMs);
  };
  const follower = new BucketFollower({
    kv: d.kv, bucket: d.bucket, log: d.log, position: () => d.view.watchPosition,
    leaderHoldsAt: (seq, subject, data) => leaderHoldsAt(d.jsm, d.stream, seq, subject, data),
    // A check still running would look up records this reload is about to replace: stopped (its answers in flight stay safe, kv-view-content.ts correct).
    onStart: () => {
      if (check) stopping = Promise.all([stopping, check.stop()]);
      check = null;
      d.view.beginReload();
    },
    onEntry: (e) => applyEntry(d, e),
    onCaughtUp: () => caughtUp(d.view.endReload()),
  });
  follower.start();
  const ready = (): boolean => isLoaded && !d.view.isReloading;
  const elections = watchElections(d, ready);
  const sweeps = sweepOpenRecords(d, ready);
  return {
    loaded,
    stop: async () => {
      await follower.stop();
      if (bound) clearTimeout(bound);
      await elections.stop();
      await sweeps.stop();
      await check?.stop();
      await stopping;
    },
  };
}

type Check<T> = NonNullable<FollowIntoDeps<T>['check']>;

/** A check of the view against the stream's leader (kv-verify.ts), with the store's guard and limits, and EXTRA. */
function viewCheck<T>(d: FollowIntoDeps<T>, c: Check<T>, extra: Partial<CheckOptions<T>>): ViewCheck {
  return startViewCheck({
    bucket: d.bucket, log: d.log, view: d.view, accept: c.accept, progress: c.progress, ...(c.limits ? { limits: c.limits } : {}),
    leader: (key) => leaderLast(d.jsm, d.stream, `$KV.${d.bucket}.${encodeToken(key)}`),
    ...extra,
  });
}

/**
 * At each leader election of the stream, once the view is loaded and not
 * reloading (a reload reconciles every key anyway, kv-view-content.ts): check the
 * view's irreversible records at the new leader. One check at a time; a new
 * election stops the running one.
 */
function watchElections<T>(d: FollowIntoDeps<T>, ready: () => boolean): { stop: () => Promise<void> } {
  const c = d.check;
  if (!c || !d.nc) return { stop: async () => undefined };
  let running: ViewCheck | null = null;
  let sub: Subscription | null = null;
  try {
    sub = d.nc.subscribe(`$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.${d.stream}`, {
      callback: (err) => {
        if (err || !ready()) return;
        void running?.stop();
        running = viewCheck(d, c, { mode: 'outcomes' });
      },
    });
  } catch (err) {
    d.log.warn({ bucket: d.bucket, err: (err as Error).message }, 'cannot hear the stream\'s leader elections; acknowledged outcomes a new leader lost are found at the next reload only');
  }
  return {
    stop: async () => {
      try { sub?.unsubscribe(); } catch { /* connection closed */ }
      await running?.stop();
    },
  };
}

/**
 * Every SWEEP_MS, once loaded and not reloading: the view's records that can
 * still change and are at or below the revision it knew at the previous
 * sweep (unchanged since) are checked at the leader, with SWEEP_LIMITS. One
 * sweep at a time.
 */
function sweepOpenRecords<T>(d: FollowIntoDeps<T>, ready: () => boolean): { stop: () => Promise<void> } {
  const c = d.check;
  if (!c) return { stop: async () => undefined };
  let upTo = 0;
  let running: ViewCheck | null = null;
  const timer = setInterval(() => {
    const below = upTo;
    upTo = d.view.knownRevision;
    if (!ready() || below === 0 || running) return;
    const check = viewCheck(d, c, { maxRevision: below, limits: { ...SWEEP_LIMITS, ...c.limits } });
    running = check;
    void check.done.finally(() => { if (running === check) running = null; });
  }, SWEEP_MS);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running?.stop();
    },
  };
}

/** LOADED, or CLUSTER_UNAVAILABLE after timeoutMs. */
export function loadedWithin(loaded: Promise<void>, timeoutMs: number, bucket: string): Promise<void> {
  return withinDeadline(loaded, timeoutMs, () => new BentoError('CLUSTER_UNAVAILABLE', `bucket ${bucket} did not load within ${timeoutMs} ms`));
}

/** One watch entry into the view: the key decoded, a PUT's JSON parsed (a record that does not parse reads as absent). */
function applyEntry<T>(d: FollowIntoDeps<T>, e: KvWatchEntry): void {
  const key = decodeToken(e.key);
  if (key === null) {
    d.log.warn({ bucket: d.bucket, key: e.key }, 'ignoring a key no Bento hub wrote');
    d.view.passed(e.revision);
    return;
  }
  let value: unknown;
  let parsed = false;
  if (e.operation === 'PUT') {
    try { value = JSON.parse(new TextDecoder().decode(e.value)); parsed = true; } catch { parsed = false; }
  }
  d.view.fromWatch(key, e.revision, e.operation, value, parsed);
}
