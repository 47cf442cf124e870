// Microbenchmark behind the liveness design (docs/performance.md, "Idle CPU"):
// server CPU per liveness round trip, a JSON heartbeat read from a channel and
// echoed (the original scheme) versus an SSH keepalive@openssh.com answered
// inside ssh2 (the current one). Plain ssh2 on both ends, no Bento code, so
// the difference is the scheme's own cost.
//   node dist/test/bench/keepalive-micro.js [--connections N] [--rounds R]
// The server runs in a child process so its CPU time is its own.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import ssh2 from 'ssh2';
import type { AddressInfo } from 'node:net';
import { generateEd25519 } from '../../common/platform/ed25519.js';
import { sshPing } from './ssh-ping.js';

type Mode = 'json' | 'ssh';

function server(): void {
  const srv = new ssh2.Server({ hostKeys: [generateEd25519().private], keepaliveInterval: 600_000 }, (c) => {
    c.on('authentication', (ctx) => ctx.accept());
    c.on('ready', () => c.on('session', (accept) => accept().on('subsystem', (acceptSub) => {
      const ch = acceptSub();
      ch.on('data', (d: Buffer) => {
        const m = JSON.parse(d.toString('utf8')) as { type: string; seq: number };
        if (m.type === 'heartbeat') ch.write(`${JSON.stringify({ type: 'heartbeat', seq: m.seq })}\n`);
      });
    })));
    c.on('error', () => undefined);
  });
  srv.listen(0, '127.0.0.1', () => process.send?.({ port: (srv.address() as AddressInfo).port }));
  process.on('message', (m) => {
    if (m !== 'cpu') return;
    const u = process.cpuUsage();
    process.send?.({ cpu: (u.user + u.system) / 1e6 });
  });
}

interface Conn { client: ssh2.Client; ch: ssh2.ClientChannel }

async function measure(mode: Mode, n: number, rounds: number): Promise<number> {
  const child = fork(fileURLToPath(import.meta.url), ['--server']);
  try {
    const port = await new Promise<number>((resolve) => child.once('message', (m) => resolve((m as { port: number }).port)));
    const conns: Conn[] = [];
    for (let i = 0; i < n; i++) {
      conns.push(await new Promise<Conn>((resolve, reject) => {
        const client = new ssh2.Client();
        client.on('ready', () => client.subsys('x', (err, ch) => (err ? reject(err) : resolve({ client, ch }))));
        client.on('error', reject);
        client.connect({ host: '127.0.0.1', port, username: 'u', password: 'p', readyTimeout: 20_000 });
      }));
    }
    let replies = 0;
    for (const c of conns) c.ch.on('data', () => { replies++; });
    const cpu = (): Promise<number> => new Promise((resolve) => { child.once('message', (m) => resolve((m as { cpu: number }).cpu)); child.send('cpu'); });
    await new Promise((r) => setTimeout(r, 1000));
    const c0 = await cpu();
    for (let r = 0; r < rounds; r++) {
      for (const c of conns) {
        if (mode === 'json') {
          c.ch.write(`{"type":"heartbeat","seq":${r}}\n`);
        } else {
          sshPing(c.client, () => { replies++; });
        }
      }
      await new Promise((res) => setTimeout(res, 300));
    }
    const deadline = Date.now() + 10_000;
    while (replies < n * rounds && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const c1 = await cpu();
    if (replies < n * rounds) throw new Error(`${mode}: only ${replies}/${n * rounds} replies`);
    for (const c of conns) c.client.end();
    return ((c1 - c0) / (n * rounds)) * 1e6;
  } finally {
    child.kill();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { connections: { type: 'string' }, rounds: { type: 'string' } } });
  const n = Math.min(5000, Math.max(1, Number(values.connections ?? 1500)));
  const rounds = Math.min(200, Math.max(1, Number(values.rounds ?? 20)));
  for (const mode of ['json', 'ssh', 'json', 'ssh'] as Mode[]) {
    const us = await measure(mode, n, rounds);
    console.log(`${mode === 'json' ? 'JSON heartbeat echoed on a channel' : 'SSH keepalive answered by ssh2   '}: ${us.toFixed(1)} us of server CPU per round trip (${n} connections x ${rounds})`);
  }
}

if (process.argv.includes('--server')) server();
else main().catch((err: Error) => { console.error(err.message); process.exit(1); });
