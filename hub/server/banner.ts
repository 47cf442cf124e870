// The SSH banner stage, before a connection may use a handshake slot
// (admission.ts). The hub sends its identification line at once, as any SSH
// server does (clients such as ssh-keyscan wait for it), then reads the
// client's until its first newline. A connection that never completes that
// line costs no slot and no CPU; one whose first bytes are not an SSH
// identification (RFC 4253 4.2: "SSH-2.0-...", at most 255 bytes) is
// garbage. The bytes read are pushed back (unshift) so the SSH
// implementation reads the stream from its first byte.
//
// ssh2 writes its own identification when it takes the stream over; since the
// peer already has it, skipRepeatedGreeting swallows that one write.
import type { Duplex } from 'node:stream';

const MAX_IDENT = 255;
const PREFIXES = [Buffer.from('SSH-2.0-'), Buffer.from('SSH-1.99-')];

export type BannerResult = 'ok' | 'garbage';

/** Matches the first bytes read so far against an SSH identification; null = undecided yet. */
function judge(head: Buffer, complete: boolean): BannerResult | null {
  const startsWith = (p: Buffer): boolean => head.length >= p.length && head.subarray(0, p.length).equals(p);
  const couldStart = (p: Buffer): boolean => startsWith(p) || (head.length < p.length && p.subarray(0, head.length).equals(head));
  if (!PREFIXES.some(couldStart)) return 'garbage';
  if (complete) return PREFIXES.some(startsWith) ? 'ok' : 'garbage';
  return head.length >= MAX_IDENT ? 'garbage' : null;
}

/**
 * Read the client's identification line; then `done` runs once, with the
 * stream paused and every byte read pushed back ('ok'), or with 'garbage'.
 * Returns a cancel function (deadline, close).
 */
export function readBanner(stream: Duplex, greeting: Buffer, done: (r: BannerResult) => void): () => void {
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  const finish = (r: BannerResult): void => {
    finished = true;
    stream.off('data', onData);
    if (r === 'ok') {
      stream.pause();
      // The usual case is one chunk (identification and key exchange init in
      // one read): pushed back as it is. A copy would come from Buffer's
      // shared pool, where ssh2's small long-lived buffers (identification,
      // GCM tag) allocated just after it keep the whole slab (64 KiB on
      // Node 24) alive: ~1 KB per connected host (docs/performance.md).
      stream.unshift(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    }
    done(r);
  };
  const onData = (chunk: Buffer): void => {
    if (finished) return;
    chunks.push(chunk);
    size += chunk.length;
    const all = chunks.length === 1 ? chunk : Buffer.concat(chunks, size);
    const nl = all.indexOf(0x0a);
    const line = nl < 0 ? all : all.subarray(0, nl + 1);
    if (nl >= 0 && line.length > MAX_IDENT) return finish('garbage');
    const verdict = judge(line, nl >= 0);
    if (verdict) finish(verdict);
  };
  stream.on('data', onData);
  stream.write(greeting);
  return () => {
    if (finished) return;
    finished = true;
    stream.off('data', onData);
  };
}

/** Let the next write of exactly `greeting` to `stream` through as already sent. */
export function skipRepeatedGreeting(stream: Duplex, greeting: Buffer): void {
  const original = stream.write;
  // Put back by assignment, never `delete`: on Node 24 (V8 12+) deleting a
  // property turns a socket's properties into a dictionary, 1.6 KB for as long
  // as the connection lives (docs/performance.md). The own property left
  // behind is the prototype's function when there was none before.
  const restore = (): void => { stream.write = original; };
  stream.write = function (this: Duplex, chunk: unknown, ...rest: unknown[]): boolean {
    restore();
    if (Buffer.isBuffer(chunk) && chunk.equals(greeting)) {
      const cb = rest.find((r) => typeof r === 'function') as ((err?: Error | null) => void) | undefined;
      if (cb) process.nextTick(cb);
      return true;
    }
    return (original as (...a: unknown[]) => boolean).apply(this, [chunk, ...rest]);
  } as Duplex['write'];
}
