// A routed trigger the holding hub does not answer in time (hub/cluster/
// routing.ts), on a real nats-server: the holding hub may still take it, so
// the asking hub never reports a refusal for it. It asks once more with the
// same request id and gets the first request's job (the holding hub started
// it once); when that is not answered either it looks for the job id it
// chose in the job records, and failing that says TRIGGER_UNCONFIRMED,
// naming that job id. A request that reached nobody (no responders) is
// still a plain CLUSTER_UNAVAILABLE, and a hub of an earlier version (it
// neither knows nor echoes the id) is still understood. The holding hub's
// scheduler is a recording TriggerRouter with a delay: what is under test
// is the NATS path between two routers (the real hubs: cluster-routed-timeout).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { silentLogger } from '../../common/platform/log.js';
import type { Holder } from '../../hub/holders/types.js';
import type { RoutedTrigger, TriggerRequest, TriggerRouter } from '../../hub/jobs/router.js';
import type { JobRecord } from '../../hub/store/jobs.js';
import { clusterNames } from '../../hub/cluster/names.js';
import { ClusterRouter } from '../../hub/cluster/routing.js';
import { startNatsCluster } from '../fixtures/nats.js';

const TIMEOUT_MS = 1000;
const nats = await startNatsCluster({ nodes: 1 });
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

/** The holding hub's scheduler: answers after DELAYMS, and records every trigger it ran. */
class Slow implements TriggerRouter {
  readonly ran: TriggerRequest[] = [];
  constructor(private readonly hub: string, private readonly delayMs: number) {}
  async trigger(r: TriggerRequest): Promise<RoutedTrigger> {
    await new Promise((res) => setTimeout(res, this.delayMs));
    this.ran.push(r);
    return { host: r.host, jobId: r.jobId ?? 'Xjobid000000000', disposition: 'dispatched', action: r.action, offline: false, hub: this.hub };
  }
  async close(): Promise<void> { /* nothing */ }
}

function heldBy(hub: string): { holder(host: string): Holder | null } {
  return {
    holder: (host) => ({ host, hub, local: false, epoch: 1, since: new Date(0).toISOString(), carrier: 'direct', remoteAddress: '127.0.0.1', endpoint: 'ssh' }) as Holder,
  };
}

/** A router of hub NAME whose hosts are all held by HOLDERHUB; JOBS is its view of the job records. */
async function router(prefix: string, name: string, holderHub: string, local: TriggerRouter, jobs = new Map<string, JobRecord>()): Promise<ClusterRouter> {
  const deps = { nc: await conn(), names: clusterNames(prefix), hubName: name, holders: heldBy(holderHub), local, timeoutMs: TIMEOUT_MS, jobs, log: silentLogger() };
  const r = new ClusterRouter(deps as ConstructorParameters<typeof ClusterRouter>[0]);
  r.start();
  routers.push(r);
  return r;
}

const nobody: TriggerRouter = { trigger: () => Promise.reject(new Error('not here')), close: async () => undefined };
const req = (host: string): TriggerRequest => ({ host, action: 'switch', queue: false });

test('the holding hub answers only after the route timeout: the repeat gets the job it took, started once', async () => {
  const slow = new Slow('hub-a', TIMEOUT_MS * 1.4);
  await router('ru1', 'hub-a', 'hub-a', slow);
  const b = await router('ru1', 'hub-b', 'hub-a', nobody);
  const started = Date.now();
  const got = await b.trigger(req('web1'));
  assert.equal(got.disposition, 'dispatched', JSON.stringify(got));
  assert.equal(slow.ran.length, 1, 'the repeat did not start a second job');
  assert.equal(got.jobId, slow.ran[0]!.jobId, 'the admin is told the job that runs');
  assert.ok(Date.now() - started >= TIMEOUT_MS, 'it was answered through the repeat');
  await new Promise((res) => setTimeout(res, TIMEOUT_MS * 2));
  assert.equal(slow.ran.length, 1);
});

test('neither the request nor its repeat is answered: TRIGGER_UNCONFIRMED, naming the job id it runs under, never a refusal', async () => {
  const slow = new Slow('hub-a', TIMEOUT_MS * 3);
  await router('ru2', 'hub-a', 'hub-a', slow);
  const b = await router('ru2', 'hub-b', 'hub-a', nobody);
  const err = await b.trigger(req('web2')).then(() => null, (e: Error & { code?: string }) => e);
  assert.equal(err?.code, 'TRIGGER_UNCONFIRMED', String(err));
  await new Promise((res) => setTimeout(res, TIMEOUT_MS * 3));
  assert.equal(slow.ran.length, 1, 'the holding hub ran it once (the repeat joined the first)');
  assert.match(err!.message, new RegExp(`runs as job ${slow.ran[0]!.jobId}`));
  assert.match(err!.message, /bento-hub status web2/);
});

test('unanswered twice, but the job is in the asking hub\'s job records: it is reported as taken', async () => {
  const jobs = new Map<string, JobRecord>();
  const slow = new Slow('hub-a', TIMEOUT_MS * 3);
  // What the holding hub's job record write does: it shows in every hub's view before the repeat times out.
  const recording: TriggerRouter = {
    trigger: (r) => {
      jobs.set(r.jobId!, { id: r.jobId!, host: r.host, action: r.action, state: 'dispatched', requestedAt: new Date().toISOString(), startedAt: null, endedAt: null, exitCode: null, durationMs: null, reason: null, hub: 'hub-a' });
      return slow.trigger(r);
    },
    close: async () => undefined,
  };
  await router('ru3', 'hub-a', 'hub-a', recording);
  const b = await router('ru3', 'hub-b', 'hub-a', nobody, jobs);
  const got = await b.trigger(req('web3'));
  assert.deepEqual([got.disposition, got.hub, got.jobId], ['dispatched', 'hub-a', [...jobs.keys()][0]]);
});

test('a request that reached nobody (no responders) is refused at once: nothing can run it', async () => {
  const b = await router('ru4', 'hub-b', 'hub-gone', nobody);
  const started = Date.now();
  const err = await b.trigger(req('web4')).then(() => null, (e: Error & { code?: string }) => e);
  assert.equal(err?.code, 'CLUSTER_UNAVAILABLE', String(err));
  assert.ok(Date.now() - started < TIMEOUT_MS, 'not waited for');
});

test('a holding hub of an earlier version (no request id) that answers only the repeat: its answer is taken', async () => {
  const c = await conn();
  const seen: Array<Record<string, unknown>> = [];
  c.subscribe(ClusterRouter.subject(clusterNames('ru5'), 'hub-old'), {
    callback: (_e, msg) => {
      const body = JSON.parse(new TextDecoder().decode(msg.data)) as Record<string, unknown>;
      seen.push(body);
      if (seen.length === 1) return; // the first one is lost
      msg.respond(new TextEncoder().encode(JSON.stringify({ result: { host: body['host'], jobId: body['jobId'], disposition: 'coalesced', action: body['action'], offline: false, hub: 'hub-old' } })));
    },
  });
  await c.flush();
  const b = await router('ru5', 'hub-b', 'hub-old', nobody);
  const got = await b.trigger(req('web5'));
  assert.equal(seen.length, 2);
  assert.equal(seen[0]!['requestId'], seen[1]!['requestId'], 'the repeat carries the same request id');
  assert.equal(seen[0]!['jobId'], seen[1]!['jobId'], 'and the same job id');
  assert.deepEqual([got.jobId, got.disposition], [seen[0]!['jobId'], 'coalesced']);
});
