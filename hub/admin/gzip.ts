// Compressed admin answers. `list` and `status` of a large fleet are one JSON
// line each (12 MB for 30,000 hosts). A socket write goes out in pieces of
// about the socket buffer, one piece per event-loop turn, and during a
// reconnect storm each of the hub's turns is long (handshakes): the 30,000-host
// `list` spent up to 1.6 s just leaving the hub (bench, docs/cluster.md).
// Gzip at level 1 makes it ~10x smaller, and zlib deflates on the thread pool,
// not on the hub's event loop.
//
// A request asks with `"gzip": true`; the whole answer is then one gzip
// stream. The reader tells the two apart by the first byte (0x1f starts gzip,
// "{" a plain line), so a new CLI also reads a hub that ignores the field.
import net from 'node:net';
import { pipeline } from 'node:stream';
import { createGunzip, createGzip, type Gunzip, type Gzip } from 'node:zlib';

/**
 * zlib's output buffer. Each one filled is a trip from the thread pool back to
 * the event loop, one loop turn: at 4 MiB a 30,000-host `list` (1.2 MB
 * compressed) takes one, where zlib's 16 KiB default took ~80. Allocated per
 * compressed answer, and answers are few (one per admin command).
 */
const DEFLATE_CHUNK_BYTES = 4 * 1024 * 1024;
/** The reader's side: its own loop is idle, so the default's many small pieces cost little; a bit larger anyway. */
const INFLATE_CHUNK_BYTES = 256 * 1024;

/** The first byte of every gzip stream. */
const GZIP_MAGIC = 0x1f;

/** A gzip stream onto SOCK: what is written to it reaches the reader compressed; either side closing ends both. */
export function gzipOnto(sock: net.Socket): Gzip {
  const gz = createGzip({ level: 1, chunkSize: DEFLATE_CHUNK_BYTES });
  // Errors: the socket's own handler logs them; the pipeline only tears both down.
  pipeline(gz, sock, () => undefined);
  return gz;
}

/** Whether an answer's first bytes are gzip (a hub that compresses) rather than a plain line. */
export function isGzipped(first: Buffer): boolean {
  return first[0] === GZIP_MAGIC;
}

export function gunzip(): Gunzip {
  return createGunzip({ chunkSize: INFLATE_CHUNK_BYTES });
}
