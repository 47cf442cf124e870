// A NATS keyed store's read side: a BucketFollower (kv-watch.ts) that loads
// the bucket into the store's local view (kv-view.ts) and keeps it current.
// Every watch, the first and each replacement, is a reload of the bucket's
// last values (why: kv-watch.ts); the store is loaded once the first one
// caught up.
import type { JetStreamManager } from '@nats-io/jetstream';
import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { Logger } from '../../common/platform/log.js';
import { BentoError } from '../../common/protocol/errors.js';
import { withinDeadline } from './deadline.js';
import { leaderHoldsAt } from './kv-leader.js';
import type { KvView } from './kv-view.js';
import { BucketFollower } from './kv-watch.js';
import { decodeToken } from './names.js';

export interface FollowIntoDeps<T> {
  kv: KV;
  /** Asks the stream's leader (the watchdog's numbering check). */
  jsm: JetStreamManager;
  bucket: string;
  stream: string;
  log: Logger;
  view: KvView<T>;
}

/** Start following the bucket into the view; `loaded` resolves once the view holds the whole bucket and the watch is in place. */
export function followInto<T>(d: FollowIntoDeps<T>): { follower: BucketFollower; loaded: Promise<void> } {
  let markLoaded!: () => void;
  const loaded = new Promise<void>((r) => { markLoaded = r; });
  const follower = new BucketFollower({
    kv: d.kv, bucket: d.bucket, log: d.log, position: () => d.view.watchPosition,
    leaderHoldsAt: (seq, subject, data) => leaderHoldsAt(d.jsm, d.stream, seq, subject, data),
    onStart: () => d.view.beginReload(),
    onEntry: (e) => applyEntry(d, e),
    onCaughtUp: () => { d.view.endReload(); markLoaded(); },
  });
  follower.start();
  return { follower, loaded };
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
