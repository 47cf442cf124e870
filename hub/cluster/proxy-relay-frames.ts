// What hubs say to each other to relay `bento-hub proxy` through a tunnel
// another hub holds (proxy-relay.ts), validated at the edge like every wire
// message: the open request and its answer (JSON, core NATS request/reply),
// and the frames of the byte stream (a one-byte type, then its fields).
//
//   data   [1][seq u32][bytes...]   a chunk, numbered 1, 2, 3 per direction
//   credit [2][consumed f64]        the receiver has passed on this many bytes in all
//   eof    [3][seq u32]             no more data in this direction (half-close), numbered after the last chunk
//   close  [4][JSON {code?,message?,seq?}]  the stream is over (with an error, if any); seq: the last number sent
//   ping   [5][seq u32][flags u8][consumed f64]  still here, and what this end sent and took so far
//   ping   [5]                      relay version 1's ping (no state), still sent to and accepted from v1 hubs
//
// Core NATS delivers at most once, so the state in every ping is what lets
// the receiver notice a lost frame that nothing else follows (the last chunk,
// the end of data) and recover a lost credit (proxy-relay-stream.ts).
//
// Versions: the open request's `v` is its own format (exact match; a hub
// drops a request it cannot read). `relay` says which stream version the
// asker speaks (absent: 1), the reply which one the holder picked (the
// lower of the two; absent: 1, an older holder), so hubs of two versions still
// relay during a rolling upgrade, with version 1's pings.
import { isErrorCode, type ErrorCode } from '../../common/protocol/errors.js';
import { isHostName } from '../../common/protocol/names.js';

/** The open request's format (unchanged since the first relay: fields are only added). */
export const OPEN_VERSION = 1;
/** The stream's frames: 2 added the ping's state (seq, eof, consumed) and the close frame's seq. */
export const RELAY_VERSION = 2;
/** Largest chunk per data frame: well below NATS' default max_payload (1 MiB). */
export const MAX_CHUNK = 64 * 1024;
const MAX_CLOSE_JSON = 4096;

export interface OpenRequest {
  v: typeof OPEN_VERSION;
  /** The highest stream version the asker speaks (1 when absent: an older hub). */
  relay: number;
  host: string;
  port: number;
  /** Stream id: the subjects of both directions are built from it. */
  stream: string;
  /** The hub asking (for logs). */
  from: string;
  /** Bytes the requester lets the holder have in flight toward it. */
  window: number;
}

export type OpenReply =
  | { ok: true; window: number; relay: number }
  | { ok: false; code: ErrorCode; message: string };

export type Frame =
  | { t: 'data'; seq: number; data: Uint8Array }
  | { t: 'credit'; consumed: number }
  | { t: 'eof'; seq: number }
  | { t: 'close'; code?: ErrorCode; message?: string; seq?: number }
  | { t: 'ping'; state?: PingState };

/** What a ping tells the other end (version 2): see proxy-relay-stream.ts for how it is used. */
export interface PingState {
  /** The last number this end sent (data or eof; 0: none yet). */
  seq: number;
  /** This end sent its end of data (numbered seq). */
  eof: boolean;
  /** Bytes this end has credited in all: the running total of its credit frames. */
  consumed: number;
}

const STREAM_ID = /^[A-Za-z0-9]{8,64}$/;

function bad(what: string): Error {
  return new Error(`relay: ${what}`);
}

function seqNo(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

/** A stream version a peer names: a small positive integer (an unknown higher one is fine: we pick ours). */
function relayVersion(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 && v <= 1000;
}

function window(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= MAX_CHUNK && v <= 64 * 1024 * 1024;
}

export function parseOpenRequest(data: Uint8Array): OpenRequest {
  let o: Record<string, unknown>;
  try { o = JSON.parse(new TextDecoder().decode(data)) as Record<string, unknown>; } catch { throw bad('open request is not JSON'); }
  if (typeof o !== 'object' || o === null || o['v'] !== OPEN_VERSION) throw bad('open request of an unknown version');
  const relay = o['relay'] ?? 1;
  if (!relayVersion(relay)) throw bad('open request names no valid relay version');
  if (!isHostName(o['host'])) throw bad('open request names no valid host');
  const port = o['port'];
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw bad('open request names no valid port');
  if (typeof o['stream'] !== 'string' || !STREAM_ID.test(o['stream'])) throw bad('open request has no valid stream id');
  if (!isHostName(o['from'])) throw bad('open request names no valid hub');
  if (!window(o['window'])) throw bad('open request has no valid window');
  return { v: OPEN_VERSION, relay, host: o['host'], port, stream: o['stream'], from: o['from'], window: o['window'] };
}

export function parseOpenReply(data: Uint8Array): OpenReply {
  let o: Record<string, unknown>;
  try { o = JSON.parse(new TextDecoder().decode(data)) as Record<string, unknown>; } catch { throw bad('open reply is not JSON'); }
  // The holder picks a version no higher than ours (we asked with RELAY_VERSION); absent: an older holder, 1.
  const relay = o?.['relay'] ?? 1;
  if (o?.['ok'] === true && window(o['window']) && relayVersion(relay) && relay <= RELAY_VERSION) return { ok: true, window: o['window'], relay };
  if (o?.['ok'] === false && isErrorCode(o['code']) && typeof o['message'] === 'string') return { ok: false, code: o['code'], message: o['message'].slice(0, 2000) };
  throw bad('malformed open reply');
}

export function encodeJson(v: OpenRequest | OpenReply): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(v));
}

