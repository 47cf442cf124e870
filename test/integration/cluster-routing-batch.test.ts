// Routed triggers on a real nats-server: the triggers one event-loop turn
// asks of one hub travel as one batch (hub/cluster/routing-batch.ts), every
// caller still gets its own host's answer, a malformed item is refused
// alone, and a hub of the previous version (it answers only the one-trigger
// subject) is still asked, one host at a time. The holding hub's scheduler is
// a recording TriggerRouter here: what is under test is the NATS path
// between two routers, not the scheduler (hub-scheduler, cluster-hubs).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { silentLogger } from '../../common/platform/log.js';
import { BentoError } from '../../common/protocol/errors.js';
import type { Holder } from '../../hub/holders/types.js';
import type { RoutedTrigger, TriggerRequest, TriggerRouter } from '../../hub/jobs/router.js';
import { clusterNames } from '../../hub/cluster/names.js';
import { ClusterRouter } from '../../hub/cluster/routing.js';
import { MAX_BATCH } from '../../hub/cluster/routing-codec.js';
import { startNatsCluster } from '../fixtures/nats.js';
import { waitFor } from '../helpers/proc.js';

const nats = await startNatsCluster({ nodes: 1 });
const names = clusterNames('rb');
const conns: NatsConnection[] = [];
const routers: ClusterRouter[] = [];
after(async () => {
  for (const r of routers) await r.close();
  for (const c of conns) await c.close();
  await nats.stop();
});

async function conn(): Promise<NatsConnection> {
  const c = await connect({ servers: nats.urls, noAsyncTraces: true });
  conns.push(c);
  return c;
}

/** The holding hub's scheduler: answers every trigger at once (or refuses hosts named "offline-*"), and records them. */
class Recorder implements TriggerRouter {
  readonly seen: TriggerRequest[] = [];
  constructor(private readonly hub: string) {}
  async trigger(r: TriggerRequest): Promise<RoutedTrigger> {
    this.seen.push(r);
    if (r.host.startsWith('offline-')) throw new BentoError('HOST_OFFLINE', `${r.host} is not connected`);
    return { host: r.host, jobId: `job-${r.host}-x`, disposition: 'dispatched', action: r.action, offline: false, hub: this.hub };
  }
  async close(): Promise<void> { /* nothing */ }
}

/** Every host is held by HUB (never this router's own hub). */
function heldBy(hub: string): { holder(host: string): Holder | null } {
  return {
    holder: (host) => ({ host, hub, local: false, epoch: 1, since: new Date(0).toISOString(), carrier: 'direct', remoteAddress: '127.0.0.1', endpoint: 'ssh' }) as Holder,
  };
}

async function router(hubName: string, holderHub: string, local: TriggerRouter): Promise<ClusterRouter> {
  const r = new ClusterRouter({ nc: await conn(), names, hubName, holders: heldBy(holderHub), local, timeoutMs: 5000, log: silentLogger() });
  r.start();
  routers.push(r);
  return r;
}

/** Count the messages (and the items in them) published on a subject, as a bystander subscriber sees them. */
async function watch(subject: string): Promise<{ messages: number; items: number[]; sub: Subscription }> {
  const c = await conn();
  const seen = { messages: 0, items: [] as number[], sub: null as unknown as Subscription };
  seen.sub = c.subscribe(subject, {
    callback: (_err, msg) => {
      seen.messages++;
      const body = JSON.parse(new TextDecoder().decode(msg.data)) as { batch?: unknown[] };
      seen.items.push(Array.isArray(body.batch) ? body.batch.length : 1);
    },
  });
  await c.flush();
  return seen;
}

test('a fan-out of 1,000 routed triggers travels in batches of at most MAX_BATCH, and each caller gets its own answer', async () => {
  const holder = new Recorder('hub-b');
  await router('hub-b', 'hub-b', holder);
  const asker = await router('hub-a', 'hub-b', new Recorder('hub-a'));
  const batches = await watch(ClusterRouter.subject(names, 'hub-b', 'batch'));
  const singles = await watch(ClusterRouter.subject(names, 'hub-b', 'single'));

  const hosts = Array.from({ length: 1000 }, (_, i) => `h${String(i).padStart(4, '0')}`);
  const results = await Promise.all(hosts.map((host) => asker.trigger({ host, action: 'switch', queue: false })));

  assert.deepEqual(results.map((r) => r.jobId), hosts.map((h) => `job-${h}-x`), 'every caller got its own host\'s answer');
  assert.ok(results.every((r) => r.hub === 'hub-b'));
  assert.equal(holder.seen.length, 1000, 'the holding hub ran every trigger once');
  // The bystander has its own connection: its copies may arrive a moment after the answers.
  await waitFor('the bystander saw every batch', () => batches.items.reduce((a, b) => a + b, 0) >= 1000 || null, 5000, 10);
  assert.equal(batches.items.reduce((a, b) => a + b, 0), 1000);
  assert.equal(singles.messages, 0, 'nothing went one at a time');
  assert.ok(Math.max(...batches.items) <= MAX_BATCH, `largest batch ${Math.max(...batches.items)}`);
  // 256 in flight at once (the router's slot gate), so at least 4 batches; one request per host would be 1,000.
  assert.ok(batches.messages <= 40, `${batches.messages} requests for 1,000 triggers`);
});

