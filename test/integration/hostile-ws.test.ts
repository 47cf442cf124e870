// Issue 13 part 1 on the WebSocket listener: slow HTTP upgrades and upgraded
// streams that stall must not keep agents out either. A real hub with a ws
// listener, the real agent over ws from 127.0.0.60 (microsocks bound to it),
// and 500 hostile connections: upgraded then silent, upgraded then
// "SSH-2.0-x" and silent, and HTTP headers trickled a byte at a time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestFleet } from '../helpers/fleet.js';
import { freePort, sleep } from '../helpers/proc.js';
import { startMicrosocks, type NamedProxy } from '../fixtures/proxies.js';
import { clientFrame, connectedAfter, connectedLines, loopbackSources, refusedAtOnce, scrape, siege, trickle, upgradeRequest, type Siege } from './hostile-helpers.js';

const LEGIT_SOURCE = '127.0.0.60';
const BANNER_DEADLINE_MS = 5000;
const HANDSHAKE_DEADLINE_MS = 10_000;
const SLACK_MS = 2000;

let fleet: TestFleet;
let micro: NamedProxy;
let wsPort = 0;
let metricsUrl = '';

before(async () => {
  const metricsPort = await freePort();
  metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  fleet = await TestFleet.create({ hubSettings: { metrics: { listen: `127.0.0.1:${metricsPort}` } } });
  await fleet.addHost('legit');
  micro = await startMicrosocks({ bind: LEGIT_SOURCE });
  wsPort = await freePort();
});
after(async () => {
  await micro?.stop();
  await fleet?.close();
});

async function freshHub(): Promise<void> {
  await fleet.stopHub();
  await fleet.startHub(['--ws-listen', `127.0.0.1:${wsPort}`]);
}

/** The real agent over ws from 127.0.0.60; ms until the hub logs it connected (Infinity after 8 s). */
async function legitConnectMs(): Promise<number> {
  const hub = fleet.hub!;
  const before = connectedLines(hub, 'legit');
  const cfg = await fleet.agentConfig('legit', {
    hub: undefined,
    endpoints: [{ url: `ws://127.0.0.1:${wsPort}/bento`, proxy: `socks5://127.0.0.1:${micro.port}` }],
    connectTimeoutMs: 20_000,
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

const upgradeThen = (extra: Buffer | null) => (sock: import('node:net').Socket): void => {
  sock.write(upgradeRequest(wsPort, '/bento'));
  if (extra) sock.write(extra);
};

test('500 upgraded WebSocket streams from 127.0.0.1 that never send a banner: the agent over ws connects in < 5 s; they are cut at the banner deadline', async (t) => {
  await freshHub();
  const s = siege({ port: wsPort, sources: ['127.0.0.1'], count: 500, reopenMs: 1000, behave: upgradeThen(null) });
  await underSiege(s, async (startedAt) => {
    const ms = await legitConnectMs();
    t.diagnostic(`agent connected in ${ms} ms`);
    assert.ok(ms < 5000, `the agent took ${ms} ms to connect`);
    await sleep(Math.max(0, startedAt + BANNER_DEADLINE_MS + SLACK_MS - Date.now()));
    assert.ok(s.oldestOpenMs() <= BANNER_DEADLINE_MS + SLACK_MS, `a silent stream is still open after ${s.oldestOpenMs()} ms`);
    assert.ok(await refusedAtOnce(wsPort, '127.0.0.1'), 'the failing source is refused at accept, before any HTTP');
    const m = await scrape(metricsUrl);
    assert.ok((m.get('bento_handshakes_timed_out_total{stage="banner"}') ?? 0) > 0);
    assert.ok((m.get('bento_handshakes_refused_total{reason="per-source"}') ?? 0) > 0);
  });
});

test('500 upgraded streams from 50 addresses that send "SSH-2.0-x" and stall: the agent over ws connects in < 5 s; they are cut at the handshake deadline', async (t) => {
  await freshHub();
  const s = siege({ port: wsPort, sources: loopbackSources(50), count: 500, reopenMs: 1000, behave: upgradeThen(clientFrame('SSH-2.0-x\r\n')) });
  await underSiege(s, async (startedAt) => {
    const ms = await legitConnectMs();
    t.diagnostic(`agent connected in ${ms} ms`);
    assert.ok(ms < 5000, `the agent took ${ms} ms to connect`);
    await sleep(Math.max(0, startedAt + HANDSHAKE_DEADLINE_MS + SLACK_MS - Date.now()));
    assert.ok(s.oldestOpenMs() <= HANDSHAKE_DEADLINE_MS + SLACK_MS, `a stalled stream is still open after ${s.oldestOpenMs()} ms`);
  });
});

test('500 slow HTTP upgrades from 50 addresses (headers a byte at a time): the agent over ws connects in < 5 s; they are cut at the banner deadline', async (t) => {
  await freshHub();
  const request = upgradeRequest(wsPort, '/bento');
  const s = siege({ port: wsPort, sources: loopbackSources(50), count: 500, behave: (sock) => trickle(sock, request, 500) });
  await underSiege(s, async (startedAt) => {
    const ms = await legitConnectMs();
    t.diagnostic(`agent connected in ${ms} ms`);
    assert.ok(ms < 5000, `the agent took ${ms} ms to connect`);
    await sleep(Math.max(0, startedAt + BANNER_DEADLINE_MS + SLACK_MS - Date.now()));
    assert.equal(s.open(), 0, `${s.open()} slow upgrades still open after ${BANNER_DEADLINE_MS + SLACK_MS} ms`);
    assert.ok(s.closed.every((c) => c.ms <= BANNER_DEADLINE_MS + SLACK_MS), `longest: ${Math.max(...s.closed.map((c) => c.ms))} ms`);
  });
});
