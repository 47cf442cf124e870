// The hub's state seam. Everything the hub must not lose goes through these
// interfaces, never through a file path: the embedded single hub implements
// them with files (file-backend.ts: journal.ts, job-log.ts), unit tests
// with memory, and a cluster of hubs with NATS JetStream (a KV bucket per
// keyed store, a stream for job output). Every implementation passes the same
// contract tests (test/contract/keyed-store.ts, job-output.ts).
//
// The shape follows what JetStream KV gives, so the cluster is a second
// implementation, not a branch through the hub:
//   - reads come from a local view and never wait (a cluster backend keeps
//     that view current by watching its bucket);
//   - a write resolves once it is durable (file: the fdatasync covering it;
//     JetStream: the server's ack), never earlier;
//   - every record carries a revision, and a write can demand the revision
//     it read (compare-and-swap), so a stale writer cannot overwrite newer
//     state (a hub frozen for 30 s, then resumed).
import type { OutputStream } from '../../common/protocol/messages.js';

/** A record with the revision its store gave it (JetStream KV: the entry's sequence). */
export interface Versioned<T> {
  readonly value: T;
  /** > 0, strictly increasing per store across all keys. */
  readonly revision: number;
}

export interface WriteOptions {
  /**
   * Compare-and-swap: write only if the key's current revision is exactly
   * this; 0 means "the key must not exist". On a mismatch the promise rejects
   * with BentoError STATE_CONFLICT and nothing changes.
   */
  expectRevision?: number;
  /**
   * With expectRevision: the caller's own protocol guarantees that no other
   * writer writes this key from this revision at the same time (only a
   * writer that will notice at its next compare-and-swap, because it first
   * wrote with an exact one; hub/store/jobs.ts explains when). A store whose
   * exact compare-and-swap under racing writers costs extra (NATS before
   * 2.9.21 serializes such writes per bucket, hub/cluster/kv-cas.ts) may then
   * check the key's revision alone. Stores with one writer ignore it.
   */
  soleWriter?: boolean;
  /**
   * Nobody waits for this change soon (a job's dispatched and running
   * records: the agent holds the job meanwhile). A store may hold it back
   * for a moment to join a later commit (file journal: at most EVENTUAL_MS)
   * and drop it when a newer change of the same key comes first. Readers see
   * it at once either way; the promise still resolves once it is durable.
   */
  eventually?: boolean;
}

/** A change seen by a watcher: a value set (by this hub or another) or a key deleted. */
export type StoreChange<T> =
  | { op: 'set'; key: string; value: T; revision: number }
  | { op: 'delete'; key: string; revision: number };

/**
 * A durable key -> record map.
 *
 * Guarantees every implementation must keep (the contract tests check each):
 *   1. get/entry/has/keys/values/size read the local view synchronously.
 *   2. set() without expectRevision is visible to readers on this hub at
 *      once, and its promise resolves with the new revision once durable.
 *      With expectRevision, it is visible no later than its promise resolves.
 *   3. A rejected write (STATE_WRITE_FAILED: disk full, engine unreachable)
 *      is retried by the store until it is durable or superseded; the local
 *      view keeps the newest value meanwhile. A rejected CAS (STATE_CONFLICT)
 *      changes nothing.
 *   4. Revisions are > 0 and strictly increase within one store; entry(k)
 *      returns the revision of the last set of k. delete() with
 *      expectRevision follows the same compare-and-swap rule.
 *   5. After close() and a reopen of the same backing state, every write
 *      whose promise resolved is there with its revision; nothing else is
 *      invented (a torn write is dropped, not half-applied).
 *   6. watch() reports every change after the call, this hub's own included,
 *      in revision order; a throwing watcher never breaks the store. (NATS:
 *      another hub's change that a later one of its key replaced before this
 *      hub's watch read it is seen as that later one; a bucket keeps one
 *      revision per key, kv-view-skipped.ts.)
 *   7. Values are validated on the way in from the backing state (the
 *      `accept` guard given at open): a record that fails it is dropped with
 *      a warning, never handed to callers.
 */
export interface KeyedStore<T> {
  get(key: string): T | undefined;
  entry(key: string): Versioned<T> | undefined;
  has(key: string): boolean;
  keys(): IterableIterator<string>;
  values(): IterableIterator<T>;
  readonly size: number;
  /**
   * KEY's record as the store itself holds it now, past any lag of this
   * hub's view (a cluster: the bucket stream's leader, never a replica;
   * file, memory: the view, which is the store): what this hub will show
   * once its view has caught up with every write acknowledged so far.
   * undefined when absent, deleted or failing `accept`. Rejects
   * (CLUSTER_UNAVAILABLE) when the store does not answer. Costs a round trip
   * on a networked store: for a decision the view may be behind on.
   */
  latest(key: string): Promise<Versioned<T> | undefined>;
  /** Resolves with the record's new revision once durable. */
  set(key: string, value: T, opts?: WriteOptions): Promise<number>;
  /** Resolves once the deletion is durable; a missing key resolves at once (unless expectRevision says otherwise). */
  delete(key: string, opts?: WriteOptions): Promise<void>;
  /** Returns the unsubscribe function. */
  watch(fn: (change: StoreChange<T>) => void): () => void;
  /** Resolves when every write issued so far is durable or has failed. */
  settled(): Promise<void>;
  /**
   * Stop retrying this hub's unacknowledged write of KEY (its caller was told
   * it failed, and it must not land later). An attempt already on the wire
   * may still land: whoever abandons watches for that. Stores whose writes
   * show at once (file, memory) need not implement it: their failed write is
   * in the view, and is deleted like any record.
   */
  abandon?(key: string): void;
  close(): Promise<void>;
  /**
   * True when set() and delete() change the view and take their revision at
   * once, and writes become durable in the order they were made (a later
   * write resolving means every earlier one is on disk, or was rewritten with
   * it): a writer may issue a record's next write before the previous one is
   * durable (JobStore does, so a job's dispatched, running and end records
   * share group commits instead of waiting one commit each). The file journal,
   * which one process owns; not a networked store.
   */
  readonly ordered?: boolean;
  /**
   * True while writes wait for a turn (a networked store that caps its
   * requests in flight, hub/cluster/slot-gate.ts, has reached the cap): a
   * writer may hold an `eventually` write back longer, so that a newer
   * write of the same key replaces it (job-writes.ts).
   */
  readonly busy?: boolean;
}

