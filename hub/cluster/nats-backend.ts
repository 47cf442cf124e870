// The cluster's StateBackend: every keyed store a KV bucket, job output a
// stream, events core NATS subjects, all on one NATS connection per hub and
// all named under the options' prefix (names.ts). Several hubs open the same
// backend state at once; each keeps its own local views.
import { jetstream, jetstreamManager, DiscardPolicy, StorageType, type JetStreamClient, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../../common/platform/log.js';
import { BentoError } from '../../common/protocol/errors.js';
import type { EventBus } from '../events/types.js';
import type { KeyedStore, OpenKeyedOptions, StateBackend } from '../store/types.js';
import { connectCluster } from './connection.js';
import { NatsEventBus } from './event-bus.js';
import { NatsJobOutputStore } from './job-output.js';
import { NatsKeyedStore } from './kv-store.js';
import { SlotGate } from './slot-gate.js';
import { untilAnswered } from './publish.js';
import { clusterNames, encodeToken, isValidStoreName, type ClusterNames } from './names.js';
import { leaderLast } from './kv-leader.js';
import type { ResolvedClusterOptions } from './options.js';
import { scanObjects, type ObjectMeta, type ObjectScanOptions } from './object-scan.js';
import { objectVersions, type ObjectVersions } from './object-version.js';
import { bucketMarkers, type BucketMarkers } from './marker-scan.js';
import type { StreamScanOptions } from './stream-scan.js';

/**
 * Opening a store: its bucket may have no leader yet (NATS restarting with
 * the hubs), and loading 45,000 hosts into the view takes a few seconds.
 */
const MIN_OPEN_TIMEOUT_MS = 60_000;
const DUPLICATE_WINDOW_NS = 120 * 1e9;
/** Bulk JetStream writes of one hub in flight at once (slot-gate.ts). */
const BULK_WRITES_IN_FLIGHT = 256;

interface Closable { close(): Promise<void> }

/** What kv-direct.ts needs of one bucket. */
export interface BucketHandle {
  bucket: string;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  kv: KV;
  requestTimeoutMs: number;
  writeTimeoutMs: number;
}

export class NatsStateBackend implements StateBackend {
  readonly kind = 'nats' as const;
  readonly names: ClusterNames;
  private readonly opened = new Set<Closable>();
  private bus: NatsEventBus | null = null;
  private closed = false;
  /** Job records, host facts, job output...: every store but one opened with `priority` writes through it. */
  private readonly gate = new SlotGate(BULK_WRITES_IN_FLIGHT);
  /**
   * Stores opened with `priority` (the holds store: claims, heartbeats)
   * get a NATS connection of their own. On the shared one, a hub's heartbeat
   * came back through its watch behind every job-record change of a
   * fan-out (the server and the client each handle one connection's
   * messages in order): 8.4 s late at 15,000 hosts, past its 6 s lease, and
   * the hub stopped vouching for its hosts in the middle of the fan-out.
   */
  private fence: Promise<{ nc: NatsConnection; js: JetStreamClient }> | null = null;

  private constructor(
    readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    /**
     * Admin requests that may take longer than a write attempt (an object's
     * chunks, a leader's record). Not creates: nats-server
     * 2.9 answers only one of several concurrent creates of one stream
     * (nats-io/nats-server#3677), so hubs starting together, or add-host calls
     * side by side on a fresh cluster, each sat out a whole write deadline
     * (10 s) for a reply that never came. A create is therefore sent in
     * request-timeout attempts (2 s) on the plain client and repeated until
     * openTimeoutMs: repeating is safe, a create of an existing stream with
     * the same settings answers with it (cluster-bucket-create).
     */
    private readonly admin: { js: JetStreamClient; jsm: JetStreamManager },
    private readonly o: ResolvedClusterOptions,
    private readonly log: Logger,
  ) {
    this.names = clusterNames(o.prefix);
  }

  /** Connect and check JetStream answers. Rejects with CLUSTER_UNAVAILABLE (or CONFIG_INVALID for unreadable files). */
  static async open(o: ResolvedClusterOptions, log: Logger): Promise<NatsStateBackend> {
    const nc = await connectCluster(o, log);
    try {
      const js = jetstream(nc, { timeout: o.requestTimeoutMs });
      const adminJs = jetstream(nc, { timeout: o.writeTimeoutMs });
      const jsm = await jetstreamManager(nc, { timeout: o.writeTimeoutMs, checkAPI: false });
      // Waits out a metadata leader election (a server just died, or NATS starts with the hubs).
      await untilAnswered(() => jsm.getAccountInfo(), openTimeoutMs(o));
      return new NatsStateBackend(nc, js, { js: adminJs, jsm }, o, log);
    } catch (err) {
      await nc.close().catch(() => undefined);
      throw new BentoError('CLUSTER_UNAVAILABLE', `NATS at ${o.servers.join(', ')} does not answer JetStream requests: ${(err as Error).message}`, { cause: err });
    }
  }

  async openKeyed<T>(name: string, opts: OpenKeyedOptions<T>): Promise<KeyedStore<T>> {
    this.assertOpen();
    if (!isValidStoreName(name)) throw new BentoError('INTERNAL', `invalid store name ${JSON.stringify(name)}`);
    const bucket = this.names.bucket(name);
    const log = this.log.child({ component: 'cluster-kv', bucket });
    await untilAnswered(() => new Kvm(this.js).create(bucket, { replicas: this.o.replicas, history: 1, storage: StorageType.File }), this.openTimeoutMs)
      .catch((err: unknown) => { throw unavailable(`cannot open bucket ${bucket}`, err); });
    // The store's own handle makes short requests (its watch, the watchdog's
    // probe): after a server dies, each retry must not sit out a long timeout.
    const conn = opts.priority ? await this.fenceConnection() : { nc: this.nc, js: this.js };
    const kv = await new Kvm(conn.js).open(bucket);
    const store = await NatsKeyedStore.open<T>({
      nc: conn.nc, js: conn.js, jsm: await jetstreamManager(conn.nc, { timeout: this.o.requestTimeoutMs, checkAPI: false }), kv, bucket, accept: opts.accept, ...(opts.progress ? { progress: opts.progress } : {}), log,
      requestTimeoutMs: this.o.requestTimeoutMs, writeTimeoutMs: this.o.writeTimeoutMs, ...(opts.priority ? {} : { gate: this.gate }),
    }, this.openTimeoutMs);
    return this.track(store);
  }

  async openOutput(): Promise<NatsJobOutputStore> {
    this.assertOpen();
    const stream = this.names.outputStream;
    // Short attempts (see `admin`), for the stream's creation and the store's own requests.
    const jsm = await jetstreamManager(this.nc, { timeout: this.o.requestTimeoutMs, checkAPI: false });
    await this.ensureStream(jsm, {
      name: stream, subjects: [this.names.outputSubjects], num_replicas: this.o.replicas, storage: StorageType.File,
      max_bytes: this.o.outputMaxBytes, discard: DiscardPolicy.Old, duplicate_window: DUPLICATE_WINDOW_NS,
    });
    const out = new NatsJobOutputStore({
      nc: this.nc, js: this.js, jsm,
      stream, subject: (id) => this.names.outputSubject(id), log: this.log.child({ component: 'cluster-output' }),
      requestTimeoutMs: this.o.requestTimeoutMs, writeTimeoutMs: this.o.writeTimeoutMs, gate: this.gate,
    });
    return this.track(out);
  }

  /**
   * A KV bucket read by key on demand rather than through a local view (for
   * records a hub needs only now and then, and which would cost too much
   * memory to hold for every host: kv-direct.ts). Created like openKeyed's.
   */
  async openBucket(name: string): Promise<BucketHandle> {
    this.assertOpen();
    if (!isValidStoreName(name)) throw new BentoError('INTERNAL', `invalid store name ${JSON.stringify(name)}`);
    const bucket = this.names.bucket(name);
    await untilAnswered(() => new Kvm(this.js).create(bucket, { replicas: this.o.replicas, history: 1, storage: StorageType.File }), this.openTimeoutMs)
      .catch((err: unknown) => { throw unavailable(`cannot open bucket ${bucket}`, err); });
    return {
      bucket, nc: this.nc, js: this.js, kv: await new Kvm(this.js).open(bucket),
      jsm: await jetstreamManager(this.nc, { timeout: this.o.requestTimeoutMs, checkAPI: false }),
      requestTimeoutMs: this.o.requestTimeoutMs, writeTimeoutMs: this.o.writeTimeoutMs,
    };
  }

  /**
   * KEY's last record in keyed store NAME as the stream's leader holds it
   * (not a replica that may lag): its value, or null when there is none or
   * it was deleted. Rejects when the leader does not answer, and when the
   * record is not JSON (PROTOCOL_MALFORMED: never taken for "none").
   */
  async leaderValue(name: string, key: string): Promise<unknown> {
    this.assertOpen();
    const bucket = this.names.bucket(name);
    const r = await leaderLast(this.admin.jsm, `KV_${bucket}`, `$KV.${bucket}.${encodeToken(key)}`);
    if (!r || r.kind !== 'PUT') return null;
    if (!r.parsed) throw new BentoError('PROTOCOL_MALFORMED', `${bucket}/${key}: the stream leader's record is not JSON`);
    return r.value;
  }

  /** This hub's name (cluster.hubName). */
  get hubName(): string {
    return this.o.hubName;
  }

  /**
   * A JetStream object store (stream `OBJ_<prefix>_<name>`), created with the
   * configured replicas if it does not exist. Its operations use the write
   * deadline per request: objects are moved in chunks, each acknowledged.
   */
  async openObjectStore(name: string): Promise<ObjectStore> {
    this.assertOpen();
    if (!isValidStoreName(name)) throw new BentoError('INTERNAL', `invalid object store name ${JSON.stringify(name)}`);
    const bucket = this.names.bucket(name);
    try {
      // Created in short attempts (see `admin`); the store handed out uses the write deadline. Its
      // opening asks JetStream too (the account's API), so it is retried with the create: alone, one
      // unanswered request during a leader election ended a hub's start (found by the CI soak).
      return await untilAnswered(async () => {
        await new Objm(this.js).create(bucket, { replicas: this.o.replicas, storage: StorageType.File });
        return new Objm(this.admin.js).open(bucket, false);
      }, this.openTimeoutMs);
    } catch (err) {
      throw unavailable(`cannot open object store ${bucket}`, err);
    }
  }

  /** Every object's metadata in object store NAME, a batch at a time (object-scan.ts; ObjectStore.list() holds all of it). */
  scanObjects(name: string, o?: ObjectScanOptions): AsyncGenerator<ObjectMeta> {
    this.assertOpen();
    return scanObjects(this.admin.js, this.names.bucket(name), o);
  }

  /** Compare-and-swap on the objects of object store NAME (object-version.ts): refresh a reused one, delete exactly a scanned one. */
  objectVersions(name: string): ObjectVersions {
    this.assertOpen();
    return objectVersions({ nc: this.nc, ...this.admin, bucket: this.names.bucket(name), attemptTimeoutMs: this.o.requestTimeoutMs, totalMs: this.o.writeTimeoutMs });
  }

  /** The deletion markers of keyed store NAME's bucket (marker-scan.ts), or null when the bucket does not exist. */
  kvMarkers(name: string, o?: StreamScanOptions): Promise<BucketMarkers | null> {
    this.assertOpen();
    return bucketMarkers({ ...this.admin, bucket: this.names.bucket(name), ...(o ? { scan: o } : {}) });
  }

  /** The hub's event bus on this connection (one per backend). */
  eventBus(): EventBus {
    this.assertOpen();
    this.bus ??= this.track(new NatsEventBus({ nc: this.nc, names: this.names, log: this.log.child({ component: 'cluster-bus' }) }));
    return this.bus;
  }

  /** Close what is still open (stores wait for their writes in flight), then the connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.opened].map((c) => c.close()));
    this.opened.clear();
    // Not drain(): with NATS unreachable it would wait; the stores already settled their writes.
    const fence = await this.fence?.catch(() => null);
    await Promise.all([this.nc.close().catch(() => undefined), fence?.nc.close().catch(() => undefined)]);
  }

  /** The priority stores' connection (see `fence`), opened with the first of them. */
  private fenceConnection(): Promise<{ nc: NatsConnection; js: JetStreamClient }> {
    this.fence ??= connectCluster(this.o, this.log.child({ connection: 'fence' })).then((nc) => ({ nc, js: jetstream(nc, { timeout: this.o.requestTimeoutMs }) }));
    const f = this.fence;
    f.catch(() => { if (this.fence === f) this.fence = null; }); // a failed open is tried again by the next one
    return f;
  }

  /** Remember C so close() can close it if its owner did not (closing twice is harmless). */
  private track<C extends Closable>(c: C): C {
    this.opened.add(c);
    return c;
  }

  private get openTimeoutMs(): number {
    return openTimeoutMs(this.o);
  }

  private assertOpen(): void {
    if (this.closed) throw new BentoError('INTERNAL', 'the cluster backend is closed');
  }

  private async ensureStream(jsm: JetStreamManager, cfg: Partial<StreamConfig> & { name: string }): Promise<void> {
    try {
      const info = await untilAnswered(() => jsm.streams.info(cfg.name).catch(async (err: unknown) => {
        if ((err as Error).message !== 'stream not found') throw err;
        return jsm.streams.add(cfg);
      }), this.openTimeoutMs);
      if (info.config.num_replicas !== cfg.num_replicas || info.config.max_bytes !== cfg.max_bytes) {
        this.log.warn({ stream: cfg.name, replicas: info.config.num_replicas, maxBytes: info.config.max_bytes }, 'the output stream exists with other limits than configured; keeping them (change them with the nats CLI)');
      }
    } catch (err) {
      throw unavailable(`cannot open stream ${cfg.name}`, err);
    }
  }
}

/** Opening the backend or a store waits this long for JetStream, a bucket or a stream to answer (and load). */
function openTimeoutMs(o: ResolvedClusterOptions): number {
  return Math.max(MIN_OPEN_TIMEOUT_MS, o.writeTimeoutMs);
}

function unavailable(what: string, err: unknown): BentoError {
  return err instanceof BentoError ? err : new BentoError('CLUSTER_UNAVAILABLE', `${what}: ${(err as Error).message}`, { cause: err });
}
