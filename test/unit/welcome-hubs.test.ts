// welcome.hubs is capped where it is made (found by review): HubLiveness.urls()
// put every live hub's URL in every welcome, and the agent's schema allows at
// most 64 (each up to 512 characters), so with more live hubs every welcome
// failed parseMessage at the agent and no agent could connect.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HUB_CAPABILITIES, parseMessage } from '../../common/protocol/messages.js';
import { BENTO_VERSION, PROTOCOL_VERSION } from '../../common/protocol/version.js';
import { hubKey, isHoldEntry, type HoldEntry, type HubBeat } from '../../hub/cluster/hold-records.js';
import { HubLiveness, livenessTiming } from '../../hub/cluster/liveness.js';
import { MemoryBackend } from '../../hub/store/memory-backend.js';
import { captureLog } from '../helpers/log-capture.js';

function beat(name: string, url: string): HubBeat {
  return { t: 'hub', name, run: `run-${name}`, startedAt: new Date().toISOString(), beat: 1, at: new Date().toISOString(), version: BENTO_VERSION, pid: 1, url };
}

test('a welcome built with more than 64 live hubs, duplicate and over-long URLs among them, passes the agent\'s parseMessage; this hub first; left-outs logged once', async () => {
  const backend = new MemoryBackend();
  const store = await backend.openKeyed<HoldEntry>('holds', { accept: isHoldEntry });
  // 100 live hubs, two of them sharing one URL (behind one balancer), one with a URL longer than an agent accepts.
  for (let i = 0; i < 100; i++) {
    const name = `hub${String(i).padStart(3, '0')}`;
    const url = i === 7 ? 'ssh://hub006.example.org:2222' : i === 3 ? `wss://${'x'.repeat(600)}.example.org/agent` : `ssh://${name}.example.org:2222`;
    await store.set(hubKey(name), beat(name, url));
  }
  const cap = captureLog('warn');
  const live = new HubLiveness({ store, hubName: 'zeta', run: 'r1', timing: livenessTiming(1000), log: cap.log, current: () => undefined, url: 'ssh://zeta.example.org:2222' });
  try {
    const hubs = live.urls();
    assert.equal(hubs.length, 64, 'as many as an agent accepts (WELCOME_MAX_HUBS)');
    assert.equal(hubs[0], 'ssh://zeta.example.org:2222', 'this hub first');
    assert.equal(new Set(hubs).size, hubs.length, 'each URL once');
    assert.ok(hubs.every((u) => u.length <= 512));
    // The welcome as hub/server/control.ts sends it, read as the agent reads it.
    const welcome = { type: 'welcome', protocol: PROTOCOL_VERSION, hubVersion: BENTO_VERSION, heartbeatMs: 30_000, keepalive: 'ssh', capabilities: [...HUB_CAPABILITIES], hubs };
    const parsed = parseMessage(JSON.parse(JSON.stringify(welcome)) as unknown, 'hub');
    assert.equal(parsed.type, 'welcome');
    assert.deepEqual((parsed as { hubs?: string[] }).hubs, hubs);
    // The same list at every welcome (name order), and one warning, not one per welcome.
    assert.deepEqual(live.urls(), hubs);
    const warned = cap.lines().filter((l) => /fewer live hubs/.test(String(l['msg'])));
    assert.equal(warned.length, 1);
  } finally {
    await live.stop();
    await backend.close();
  }
});

test('with few live hubs every URL is named, each once, and nothing is logged', async () => {
  const backend = new MemoryBackend();
  const store = await backend.openKeyed<HoldEntry>('holds', { accept: isHoldEntry });
  await store.set(hubKey('huba'), beat('huba', 'ssh://a:2222'));
  await store.set(hubKey('hubb'), beat('hubb', 'ssh://self:2222')); // the same address as this hub's
  const cap = captureLog('warn');
  const live = new HubLiveness({ store, hubName: 'self', run: 'r1', timing: livenessTiming(1000), log: cap.log, current: () => undefined, url: 'ssh://self:2222' });
  try {
    assert.deepEqual(live.urls(), ['ssh://self:2222', 'ssh://a:2222']);
    assert.equal(cap.lines().length, 0);
  } finally {
    await live.stop();
    await backend.close();
  }
});