export function encodeFrame(f: Frame): Uint8Array {
  switch (f.t) {
    case 'data': {
      const b = Buffer.allocUnsafe(5 + f.data.length);
      b[0] = 1;
      b.writeUInt32BE(f.seq, 1);
      b.set(f.data, 5);
      return b;
    }
    case 'credit': {
      const b = Buffer.alloc(9);
      b[0] = 2;
      b.writeDoubleBE(f.consumed, 1);
      return b;
    }
    case 'eof': {
      const b = Buffer.alloc(5);
      b[0] = 3;
      b.writeUInt32BE(f.seq, 1);
      return b;
    }
    case 'close': {
      const json = Buffer.from(JSON.stringify({ ...(f.code ? { code: f.code } : {}), ...(f.message ? { message: f.message.slice(0, 1000) } : {}), ...(f.seq !== undefined ? { seq: f.seq } : {}) }));
      return Buffer.concat([Buffer.from([4]), json]);
    }
    case 'ping': {
      if (!f.state) return Buffer.from([5]);
      const b = Buffer.alloc(14);
      b[0] = 5;
      b.writeUInt32BE(f.state.seq, 1);
      b[5] = f.state.eof ? 1 : 0;
      b.writeDoubleBE(f.state.consumed, 6);
      return b;
    }
  }
}

export function decodeFrame(raw: Uint8Array): Frame {
  const b = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (b[0]) {
    case 1:
      if (b.length < 6 || b.length > 5 + MAX_CHUNK) throw bad('data frame of a wrong size');
      return { t: 'data', seq: b.readUInt32BE(1), data: b.subarray(5) };
    case 2: {
      if (b.length !== 9) throw bad('credit frame of a wrong size');
      const consumed = b.readDoubleBE(1);
      if (!Number.isSafeInteger(consumed) || consumed < 0) throw bad('credit frame with a bad count');
      return { t: 'credit', consumed };
    }
    case 3:
      if (b.length !== 5) throw bad('eof frame of a wrong size');
      return { t: 'eof', seq: b.readUInt32BE(1) };
    case 4: {
      if (b.length > 1 + MAX_CLOSE_JSON) throw bad('close frame too large');
      let o: Record<string, unknown>;
      try { o = JSON.parse(b.subarray(1).toString('utf8')) as Record<string, unknown>; } catch { throw bad('close frame is not JSON'); }
      const code = isErrorCode(o?.['code']) ? o['code'] : undefined;
      const message = typeof o?.['message'] === 'string' ? o['message'] : undefined;
      // Absent from version 1 hubs; present, it decides whether the stream ended whole, so it must be valid.
      const seq = o?.['seq'];
      if (seq !== undefined && !seqNo(seq)) throw bad('close frame with a bad seq');
      return { t: 'close', ...(code ? { code } : {}), ...(message ? { message } : {}), ...(seq !== undefined ? { seq } : {}) };
    }
    case 5: {
      if (b.length === 1) return { t: 'ping' }; // version 1: no state
      if (b.length !== 14) throw bad('ping frame of a wrong size');
      const seq = b.readUInt32BE(1);
      const flags = b[5]!;
      const consumed = b.readDoubleBE(6);
      if (flags > 1 || (flags === 1 && seq === 0)) throw bad('ping frame with bad flags');
      if (!Number.isSafeInteger(consumed) || consumed < 0) throw bad('ping frame with a bad count');
      return { t: 'ping', state: { seq, eof: flags === 1, consumed } };
    }
    default:
      throw bad(`unknown frame type ${b[0]}`);
  }
}
