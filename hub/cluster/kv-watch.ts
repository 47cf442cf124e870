// Follows a KV bucket for a store's local view: every watch, the first and
// each replacement, starts with the bucket's last value per key (a watch
// without a start revision) and then follows every change, for as long as the
// store is open.
//
// Why a replacement does not resume "after the last revision seen":
// nats-server 2.9.10 can number one stream differently on its replicas after
// kill -9 and restart (kv-leader.ts), and a watch is a consumer on ONE
// replica. A revision seen on one replica says nothing on another: resuming
// there skipped every change up to the old replica's numbering (or, on a
// replica numbered lower, delivered nothing at all while the bucket, asked
// through its leader, did not look ahead). So each new watch is a reload:
// onStart(), then its entries until one reports nothing more pending (delta
// 0; the view reconciles them by content, kv-view-content.ts), onCaughtUp(), then
// live changes in order.
//
// Why a watchdog: @nats-io/kv's watch is an ordered push consumer with one
// replica, living on one server. When that server dies (kill -9), the client
// notices only after two missed idle heartbeats (5 s each, then 30 s each
// once recreated), so a hub's view could sit still for a minute while the
// bucket moves on (seen in test/integration/cluster-faults.test.ts). Every
// second the follower asks the bucket (its leader) for its last revision. The
// watch is replaced when it delivered nothing for STALL_MS while there was
// more to deliver: its own last entry said more was pending (delta > 0) and
// it is below the bucket's last revision or has not caught up yet, or
// the bucket's last revision is above the watch's position and the leader
// holds the watch's last entry at that same revision (one numbering), or
// the numberings differ (or cannot be compared) and the bucket's last
// revision changed while the watch stood still. A position and a revision of
// two numberings are never compared: on a replica numbering lower, "the
// bucket is ahead" held forever and reloaded the bucket every few seconds.
import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { Logger } from '../../common/platform/log.js';
import { withinDeadline } from './deadline.js';

export interface FollowOptions {
  kv: KV;
  bucket: string;
  log: Logger;
  /** The last revision applied to the view in the current watch's numbering (moves while the watch delivers). */
  position: () => number;
  /** Does the stream's leader hold this message at this revision (kv-leader.ts leaderHoldsAt)? */
  leaderHoldsAt: (seq: number, subject: string, data: Uint8Array) => Promise<boolean | null>;
  /** A new watch begins: what it delivers until onCaughtUp is the bucket's last value per key. */
  onStart: () => void;
  onEntry: (e: KvWatchEntry) => void;
  /** The current watch delivered every key's last value; what follows are live changes. */
  onCaughtUp: () => void;
}

const POLL_MS = 1000;
const STALL_MS = 2000;
/** Before a new watch after one ended or failed to start. */
const REWATCH_MS = 500;
/**
 * How long a new watch may take to start. The client library creates its
 * consumer (and retries that) before watch() resolves, and the watchdog can
 * only replace a watch that exists: a restarted hub in the soak waited its
 * whole 60 s load with no watch, no entry and no log line (docs/cluster.md).
 */
const WATCH_START_MS = 10_000;

export class BucketFollower {
  private stopped = false;
  private stopIter: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  private poller: NodeJS.Timeout | null = null;
  /**
   * Poll state while the watch's position stands still: since when; whether
   * its numbering matches the leader's (asked once); the bucket's last
   * revision when first seen standing (the baseline when numberings differ);
   * since when it looks behind.
   */
  private still: { pos: number; since: number; same?: boolean | null; baseline?: number; behindSince?: number } | null = null;
  /** The bucket's last revision at the previous poll (or just before the watch was created). */
  private prevLast: number | null = null;
  /** The current watch's last entry said more is pending (or its first values are not all in). */
  private pendingKnown = true;
  /** The current watch's last entry: its revision, subject and bytes. */
  private lastEntry: { revision: number; subject: string; data: Uint8Array } | null = null;
  private restarts = 0;
  private checking = false;
  private pollFailingSince: number | null = null;
  private pollFailingSaid = false;
  /** The current watch delivered the bucket's last values (onCaughtUp was called). */
  private caughtUp = false;

  constructor(private readonly o: FollowOptions) {}

  get watchRestarts(): number { return this.restarts; }

