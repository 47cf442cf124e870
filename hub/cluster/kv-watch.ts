// Follows a KV bucket for a store's local view: its last value per key at
// start, then every change, in revision order, for as long as the store is
// open.
//
// Why a watchdog: @nats-io/kv's watch is an ordered push consumer with one
// replica, living on one server. When that server dies (kill -9), the client
// notices only after two missed idle heartbeats (5 s each, then 30 s each
// once recreated), so a hub's view could sit still for a minute while the
// bucket moves on (seen in test/integration/cluster-faults.test.ts). Every
// second the follower asks the bucket for its last revision; if the bucket is
// ahead and the watch made no progress for STALL_MS, the watch is replaced by
// a new one starting right after the last revision seen. Nothing is skipped
// (every revision after that is delivered) and nothing is repeated.
import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { Logger } from '../../common/platform/log.js';

export interface FollowOptions {
  kv: KV;
  bucket: string;
  log: Logger;
  /** The last revision applied to the view (the follower resumes after it). */
  position: () => number;
  onEntry: (e: KvWatchEntry) => void;
}

const POLL_MS = 1000;
const STALL_MS = 2000;
/** Before a new watch after one ended or failed to start. */
const REWATCH_MS = 500;

export class BucketFollower {
  private stopped = false;
  private stopIter: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  private poller: NodeJS.Timeout | null = null;
  private behind: { since: number; at: number } | null = null;
  private restarts = 0;
  private checking = false;
  private markLive: () => void = () => undefined;
  /** Resolves once the first watch is in place: every change after that reaches onEntry. */
  readonly live: Promise<void> = new Promise((r) => { this.markLive = r; });

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
      const from = this.o.position();
      try {
        const iter = await this.o.kv.watch(from > 0 ? { resumeFromRevision: from + 1 } : {});
        this.stopIter = () => iter.stop();
        this.markLive();
        if (this.stopped) iter.stop();
        for await (const e of iter) this.o.onEntry(e);
      } catch (err) {
        if (!this.stopped) this.o.log.warn({ bucket: this.o.bucket, err: (err as Error).message }, 'bucket watch failed');
      }
      this.stopIter = null;
      if (this.stopped) break;
      this.o.log.warn({ bucket: this.o.bucket, from: this.o.position() + 1 }, 'bucket watch ended; following the bucket again');
      await new Promise((r) => setTimeout(r, REWATCH_MS));
    }
  }

  /** Restart a watch that stopped delivering while the bucket moved on. */
  private async check(): Promise<void> {
    if (this.stopped || !this.stopIter || this.checking) return;
    let last: number;
    this.checking = true;
    try {
      last = (await this.o.kv.status()).streamInfo.state.last_seq;
    } catch {
      return; // NATS away or electing a leader: nothing to compare with
    } finally {
      this.checking = false;
    }
    const pos = this.o.position();
    if (last <= pos) { this.behind = null; return; }
    const now = Date.now();
    if (!this.behind || this.behind.at !== pos) { this.behind = { since: now, at: pos }; return; }
    if (now - this.behind.since < STALL_MS) return;
    this.behind = null;
    this.restarts += 1;
    this.o.log.warn({ bucket: this.o.bucket, at: pos, bucketAt: last }, 'bucket watch stalled (its server died?); replacing it');
    this.stopIter?.();
  }
}
