// The messages of routed triggers (routing.ts), validated at the edge: they
// come from other hubs over the network.
//
//   request  <prefix>.hub.<name>.trigger   TriggerRequest + requestId?
//   answer                                  { result } | { error }, + requestId? (echoed)
//
// `requestId` is chosen by the asking hub, once per trigger, and sent again
// with the repeat of a request that was not answered in time; the holding
// hub answers a repeat with the first one's answer (routed-answers.ts) and
// echoes the id, so the asker knows the answer covers the first request too.
// Hubs of earlier versions neither send nor echo it: their requests are
// answered as before, and their answers are taken as before.
import { BentoError, isErrorCode, type ErrorCode } from '../../common/protocol/errors.js';
import { ACTIONS } from '../../common/protocol/messages.js';
import { isHostName, isJobId, JOB_ID_RE } from '../../common/protocol/names.js';
import { isStorePath } from '../../common/protocol/store-path.js';
import type { RoutedTrigger, TriggerRequest } from '../jobs/router.js';

/** The holding hub's answer to one routed trigger: its result, or its refusal. */
export type Answer = { result: RoutedTrigger } | { error: { code: ErrorCode; message: string } };

/** What a routed trigger carries on the wire. */
export interface RoutedRequest { req: TriggerRequest; requestId?: string }

/** A parsed answer; `knew`: the answering hub echoed our request id (it handles repeats). */
export type ParsedAnswer = ({ result: RoutedTrigger } | { code: ErrorCode; message: string }) & { knew: boolean };

function obj(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BentoError('PROTOCOL_MALFORMED', 'not an object');
  return v as Record<string, unknown>;
}

/** Request ids have the shape of job ids (8-64 of [A-Za-z0-9_-]): short, and safe in a log line. */
export function isRequestId(v: unknown): v is string {
  return typeof v === 'string' && JOB_ID_RE.test(v);
}

export function encodeRequest(r: RoutedRequest): string {
  return JSON.stringify({ ...r.req, ...(r.requestId ? { requestId: r.requestId } : {}) });
}

/** A trigger another hub routed here (validated: it is input from the network). */
export function parseRequest(v: unknown): RoutedRequest {
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
  if (o['requestId'] !== undefined && !isRequestId(o['requestId'])) throw new BentoError('PROTOCOL_MALFORMED', 'routed trigger: bad requestId');
  return { req, ...(o['requestId'] !== undefined ? { requestId: o['requestId'] as string } : {}) };
}

export function encodeAnswer(a: Answer, requestId: string | undefined): string {
  return JSON.stringify({ ...a, ...(requestId ? { requestId } : {}) });
}

/** The holding hub's answer to the request REQUESTID. */
export function parseReply(v: unknown, requestId: string): ParsedAnswer {
  const o = obj(v);
  const knew = o['requestId'] === requestId;
  if (o['error'] !== undefined) {
    const e = obj(o['error']);
    return { code: isErrorCode(e['code']) ? e['code'] : 'INTERNAL', message: typeof e['message'] === 'string' ? e['message'].slice(0, 4096) : 'the holding hub refused the trigger', knew };
  }
  const r = obj(o['result']);
  if (!isHostName(r['host']) || !isJobId(r['jobId']) || !['dispatched', 'coalesced', 'queued'].includes(r['disposition'] as string)
    || !(ACTIONS as readonly unknown[]).includes(r['action']) || typeof r['offline'] !== 'boolean' || !isHostName(r['hub'])) {
    throw new BentoError('PROTOCOL_MALFORMED', 'the holding hub answered a trigger with a malformed reply');
  }
  return { result: r as unknown as RoutedTrigger, knew };
}
