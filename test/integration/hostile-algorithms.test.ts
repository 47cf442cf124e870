// What a stranger may choose before authentication (hub/server/ssh-server.ts
// HUB_SSH_ALGORITHMS): a real hub, real ssh2 clients that offer only what an
// attacker would pick, and the real OpenSSH client. The 8192-bit
// diffie-hellman-group18 exchange cost the hub ~19 ms of CPU per connection
// that sent one fixed message and left (unpenalised), and `zlib`
// compression inflated unauthenticated packets without a cap; both are
// refused now, at the key exchange, while agents and OpenSSH connect as before.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import ssh2 from 'ssh2';
import { TestFleet } from '../helpers/fleet.js';
import { helloFor, rawAgent } from '../helpers/raw-agent.js';

let fleet: TestFleet;
before(async () => {
  fleet = await TestFleet.create();
  await fleet.addHost('web1');
  await fleet.startHub();
});
after(() => fleet?.close());

/** Connect with ALGORITHMS offered (and only those); resolves with how it ended. */
async function offer(algorithms: ssh2.Algorithms): Promise<{ ok: boolean; error: string; ms: number }> {
  const privateKey = await readFile(fleet.keys.get('web1')!.keyPath);
  const conn = new ssh2.Client();
  const t0 = Date.now();
  return new Promise((resolve) => {
    const done = (ok: boolean, error: string): void => { conn.end(); resolve({ ok, error, ms: Date.now() - t0 }); };
    conn.on('ready', () => done(true, ''));
    conn.on('error', (err: Error) => done(false, err.message));
    conn.connect({ host: '127.0.0.1', port: fleet.sshPort, username: 'web1', privateKey, readyTimeout: 8000, algorithms });
  });
}

test('a peer offering only the 8192-bit (or any finite-field) Diffie-Hellman exchange is refused at the key exchange', async () => {
  for (const kex of ['diffie-hellman-group18-sha512', 'diffie-hellman-group14-sha256', 'diffie-hellman-group-exchange-sha256'] as const) {
    const r = await offer({ kex: [kex] });
    assert.equal(r.ok, false, `${kex} was accepted`);
    assert.match(r.error, /key exchange/i, kex);
    assert.ok(r.ms < 5000, `${kex}: refused after ${r.ms} ms`);
  }
});

test('a peer offering only zlib compression is refused; nothing is compressed', async () => {
  for (const compress of ['zlib', 'zlib@openssh.com'] as const) {
    const r = await offer({ compress: [compress] });
    assert.equal(r.ok, false, `${compress} was accepted`);
    assert.match(r.error, /compression/i, compress);
  }
});

test('the agent\'s own client (curve25519) and the nistp256 fallback still authenticate and open the control channel', async () => {
  assert.deepEqual(await offer({ kex: ['ecdh-sha2-nistp256'] }).then((r) => [r.ok, r.error]), [true, '']);
  const raw = await rawAgent({ port: fleet.sshPort, name: 'web1', keyPath: fleet.keys.get('web1')!.keyPath });
  try {
    raw.channel.write(helloFor('web1'));
    // The hub answers a hello with its welcome.
    const t0 = Date.now();
    while (!raw.received().includes('"welcome"') && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
    assert.match(raw.received(), /"welcome"/);
  } finally {
    raw.end();
  }
});

test('OpenSSH\'s client, with its own defaults, agrees on curve25519 and authenticates', async () => {
  const key = fleet.keys.get('web1')!.keyPath;
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    execFile('ssh', ['-v', '-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'ConnectTimeout=8', '-i', key, '-p', String(fleet.sshPort), 'web1@127.0.0.1', 'true'], { timeout: 15_000 },
    (err, _stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 255) : 0, stderr }));
  });
  assert.match(r.stderr, /kex: algorithm: curve25519-sha256/, r.stderr.slice(-2000));
  assert.match(r.stderr, /compression: none/);
  assert.match(r.stderr, /Authenticated to 127\.0\.0\.1/, r.stderr.slice(-2000));
});
