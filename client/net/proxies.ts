// Ways through a proxy to the hub, each resolving to a connected byte stream.
// None of them resolves the hub's name locally except plain socks5://, which
// the user asked for explicitly (and which refuses .onion names).
import http from 'node:http';
import net from 'node:net';
import dns from 'node:dns/promises';
import { spawn } from 'node:child_process';
import { Duplex } from 'node:stream';
import { SocksClient } from 'socks';
import { BentoError } from '../../common/protocol/errors.js';
import type { Logger } from '../../common/platform/log.js';
import type { ProxySpec } from './endpoint.js';

export interface Target { host: string; port: number }

export async function viaSocks(proxy: ProxySpec, target: Target, timeoutMs: number): Promise<net.Socket> {
  let destHost = target.host;
  if (proxy.kind === 'socks5' && net.isIP(destHost) === 0) {
    // socks5:// means "resolve locally"; socks5h:// sends the name as is.
    destHost = (await dns.lookup(destHost)).address;
  }
  try {
    const { socket } = await SocksClient.createConnection({
      proxy: { host: proxy.host, port: proxy.port, type: 5, ...(proxy.user ? { userId: proxy.user, password: proxy.pass ?? '' } : {}) },
      command: 'connect',
      destination: { host: destHost, port: target.port },
      timeout: timeoutMs,
    });
    return socket;
  } catch (err) {
    throw new BentoError('PROXY_FAILED', `SOCKS5 proxy ${proxy.host}:${proxy.port} could not reach ${target.host}:${target.port}: ${(err as Error).message}`);
  }
}

export function viaHttpConnect(proxy: ProxySpec, target: Target, timeoutMs: number): Promise<net.Socket> {
  const authority = `${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
  const headers: Record<string, string> = { Host: authority };
  if (proxy.user) headers['Proxy-Authorization'] = `Basic ${Buffer.from(`${proxy.user}:${proxy.pass ?? ''}`).toString('base64')}`;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: proxy.host, port: proxy.port, method: 'CONNECT', path: authority, headers, timeout: timeoutMs });
    const fail = (msg: string): void => { req.destroy(); reject(new BentoError('PROXY_FAILED', `HTTP proxy ${proxy.host}:${proxy.port}: ${msg}`)); };
    req.once('connect', (res, socket, head) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        const hint = res.statusCode === 407 ? ' (the proxy wants credentials: http://USER:PASS@HOST:PORT)' : '';
        fail(`CONNECT ${authority} answered ${res.statusCode} ${res.statusMessage ?? ''}${hint}`);
        return;
      }
      socket.setTimeout(0);
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    req.once('response', (res) => fail(`answered ${res.statusCode} to CONNECT (not a CONNECT proxy?)`));
    req.once('timeout', () => fail(`no answer within ${timeoutMs} ms`));
    req.once('error', (err) => fail(err.message));
    req.end();
  });
}

/** Run a ProxyCommand (%h, %p, %% substituted) and use its stdio as the stream. */
export function viaProxyCommand(command: string, target: Target, log: Logger): Duplex {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const line = command.replace(/%(.)/g, (_m, c: string) => (c === 'h' ? q(target.host) : c === 'p' ? String(target.port) : c === '%' ? '%' : `%${c}`));
  const child = spawn('/bin/sh', ['-c', line], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-2000); });
  const stream = Duplex.from({ readable: child.stdout, writable: child.stdin });
  child.on('error', (err) => stream.destroy(new BentoError('PROXY_FAILED', `ProxyCommand failed to start: ${err.message}`)));
  child.on('exit', (code, sig) => {
    if (code !== 0) log.warn({ command: line, code, signal: sig, stderr: stderr.trim() }, 'ProxyCommand exited');
    // Its stdout has ended; make sure the SSH layer sees the stream close.
    setImmediate(() => stream.destroy(code === 0 ? undefined : new BentoError('PROXY_FAILED', `ProxyCommand exited with ${code ?? sig}: ${stderr.trim().slice(-300)}`)));
  });
  stream.on('close', () => { if (child.exitCode === null) child.kill('SIGTERM'); });
  return stream;
}
