// Triggers across hubs (hub/jobs/router.ts): a trigger at any hub for a host
// another hub holds is asked of that hub by NATS request/reply, on a subject
// per hub (<prefix>.hub.<name>.trigger); the holding hub runs it through its
// own scheduler, which is where coalescing (one active + one pending job per
// host) is decided. A host nobody holds is queued here: its queued job's id
// is the same at every hub (holds.ts queuedJobId), so hubs queueing at once
// share one job, and whichever hub the host reaches dispatches it.
//
// The asking hub follows the job on the shared event bus, subscribed before
// it asks (hub/admin/follow.ts). Requests and replies are validated at the
// edge like every other message between hubs.
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { BentoError, isErrorCode, type ErrorCode } from '../../common/protocol/errors.js';
import { ACTIONS } from '../../common/protocol/messages.js';
import { isHostName, isJobId } from '../../common/protocol/names.js';
import { isStorePath } from '../../common/protocol/store-path.js';
import type { Logger } from '../../common/platform/log.js';
import type { HostHolders } from '../holders/types.js';
import type { RoutedTrigger, TriggerRequest, TriggerRouter } from '../jobs/router.js';
import { encodeToken, type ClusterNames } from './names.js';
import { SlotGate } from './slot-gate.js';

export interface ClusterRouterDeps {
  nc: NatsConnection;
  names: ClusterNames;
  hubName: string;
  holders: Pick<HostHolders, 'holder'>;
  /** This hub's own scheduler behind the router (a LocalRouter). */
  local: TriggerRouter;
  /** How long the holding hub may take to answer. */
  timeoutMs: number;
  log: Logger;
}

/** A host may move while a trigger looks for it: ask again, at most this often. */
const MAX_HOPS = 4;
/**
 * Routed triggers of this hub in flight at once (slot-gate.ts): a fan-out to
 * 45,000 hosts asked 30,000 at once and most timed out at the holding hubs.
 */
const ROUTED_IN_FLIGHT = 256;
/** How long a routed trigger may wait for a slot before it is refused (CLUSTER_UNAVAILABLE). */
const SLOT_WAIT_MS = 120_000;

export class ClusterRouter implements TriggerRouter {
  private sub: Subscription | null = null;
  private readonly enc = new TextEncoder();
  private readonly dec = new TextDecoder();
  private readonly slots = new SlotGate(ROUTED_IN_FLIGHT);

  constructor(private readonly d: ClusterRouterDeps) {}

  static subject(names: ClusterNames, hub: string): string {
    return `${names.prefix}.hub.${encodeToken(hub)}.trigger`;
  }

  /** Answer triggers other hubs route here. */
  start(): void {
    this.sub = this.d.nc.subscribe(ClusterRouter.subject(this.d.names, this.d.hubName), {
      callback: (err, msg) => { if (!err) void this.serve(msg); },
    });
  }

  async trigger(r: TriggerRequest): Promise<RoutedTrigger> {
    for (let hop = 1; ; hop++) {
      const h = this.d.holders.holder(r.host);
      if (!h || h.local) return this.d.local.trigger(r);
      let answer: unknown;
      const release = await this.slots.acquire(SLOT_WAIT_MS);
      if (!release) throw new BentoError('CLUSTER_UNAVAILABLE', `${ROUTED_IN_FLIGHT} routed triggers of this hub were unanswered for ${SLOT_WAIT_MS / 1000} s; not asking hub ${h.hub} for ${r.host}`);
      try {
        const reply = await this.d.nc.request(ClusterRouter.subject(this.d.names, h.hub), this.enc.encode(JSON.stringify(r)), { timeout: this.d.timeoutMs });
        answer = JSON.parse(this.dec.decode(reply.data));
      } catch (err) {
        if (hop < MAX_HOPS && this.moved(r.host, h.hub)) continue;
        throw new BentoError('CLUSTER_UNAVAILABLE', `hub ${h.hub} holds ${r.host} but did not answer the trigger: ${(err as Error).message}`, { cause: err });
      } finally {
        release();
      }
      const ok = parseReply(answer);
      if ('result' in ok) return ok.result;
      // The host left that hub while we asked: ask wherever it is now.
      if (hop < MAX_HOPS && (ok.code === 'STATE_CONFLICT' || ok.code === 'HOST_OFFLINE' || ok.code === 'CLUSTER_UNAVAILABLE')) {
        await new Promise((res) => setTimeout(res, 100 * hop));
        if (this.moved(r.host, h.hub) || ok.code === 'STATE_CONFLICT') continue;
      }
      throw new BentoError(ok.code, ok.message);
    }
  }

