// The file implementation of JobOutputStore (types.ts): one append-only log
// per job, state/jobs/ID.log. Lines are not fsynced one by one (that would put
// a disk flush on the streaming path); the job record, which is what
// "acknowledged" means, is.
//
// Format, one line per output line:
//
//   [SEQ,"o",DATA,TS]   stdout   [SEQ,"e",DATA,TS]   stderr   [SEQ,"n",DATA,TS]   agent note
//
// a JSON array, so DATA keeps its newlines and can never start a line of its
// own: an agent cannot forge a stderr line (or another seq) by sending "\n! ".
// TS is when append() stored it (ms since the epoch). Older logs are still
// read: [SEQ,"o"|"e",DATA] (no time: ts null), and before that "  text" for
// stdout, "! text" for stderr (never starting with "["), numbered in order.
// A torn last line (a crash mid-write) is skipped.
import { createWriteStream, readFileSync, statSync, type WriteStream } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { BentoError } from '../../common/protocol/errors.js';
import type { Logger } from '../../common/platform/log.js';
import { isJobId } from '../../common/protocol/names.js';
import type { JobOutputStore, OutputLine } from './types.js';

interface Writer { ws: WriteStream; seq: number }

export class FileJobOutput implements JobOutputStore {
  private readonly writers = new Map<string, Writer>();

  constructor(private readonly dir: string, private readonly log: Logger, private readonly readOnly = false) {}

  /** The log file of a job (only valid ids: an id becomes a file name). */
  private file(jobId: string): string {
    if (!isJobId(jobId)) throw new BentoError('INTERNAL', 'refusing a log path for an invalid job id');
    return path.join(this.dir, `${jobId}.log`);
  }

  append(jobId: string, stream: OutputLine['stream'], data: string, at?: number): { seq: number; ts: number } {
    let w = this.writers.get(jobId);
    if (!w) {
      if (this.readOnly) throw new BentoError('INTERNAL', 'job output is open read-only');
      const file = this.file(jobId);
      // The seq continues what is on disk (a job that ran across a hub
      // restart). Read synchronously because append() answers with the seq at
      // once; it runs once per job per hub process, and for a new job it is one
      // stat of a file that does not exist.
      const disk = onDisk(file);
      w = { ws: createWriteStream(file, { flags: 'a', mode: 0o600 }), seq: disk.lastSeq };
      w.ws.on('error', (err) => this.log.warn({ jobId, err: err.message }, 'job log write failed'));
      // A torn last line (crash mid-write) must not swallow the next one.
      if (disk.torn) w.ws.write('\n');
      this.writers.set(jobId, w);
    }
    w.seq += 1;
    const ts = at ?? Date.now();
    w.ws.write(`${JSON.stringify([w.seq, MARK[stream], data, ts])}\n`);
    return { seq: w.seq, ts };
  }

  async read(jobId: string, opts: { afterSeq?: number; limitBytes?: number } = {}): Promise<OutputLine[]> {
    if (!isJobId(jobId)) return [];
    const w = this.writers.get(jobId);
    // Lines still in the stream's buffer: a write callback runs after every earlier write.
    if (w && !w.ws.destroyed) await new Promise<void>((resolve) => w.ws.write('', () => resolve()));
    const text = await readFile(this.file(jobId), 'utf8').catch(() => '');
    return pick(parseLog(text), opts);
  }

  /** One hub writes a job's log: nothing to catch up with (store/types.ts). */
  async resume(_jobId: string): Promise<void> { /* one writer */ }

  async end(jobId: string): Promise<void> {
    const w = this.writers.get(jobId);
    if (!w) return;
    this.writers.delete(jobId);
    await new Promise<void>((resolve) => w.ws.end(() => resolve()));
  }

  async remove(jobId: string): Promise<void> {
    if (!isJobId(jobId)) return;
    await this.end(jobId);
    await unlink(this.file(jobId)).catch(() => undefined);
  }

  async close(): Promise<void> {
    await Promise.all([...this.writers.keys()].map((id) => this.end(id)));
  }
}

/** The lines of a log's text, old format or new (see the top of this file). */
export function parseLog(text: string): OutputLine[] {
  const out: OutputLine[] = [];
  const physical = text.split('\n');
  if (physical.at(-1) === '') physical.pop();
  let seq = 0;
  for (const l of physical) {
    if (l.startsWith('[')) {
      const line = parseLine(l);
      if (!line || line.seq <= seq) continue; // torn, or not ours
      seq = line.seq;
      out.push(line);
    } else {
      seq += 1;
      out.push(l.startsWith('! ') ? { seq, stream: 'stderr', data: l.slice(2), ts: null } : { seq, stream: 'stdout', data: l.startsWith('  ') ? l.slice(2) : l, ts: null });
    }
  }
  return out;
}

const MARK: Record<OutputLine['stream'], string> = { stdout: 'o', stderr: 'e', note: 'n' };
const STREAM: Record<string, OutputLine['stream']> = { o: 'stdout', e: 'stderr', n: 'note' };

function parseLine(l: string): OutputLine | null {
  try {
    const a = JSON.parse(l) as unknown;
    if (!Array.isArray(a) || (a.length !== 3 && a.length !== 4)) return null;
    const [seq, s, data, ts] = a as [unknown, unknown, unknown, unknown];
    const stream = typeof s === 'string' && Object.prototype.hasOwnProperty.call(STREAM, s) ? STREAM[s]! : null;
    if (!Number.isSafeInteger(seq) || (seq as number) < 1 || !stream || typeof data !== 'string') return null;
    if (ts !== undefined && (!Number.isSafeInteger(ts) || (ts as number) < 0)) return null;
    return { seq: seq as number, stream, data, ts: (ts as number | undefined) ?? null };
  } catch {
    return null;
  }
}

/** After `afterSeq`, as many lines as fit in `limitBytes` of data (at least one, so a reader paging through always moves on). */
export function pick(lines: OutputLine[], opts: { afterSeq?: number; limitBytes?: number }): OutputLine[] {
  const after = opts.afterSeq ?? 0;
  const out: OutputLine[] = [];
  let bytes = 0;
  for (const l of lines) {
    if (l.seq <= after) continue;
    bytes += Buffer.byteLength(l.data);
    if (opts.limitBytes !== undefined && bytes > opts.limitBytes && out.length > 0) break;
    out.push(l);
  }
  return out;
}

/** The last seq in a job's log, and whether its last line lacks its newline. */
function onDisk(file: string): { lastSeq: number; torn: boolean } {
  const st = statSync(file, { throwIfNoEntry: false });
  if (!st || st.size === 0) return { lastSeq: 0, torn: false };
  try {
    const text = readFileSync(file, 'utf8');
    return { lastSeq: parseLog(text).at(-1)?.seq ?? 0, torn: !text.endsWith('\n') };
  } catch {
    return { lastSeq: 0, torn: false };
  }
}
