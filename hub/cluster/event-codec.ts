// Hub events as they cross NATS between hubs: JSON, validated at the edge
// with the protocol's schema checker, so a malformed or hostile message on a
// bus subject is dropped (and logged) before any subscriber sees it.
import { ACTIONS, OUTCOMES, OUTPUT_STREAMS } from '../../common/protocol/messages.js';
import { check, type Schema } from '../../common/protocol/schema.js';
import type { HubEvent, JobBusEvent } from '../events/types.js';

const host = { t: 'str', max: 253 } as const;
const jobId = { t: 'str', max: 64 } as const;
/** An output writer's tag (hub/cluster/job-output.ts); optional: older hubs send none and ignore it. */
const writer = { t: 'str', max: 64, opt: true } as const;

const EVENT: Record<HubEvent['kind'], Schema> = {
  job: { host },
  connected: { host, carrier: { t: 'str', max: 512 }, reconnect: { t: 'bool' } },
  disconnected: { host, carrier: { t: 'str', max: 512 } },
  changed: { host, action: { t: 'str', max: 16, oneOf: ACTIONS, opt: true } },
};

const JOB: Record<JobBusEvent['ev'], Schema> = {
  started: { host, jobId },
  // A line as the agent sent it (<= 32 KiB) plus room for the hub's own notes.
  output: {
    host, jobId, seq: { t: 'int', min: 1 }, ts: { t: 'int', min: 0 }, w: writer, stream: { t: 'str', max: 6, oneOf: OUTPUT_STREAMS }, data: { t: 'str', max: 64 * 1024 },
  },
  end: {
    host, jobId, outcome: { t: 'str', max: 16, oneOf: OUTCOMES }, exitCode: { t: 'int', nullable: true },
    durationMs: { t: 'int', min: 0 }, reason: { t: 'str', max: 4096, opt: true }, lines: { t: 'int', min: 0, opt: true }, w: writer,
  },
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function encodeEvent(e: HubEvent): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(e));
}

/** The event in DATA, or a short reason why it is not one. */
export function decodeEvent(data: Uint8Array): { event: HubEvent } | { problem: string } {
  let v: unknown;
  try { v = JSON.parse(new TextDecoder().decode(data)); } catch { return { problem: 'not JSON' }; }
  if (!isObject(v)) return { problem: 'not an object' };
  const kind = v['kind'];
  if (typeof kind !== 'string' || !Object.prototype.hasOwnProperty.call(EVENT, kind)) return { problem: 'unknown kind' };
  const p = check(v, EVENT[kind as HubEvent['kind']]);
  if (p) return { problem: `${kind}: ${p}` };
  if (kind === 'job') {
    const je = v['event'];
    if (!isObject(je)) return { problem: 'job: event is not an object' };
    const ev = je['ev'];
    if (typeof ev !== 'string' || !Object.prototype.hasOwnProperty.call(JOB, ev)) return { problem: 'job: unknown ev' };
    const jp = check(je, JOB[ev as JobBusEvent['ev']]);
    if (jp) return { problem: `job ${ev}: ${jp}` };
    if (je['host'] !== v['host']) return { problem: 'job: host differs from the event\'s host' };
  }
  return { event: v as unknown as HubEvent };
}

/** The job an event belongs to, if any (its subject's job token). */
export function eventJobId(e: HubEvent): string | null {
  return e.kind === 'job' ? e.event.jobId : null;
}
