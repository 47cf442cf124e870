// A legitimate agent's connect time, from a source address of its own: TCP
// connect, SSH handshake and authentication, control channel, hello, welcome
// (what the real agent waits for, client/net/hub-connection.ts). One attempt,
// no retry, bounded by the agent's default connect timeout.
import net from 'node:net';
import ssh2 from 'ssh2';
import { CONTROL_SUBSYSTEM, PROTOCOL_VERSION } from '../../common/protocol/version.js';
import type { AgentSpec } from './ipc.js';

export interface ProbeOptions { port: number; localAddress: string; agent: AgentSpec; timeoutMs: number }

/** ms from connect to welcome; rejects with why it failed. */
export function probeConnect(o: ProbeOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const client = new ssh2.Client();
    let done = false;
    const finish = (err: Error | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      client.end();
      sock.destroy();
      if (err) reject(err);
      else resolve(performance.now() - t0);
    };
    const timer = setTimeout(() => finish(new Error(`no welcome within ${o.timeoutMs} ms`)), o.timeoutMs);
    const sock = net.connect({ host: '127.0.0.1', port: o.port, localAddress: o.localAddress });
    sock.on('error', (err) => finish(err));
    client.on('error', (err) => finish(err));
    client.on('close', () => finish(new Error('closed before the welcome')));
    client.on('ready', () => {
      client.subsys(CONTROL_SUBSYSTEM, (err, ch) => {
        if (err) return finish(err);
        let got = '';
        ch.on('data', (c: Buffer) => {
          got += c.toString();
          if (got.includes('"type":"welcome"')) finish(null);
        });
        ch.write(`${JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, name: o.agent.name, agentVersion: 'bench-probe', system: null, generation: null, configHash: null, capabilities: [] })}\n`);
      });
    });
    client.connect({ sock, username: o.agent.name, privateKey: o.agent.privateKey, readyTimeout: o.timeoutMs, keepaliveInterval: 0 });
  });
}
