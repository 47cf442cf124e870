// Hostile or broken control-channel input: each case closes that agent's
// connection with a logged reason and an `error` message, and the hub keeps
// serving everyone else (a real agent stays connected and triggerable).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestFleet, type HostKey } from '../helpers/fleet.js';
import { rawAgent, helloFor } from '../helpers/raw-agent.js';
import { waitFor } from '../helpers/proc.js';

let fleet: TestFleet;
let bad: HostKey;

before(async () => {
  fleet = await TestFleet.create();
  bad = await fleet.addHost('mallory');
  await fleet.addHost('web1');
  await fleet.startHub();
  const cfg = await fleet.agentConfig('web1', { rebuildCommand: ['/bin/echo', 'rebuilt'] });
  fleet.startAgent('web1', cfg);
  await fleet.waitConnected(['web1']);
});
after(async () => { await fleet?.close(); });

const cases: Array<{ name: string; input: () => string | Buffer; code: string; log: RegExp }> = [
  { name: 'not JSON', input: () => 'this is not json\n', code: 'PROTOCOL_MALFORMED', log: /not valid JSON/ },
  { name: 'JSON but not an object', input: () => '[1,2,3]\n', code: 'PROTOCOL_MALFORMED', log: /not a JSON object/ },
  { name: 'oversized line without a newline', input: () => Buffer.alloc(200 * 1024, 0x61), code: 'PROTOCOL_OVERSIZED', log: /exceeds 65536 bytes/ },
  { name: 'unknown message type', input: () => '{"type":"rm -rf","x":1}\n', code: 'PROTOCOL_UNKNOWN_TYPE', log: /unknown message type/ },
  { name: 'a hub-only message from an agent', input: () => '{"type":"job.start","jobId":"abcdefgh12","action":"switch"}\n', code: 'PROTOCOL_UNKNOWN_TYPE', log: /unknown message type .{0,2}job\.start/ },
  { name: 'message before hello', input: () => '{"type":"heartbeat","seq":1}\n', code: 'PROTOCOL_STATE', log: /expected hello/ },
  { name: 'hello with a wrong field type', input: () => helloFor('mallory', { generation: 'seven' }), code: 'PROTOCOL_MALFORMED', log: /generation/ },
  { name: 'hello naming another host', input: () => helloFor('web1'), code: 'PROTOCOL_STATE', log: /belongs to .{0,2}mallory/ },
  { name: 'hello with a future protocol', input: () => helloFor('mallory', { protocol: 99 }), code: 'PROTOCOL_VERSION', log: /protocol 99/ },
  { name: 'a second hello', input: () => helloFor('mallory') + helloFor('mallory'), code: 'PROTOCOL_STATE', log: /second hello/ },
  { name: 'job output with an invalid job id', input: () => helloFor('mallory') + '{"type":"job.output","jobId":"../../etc","stream":"stdout","data":"x"}\n', code: 'PROTOCOL_MALFORMED', log: /jobId/ },
];

for (const c of cases) {
  test(`${c.name}: connection closed with ${c.code}, hub keeps serving`, async () => {
    const before = fleet.hub!.output().length;
    const a = await rawAgent({ port: fleet.sshPort, name: 'mallory', keyPath: bad.keyPath });
    a.channel.write(c.input());
    await Promise.race([a.closed, new Promise((_, rej) => setTimeout(() => rej(new Error('hub did not close the connection')), 5000))]);
    assert.match(a.received(), new RegExp(`"type":"error","code":"${c.code}"`));
    // The hub's log reaches us through its stderr pipe, which may trail the SSH socket.
    await waitFor('hub logged the reason', () => c.log.test(fleet.hub!.output().slice(before)), 5000);
    assert.match(fleet.hub!.output().slice(before), /closing agent connection: bad control input/);
    // Everyone else is unaffected.
    const r = await fleet.hubCli(['trigger', 'web1', '--action', 'build']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /rebuilt build/);
  });
}

test('the hub survives all of it: still listening, web1 still listed, mallory not', async () => {
  await waitFor('mallory gone from list', async () => !(await fleet.list()).some((c) => c.name === 'mallory'), 5000);
  assert.deepEqual((await fleet.list()).map((c) => c.name), ['web1']);
  assert.equal(fleet.hub!.child.exitCode, null);
});
