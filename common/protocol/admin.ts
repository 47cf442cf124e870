// The admin API spoken on the hub's Unix socket (CLI <-> daemon): one JSON
// request line, then JSON event lines until the hub closes. `proxy` is the one
// exception: after its `ready` event the socket carries raw bytes.
import { check, type Schema } from './schema.js';
import { BentoError } from './errors.js';
import { ACTIONS, type Action, type Outcome } from './messages.js';

export type AdminRequest =
  | { op: 'ping' }
  | { op: 'list' }
  | { op: 'trigger'; hosts: string[]; all: boolean; tags: string[]; action: Action; queue: boolean; follow: boolean }
  | { op: 'proxy'; host: string; port: number };

const SCHEMAS: Record<AdminRequest['op'], Schema> = {
  ping: {},
  list: {},
  trigger: {
    hosts: { t: 'strs', max: 63, maxItems: 10_000 }, all: { t: 'bool' }, tags: { t: 'strs', max: 63, maxItems: 64 },
    action: { t: 'str', max: 16, oneOf: ACTIONS }, queue: { t: 'bool' }, follow: { t: 'bool' },
  },
  proxy: { host: { t: 'str', max: 63 }, port: { t: 'int', min: 1, max: 65535 } },
};

export function parseAdminRequest(value: unknown): AdminRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BentoError('PROTOCOL_MALFORMED', 'request is not a JSON object');
  }
  const obj = value as Record<string, unknown>;
  const op = obj['op'];
  if (typeof op !== 'string' || !Object.prototype.hasOwnProperty.call(SCHEMAS, op)) {
    throw new BentoError('PROTOCOL_UNKNOWN_TYPE', `unknown admin op ${JSON.stringify(String(op).slice(0, 40))}`);
  }
  const problem = check(obj, SCHEMAS[op as AdminRequest['op']]);
  if (problem) throw new BentoError('PROTOCOL_MALFORMED', `${op}: ${problem}`);
  return obj as unknown as AdminRequest;
}

/** One connected agent, as `list` reports it. */
export interface ClientInfo {
  name: string; remoteAddress: string; carrier: string; endpoint: string; connectedSince: string;
  agentVersion: string; lastHeartbeat: string; system: string | null; generation: number | null;
  configHash: string | null; runningJob: { jobId: string; action: Action; startedAt: string } | null;
}

export type TriggerDisposition = 'dispatched' | 'coalesced' | 'queued';

export type AdminEvent =
  | { ev: 'pong'; hubVersion: string }
  | { ev: 'list'; clients: ClientInfo[] }
  | { ev: 'accepted'; host: string; jobId: string; disposition: TriggerDisposition; action: Action }
  | { ev: 'rejected'; host: string; code: string; message: string }
  | { ev: 'started'; host: string; jobId: string }
  | { ev: 'output'; host: string; jobId: string; stream: 'stdout' | 'stderr'; data: string }
  | { ev: 'end'; host: string; jobId: string; outcome: Outcome; exitCode: number | null; durationMs: number; reason?: string }
  | { ev: 'ready' }
  | { ev: 'done' }
  | { ev: 'error'; code: string; message: string };
