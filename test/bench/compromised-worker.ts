// The attacker of the bench's compromised-host phase (compromised.ts), in a
// process of its own: with a registered host's key it says hello, then sends
// job.started, job.output and job.end for jobs it invents, as fast as its SSH
// channel takes them (it waits for 'drain', as any SSH client must: the hub's
// flow control is what slows it). Progress goes to the orchestrator every
// 500 ms; it ends when the orchestrator kills it or leaves.
import ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';
import { CONTROL_SUBSYSTEM, PROTOCOL_VERSION } from '../../common/protocol/version.js';
import type { CompromisedFromWorker, CompromisedToWorker } from './ipc.js';

const send = (m: CompromisedFromWorker): void => { process.send?.(m); };
const LINE = 32 * 1024;

let paused: Promise<void> | null = null;
let unpause: () => void = () => undefined;

async function attack(m: Extract<CompromisedToWorker, { t: 'start' }>): Promise<void> {
  const client = new ssh2.Client();
  let errors = '';
  client.on('error', (err) => { errors = err.message; });
  const ch = await new Promise<ClientChannel>((resolve, reject) => {
    client.on('ready', () => client.subsys(CONTROL_SUBSYSTEM, (err, c) => (err ? reject(err) : resolve(c))));
    client.on('close', () => reject(new Error('connection closed')));
    client.connect({ host: '127.0.0.1', port: m.port, username: m.agent.name, privateKey: m.agent.privateKey, readyTimeout: 60_000, keepaliveInterval: 0 });
  });
  let acks = 0;
  ch.on('data', (c: Buffer) => { acks += (c.toString().match(/"type":"job\.ack"/g) ?? []).length; });
  ch.write(`${JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, name: m.agent.name, agentVersion: 'bench-compromised', system: null, generation: null, configHash: null, capabilities: [] })}\n`);
  send({ t: 'connected' });
  let jobs = 0;
  let bytes = 0;
  const report = setInterval(() => send({ t: 'progress', jobs, bytes, acks, errors }), 500);
  const data = 'o'.repeat(LINE);
  const write = async (text: string): Promise<void> => {
    if (paused) await paused;
    bytes += text.length;
    if (!ch.write(text)) await new Promise<void>((resolve) => ch.once('drain', () => resolve()));
  };
  try {
    for (let i = 0; i < m.jobs; i++) {
      const jobId = `evil-${String(i).padStart(8, '0')}`;
      await write(`${JSON.stringify({ type: 'job.started', jobId, action: 'switch' })}\n`);
      for (let b = 0; b < m.outputBytes; b += LINE) await write(`${JSON.stringify({ type: 'job.output', jobId, stream: 'stdout', data })}\n`);
      await write(`${JSON.stringify({ type: 'job.end', jobId, action: 'switch', outcome: 'success', exitCode: 0, startedAt: new Date().toISOString(), durationMs: 1 })}\n`);
      jobs = i + 1;
    }
  } finally {
    clearInterval(report);
    send({ t: 'progress', jobs, bytes, acks, errors });
  }
}

process.on('message', (m: CompromisedToWorker) => {
  if (m.t === 'start') attack(m).catch((err: Error) => send({ t: 'failed', error: err.message }));
  else if (m.t === 'pause' && !paused) paused = new Promise<void>((resolve) => { unpause = resolve; });
  else if (m.t === 'resume' && paused) { paused = null; unpause(); }
});
// The orchestrator is gone (crash, Ctrl-C): never outlive it.
process.on('disconnect', () => process.exit(0));
