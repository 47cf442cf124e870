// A claim whose compare-and-swap NATS did not acknowledge in time waits for
// the watch to show it landed (hub/cluster/holds.ts). Two ways that wait went
// wrong (found by review, reproduced here first):
//  - the host's former hub released it meanwhile: the store's retry of the
//    claim was dropped as superseded, and nothing ever settled the wait, so
//    the host's hello, its job ends and its triggers queued behind it for good;
//  - a newer session of the host claimed it meanwhile: its record (same hub,
//    same epoch) settled the older session's wait, which then "took" the host
//    for the closed session and released the live session's hold.
// The memory backend stands in for the bucket (the holds logic does not care
// which store it runs on); a wrapper refuses the chosen compare-and-swaps the
// way the NATS store reports a write it could not get acknowledged in time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../common/platform/log.js';
import type { Hello } from '../../common/protocol/messages.js';
import { MemoryBackend, MemoryState } from '../../hub/store/memory-backend.js';
import { ClusterHolders } from '../../hub/cluster/holds.js';
import { livenessTiming } from '../../hub/cluster/liveness.js';
import { isHoldEntry, type HoldEntry, type HostHold } from '../../hub/cluster/hold-records.js';
import type { KeyedStore } from '../../hub/store/types.js';
import { refusingWrites } from '../helpers/refusing-store.js';
import type { LiveSession } from '../../hub/server/live-session.js';

const log = silentLogger();
const hello = (name: string): Hello => ({ type: 'hello', protocol: 1, name, agentVersion: 't', system: null, generation: null, configHash: null, capabilities: [] });

function session(name: string): LiveSession {
  const s = {
    name, hello: hello(name), closed: false, connectedSince: Date.now(), lastInbound: Date.now(),
    origin: { carrier: 'ssh', endpoint: 'ssh://127.0.0.1:1', remoteAddress: '127.0.0.1:9' },
    close() { s.closed = true; },
    send() { return true; },
  };
  return s as unknown as LiveSession;
}

const hold = (hub: string | null, epoch: number): HostHold => ({
  t: 'host', host: 'web1', hub, run: 'r1', epoch, since: new Date().toISOString(), carrier: 'ssh', remoteAddress: '127.0.0.1:9',
  endpoint: 'ssh://127.0.0.1:1', via: null, agentVersion: 't', system: null, generation: null, configHash: null, capabilities: [],
});

/** The holds store, whose next N compare-and-swaps of web1 NATS "does not acknowledge in time" (not applied). */
function flaky(store: KeyedStore<HoldEntry>): { store: KeyedStore<HoldEntry>; failNext: (n: number) => void } {
  let failing = 0;
  const wrapped = refusingWrites(store, (key, _value, opts) => {
    if (key !== 'web1' || opts?.expectRevision === undefined || failing === 0) return false;
    failing--;
    return true;
  });
  return { store: wrapped, failNext: (n) => { failing = n; } };
}

async function setup(): Promise<{ raw: KeyedStore<HoldEntry>; holders: ClusterHolders; live: Map<string, LiveSession>; failNext: (n: number) => void; close: () => Promise<void> }> {
  const backend = new MemoryBackend(new MemoryState());
  const raw = await backend.openKeyed<HoldEntry>('holds', { accept: isHoldEntry });
  await raw.set('web1', hold('hub1', 5)); // hub1 holds web1
  const { store, failNext } = flaky(raw);
  const live = new Map<string, LiveSession>();
  const holders = new ClusterHolders({ store, hubName: 'hub2', run: 'r2', sessions: { get: (h) => live.get(h), all: () => [...live.values()] }, timing: livenessTiming(200), log });
  await holders.start();
  return { raw, holders, live, failNext, close: async () => { await holders.close(); await raw.close(); } };
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms))]);
}

test('a claim NATS did not acknowledge, and the former hub releases the host meanwhile: the claim is made again on the released record', async () => {
  const { raw, holders, live, failNext, close } = await setup();
  try {
    const s = session('web1');
    live.set('web1', s);
    failNext(1);
    const claimed = holders.claim(s);
    await new Promise((r) => setTimeout(r, 50));
    await raw.set('web1', hold(null, 5), { expectRevision: raw.entry('web1')!.revision }); // hub1's session of web1 ended
    await within(claimed, 3000, 'the claim');
    const rec = raw.get('web1') as HostHold;
    assert.deepEqual([rec.hub, rec.run, rec.epoch], ['hub2', 'r2', 6]);
    assert.equal(holders.holder('web1')?.local, true);
    assert.equal(holders.stamp('web1')?.epoch, 6);
  } finally {
    await close();
  }
});

test('an older session\'s claim waiting for NATS does not take (and release) the host a newer session claimed', async () => {
  const { raw, holders, live, failNext, close } = await setup();
  try {
    const s1 = session('web1');
    live.set('web1', s1);
    failNext(1);
    const first = holders.claim(s1).then(() => 'resolved', (e: Error) => e.message);
    await new Promise((r) => setTimeout(r, 50));
    // The agent's connection drops and it comes back to this hub at once.
    s1.close('REPLACED', 'test');
    holders.release(s1);
    const s2 = session('web1');
    live.set('web1', s2);
    await within(holders.claim(s2), 3000, 'the newer session\'s claim');
    assert.match(await within(first, 3000, 'the older session\'s claim'), /resolved|newer session/);
    await new Promise((r) => setTimeout(r, 50)); // a release would be written now
    const rec = raw.get('web1') as HostHold;
    assert.deepEqual([rec.hub, rec.epoch], ['hub2', 6], 'the live session\'s hold stays');
    assert.equal(holders.holder('web1')?.local, true);
  } finally {
    await close();
  }
});
