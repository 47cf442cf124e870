// Server-sent events: the writer the pages stream through, and the parser the
// CLI and the tests read them with. Every stream goes through one bounded
// Follower (follower.ts): a page that does not read (a background tab, a slow
// link) costs the server at most its follower's bounds, never the whole job.
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { Follower, formatBytes, type FollowerStats } from './follower.js';

export interface SseOptions {
  keepaliveMs?: number;
  /** Output lines (send() with a group) held for a page that does not keep up; more are skipped, with a "note". Default 1 MiB. */
  maxQueuedBytes?: number;
  /** Other events held; more end the stream with a last "note" (the page reconnects and starts afresh). Default 16 MiB. */
  maxKeptBytes?: number;
  /** Where the full log of a group (a job id) is, for the note about skipped lines. */
  fullLog?(group: string): string;
  stats?: FollowerStats;
}

export const SSE_FOLLOWER_BYTES = 1024 * 1024;
const SSE_KEPT_BYTES = 16 * 1024 * 1024;

/** One text/event-stream response. Comments keep proxies and idle timers from closing it. */
export class SseStream {
  private readonly keepalive: NodeJS.Timeout;
  private readonly follower: Follower;
  private readonly closers: Array<() => void> = [];
  closed = false;

  constructor(res: ServerResponse, opts: SseOptions = {}) {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Accel-Buffering': 'no',
      Connection: 'keep-alive',
    });
    res.write(': bento\nretry: 2000\n\n');
    this.follower = new Follower({
      out: res,
      maxQueuedBytes: opts.maxQueuedBytes ?? SSE_FOLLOWER_BYTES,
      maxKeptBytes: opts.maxKeptBytes ?? SSE_KEPT_BYTES,
      skipped: (group, lines, bytes) => frame('note', { text: `bento: ${lines} lines (${formatBytes(bytes)}) skipped here: this page fell behind the output${opts.fullLog ? `; the full log: ${opts.fullLog(group)}` : ''}` }),
      cut: (held) => frame('note', { text: `bento: this page fell ${formatBytes(held)} behind; its event stream was cut (reload to start again)` }),
      ...(opts.stats ? { stats: opts.stats } : {}),
    });
    this.keepalive = setInterval(() => this.comment('keepalive'), opts.keepaliveMs ?? 15_000);
    this.keepalive.unref();
    res.once('close', () => this.close());
    this.follower.onClose(() => this.close());
  }

  /** One event. With a group (a job id), a line that may be skipped when the page falls behind. */
  send(event: string, data: unknown, group?: string): void {
    if (this.closed) return;
    if (group === undefined) this.follower.push(frame(event, data));
    else this.follower.push(frame(event, data), group, lineBytes(data));
  }

  /** A comment; only when nothing waits (a stream that is behind is not idle). */
  comment(text: string): void {
    if (!this.closed && this.follower.heldBytes === 0) this.follower.push(`: ${text}\n\n`);
  }

  /** Called once the stream is closed: by the page, by close(), or cut for falling behind. */
  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.closers.push(fn);
  }

  /** End the stream once what waits is written. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepalive);
    this.follower.end();
    for (const fn of this.closers.splice(0)) fn();
  }
}

/** What a skipped line counts: its data when it is an output line ({ data }), else its JSON. */
function lineBytes(data: unknown): number {
  const d = (data as { data?: unknown } | null)?.data;
  return typeof d === 'string' ? Buffer.byteLength(d) : Buffer.byteLength(JSON.stringify(data) ?? '');
}

function frame(event: string, data: unknown): string {
  const text = typeof data === 'string' ? data : JSON.stringify(data);
  return `event: ${event}\n${text.split('\n').map((l) => `data: ${l}`).join('\n')}\n\n`;
}

export interface SseEvent { event: string; data: string }

/** Parse a text/event-stream body (CLI, tests). */
export async function* readSse(body: Readable): AsyncGenerator<SseEvent> {
  let buf = '';
  let event = 'message';
  let data: string[] = [];
  body.setEncoding('utf8');
  for await (const chunk of body as AsyncIterable<string>) {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (line === '') {
        if (data.length > 0) yield { event, data: data.join('\n') };
        event = 'message';
        data = [];
      } else if (line.startsWith(':')) {
        continue;
      } else {
        const i = line.indexOf(':');
        const field = i === -1 ? line : line.slice(0, i);
        const value = i === -1 ? '' : line.slice(i + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
    }
  }
}