/** One line of a job's output. `seq` orders stored and live lines, so a follower joins them with no gap and no repeat. */
export interface OutputLine {
  /** 1, 2, 3, ... per job, assigned by append(). */
  seq: number;
  /** The rebuild's stdout or stderr, or the agent's own note (common/protocol/messages.ts OutputStream). */
  stream: OutputStream;
  data: string;
  /**
   * When the hub stored it: ms since the epoch, set by append() (the dashboard's
   * per-line timestamps). null only for lines stored before hubs kept one.
   */
  ts: number | null;
  /**
   * Who numbered it (read with `identity`; otherwise absent): in a cluster a
   * job can have several writers (its host moved to another hub mid-job, and
   * the old hub may still store lines it published), and each numbers its own
   * lines. `w` is the writer's tag as its live lines carried it on the bus
   * ('' or absent: no tag, an older hub or a single hub's store), `ws` the
   * seq that writer gave the line (what its live line said; absent: `seq`).
   * `held`: not stored yet (this hub's writer still has it), so its `seq` is
   * the writer's guess of its place, not its place.
   */
  w?: string;
  ws?: number;
  held?: boolean;
}

/** read() options: `identity` adds w, ws and held to each line (OutputLine). */
export interface OutputReadOptions { afterSeq?: number; limitBytes?: number; identity?: boolean }

/**
 * Job output: an append-only log per job (file: state/jobs/ID.log; cluster: a
 * stream subject per job). Not record-by-record durable: the job record is
 * what "acknowledged" means; output is best effort, in order.
 */
export interface JobOutputStore {
  /**
   * Append one line; returns the seq and the timestamp it was given (`at`, or
   * now). `at`: a line that came earlier than it is stored (the tail of a
   * capped job, held in memory until its end: store/output-cap.ts) keeps the
   * time it came. Never blocks the caller. `w`: the tag of the writer that
   * numbered it, where a job can have several (a cluster): its live line
   * carries it, so followers never compare seqs of two writers.
   */
  append(jobId: string, stream: OutputLine['stream'], data: string, at?: number): { seq: number; ts: number; w?: string };
  /** The lines stored for a job, in order, starting after `afterSeq` (default 0); [] for an unknown job. */
  read(jobId: string, opts?: OutputReadOptions): Promise<OutputLine[]>;
  /**
   * Before this hub appends to a job another hub started (its host moved here
   * mid-job): continue the job's seq where its stored output ends. Without
   * it, a cluster's first append finds out the hard way (renumbering, logged);
   * one hub never needs it (file, memory: nothing to do).
   */
  resume(jobId: string): Promise<void>;
  /** The tag this store's writer of a job numbers its lines under (append()'s `w`), if it has one now. */
  writerTag?(jobId: string): string | undefined;
  /** The job ended: flush what is buffered and release its resources. */
  end(jobId: string): Promise<void>;
  /** Forget a job's output (history pruning). */
  remove(jobId: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Where a hub's state lives. `openKeyed` opens (creating if needed) one named
 * keyed store: 'jobs' (job records) and 'hosts' (last known host facts) today.
 */
export interface OpenKeyedOptions<T> {
  /** A record this store may hold (others read as absent). */
  accept: (key: string, value: unknown) => value is T;
  /**
   * Writes that must never wait behind the hub's bulk writes (a backend
   * that queues them, hub/cluster/slot-gate.ts): the holds store, whose
   * heartbeats and claims are the fence. Ignored where nothing queues.
   */
  priority?: boolean;
  /**
   * How a record of this store moves on, for a store whose reads may come
   * from a replica that missed writes (nats-server 2.9.10 after kill -9 and
   * restart: a hub's view, loaded from one replica, can hold an older state
   * of a record than the stream's leader, docs/cluster.md "Reads from a
   * replica that diverged"). Given, such a store checks the records it
   * loaded that can still change against the leader and shows the leader's
   * where it is a later state (hub/cluster/kv-verify.ts). The file and
   * memory backends read what they wrote and ignore it.
   */
  progress?: RecordProgress<T>;
}

/** Which of two states of one record is the later one (OpenKeyedOptions.progress). */
export interface RecordProgress<T> {
  /** The record never changes again (a finished job): not checked. */
  settled(v: T): boolean;
  /** The LEADER's record is a later state of the same record than the VIEW's. */
  ahead(leader: T, view: T): boolean;
  /**
   * No write ever takes the record back from this state (an agent's outcome).
   * A bucket that shows it in an earlier state later lost an acknowledged
   * write, and the view keeps it (hub/cluster/kv-view-progress.ts).
   */
  irreversible(v: T): boolean;
}

export interface StateBackend {
  readonly kind: 'file' | 'memory' | 'nats';
  openKeyed<T>(name: string, opts: OpenKeyedOptions<T>): Promise<KeyedStore<T>>;
  openOutput(): Promise<JobOutputStore>;
  close(): Promise<void>;
}
