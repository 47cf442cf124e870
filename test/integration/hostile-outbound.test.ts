// A compromised host (a valid key) that makes the hub write and never reads
// what it wrote. A real hub; attackers are ssh2 clients with the hosts' keys:
//  - web1 opens its SFTP jail, opens a published 1 MiB file, stops reading
//    its TCP socket, grants a 2 GiB window and pipelines 29-byte READ
//    requests for 64 KiB (before: 178 KB of requests took the hub +535 MiB in
//    6 s). Now the jail waits for the connection to drain, and past
//    limits.sessionOutboundBytes (2 MiB here) the connection is cut with
//    OUTBOUND_OVERRUN.
//  - sec1 opens secrets channels with an SSH window of 0 (before: each held
//    the whole bundle, 300 x 700 KB took +307 MiB). Now one request per host
//    is in flight, the others are refused, and one not read within 5 s is
//    closed.
//  - rep1 replays one recorded job.end as fast as it may and never reads the
//    acks (before: +35 MiB/min of acks). Now each ack the peer has not read
//    holds its message's place in the inbound limits: the hub stops reading
//    (SSH flow control) and the attacker's writes block.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import ssh2, { type ClientChannel, type SFTPWrapper } from 'ssh2';
import { TestFleet } from '../helpers/fleet.js';
import { sleep, waitFor, raceTimeout } from '../helpers/proc.js';
import { rawAgent, helloFor } from '../helpers/raw-agent.js';
import { MiB, rssBytes, watchRss } from '../helpers/rss.js';
import { grantWindow, withWindow } from '../helpers/ssh-window.js';

const SECRETS = 'bento-secrets@1';
let fleet: TestFleet;

before(async () => {
  fleet = await TestFleet.create({
    hubSettings: {
      publish: { buildCommand: ['true'] },
      // The rate limit out of the way: what stops rep1 must be its unread acks.
      limits: { sessionOutboundBytes: 2 * MiB, sessionBytesPerSecond: 256 * MiB, sessionBurstBytes: 256 * MiB },
    },
  });
  const hosts = path.join(fleet.fleetDir, 'hosts');
  await mkdir(path.join(hosts, 'web1'), { recursive: true });
  await writeFile(path.join(hosts, 'web1', 'configuration.nix'), '{ ... }: { }\n');
  await writeFile(path.join(hosts, 'web1', 'big.bin'), randomBytes(MiB));
  await mkdir(path.join(hosts, 'sec1', 'secrets'), { recursive: true });
  await writeFile(path.join(hosts, 'sec1', 'configuration.nix'), '{ ... }: { }\n');
  await writeFile(path.join(hosts, 'sec1', 'secrets', 'blob'), randomBytes(512 * 1024).toString('hex').slice(0, 700 * 1024));
  await fleet.addHosts(['web1', 'sec1', 'rep1']);
  const dep = await fleet.hubCli(['deploy', 'web1']);
  assert.equal(dep.code, 0, dep.stderr);
  await fleet.startHub();
});
after(async () => { await fleet?.close(); });

function connect(host: string, sock?: net.Socket): Promise<ssh2.Client> {
  return readFile(fleet.keys.get(host)!.keyPath).then((privateKey) => new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.on('error', reject);
    c.on('ready', () => { c.off('error', reject); c.on('error', () => undefined); resolve(c); });
    c.connect({ ...(sock ? { sock } : { host: '127.0.0.1', port: fleet.sshPort }), username: host, privateKey, readyTimeout: 10_000 });
  }));
}

test('SFTP reads pipelined by a peer that does not read TCP: the hub stays bounded and cuts it with OUTBOUND_OVERRUN', async (t) => {
  const pid = fleet.hub!.child.pid!;
  await sleep(500);
  const baseline = rssBytes(pid);
  const sock = net.connect({ host: '127.0.0.1', port: fleet.sshPort });
  await new Promise((r) => sock.once('connect', r));
  const conn = await connect('web1', sock);
  const closed = new Promise<void>((r) => conn.on('close', () => r()));
  let isClosed = false;
  void closed.then(() => { isClosed = true; });
  const sftp = await new Promise<SFTPWrapper>((res, rej) => conn.sftp((e, s) => (e ? rej(e) : res(s))));
  const handle = await new Promise<Buffer>((res, rej) => sftp.open('config/big.bin', 'r', (e, h) => (e ? rej(e) : res(h))));
  // 64 KiB per READ (ssh2's client would ask for ~32 KiB), a 2 GiB window, and no more reading.
  (sftp as unknown as { _maxReadLen: number })._maxReadLen = 64 * 1024;
  grantWindow(conn, (sftp as unknown as { outgoing: { id: number } }).outgoing.id, 2 * 1024 * MiB - 1);
  sock.pause();
  const rss = watchRss(pid);
  const buf = Buffer.alloc(64 * 1024);
  let sent = 0;
  const deadline = Date.now() + 30_000;
  // Stop at the cut, or once the hub is over the bound (the old code would grow for as long as requests come).
  while (!isClosed && Date.now() < deadline && rss.peak() < baseline + 128 * MiB && sent < 400_000) {
    for (let i = 0; i < 2000; i++) sftp.read(handle, buf, 0, buf.length, (sent++ % 16) * 64 * 1024, () => undefined);
    await sleep(20);
  }
  await raceTimeout(closed, deadline - Date.now(), undefined);
  await sleep(500);
  const peak = rss.stop();
  conn.end();
  sock.destroy();
  t.diagnostic(`hub RSS baseline ${(baseline / MiB).toFixed(0)} MiB, peak ${(peak / MiB).toFixed(0)} MiB; ${sent} READ requests (${((sent * 29) / 1024).toFixed(0)} KiB)`);
  assert.ok(peak < baseline + 64 * MiB, `peak RSS ${(peak / MiB).toFixed(0)} MiB over a ${(baseline / MiB).toFixed(0)} MiB baseline`);
  assert.ok(isClosed, 'the hub cut the connection');
  assert.match(fleet.hub!.output(), /"host":"web1".*"code":"OUTBOUND_OVERRUN".*does not read what the hub sends/);
});

