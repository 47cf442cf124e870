// The floor of the benchmark (docs/performance.md, "Floor"): a bare ssh2
// server with the hub's SSH layer (the same host key, identification,
// algorithms and keepalive, from hub/server/ssh-server.ts sshServerConfig) and
// no Bento logic, serving the same simulated agents. What a hub on ssh2 could
// at best reach on this machine in this run: every Bento figure is reported
// as a ratio to it.
//
// What it does per agent is the least that makes the agents' protocol work:
// public-key authentication against the fleet's registry (a signature check,
// which any SSH server needs), the control subsystem with a welcome line for
// a hello, the reverse-forward request accepted, and for a push a job.start
// line whose job.started / job.end it reads, answering job.end with job.ack.
// No validation, no job records, no events, no admission gate.
//
// A minimal admin socket speaks the hub's admin protocol for what the bench
// uses (ping, list, trigger with follow), so the very same measuring code
// (phases.ts timeTriggers, phaseFanout) times both servers.
//
//   node dist/test/bench/floor-server.js --dir FLEET --port P --heartbeat-ms H
import { readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import ssh2 from 'ssh2';
import type { Connection, ServerChannel } from 'ssh2';
import { sshServerConfig } from '../../hub/server/ssh-server.js';
import { verifySignature } from '../../hub/server/fast-keys.js';
import { CONTROL_SUBSYSTEM } from '../../common/protocol/version.js';
import { capYoungGeneration } from '../../common/platform/young-gen.js';

const { values } = parseArgs({ options: { dir: { type: 'string' }, port: { type: 'string' }, 'heartbeat-ms': { type: 'string' } }, strict: true });
if (!values.dir || !values.port || !values['heartbeat-ms']) {
  process.stderr.write('usage: floor-server.js --dir FLEET --port P --heartbeat-ms H\n');
  process.exit(2);
}
// The hub's runtime settings too: the same young generation (may re-execute this process once).
capYoungGeneration();
const dir = values.dir;
const heartbeatMs = Number(values['heartbeat-ms']);

// name -> the registered key, parsed once (the hub caches its parsed keys too).
const keys = new Map<string, ssh2.ParsedKey>();
const reg = JSON.parse(readFileSync(path.join(dir, 'registry.json'), 'utf8')) as { hosts: Record<string, { keys: string[] }> };
for (const [name, h] of Object.entries(reg.hosts)) {
  const k = ssh2.utils.parseKey(h.keys[0]!);
  if (!(k instanceof Error) && !Array.isArray(k)) keys.set(name, k);
}

/** One job's listener: called with each line type the agent sends about it. */
type JobWatch = (type: 'job.started' | 'job.end', outcome: string) => void;

interface Agent { name: string; channel: ServerChannel; pending: string }
const agents = new Map<string, Agent>();
const jobs = new Map<string, JobWatch>();
let nextJob = 1;

function onLine(a: Agent, line: string): void {
  const m = JSON.parse(line) as { type: string; jobId?: string; seq?: number; outcome?: string };
  switch (m.type) {
    case 'hello':
      a.channel.write(`${JSON.stringify({ type: 'welcome', protocol: 1, hubVersion: 'floor', heartbeatMs, keepalive: 'ssh' })}\n`);
      agents.set(a.name, a);
      break;
    case 'heartbeat':
      a.channel.write(`{"type":"heartbeat","seq":${Number(m.seq)}}\n`);
      break;
    case 'job.started':
      jobs.get(String(m.jobId))?.('job.started', '');
      break;
    case 'job.end':
      a.channel.write(`{"type":"job.ack","jobId":"${String(m.jobId)}"}\n`);
      jobs.get(String(m.jobId))?.('job.end', String(m.outcome));
      jobs.delete(String(m.jobId));
      break;
    default:
      break;
  }
}

function onConnection(conn: Connection): void {
  (conn as unknown as { setNoDelay?(on: boolean): unknown }).setNoDelay?.(true);
  let user = '';
  conn.on('authentication', (ctx) => {
    if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
    const k = keys.get(ctx.username);
    if (!k || k.type !== ctx.key.algo || !k.getPublicSSH().equals(ctx.key.data)) return ctx.reject(['publickey']);
    if (ctx.signature && !verifySignature(k, ctx.blob!, ctx.signature, ctx.hashAlgo)) return ctx.reject(['publickey']);
    if (ctx.signature) user = ctx.username;
    ctx.accept();
  });
  conn.on('ready', () => {
    conn.on('session', (accept) => {
      accept().on('subsystem', (acceptSub, rejectSub, { name }) => {
        if (name !== CONTROL_SUBSYSTEM) { rejectSub(); return; }
        const a: Agent = { name: user, channel: acceptSub(), pending: '' };
        a.channel.on('data', (d: Buffer) => {
          a.pending += d.toString('utf8');
          let nl: number;
          while ((nl = a.pending.indexOf('\n')) !== -1) {
            const line = a.pending.slice(0, nl);
            a.pending = a.pending.slice(nl + 1);
            if (line) onLine(a, line);
          }
        });
        a.channel.on('close', () => { if (agents.get(a.name) === a) agents.delete(a.name); conn.end(); });
      });
    });
    conn.on('request', (accept, _reject, kind, info) => { accept?.((info as { bindPort?: number }).bindPort); void kind; });
  });
  conn.on('error', () => undefined);
}

const server = new ssh2.Server(sshServerConfig({ hostKey: readFileSync(path.join(dir, 'hub_ed25519_key')), ident: 'bento-hub', heartbeatMs }), onConnection);
server.listen(Number(values.port), '127.0.0.1');

// ---------------------------------------------------------------- admin socket
interface AdminReq { op: string; hosts?: string[]; all?: boolean; action?: string }

function trigger(req: AdminReq, out: net.Socket): void {
  const targets = req.all ? [...agents.values()] : (req.hosts ?? []).map((h) => agents.get(h)).filter((a): a is Agent => a !== undefined);
  const send = (ev: object): void => { out.write(`${JSON.stringify(ev)}\n`); };
  let open = targets.length;
  if (open === 0) { send({ ev: 'done' }); return; }
  for (const a of targets) {
    const jobId = `f${nextJob++}`;
    jobs.set(jobId, (type, outcome) => {
      if (type === 'job.started') { send({ ev: 'started', host: a.name, jobId }); return; }
      send({ ev: 'end', host: a.name, jobId, outcome });
      if (--open === 0) send({ ev: 'done' });
    });
    a.channel.write(`{"type":"job.start","jobId":"${jobId}","action":"${req.action ?? 'switch'}"}\n`);
    send({ ev: 'accepted', host: a.name, jobId, disposition: 'dispatched' });
  }
}

const socketPath = path.join(dir, 'hub.sock');
rmSync(socketPath, { force: true });
const admin = net.createServer((s) => {
  let buf = '';
  s.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    const nl = buf.indexOf('\n');
    if (nl === -1) return;
    const req = JSON.parse(buf.slice(0, nl)) as AdminReq;
    buf = '';
    if (req.op === 'ping') s.end('{"ev":"pong"}\n');
    else if (req.op === 'list') s.end(`${JSON.stringify({ ev: 'list', clients: [...agents.keys()].map((name) => ({ name })) })}\n`);
    else if (req.op === 'trigger') trigger(req, s);
    else s.end(`${JSON.stringify({ ev: 'error', message: `floor: no op ${req.op}` })}\n`);
  });
  s.on('error', () => undefined);
});
admin.listen(socketPath);
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => { rmSync(socketPath, { force: true }); process.exit(0); });
