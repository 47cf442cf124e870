// The NATS backend under faults, on real 3-node JetStream clusters (one per
// test: each kills servers). kill -9 of the server leading a stream while a
// hub writes: nothing acknowledged is lost, writes resume within seconds, the
// other hub's view follows. NATS entirely gone: writes reject with
// STATE_WRITE_FAILED in bounded time, reads answer from the local view, and
// the store lands its writes once NATS is back. Timings are printed (#) for
// the report; the assertions are about correctness and the write deadline.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { createLogger, silentLogger } from '../../common/platform/log.js';
import { BentoError } from '../../common/protocol/errors.js';
import { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import { parseClusterOptions } from '../../hub/cluster/options.js';
import type { HubEvent } from '../../hub/events/types.js';
import type { KeyedStore } from '../../hub/store/types.js';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats.js';
import { sleep, waitFor } from '../helpers/proc.js';

interface Rec { n: number }
const isRec = (_k: string, v: unknown): v is Rec => typeof (v as Rec | null)?.n === 'number';
// BENTO_TEST_LOG=1 shows the backends' own log (reconnects, retries, watch restarts) on stderr.
const log = process.env['BENTO_TEST_LOG'] ? createLogger({ name: 'cluster-faults', level: 'debug' }) : silentLogger();

// The output stream reserves its size on every server, and the test servers allow 1 GB each: the default
// (1 GiB) left no room once the buckets held a few bytes, so creating it failed with "insufficient storage"
// whenever the servers had already counted them (one CI-style run, 2026-12-07).
const OUTPUT_MAX = 16 * 1024 * 1024;

function open(cluster: NatsCluster, hubName: string, extra: Record<string, unknown> = {}): Promise<NatsStateBackend> {
  return NatsStateBackend.open(parseClusterOptions({ servers: cluster.urls, hubName, prefix: 'faults', outputMaxBytes: OUTPUT_MAX, ...extra }), log);
}

/** The node holding the (only) consumer of STREAM. */
async function consumerHost(cluster: NatsCluster, stream: string): Promise<number> {
  const nc = await connect({ servers: cluster.urls, timeout: 5000 });
  try {
    const jsm = await jetstreamManager(nc);
    const consumers = await jsm.consumers.list(stream).next();
    assert.equal(consumers.length, 1, `one consumer on ${stream}`);
    const i = cluster.nodes.findIndex((n) => n.name === consumers[0]!.cluster?.leader);
    assert.ok(i >= 0, `consumer host ${String(consumers[0]!.cluster?.leader)}`);
    return i;
  } finally {
    await nc.close();
  }
}

function codeOf(err: unknown): string {
  return err instanceof BentoError ? err.code : String(err);
}

interface Written { key: string; n: number; revision: number; issuedAt: number; ackedAt: number }

/** Keep CONCURRENCY writes of fresh keys in flight until stop() says so; every outcome is recorded. */
function writeLoop(store: KeyedStore<Rec>, concurrency: number): { acked: Written[]; failed: Array<{ key: string; code: string }>; stop(): Promise<void> } {
  const acked: Written[] = [];
  const failed: Array<{ key: string; code: string }> = [];
  let n = 0;
  let stopping = false;
  const worker = async (): Promise<void> => {
    while (!stopping) {
      const i = n++;
      const key = `w${i}`;
      const issuedAt = Date.now();
      try {
        const revision = await store.set(key, { n: i });
        acked.push({ key, n: i, revision, issuedAt, ackedAt: Date.now() });
      } catch (err) {
        failed.push({ key, code: codeOf(err) });
      }
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  return { acked, failed, async stop() { stopping = true; await Promise.all(workers); } };
}

test('kill -9 of the bucket\'s stream leader while writing: every acknowledged write survives, writes resume, the other hub follows', async () => {
  const cluster = await startNatsCluster();
  const opened: NatsStateBackend[] = [];
  try {
    const a = await open(cluster, 'hub-a');
    const b = await open(cluster, 'hub-b');
    opened.push(a, b);
    const sa = await a.openKeyed<Rec>('state', { accept: isRec });
    const sb = await b.openKeyed<Rec>('state', { accept: isRec });
    const loop = writeLoop(sa, 8);
    await waitFor('writes flowing', () => loop.acked.length >= 200 || null, 20_000);
    const leader = await cluster.streamLeader('KV_faults_state');
    const killedAt = Date.now();
    await cluster.kill(leader);
    const before = loop.acked.length;
    // Resumed: a write issued after the kill is acknowledged.
    const first = await waitFor('a write issued after the kill acknowledged', () => loop.acked.find((w) => w.issuedAt > killedAt) ?? null, 30_000, 20);
    await waitFor('writes flowing again', () => loop.acked.filter((w) => w.issuedAt > killedAt).length >= 200 || null, 30_000);
    await loop.stop();
    await sa.settled();
    const stallMs = first.ackedAt - killedAt;
    const inFlightAtKill = loop.acked.filter((w) => w.issuedAt <= killedAt && w.ackedAt > killedAt);
    const slowest = Math.max(...inFlightAtKill.map((w) => w.ackedAt - killedAt), 0);
    console.log(`# kill -9 of the KV stream leader: first write issued after the kill acked after ${stallMs} ms; ${inFlightAtKill.length} writes in flight at the kill, all acked within ${slowest} ms; ${loop.acked.length} acked (${before} before the kill), ${loop.failed.length} rejected`);
    // Nothing was rejected: a leader election fits in the default 10 s write deadline.
    assert.deepEqual(loop.failed, []);

    // The other hub's view followed through the election (its watch survived, or was replaced).
    const lastWrite = loop.acked.reduce((m, w) => (w.revision > m.revision ? w : m));
    await waitFor('hub-b view current', () => sb.entry(lastWrite.key)?.revision === lastWrite.revision || null, 20_000);
    console.log(`# hub-b's view held the last write ${Date.now() - lastWrite.ackedAt} ms after its ack (${Date.now() - killedAt} ms after the kill)`);

    // A fresh connection (a hub started now) reads every acknowledged write with its revision.
    const c = await open(cluster, 'hub-c');
    opened.push(c);
    const sc = await c.openKeyed<Rec>('state', { accept: isRec });
    const missing = loop.acked.filter((w) => sc.entry(w.key)?.revision !== w.revision || sc.get(w.key)?.n !== w.n);
    assert.deepEqual(missing, [], `${missing.length} acknowledged writes not found as written`);
    for (const w of loop.acked) assert.equal(sb.entry(w.key)?.revision, w.revision, `hub-b view of ${w.key}`);
  } finally {
    for (const o of opened) await o.close();
    await cluster.stop();
  }
});

// A replaced watch reloads the bucket's last value per key and reports the keys
// whose content differs from what watchers heard (kv-watch.ts, kv-view-content.ts):
// what is promised is every key's last value, each change once, in order, not
// every revision. This loop writes each key once, so every key's last value
// is every write.
test('kill -9 of the server holding a hub\'s bucket watch: the watch is replaced and reports every key\'s last value once, in order', async () => {
  const cluster = await startNatsCluster();
  const opened: NatsStateBackend[] = [];
  try {
    const a = await open(cluster, 'hub-a');
    opened.push(a);
    const s = await a.openKeyed<Rec>('state', { accept: isRec });
    const seen: number[] = [];
    const seenAt = new Map<number, number>();
    s.watch((c) => { seen.push(c.revision); seenAt.set(c.revision, Date.now()); });
    const loop = writeLoop(s, 4);
    await waitFor('writes flowing', () => loop.acked.length >= 100 || null, 20_000);
    // The watch is the bucket's only consumer; kill the server that holds it.
    const host = await consumerHost(cluster, 'KV_faults_state');
    const killedAt = Date.now();
    await cluster.kill(host);
    await waitFor('writes after the kill', () => loop.acked.filter((w) => w.issuedAt > killedAt).length >= 100 || null, 30_000);
    await loop.stop();
    const last = Math.max(...loop.acked.map((w) => w.revision));
    await waitFor('the watch reported the last write', () => seen.includes(last) || null, 20_000);
    const firstAfter = loop.acked.filter((w) => w.issuedAt > killedAt).reduce((m, w) => (w.revision < m.revision ? w : m));
    console.log(`# kill -9 of the watch's server: the first write issued after the kill was acked at +${firstAfter.ackedAt - killedAt} ms and reported by the watch at +${seenAt.get(firstAfter.revision)! - killedAt} ms`);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! > seen[i - 1]!, `revision order at ${i}: ${seen[i - 1]} then ${seen[i]}`);
    const reported = new Set(seen);
    const missed = loop.acked.filter((w) => !reported.has(w.revision));
    assert.deepEqual(missed, [], 'every key\'s last (and only) acknowledged write was reported');
    assert.equal(reported.size, seen.length, 'none reported twice');
  } finally {
    for (const o of opened) await o.close();
    await cluster.stop();
  }
});

test('kill -9 of the output stream\'s leader mid-job: the job\'s lines are stored once each, numbered 1..N with no gap', async () => {
  const cluster = await startNatsCluster();
  const opened: NatsStateBackend[] = [];
  try {
    const a = await open(cluster, 'hub-a');
    opened.push(a);
    const out = await a.openOutput();
    const job = 'job-killleader';
    let n = 0;
    const appendSome = (k: number): void => { for (let i = 0; i < k; i++) assert.equal(out.append(job, i % 5 ? 'stdout' : 'stderr', `line ${++n}`).seq, n); };
    appendSome(300);
    await waitFor('first lines stored', async () => (await out.read(job)).length >= 300 || null, 20_000);
    const leader = await cluster.streamLeader('faults_output');
    await cluster.kill(leader);
    const ticker = setInterval(() => appendSome(20), 20); // a job that keeps printing through the election
    await sleep(7000);
    clearInterval(ticker);
    appendSome(10);
    const t0 = Date.now();
    await out.end(job);
    console.log(`# kill -9 of the output stream leader: ${n} lines appended; end() flushed in ${Date.now() - t0} ms`);
    const b = await open(cluster, 'hub-b');
    opened.push(b);
    const lines = await (await b.openOutput()).read(job);
    assert.deepEqual(lines.map((l) => l.seq), Array.from({ length: n }, (_, i) => i + 1));
    assert.deepEqual(lines.map((l) => l.data), Array.from({ length: n }, (_, i) => `line ${i + 1}`));
  } finally {
    for (const o of opened) await o.close();
    await cluster.stop();
  }
});

test('NATS entirely unreachable: writes reject with STATE_WRITE_FAILED in bounded time, reads and local events still answer; writes land once NATS is back', async () => {
  const cluster = await startNatsCluster();
  const opened: NatsStateBackend[] = [];
  const writeTimeoutMs = 3000;
  try {
    const a = await open(cluster, 'hub-a', { writeTimeoutMs, requestTimeoutMs: 1000 });
    opened.push(a);
    const s = await a.openKeyed<Rec>('state', { accept: isRec });
    const r1 = await s.set('kept', { n: 1 });
    const bus = a.eventBus();
    const seen: HubEvent[] = [];
    bus.subscribe({ host: 'web1' }, (e) => seen.push(e));

    const d = await open(cluster, 'hub-d', { writeTimeoutMs, requestTimeoutMs: 1000 });
    opened.push(d); // closed again in finally if the test fails before its own close (a NATS client left open kept the file from exiting)
    const sd = await d.openKeyed<Rec>('state', { accept: isRec });
    const od = await d.openOutput();

    for (let i = 0; i < cluster.nodes.length; i++) await cluster.kill(i);

    // A hub can stop while NATS is away: a write and output still pending, close() is bounded.
    void sd.set('pending', { n: 1 }).catch(() => undefined);
    od.append('job-closing0', 'stdout', 'never stored');
    const c0 = Date.now();
    await d.close();
    console.log(`# NATS down: a backend with a pending write and output closed in ${Date.now() - c0} ms`);
    assert.ok(Date.now() - c0 < 3 * writeTimeoutMs, 'close() is bounded while NATS is down');

    assert.deepEqual(s.entry('kept'), { value: { n: 1 }, revision: r1 }, 'reads answer from the local view');
    bus.publish({ kind: 'changed', host: 'web1' });
    assert.equal(seen.length, 1, 'this hub\'s own events still reach its subscribers');

    const t0 = Date.now();
    const plain = s.set('later', { n: 2 });
    assert.deepEqual(s.get('later'), { n: 2 }, 'the local view shows the write at once');
    const cas = s.set('kept', { n: 3 }, { expectRevision: r1 });
    const results = await Promise.allSettled([plain, cas]);
    const elapsed = Date.now() - t0;
    console.log(`# NATS down: both writes rejected after ${elapsed} ms (write deadline ${writeTimeoutMs} ms)`);
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.equal(codeOf((r as PromiseRejectedResult).reason), 'STATE_WRITE_FAILED');
    }
    assert.ok(elapsed < writeTimeoutMs + 1500, `rejected within the deadline (+ one pause): ${elapsed} ms`);
    assert.deepEqual(s.get('later'), { n: 2 }, 'the rejected plain write stays in the view while it is retried');
    assert.deepEqual(s.get('kept'), { n: 1 }, 'a CAS is not shown before it is acknowledged');

    await cluster.restartAll();
    const back = Date.now();
    // The store retried both: a fresh hub sees them.
    const c = await open(cluster, 'hub-c');
    opened.push(c);
    const sc = await c.openKeyed<Rec>('state', { accept: isRec });
    await waitFor('retried writes visible to a fresh hub', () => (sc.get('later')?.n === 2 && sc.get('kept')?.n === 3) || null, 30_000);
    console.log(`# NATS back: the retried writes were visible to another hub ${Date.now() - back} ms after the servers were ready`);
    await waitFor('own view confirmed', () => (s.entry('kept')?.value.n === 3 && (s.entry('later')?.revision ?? 0) > 0) || null, 10_000);
  } finally {
    for (const o of opened) await o.close();
    await cluster.stop();
  }
});

test('kill -9 of the server a hub publishes events through: it reconnects, and events reach the other hub again', async () => {
  const cluster = await startNatsCluster();
  const opened: NatsStateBackend[] = [];
  try {
    // Each hub starts on its own server.
    const a = await NatsStateBackend.open(parseClusterOptions({ servers: [cluster.urls[0]!, ...cluster.urls.slice(1)], hubName: 'hub-a', prefix: 'faults', outputMaxBytes: OUTPUT_MAX }), log);
    const b = await NatsStateBackend.open(parseClusterOptions({ servers: [cluster.urls[1]!, cluster.urls[2]!, cluster.urls[0]!], hubName: 'hub-b', prefix: 'faults', outputMaxBytes: OUTPUT_MAX }), log);
    opened.push(a, b);
    const got: number[] = [];
    b.eventBus().subscribe({ host: 'web1' }, (e) => { if (e.kind === 'job' && e.event.ev === 'output') got.push(e.event.seq); });
    let seq = 0;
    const send = (): void => a.eventBus().publish({ kind: 'job', host: 'web1', event: { ev: 'output', host: 'web1', jobId: 'job-events00', seq: ++seq, ts: Date.now(), stream: 'stdout', data: 'x' } });
    await waitFor('events flowing', () => { send(); return got.length > 0 || null; }, 10_000, 20);
    const killedAt = Date.now();
    await cluster.kill(0);
    const firstAfter = seq + 1;
    await waitFor('events flowing again', () => { send(); return got.some((n) => n >= firstAfter) || null; }, 20_000, 20);
    console.log(`# kill -9 of hub-a's NATS server: its events reached hub-b again after ${Date.now() - killedAt} ms`);
    for (let i = 1; i < got.length; i++) assert.ok(got[i]! > got[i - 1]!, 'in publish order, none twice');
  } finally {
    for (const o of opened) await o.close();
    await cluster.stop();
  }
});