  start(): void {
    this.loop = this.run();
    this.poller = setInterval(() => { void this.check(); }, POLL_MS);
    this.poller.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.poller) clearInterval(this.poller);
    this.poller = null;
    this.stopIter?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.follow();
      } catch (err) {
        if (!this.stopped) this.o.log.warn({ bucket: this.o.bucket, err: (err as Error).message }, 'bucket watch failed');
      }
      this.stopIter = null;
      if (this.stopped) break;
      this.o.log.warn({ bucket: this.o.bucket }, 'bucket watch ended; reloading the bucket\'s last values');
      await new Promise((r) => setTimeout(r, REWATCH_MS));
    }
  }

  /** One watch: the bucket's last values, then live changes until it ends or is stopped. */
  private async follow(): Promise<void> {
    // A stream with no message at all delivers nothing, so no entry would ever say "nothing pending".
    const state = await this.o.kv.status().then((s) => s.streamInfo.state, () => null);
    const empty = state?.messages === 0;
    // Taken before the watch exists: whatever the bucket holds beyond it, the watch must deliver.
    this.prevLast = state?.last_seq ?? null;
    // Past WATCH_START_MS, run() logs the failure and starts another watch; the late one is stopped if it still comes.
    const iter = await withinDeadline(this.o.kv.watch({}), WATCH_START_MS,
      () => new Error(`the watch did not start within ${WATCH_START_MS / 1000} s`), (late) => late.stop());
    this.stopIter = () => iter.stop();
    this.still = null;
    this.lastEntry = null;
    this.pendingKnown = !empty;
    if (this.stopped) iter.stop();
    this.o.onStart();
    this.caughtUp = false;
    if (empty) this.caughtUpNow();
    for await (const e of iter) {
      this.o.onEntry(e);
      this.pendingKnown = e.delta !== 0;
      this.lastEntry = { revision: e.revision, subject: `$KV.${this.o.bucket}.${e.rawKey}`, data: e.value };
      if (!this.caughtUp && e.delta === 0) this.caughtUpNow();
    }
  }

  private caughtUpNow(): void {
    this.caughtUp = true;
    this.o.onCaughtUp();
  }

  /** Replace a watch that stopped delivering while there was more to deliver. */
  private async check(): Promise<void> {
    if (this.stopped || !this.stopIter || this.checking) return;
    this.checking = true;
    try {
      await this.checkOnce();
      this.pollFailingSince = null;
      this.pollFailingSaid = false;
    } catch (err) {
      // NATS away or electing a leader: nothing to compare with. Said once per
      // stretch past STALL_MS * 5, so a watch left unchecked shows in the log.
      const now = Date.now();
      this.pollFailingSince ??= now;
      if (now - this.pollFailingSince > STALL_MS * 5 && !this.pollFailingSaid) {
        this.pollFailingSaid = true;
        this.o.log.warn({ bucket: this.o.bucket, err: (err as Error).message }, 'cannot ask the bucket for its state; its watch is not checked meanwhile');
      }
    } finally {
      this.checking = false;
    }
  }

  private async checkOnce(): Promise<void> {
    const state = (await this.o.kv.status()).streamInfo.state;
    const last = state.last_seq;
    const pos = this.o.position();
    // An empty bucket's watch delivers nothing, so only the bucket can say it is caught up. Checked here
    // too: when the bucket could not be asked before the watch (NATS just started, no stream leader yet),
    // a hub waited for an entry that never came and did not start within 60 s (a full test run).
    if (!this.caughtUp && state.messages === 0 && pos === 0) { this.caughtUpNow(); return; }
    this.o.log.debug({ bucket: this.o.bucket, at: pos, bucketAt: last, pending: this.pendingKnown }, 'bucket watch poll');
    const now = Date.now();
    const prev = this.prevLast;
    this.prevLast = last;
    // The watch moved since the previous poll: it was alive after that poll's look at the bucket.
    if (!this.still || this.still.pos !== pos) { this.still = { pos, since: now, ...(prev !== null ? { baseline: prev } : {}) }; return; }
    const st = this.still;
    // "More pending" with the watch at the bucket's last revision is stale
    // (seen after a 15,000-host fan-out: a needless reload of the whole bucket),
    // but only once the watch caught up: before, no later entry will say "nothing
    // pending", and a load would wait, silent, for as long as the bucket stood still.
    let behind = this.pendingKnown && (last !== pos || !this.caughtUp);
    if (!behind) {
      const e = this.lastEntry;
      if (st.same === undefined && last > pos && e && e.revision === pos) st.same = await this.o.leaderHoldsAt(pos, e.subject, e.data);
      if (last > pos && st.same === true) behind = true;
      else if (last !== pos || st.same === false || st.same === null) {
        // Another numbering (or no way to tell): only movement of the bucket says the watch missed something.
        st.baseline ??= last;
        behind = last !== st.baseline;
      }
    }
    if (!behind) { st.behindSince = undefined; return; }
    st.behindSince ??= now;
    if (now - st.behindSince < STALL_MS) return;
    this.still = null;
    this.restarts += 1;
    this.o.log.warn({ bucket: this.o.bucket, at: pos, bucketAt: last, pending: this.pendingKnown, loaded: this.caughtUp }, 'bucket watch stalled (its server died?); replacing it');
    this.stopIter?.();
  }
}