function secretsChannel(conn: ssh2.Client): Promise<ClientChannel> {
  return new Promise((res, rej) => conn.subsys(SECRETS, (e, ch) => (e ? rej(e) : res(ch))));
}

test('secrets channels that never open their window: one in flight per host, the others refused, and it is closed after 5 s', async (t) => {
  const agent = await rawAgent({ port: fleet.sshPort, name: 'sec1', keyPath: fleet.keys.get('sec1')!.keyPath });
  agent.channel.write(helloFor('sec1'));
  await waitFor('welcome', () => agent.received().includes('"welcome"'), 10_000);
  let seq = 0;
  const beat = setInterval(() => agent.channel.write(`${JSON.stringify({ type: 'heartbeat', seq: ++seq })}\n`), 300);
  t.after(() => clearInterval(beat));
  const first = await withWindow(agent.conn, 0, () => secretsChannel(agent.conn));
  let firstClosed = false;
  first.on('close', () => { firstClosed = true; });
  first.resume(); // nothing comes (window 0); flowing, ssh2 reports the hub's close

  const refused: boolean[] = [];
  for (let i = 0; i < 5; i++) {
    refused.push(await withWindow(agent.conn, 0, () => secretsChannel(agent.conn)).then((ch) => { ch.on('error', () => undefined); return false; }, () => true));
  }
  assert.deepEqual(refused, [true, true, true, true, true], 'while one request is in flight, the others are refused');
  assert.match(fleet.hub!.output(), /"host":"sec1".*refused a secrets request: another one of this host is still in flight/);
  await waitFor('the unread secrets channel closed', () => firstClosed, 10_000);
  // The hub closes the channel, then logs why: the line may reach us through its stdout a moment after the close.
  await waitFor('the hub says why', () => /"host":"sec1".*secrets not delivered: the agent did not read them within 5000 ms/.test(fleet.hub!.output()), 5000);
  // Then an agent that reads gets its bundle.
  const ch = await secretsChannel(agent.conn);
  const chunks: Buffer[] = [];
  ch.on('data', (d: Buffer) => chunks.push(d));
  await new Promise((r) => ch.on('close', r));
  const bundle = JSON.parse(Buffer.concat(chunks).toString()) as { ok: boolean; files: Array<{ name: string }> };
  assert.equal(bundle.ok, true);
  assert.deepEqual(bundle.files.map((f) => f.name), ['blob']);
  agent.end();
});

test('one recorded job.end replayed without reading the acks: the hub stops reading and the attacker\'s writes block', async (t) => {
  // A 16 KiB window: the welcome and the first acks get through, then the hub's acks wait in its channel.
  const agent = await rawAgent({ port: fleet.sshPort, name: 'rep1', keyPath: fleet.keys.get('rep1')!.keyPath, window: 16 * 1024 });
  agent.channel.write(helloFor('rep1'));
  await waitFor('welcome', () => agent.received().includes('"welcome"'), 10_000);
  const jobId = 'rep1-000001';
  const end = `${JSON.stringify({ type: 'job.end', jobId, action: 'switch', outcome: 'success', exitCode: 0, startedAt: new Date().toISOString(), durationMs: 1 })}\n`;
  agent.channel.write(`${JSON.stringify({ type: 'job.started', jobId, action: 'switch' })}\n${end}`);
  await waitFor('the first ack', () => agent.received().includes('"job.ack"'), 10_000);
  // Replays, in batches; blocked = the channel did not drain for 3 s (the hub stopped extending the window).
  const batch = end.repeat(256);
  let bytes = 0;
  let blocked = false;
  const deadline = Date.now() + 60_000;
  while (!blocked && Date.now() < deadline && bytes < 96 * MiB) {
    bytes += batch.length;
    if (agent.channel.write(batch)) continue;
    blocked = !(await raceTimeout(new Promise<boolean>((r) => agent.channel.once('drain', () => r(true))), 3000, false));
  }
  const accepted = bytes - agent.channel.writableLength;
  t.diagnostic(`wrote ${(bytes / MiB).toFixed(1)} MiB of replays, the hub took ${(accepted / MiB).toFixed(1)} MiB; blocked: ${blocked}`);
  assert.ok(blocked, `the hub kept reading: ${(bytes / MiB).toFixed(0)} MiB of replays taken while no ack was read`);
  assert.ok(accepted < 48 * MiB, `${(accepted / MiB).toFixed(0)} MiB taken`);
  assert.match(fleet.hub!.output(), /"host":"rep1".*faster than the hub handles its messages/);
  agent.end();
});
