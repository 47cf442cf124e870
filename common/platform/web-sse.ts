// Server-sent events: the writer the pages stream through, and the parser the
// CLI and the tests read them with.
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';

/** One text/event-stream response. Comments keep proxies and idle timers from closing it. */
export class SseStream {
  private readonly keepalive: NodeJS.Timeout;
  closed = false;

  constructor(private readonly res: ServerResponse, keepaliveMs = 15_000) {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Accel-Buffering': 'no',
      Connection: 'keep-alive',
    });
    res.write(': bento\nretry: 2000\n\n');
    this.keepalive = setInterval(() => this.comment('keepalive'), keepaliveMs);
    this.keepalive.unref();
    res.once('close', () => this.close());
  }

  send(event: string, data: unknown): void {
    if (this.closed) return;
    const text = typeof data === 'string' ? data : JSON.stringify(data);
    this.res.write(`event: ${event}\n${text.split('\n').map((l) => `data: ${l}`).join('\n')}\n\n`);
  }

  comment(text: string): void {
    if (!this.closed) this.res.write(`: ${text}\n\n`);
  }

  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.res.once('close', fn);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepalive);
    if (!this.res.writableEnded) this.res.end();
  }
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
