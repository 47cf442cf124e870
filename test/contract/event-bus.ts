// The contract every EventBus passes (hub/events/types.ts). In-process buses
// deliver at once; a cluster bus delivers through the network, so every
// check waits (bounded) for delivery instead of assuming it is synchronous.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EventBus, HubEvent } from '../../hub/events/types.js';
import { sleep, waitFor } from '../helpers/proc.js';

export interface BusHarness {
  name: string;
  /** Several hubs share it (the cluster): fresh() must give peer, and the cross-hub test runs. */
  shared: boolean;
  /** A bus, and for shared buses a second hub's bus on the same engine. */
  fresh(): Promise<{ bus: EventBus; peer?: EventBus; cleanup(): Promise<void> }>;
}

const out = (host: string, jobId: string, seq: number): HubEvent => ({ kind: 'job', host, event: { ev: 'output', host, jobId, seq, ts: 1_700_000_000_000 + seq, stream: 'stdout', data: `line ${seq}` } });

export function eventBusContract(h: BusHarness): void {
  const t = (name: string, fn: () => Promise<void>): void => { test(`${h.name} event bus: ${name}`, fn); };

  t('filters: all, one host, one job; order kept per job (1, 3)', async () => {
    const { bus, cleanup } = await h.fresh();
    try {
      const all: HubEvent[] = [];
      const web1: HubEvent[] = [];
      const job: HubEvent[] = [];
      bus.subscribe({ all: true }, (e) => all.push(e));
      bus.subscribe({ host: 'web1' }, (e) => web1.push(e));
      bus.subscribe({ jobId: 'job-aaaaaaaa' }, (e) => job.push(e));
      bus.publish({ kind: 'connected', host: 'web1', carrier: 'ssh', reconnect: false });
      for (let i = 1; i <= 50; i += 1) bus.publish(out('web1', 'job-aaaaaaaa', i));
      bus.publish(out('db1', 'job-bbbbbbbb', 1));
      bus.publish({ kind: 'changed', host: 'db1' });
      await waitFor('all delivered', () => all.length >= 53 || null, 5000);
      await sleep(50);
      assert.equal(all.length, 53);
      assert.equal(web1.length, 51);
      assert.equal(job.length, 50);
      assert.deepEqual(job.map((e) => (e.kind === 'job' && e.event.ev === 'output' ? e.event.seq : -1)), Array.from({ length: 50 }, (_, i) => i + 1));
    } finally {
      await cleanup();
    }
  });

  t('a throwing subscriber is isolated; publish never throws (1, 2)', async () => {
    const { bus, cleanup } = await h.fresh();
    try {
      const got: HubEvent[] = [];
      bus.subscribe({ all: true }, () => { throw new Error('subscriber bug'); });
      bus.subscribe({ all: true }, (e) => got.push(e));
      assert.doesNotThrow(() => bus.publish({ kind: 'changed', host: 'web1' }));
      assert.doesNotThrow(() => bus.publish({ kind: 'changed', host: 'web2' }));
      await waitFor('both delivered', () => got.length >= 2 || null, 5000);
    } finally {
      await cleanup();
    }
  });

  t('unsubscribe stops delivery; publishing with no subscriber is fine', async () => {
    const { bus, cleanup } = await h.fresh();
    try {
      const got: HubEvent[] = [];
      const sub = bus.subscribe({ host: 'web1' }, (e) => got.push(e));
      bus.publish({ kind: 'changed', host: 'web1' });
      await waitFor('first', () => got.length >= 1 || null, 5000);
      sub.unsubscribe();
      sub.unsubscribe();
      bus.publish({ kind: 'changed', host: 'web1' });
      bus.publish({ kind: 'changed', host: 'nobody-listens' });
      await sleep(100);
      assert.equal(got.length, 1);
    } finally {
      await cleanup();
    }
  });

  t('a subscriber\'s slow work does not delay another subscriber (4)', async () => {
    const { bus, cleanup } = await h.fresh();
    try {
      const fast: number[] = [];
      const parked: Array<() => void> = [];
      // A listener that starts slow async work must not be awaited by the bus.
      bus.subscribe({ all: true }, () => { void new Promise<void>((r) => parked.push(r)); });
      bus.subscribe({ all: true }, () => fast.push(Date.now()));
      for (let i = 0; i < 10; i += 1) bus.publish({ kind: 'changed', host: `h${i}` });
      await waitFor('fast subscriber got all', () => fast.length >= 10 || null, 5000);
      parked.forEach((r) => r());
    } finally {
      await cleanup();
    }
  });

  t('local: every event this bus publishes, in order', async () => {
    const { bus, cleanup } = await h.fresh();
    try {
      const got: HubEvent[] = [];
      bus.subscribe({ local: true }, (e) => got.push(e));
      bus.publish({ kind: 'connected', host: 'web1', carrier: 'ssh', reconnect: false });
      for (let i = 1; i <= 3; i += 1) bus.publish(out('web1', 'job-eeeeeeee', i));
      await waitFor('local delivered', () => got.length >= 4 || null, 5000);
      assert.deepEqual(got.map((e) => (e.kind === 'job' && e.event.ev === 'output' ? e.event.seq : e.kind)), ['connected', 1, 2, 3]);
    } finally {
      await cleanup();
    }
  });

  if (!h.shared) return;
  t('local: another hub\'s events do not reach a local subscriber', async () => {
    const { bus, peer, cleanup } = await h.fresh();
    try {
      if (!peer) throw new Error(`${h.name}: a shared bus must provide peer`);
      const local: HubEvent[] = [];
      const all: HubEvent[] = [];
      peer.subscribe({ local: true }, (e) => local.push(e));
      peer.subscribe({ all: true }, (e) => all.push(e));
      await sleep(100);
      for (let i = 1; i <= 5; i += 1) bus.publish(out('web3', 'job-ffffffff', i));
      await waitFor('the all subscriber got the other hub\'s events', () => all.length >= 5 || null, 5000);
      peer.publish({ kind: 'changed', host: 'web4' });
      await waitFor('own event', () => local.length >= 1 || null, 5000);
      await sleep(100);
      assert.deepEqual(local.map((e) => `${e.kind} ${e.host}`), ['changed web4']);
    } finally {
      await cleanup();
    }
  });
  t('an event published on one hub reaches subscribers on the other', async () => {
    const { bus, peer, cleanup } = await h.fresh();
    try {
      if (!peer) throw new Error(`${h.name}: a shared bus must provide peer`);
      const got: HubEvent[] = [];
      peer.subscribe({ jobId: 'job-cccccccc' }, (e) => got.push(e));
      await sleep(100); // a network subscription needs its interest to reach the server
      for (let i = 1; i <= 20; i += 1) bus.publish(out('web1', 'job-cccccccc', i));
      await waitFor('peer delivery', () => got.length >= 20 || null, 5000);
      assert.deepEqual(got.map((e) => (e.kind === 'job' && e.event.ev === 'output' ? e.event.seq : -1)), Array.from({ length: 20 }, (_, i) => i + 1));
    } finally {
      await cleanup();
    }
  });

  t('several subscribers to the same events on one hub: each gets every peer event once; one leaving does not stop the others', async () => {
    const { bus, peer, cleanup } = await h.fresh();
    try {
      if (!peer) throw new Error(`${h.name}: a shared bus must provide peer`);
      const a: number[] = [];
      const b: number[] = [];
      const seqOf = (e: HubEvent): number => (e.kind === 'job' && e.event.ev === 'output' ? e.event.seq : -1);
      const subA = peer.subscribe({ all: true }, (e) => a.push(seqOf(e)));
      peer.subscribe({ all: true }, (e) => b.push(seqOf(e)));
      await sleep(100);
      for (let i = 1; i <= 5; i += 1) bus.publish(out('web2', 'job-dddddddd', i));
      await waitFor('both', () => (a.length >= 5 && b.length >= 5) || null, 5000);
      subA.unsubscribe();
      for (let i = 6; i <= 10; i += 1) bus.publish(out('web2', 'job-dddddddd', i));
      await waitFor('the one left', () => b.length >= 10 || null, 5000);
      await sleep(100);
      assert.deepEqual(a, [1, 2, 3, 4, 5]);
      assert.deepEqual(b, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    } finally {
      await cleanup();
    }
  });
}
