// NAT, provably: the agent lives in its own network namespace behind a
// masquerading router; the hub, in another namespace, cannot open any
// connection to it. Yet `trigger` reaches it at once, over TCP and WebSocket,
// because the agent's own outbound connection carries everything.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestFleet } from '../helpers/fleet.js';
import { createNat, netnsUnsupportedReason, type NatNet } from '../fixtures/netns.js';

let fleet: TestFleet;
let nat: NatNet;
const reason = await netnsUnsupportedReason();
const PORT = 2222;
const WS_PORT = 8080;
const probe = (host: string, port: number) => [
  '-e',
  `const s=require('net').connect({host:'${host}',port:${port}});s.setTimeout(2000);` +
  `s.on('connect',()=>{console.log('connected');process.exit(0)});s.on('timeout',()=>{console.log('timeout');process.exit(3)});s.on('error',e=>{console.log(e.code);process.exit(4)})`,
];

before(async () => {
  if (reason) return;
  nat = await createNat('bento-nat');
  fleet = await TestFleet.create();
  await fleet.startHub(['--listen', `${nat.hubAddr}:${PORT}`, '--ws-listen', `${nat.hubAddr}:${WS_PORT}`], nat.hub);
});
after(async () => {
  await fleet?.close();
  await nat?.destroy();
});

test('the hub cannot dial the client; the client can dial the hub', { skip: reason ?? false }, async () => {
  // Something listens in the client namespace, so a refusal would mean "no route", not "closed port".
  nat.spawnIn(nat.client, 'client-listener', process.execPath, ['-e', `require('net').createServer(s=>s.end()).listen(2200,'0.0.0.0')`]);
  await new Promise((r) => setTimeout(r, 300));
  const fromHub = await nat.exec(nat.hub, process.execPath, probe(nat.clientAddr, 2200));
  assert.notEqual(fromHub.code, 0, `hub reached the client: ${fromHub.stdout}`);
  const fromClient = await nat.exec(nat.client, process.execPath, probe(nat.hubAddr, PORT));
  assert.equal(fromClient.code, 0, fromClient.stdout + fromClient.stderr);
});

test('agents behind NAT are listed with the router address and triggered over TCP and WebSocket', { skip: reason ?? false }, async () => {
  await fleet.addHost('natted');
  await fleet.addHost('natted-ws');
  fleet.startAgent('natted', await fleet.agentConfig('natted', { hub: `ssh://${nat.hubAddr}:${PORT}`, rebuildCommand: ['/bin/echo', 'rebuilt behind NAT'] }), {}, nat.client);
  fleet.startAgent('natted-ws', await fleet.agentConfig('natted-ws', { hub: undefined, endpoints: [`ws://${nat.hubAddr}:${WS_PORT}/bento`], rebuildCommand: ['/bin/echo', 'rebuilt behind NAT over ws'] }), {}, nat.client);
  await fleet.waitConnected(['natted', 'natted-ws']);
  for (const row of await fleet.list()) {
    assert.match(String(row['remoteAddress']), new RegExp(`^${nat.routerWanAddr.replace(/\./g, '\\.')}:\\d+$`), `${row.name} seen through the NAT router`);
  }
  const r = await fleet.hubCli(['trigger', 'natted', 'natted-ws']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /natted {4}\| rebuilt behind NAT switch/);
  assert.match(r.stdout, /natted-ws \| rebuilt behind NAT over ws switch/);
});