test('one trigger is answered as before; a refusal reaches only its own caller', async () => {
  const holder = new Recorder('hub-d');
  await router('hub-d', 'hub-d', holder);
  const asker = await router('hub-c', 'hub-d', new Recorder('hub-c'));
  const one = await asker.trigger({ host: 'web1', action: 'boot', queue: true });
  assert.deepEqual(one, { host: 'web1', jobId: 'job-web1-x', disposition: 'dispatched', action: 'boot', offline: false, hub: 'hub-d' });
  const mixed = await Promise.allSettled(['a1', 'offline-x', 'a2'].map((host) => asker.trigger({ host, action: 'switch', queue: false })));
  assert.equal(mixed[0]!.status, 'fulfilled');
  assert.equal(mixed[2]!.status, 'fulfilled');
  assert.equal(mixed[1]!.status, 'rejected');
  assert.equal(((mixed[1] as PromiseRejectedResult).reason as BentoError).code, 'HOST_OFFLINE');
  assert.deepEqual(holder.seen.find((r) => r.host === 'web1'), { host: 'web1', action: 'boot', queue: true });
});

test('a batch from the network is validated: a malformed item is refused alone, an unreadable batch as a whole', async () => {
  const holder = new Recorder('hub-e');
  await router('hub-e', 'hub-e', holder);
  const c = await conn();
  const ask = async (body: unknown): Promise<Record<string, unknown>> => {
    const reply = await c.request(ClusterRouter.subject(names, 'hub-e', 'batch'), new TextEncoder().encode(typeof body === 'string' ? body : JSON.stringify(body)), { timeout: 5000 });
    return JSON.parse(new TextDecoder().decode(reply.data)) as Record<string, unknown>;
  };
  const good = { host: 'ok1', action: 'switch', queue: false };
  const r = await ask({ batch: [good, { host: '../etc', action: 'switch', queue: false }, { host: 'ok2', action: 'rm -rf', queue: false }, { ...good, host: 'ok3' }] });
  const answers = r['answers'] as Array<Record<string, { code?: string; jobId?: string }>>;
  assert.equal(answers.length, 4);
  assert.equal(answers[0]!['result']!.jobId, 'job-ok1-x');
  assert.equal(answers[1]!['error']!.code, 'PROTOCOL_MALFORMED');
  assert.equal(answers[2]!['error']!.code, 'PROTOCOL_MALFORMED');
  assert.equal(answers[3]!['result']!.jobId, 'job-ok3-x');
  assert.deepEqual(holder.seen.map((s) => s.host), ['ok1', 'ok3'], 'only the valid items ran');

  for (const bad of ['not json', { batch: [] }, { batch: Array.from({ length: MAX_BATCH + 1 }, () => good) }, { host: 'ok1' }, [good]]) {
    const refused = await ask(bad);
    assert.equal((refused['error'] as { code: string }).code, 'PROTOCOL_MALFORMED', JSON.stringify(bad).slice(0, 80));
  }
  assert.equal(holder.seen.length, 2, 'no item of a refused batch ran');
});

test('a hub of the previous version (one-trigger subject only) is asked one host at a time', async () => {
  // What a hub before batching serves: requests on <prefix>.hub.<name>.trigger, one host each.
  const old = await conn();
  const asked: string[] = [];
  old.subscribe(ClusterRouter.subject(names, 'hub-old', 'single'), {
    callback: (_err, msg) => {
      const req = JSON.parse(new TextDecoder().decode(msg.data)) as TriggerRequest;
      asked.push(req.host);
      msg.respond(new TextEncoder().encode(JSON.stringify({ result: { host: req.host, jobId: `old-job-${req.host}`, disposition: 'queued', action: req.action, offline: true, hub: 'hub-old' } })));
    },
  });
  await old.flush();
  const asker = await router('hub-f', 'hub-old', new Recorder('hub-f'));
  const hosts = ['o1', 'o2', 'o3', 'o4', 'o5'];
  const results = await Promise.all(hosts.map((host) => asker.trigger({ host, action: 'switch', queue: true })));
  assert.deepEqual(results.map((r) => r.jobId), hosts.map((h) => `old-job-${h}`));
  assert.deepEqual([...asked].sort(), hosts);
  // And later ones too (it is remembered, not re-tried per trigger).
  assert.equal((await asker.trigger({ host: 'o6', action: 'boot', queue: true })).jobId, 'old-job-o6');
});

test('a holding hub that answers nobody: every caller gets CLUSTER_UNAVAILABLE with the hub named', async () => {
  const asker = await router('hub-g', 'hub-gone', new Recorder('hub-g'));
  const settled = await Promise.allSettled(['g1', 'g2'].map((host) => asker.trigger({ host, action: 'switch', queue: false })));
  for (const s of settled) {
    assert.equal(s.status, 'rejected');
    const e = (s as PromiseRejectedResult).reason as BentoError;
    assert.equal(e.code, 'CLUSTER_UNAVAILABLE');
    assert.match(e.message, /hub hub-gone holds g\d but did not answer/);
  }
});
