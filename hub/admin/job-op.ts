// `bento-hub job ID [--follow]`: one job's record and stored output, then
// (following) its live lines until it ends. The output seq joins the two: the
// job's bus events are collected from before the first read, stored lines are
// sent page by page as the reader takes them, and live lines are sent only
// past the last seq already sent by the same writer (a job moved mid-job has
// more than one, each numbering its own lines: admin/follow-fill.ts), so
// nothing is repeated; from the live part on the job's events go through an
// OutputOrder (output-order.ts, as trigger --wait shows a job), so lines the
// bus lost are filled from the store too (found by review: after a move, the
// old holder's lines the bus lost were never shown). A job that ends while
// the admin reads its log ends the stream after the log.
import type net from 'node:net';
import type { Logger } from '../../common/platform/log.js';
import type { AdminRequest, JobInfo } from '../../common/protocol/admin.js';
import { BentoError } from '../../common/protocol/errors.js';
import type { EventBus, JobBusEvent } from '../events/types.js';
import type { JobRecord, JobStore } from '../store/jobs.js';
import type { JobOutputLine } from '../store/output-cap.js';
import { statusJob } from '../status/read-model.js';
import { END_CHECK_MS, endForAdmin } from '../jobs/end-event.js';
import { markShown, writerOf } from './follow-fill.js';
import { OutputOrder } from './output-order.js';
import type { Reply } from './server.js';
import { outputForAdmin, skippedForAdmin } from './admin-output.js';

export interface JobOpDeps {
  jobs: Pick<JobStore, 'get' | 'readOutput'>;
  bus: EventBus;
  log: Logger;
  /** How often a followed job's record is checked for an end the bus did not bring, ms (default 2000). */
  checkMs?: number;
}

/** Stored output handed to the reader per page; the next page once the reader took this one. */
const PAGE_BYTES = 256 * 1024;
/** Live output collected while the log is read; past it, the lines are read from the store again instead. */
const PENDING_BYTES = 4 * 1024 * 1024;

export function jobInfo(rec: JobRecord): JobInfo {
  const o = rec.output;
  const trimmed = (o?.cuts ?? []).reduce((a, c) => ({ lines: a.lines + c.lines, bytes: a.bytes + c.bytes }), { lines: 0, bytes: 0 });
  return {
    ...statusJob(rec), host: rec.host,
    ...(o ? { output: { lines: o.lines, bytes: o.bytes, trimmedLines: trimmed.lines, trimmedBytes: trimmed.bytes, dropped: o.dropped === true } } : {}),
  };
}

export async function jobOp(d: JobOpDeps, req: Extract<AdminRequest, { op: 'job' }>, reply: Reply, sock: net.Socket): Promise<void> {
  if (await follow(d, req, reply, sock)) reply({ ev: 'done' });
}

/** False when the admin left before the end. */
async function follow(d: JobOpDeps, req: Extract<AdminRequest, { op: 'job' }>, reply: Reply, sock: net.Socket): Promise<boolean> {
  const rec = d.jobs.get(req.jobId);
  if (!rec) throw new BentoError('UNKNOWN_JOB', `no job "${req.jobId}" (never recorded here, or pruned from the history: hub.json jobHistory)`);
  const { id, host } = rec;
  let left = false;
  sock.once('close', () => { left = true; });

  // Subscribed before the first read: every line stored after it is also collected here.
  let live = false;
  let pending: JobBusEvent[] = [];
  let pendingBytes = 0;
  let missed = false;
  let ended: Extract<JobBusEvent, { ev: 'end' }> | null = null;
  let finish: () => void = () => undefined;
  const ends = new Promise<void>((resolve) => { finish = resolve; });
  // What was sent, per writer, and `place`: the stored lines read so far (the next read starts after them).
  // Live events go through it in order: a repeat dropped, a gap filled from the store, the end once.
  const order = new OutputOrder({ jobs: d.jobs, log: d.log }, {
    // An agent's note goes out as stderr, as in trigger --follow (admin-output.ts).
    line: (l) => reply(outputForAdmin(host, id, l, l.seq)),
    skipped: (lines, why) => reply(skippedForAdmin(host, id, lines, why)),
    event: (e) => {
      if (e.ev === 'started') return reply({ ev: 'started', host, jobId: id });
      reply(endForAdmin(e));
      finish();
    },
  });
  /** Stored line L is new to the reader (marked sent); its place is passed either way, unless it is not stored yet. */
  const fresh = (l: JobOutputLine): boolean => {
    if (!l.held) order.place = l.seq;
    // Before the live lines, an untagged stored line (a single hub's, an older hub's) is new by its place, as it
    // always was: two older hubs may have stored lines under one seq, and the log shows them all.
    return markShown(order, writerOf(l), l.ws ?? l.seq) || (!live && !l.held && writerOf(l) === '');
  };
  let check: NodeJS.Timeout | null = null;
  const sub = req.follow ? d.bus.subscribe({ jobId: id }, (b) => {
    if (b.kind !== 'job') return;
    const e = b.event;
    if (live) return order.deliver(e);
    if (e.ev === 'end') ended = e;
    else if (e.ev !== 'output') pending.push(e);
    else if (!missed) {
      pendingBytes += e.data.length;
      if (pendingBytes > PENDING_BYTES) { missed = true; pending = pending.filter((p) => p.ev !== 'output'); } else pending.push(e);
    }
  }) : null;
  try {
    reply({ ev: 'job', job: jobInfo(rec) });
    // The stored log, page by page, at the reader's pace; again while live lines were missed meanwhile.
    // One read per pass (a file backend reads the whole log for each read, so
    // no paging by reads), handed out a page at a time as the reader takes it.
    for (;;) {
      missed = false;
      pendingBytes = 0;
      const stored = await d.jobs.readOutput(id, { afterSeq: order.place, identity: true });
      if (left) return false;
      let page = 0;
      let sent = 0;
      for (const l of stored) {
        if (!fresh(l)) continue;
        sendStored(reply, host, id, l);
        sent += 1;
        if ((page += l.data.length) >= PAGE_BYTES) {
          page = 0;
          await reply.flushed?.();
          if (left) return false;
        }
      }
      await reply.flushed?.();
      if (left) return false;
      if (!missed && sent === 0) break;
      if (!missed && !req.follow) break;
    }
    if (!sub) return true;
    // Caught up, in the same turn as the last read: from here every event goes through the order.
    live = true;
    for (const e of pending.splice(0)) order.deliver(e);
    // The bus is at most once across hubs: an end it lost is found in the record (this hub's view, local:
    // cheap), after a last fill of what is stored and not shown. An end told twice counts once.
    const fromRecord = (): void => order.endFrom(d.jobs.get(id));
    const end = ended as Extract<JobBusEvent, { ev: 'end' }> | null;
    if (end) order.deliver(end);
    else if (!d.jobs.get(id)) throw new BentoError('UNKNOWN_JOB', `job "${id}" was pruned from the history while it was followed`);
    else fromRecord();
    if (!order.ended) check = setInterval(fromRecord, d.checkMs ?? END_CHECK_MS);
    await Promise.race([ends, new Promise<void>((resolve) => sock.once('close', () => resolve()))]);
    return !left;
  } finally {
    if (check) clearInterval(check);
    sub?.unsubscribe();
  }
}

function sendStored(reply: Reply, host: string, jobId: string, l: JobOutputLine): void {
  if (l.trimmed) {
    reply({ ev: 'trimmed', host, jobId, lines: l.trimmed.lines, bytes: l.trimmed.bytes, message: l.data });
  } else {
    reply(outputForAdmin(host, jobId, l, l.seq));
  }
}