  async close(): Promise<void> {
    try { this.sub?.unsubscribe(); } catch { /* connection closed */ }
    this.sub = null;
  }

  private moved(host: string, from: string): boolean {
    return this.d.holders.holder(host)?.hub !== from;
  }

  private async serve(msg: Msg): Promise<void> {
    let answer: unknown;
    try {
      const req = parseRequest(JSON.parse(this.dec.decode(msg.data)));
      answer = { result: await this.d.local.trigger(req) };
    } catch (err) {
      const e = err instanceof BentoError ? err : new BentoError('PROTOCOL_MALFORMED', `routed trigger: ${(err as Error).message}`);
      if (e.code === 'INTERNAL') this.d.log.error({ err: e.message }, 'routed trigger failed');
      answer = { error: { code: e.code, message: e.message } };
    }
    try { msg.respond(this.enc.encode(JSON.stringify(answer))); } catch (err) {
      this.d.log.warn({ err: (err as Error).message }, 'cannot answer a routed trigger');
    }
  }
}

function obj(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BentoError('PROTOCOL_MALFORMED', 'not an object');
  return v as Record<string, unknown>;
}

/** A trigger another hub routed here (validated: it is input from the network). */
export function parseRequest(v: unknown): TriggerRequest {
  const o = obj(v);
  if (!isHostName(o['host'])) throw new BentoError('PROTOCOL_MALFORMED', 'routed trigger: bad host');
  if (!(ACTIONS as readonly unknown[]).includes(o['action'])) throw new BentoError('PROTOCOL_MALFORMED', 'routed trigger: bad action');
  if (typeof o['queue'] !== 'boolean') throw new BentoError('PROTOCOL_MALFORMED', 'routed trigger: bad queue');
  const req: TriggerRequest = { host: o['host'], action: o['action'] as TriggerRequest['action'], queue: o['queue'] };
  if (o['jobId'] !== undefined) {
    if (!isJobId(o['jobId'])) throw new BentoError('PROTOCOL_MALFORMED', 'routed trigger: bad jobId');
    req.jobId = o['jobId'];
  }
  if (o['prebuilt'] !== undefined) {
    const p = obj(o['prebuilt']);
    if (!isStorePath(p['storePath'])) throw new BentoError('PROTOCOL_MALFORMED', 'routed trigger: bad storePath');
    const hash = p['configHash'];
    if (hash !== undefined && (typeof hash !== 'string' || !/^[A-Za-z0-9_-]{1,128}$/.test(hash))) throw new BentoError('PROTOCOL_MALFORMED', 'routed trigger: bad configHash');
    req.prebuilt = { storePath: p['storePath'] as string, ...(hash !== undefined ? { configHash: hash as string } : {}) };
  }
  return req;
}

function parseReply(v: unknown): { result: RoutedTrigger } | { code: ErrorCode; message: string } {
  const o = obj(v);
  if (o['error'] !== undefined) {
    const e = obj(o['error']);
    return { code: isErrorCode(e['code']) ? e['code'] : 'INTERNAL', message: typeof e['message'] === 'string' ? e['message'].slice(0, 4096) : 'the holding hub refused the trigger' };
  }
  const r = obj(o['result']);
  if (!isHostName(r['host']) || !isJobId(r['jobId']) || !['dispatched', 'coalesced', 'queued'].includes(r['disposition'] as string)
    || !(ACTIONS as readonly unknown[]).includes(r['action']) || typeof r['offline'] !== 'boolean' || !isHostName(r['hub'])) {
    throw new BentoError('PROTOCOL_MALFORMED', 'the holding hub answered a trigger with a malformed reply');
  }
  return { result: r as unknown as RoutedTrigger };
}
