// SFTP sessions for the pull: over the agent's open tunnel when there is one
// (a new channel on the existing SSH connection: no handshake), else over a
// connection of its own, made exactly like the agent's (same endpoints,
// carriers and proxies, same pinned hub key) but without the control channel,
// so it never replaces the agent's session on the hub.
import { Client, type SFTPWrapper } from 'ssh2';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { BentoError, asBentoError } from '../../common/protocol/errors.js';
import type { Logger } from '../../common/platform/log.js';
import type { Endpoint } from '../net/endpoint.js';
import { openTransport } from '../net/transport.js';
import { pinHostKey } from '../net/host-key-pin.js';

/** Bytes through a transport stream, counted where ssh2 reads and writes it. */
export interface Meter { bytesIn: number; bytesOut: number }

export function meterStream(stream: Duplex): Meter {
  const m: Meter = { bytesIn: 0, bytesOut: 0 };
  // Count at emit('data') rather than with a listener: a listener would switch
  // the stream to flowing mode before ssh2 attaches its own.
  const emit = stream.emit.bind(stream) as (ev: string | symbol, ...a: unknown[]) => boolean;
  (stream as unknown as { emit: typeof emit }).emit = (ev, ...args) => {
    if (ev === 'data') m.bytesIn += (args[0] as Buffer).length;
    return emit(ev, ...args);
  };
  const write = stream.write.bind(stream) as (...a: unknown[]) => boolean;
  (stream as unknown as { write: (...a: unknown[]) => boolean }).write = (chunk: unknown, ...rest: unknown[]) => {
    m.bytesOut += typeof chunk === 'string' ? Buffer.byteLength(chunk) : (chunk as Buffer).length;
    return write(chunk, ...rest);
  };
  return m;
}

export interface SftpSession {
  sftp: SFTPWrapper;
  /** "tunnel", or the endpoint label of a fresh connection. */
  via: string;
  /** Fresh connections only: bytes at the transport stream so far. */
  meter: Meter | null;
  close(): void;
}

/** A new SFTP channel on an existing SSH client (the agent's tunnel). */
export function sftpOverClient(client: Client, timeoutMs: number): Promise<SftpSession> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new BentoError('CONNECT_FAILED', `no sftp channel within ${timeoutMs} ms`)), timeoutMs);
    try {
      client.sftp((err, sftp) => {
        clearTimeout(timer);
        if (err) return reject(new BentoError('CONNECT_FAILED', `sftp refused: ${err.message}`));
        sftp.on('error', () => undefined);
        resolve({ sftp, via: 'tunnel', meter: null, close: () => sftp.end() });
      });
    } catch (err) {
      clearTimeout(timer);
      reject(asBentoError(err));
    }
  });
}

export interface FreshOptions {
  endpoints: Endpoint[];
  user: string;
  privateKey: Buffer;
  /** The pinned hub key fingerprints (any of them). */
  fingerprint: string | readonly string[];
  timeoutMs: number;
  log: Logger;
}

/**
 * Try each endpoint in order; the first that authenticates and opens sftp
 * wins. Callers pass the list the agent's main loop would try this round
 * (endpointsToTry: "spread" order, a name's several addresses).
 */
export async function sftpOverFreshConnection(o: FreshOptions): Promise<SftpSession> {
  const failures: Array<{ ep: Endpoint; err: BentoError }> = [];
  for (const ep of o.endpoints) {
    try {
      return await connectOne(ep, o);
    } catch (err) {
      const e = asBentoError(err);
      failures.push({ ep, err: e });
      o.log.debug({ endpoint: ep.label, code: e.code, reason: e.message }, 'pull connection failed');
      // A refused host key is one endpoint's failure like any other: a hub
      // revoked by removing its key from hubFingerprints may still be listed
      // (or its name may now point elsewhere), and the pinned hubs behind it
      // must still serve the pull, as they serve the agent's main loop. Going
      // on admits nothing unpinned: every connection checks the pin itself.
    }
  }
  throw allFailed(failures);
}

/**
 * One error for a round where every endpoint failed, naming each failure. Its
 * code is the one they share (all HOST_KEY_MISMATCH stays HOST_KEY_MISMATCH,
 * so an operator still sees a wrong pin), else CONNECT_FAILED.
 */
function allFailed(failures: ReadonlyArray<{ ep: Endpoint; err: BentoError }>): BentoError {
  if (failures.length === 0) return new BentoError('CONNECT_FAILED', 'no endpoints');
  if (failures.length === 1) return failures[0]!.err; // as it was: one endpoint (pullFrom, a single hub)
  const codes = new Set(failures.map((f) => f.err.code));
  const code = codes.size === 1 ? failures[0]!.err.code : 'CONNECT_FAILED';
  const each = failures.map(({ ep, err }) => `[${err.code}] ${err.message.startsWith(ep.label) ? err.message : `${ep.label}: ${err.message}`}`);
  return new BentoError(code, `no endpoint gave an sftp session (${failures.length} tried): ${each.join('; ')}`);
}

async function connectOne(ep: Endpoint, o: FreshOptions): Promise<SftpSession> {
  const stream = await openTransport(ep, { timeoutMs: o.timeoutMs, log: o.log });
  const client = new Client();
  const meter = meterStream(stream);
  const pin = pinHostKey(o.fingerprint);
  return new Promise<SftpSession>((resolve, reject) => {
    let settled = false;
    const fail = (err: BentoError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.end();
      stream.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new BentoError('CONNECT_FAILED', `${ep.label}: no sftp session within ${o.timeoutMs} ms`)), o.timeoutMs);
    client.on('error', (err: Error & { level?: string }) => {
      if (pin.offered !== null) fail(new BentoError('HOST_KEY_MISMATCH', `${ep.label} offered host key ${pin.offered}, but ${[o.fingerprint].flat().join(', ')} is pinned; refusing`));
      else if (err.level === 'client-authentication') fail(new BentoError('AUTH_REJECTED', `${ep.label} refused the key of user "${o.user}"`));
      else fail(new BentoError('CONNECT_FAILED', `${ep.label}: ${err.message}`));
    });
    client.on('close', () => fail(new BentoError('CONNECT_FAILED', `${ep.label}: connection closed`)));
    client.on('ready', () => {
      client.sftp((err, sftp) => {
        if (err) return fail(new BentoError('CONNECT_FAILED', `${ep.label}: sftp refused: ${err.message}`));
        settled = true;
        clearTimeout(timer);
        sftp.on('error', () => undefined);
        resolve({
          sftp, via: ep.label, meter,
          close: () => {
            client.end();
            setTimeout(() => stream.destroy(), 500).unref();
          },
        });
      });
    });
    client.connect({
      sock: stream as unknown as net.Socket,
      username: o.user,
      privateKey: o.privateKey,
      readyTimeout: o.timeoutMs,
      keepaliveInterval: 0,
      hostVerifier: (key: Buffer) => pin.verify(key),
    });
  });
}
