// Issue 13 part 1: unauthenticated peers must not starve the hub's SSH
// handshakes. A real hub, a real agent (bento-client) that reaches it from
// 127.0.0.60 through microsocks bound to that address, and 500 raw TCP
// connections that stall (no banner; or "SSH-2.0-x" and nothing more), from
// 127.0.0.1 alone and from 50 addresses. The agent must connect in under 5 s,
// the stalled peers must be cut at their deadline, and sources that keep
// failing must be refused at accept. Each case runs on a freshly started hub
// (penalties are in memory) with the default limits.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TestFleet } from '../helpers/fleet.js';
import { freePort, sleep, waitFor } from '../helpers/proc.js';
import { startMicrosocks, type NamedProxy } from '../fixtures/proxies.js';
import { connectedAfter, connectedLines, holdAgent, loopbackSources, refusedAtOnce, scrape, siege, trickle, type HeldAgent, type Siege } from './hostile-helpers.js';

const LEGIT_SOURCE = '127.0.0.60';
const BANNER_DEADLINE_MS = 5000;
const HANDSHAKE_DEADLINE_MS = 10_000;
/** Timer and scheduling slack on a shared 2-core machine. */
const SLACK_MS = 2000;

let fleet: TestFleet;
let micro: NamedProxy;
let metricsUrl = '';

before(async () => {
  const metricsPort = await freePort();
  metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  fleet = await TestFleet.create({ hubSettings: { metrics: { listen: `127.0.0.1:${metricsPort}` } } });
  await fleet.addHost('legit');
  micro = await startMicrosocks({ bind: LEGIT_SOURCE });
});
after(async () => {
  await micro?.stop();
  await fleet?.close();
});

/** Start the real agent now; ms until the hub logs it connected (Infinity after 8 s). */
async function legitConnectMs(): Promise<number> {
  const hub = fleet.hub!;
  const before = connectedLines(hub, 'legit');
  const cfg = await fleet.agentConfig('legit', {
    hub: undefined,
    endpoints: [{ url: `ssh://127.0.0.1:${fleet.sshPort}`, proxy: `socks5://127.0.0.1:${micro.port}` }],
    connectTimeoutMs: 20_000, // the agent's default
  });
  const t0 = Date.now();
  const agent = fleet.startAgent('legit', cfg);
  try {
    return await connectedAfter(hub, 'legit', before, t0, 8000);
  } finally {
    await agent.stop();
  }
}

async function underSiege(s: Siege, body: (startedAt: number) => Promise<void>): Promise<void> {
  const startedAt = Date.now();
  try {
    await s.established;
    await body(startedAt);
  } finally {
    s.stop();
  }
}

async function freshHub(): Promise<void> {
  await fleet.stopHub();
  await fleet.startHub();
}

const SSH_PREFIX = (sock: import('node:net').Socket): void => { sock.write('SSH-2.0-x\r\n'); };

test('500 silent connections from 127.0.0.1: the agent from another address connects in < 5 s; they are cut at the banner deadline; 127.0.0.1 is then refused at accept', async (t) => {
  await freshHub();
  const s = siege({ port: fleet.sshPort, sources: ['127.0.0.1'], count: 500, reopenMs: 1000 });
  await underSiege(s, async (startedAt) => {
    const ms = await legitConnectMs();
    t.diagnostic(`agent connected in ${ms} ms`);
    assert.ok(ms < 5000, `the agent took ${ms} ms to connect`);
    await sleep(Math.max(0, startedAt + BANNER_DEADLINE_MS + SLACK_MS - Date.now()));
    assert.ok(s.oldestOpenMs() <= BANNER_DEADLINE_MS + SLACK_MS, `a silent connection is still open after ${s.oldestOpenMs()} ms`);
    assert.ok(await refusedAtOnce(fleet.sshPort, '127.0.0.1'), 'the failing source is refused at accept');
    assert.equal(await refusedAtOnce(fleet.sshPort, '127.0.0.61'), false, 'another source is not');
    const m = await scrape(metricsUrl);
    assert.ok((m.get('bento_handshakes_timed_out_total{stage="banner"}') ?? 0) > 0, 'banner timeouts are counted');
    assert.ok((m.get('bento_handshakes_refused_total{reason="per-source"}') ?? 0) > 0, 'per-source refusals are counted');
    assert.ok((m.get('bento_sources_penalised_total') ?? 0) >= 1, 'the penalty is counted');
  });
  // The flood left a few summary lines, not one per connection.
  const lines = fleet.hub!.output().split('\n').filter((l) => /handshake|penalised/.test(l));
  assert.ok(lines.length < 40, `${lines.length} log lines about the flood:\n${lines.slice(0, 10).join('\n')}`);
});

test('500 connections from 127.0.0.1 that send "SSH-2.0-x" and stall: the agent connects in < 5 s; they are cut at the handshake deadline', async (t) => {
  await freshHub();
  const s = siege({ port: fleet.sshPort, sources: ['127.0.0.1'], count: 500, reopenMs: 1000, behave: SSH_PREFIX });
  await underSiege(s, async (startedAt) => {
    const ms = await legitConnectMs();
    t.diagnostic(`agent connected in ${ms} ms`);
    assert.ok(ms < 5000, `the agent took ${ms} ms to connect`);
    await sleep(Math.max(0, startedAt + HANDSHAKE_DEADLINE_MS + SLACK_MS - Date.now()));
    assert.ok(s.oldestOpenMs() <= HANDSHAKE_DEADLINE_MS + SLACK_MS, `a stalled connection is still open after ${s.oldestOpenMs()} ms`);
  });
});

test('500 silent connections from 50 addresses (127.0.0.2-51): the agent connects in < 5 s; they are cut at the banner deadline', async (t) => {
  await freshHub();
  const s = siege({ port: fleet.sshPort, sources: loopbackSources(50), count: 500, reopenMs: 1000 });
  await underSiege(s, async (startedAt) => {
    const ms = await legitConnectMs();
    t.diagnostic(`agent connected in ${ms} ms`);
    assert.ok(ms < 5000, `the agent took ${ms} ms to connect`);
    await sleep(Math.max(0, startedAt + BANNER_DEADLINE_MS + SLACK_MS - Date.now()));
    assert.ok(s.oldestOpenMs() <= BANNER_DEADLINE_MS + SLACK_MS, `a silent connection is still open after ${s.oldestOpenMs()} ms`);
  });
});

test('500 connections from 50 addresses that send "SSH-2.0-x" and stall: the agent connects in < 5 s; they are cut at the handshake deadline and their sources penalised', async (t) => {
  await freshHub();
  const sources = loopbackSources(50);
  const s = siege({ port: fleet.sshPort, sources, count: 500, reopenMs: 1000, behave: SSH_PREFIX });
  await underSiege(s, async (startedAt) => {
    const ms = await legitConnectMs();
    t.diagnostic(`agent connected in ${ms} ms`);
    assert.ok(ms < 5000, `the agent took ${ms} ms to connect`);
    await sleep(Math.max(0, startedAt + HANDSHAKE_DEADLINE_MS + SLACK_MS - Date.now()));
    assert.ok(s.oldestOpenMs() <= HANDSHAKE_DEADLINE_MS + SLACK_MS, `a stalled connection is still open after ${s.oldestOpenMs()} ms`);
    assert.ok(await refusedAtOnce(fleet.sshPort, sources[7]!), 'a failing source is refused at accept');
  });
  // The agent, from a clean address, connects again while its neighbours are penalised.
  const again = await legitConnectMs();
  assert.ok(again < 5000, `the agent took ${again} ms to reconnect`);
});

test('trickling peers are cut at their deadline: a banner sent a byte at a time, and a packet after a banner', async (t) => {
  await freshHub();
  const slowBanner = siege({ port: fleet.sshPort, sources: ['127.0.0.70'], count: 8, behave: (sock) => trickle(sock, 'SSH-2.0-trickle-trickle-trickle\r\n', 400) });
  const slowPacket = siege({
    port: fleet.sshPort, sources: ['127.0.0.71'], count: 8,
    behave: (sock) => { sock.write('SSH-2.0-x\r\n\x00\x00\x01\x00'); return trickle(sock, 'x'.repeat(200), 400); },
  });
  try {
    await Promise.all([slowBanner.established, slowPacket.established]);
    await sleep(BANNER_DEADLINE_MS + SLACK_MS);
    assert.equal(slowBanner.open(), 0, 'slow banners are cut at the banner deadline');
    assert.ok(slowBanner.closed.every((c) => c.ms <= BANNER_DEADLINE_MS + SLACK_MS), JSON.stringify(slowBanner.closed));
    await sleep(HANDSHAKE_DEADLINE_MS - BANNER_DEADLINE_MS);
    assert.equal(slowPacket.open(), 0, 'a trickled packet is cut at the handshake deadline');
    assert.ok(slowPacket.closed.every((c) => c.ms <= HANDSHAKE_DEADLINE_MS + SLACK_MS), JSON.stringify(slowPacket.closed));
  } finally {
    slowBanner.stop();
    slowPacket.stop();
  }
});

test('a fleet behind one address (NAT): the per-source limit refuses its first storm as strangers, but after a hub restart its hosts have their credit back', async (t) => {
  const hubJson = path.join(fleet.fleetDir, 'hub.json');
  const original = await readFile(hubJson, 'utf8');
  const names = Array.from({ length: 12 }, (_, i) => `nat${i}`);
  const agents: HeldAgent[] = [];
  try {
    await writeFile(hubJson, JSON.stringify({ ...JSON.parse(original), limits: { perSourceUnauthenticated: 2 } }));
    await fleet.addHosts(names);
    await freshHub();
    for (const n of names) agents.push(holdAgent({ port: fleet.sshPort, localAddress: '127.0.0.80', name: n, privateKey: await readFile(fleet.keys.get(n)!.keyPath) }));
    await waitFor('12 agents from one address up', () => agents.every((a) => a.isUp()), 20_000, 50);
    const first = (await scrape(metricsUrl)).get('bento_handshakes_refused_total{reason="per-source"}') ?? 0;
    t.diagnostic(`first storm: ${first} refused at the per-source limit of 2`);
    assert.ok(first > 0, 'strangers: the limit applies');
    await sleep(1000); // the host-state journal is group-committed
    await fleet.stopHub('SIGKILL');
    await fleet.startHub();
    await waitFor('12 agents back', () => agents.every((a) => a.isUp()), 20_000, 50);
    const m = await scrape(metricsUrl);
    assert.equal(m.get('bento_handshakes_refused_total{reason="per-source"}'), 0, 'the restarted hub recalled 12 hosts of credit for 127.0.0.80');
    assert.equal(m.get('bento_sources_penalised_total'), 0);
  } finally {
    for (const a of agents) a.stop();
    await writeFile(hubJson, original);
  }
});
