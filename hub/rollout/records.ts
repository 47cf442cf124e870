// What a rollout keeps in its keyed store ("rollouts", opened through
// StateBackend.openKeyed, so a cluster backend holds it like the jobs):
//
//   ID         the rollout: its plan (hosts per wave), options, state, wave
//   ID/HOST    one host that has had its turn: state, job id, reason
//
// One hub drives each rollout (docs/rollouts.md, "Several hubs"): the record
// names it (`driver`: hub, run, epoch). Every write of the rollout and of its
// hosts' records is a compare-and-swap that carries the driver's epoch, so a
// hub that stopped driving it (it died, or was frozen and resumed) cannot
// overwrite what the new driver wrote; and every host's turn has one job id
// (turnJobId), so two drivers that both start a host's turn start one job.
//
// Hosts whose turn has not come have no record: a 10,000-host rollout writes
// one small record per host as it goes, never a 10,000-host document per
// change. A host's outcome is also in its job record; after a hub restart the
// engine re-reads those (recover.ts) for results that arrived while it was down.
import { createHash } from 'node:crypto';
import { ACTIONS, type Action } from '../../common/protocol/messages.js';
import { isHostName } from '../../common/protocol/names.js';
import { MEMBER_STATES, OFFLINE_POLICIES, ROLLOUT_STATES, isRolloutId, type MemberState, type OfflinePolicy, type RolloutState } from '../../common/protocol/rollout.js';

export interface RolloutRecord {
  kind: 'rollout';
  id: string;
  action: Action;
  createdAt: string;
  updatedAt: string;
  endedAt: string | null;
  state: RolloutState;
  /** The current wave (0-based): hosts of this wave and the ones before may run. */
  wave: number;
  reason: string | null;
  selection: { all: boolean; tags: string[]; hosts: string[] };
  /** The plan, fixed at the start: host names per wave, in turn order. */
  waves: string[][];
  opts: {
    canary: string; waves: string[] | null; maxInFlight: number; maxFailures: string;
    offline: OfflinePolicy; offlineTimeoutMs: number; pauseAfterCanary: boolean;
  };
  /**
   * The hub driving it: its name, its run (a fresh id per process start) and
   * the epoch of its claim, one more with every takeover. Absent in records
   * of hubs before drivers: the first hub to look takes it over.
   */
  driver?: Driver;
  /** One more with every resume: part of each host's turn job id (turnJobId), so a turn after a resume is a new job. */
  round?: number;
  /**
   * The last resume: the round it began and when. A job of an earlier round's
   * turn requested after it is a trigger from before the resume that landed
   * late (late.ts). Absent before it was kept; a resume at an older hub
   * leaves it naming an older round, which turns that check off.
   */
  resumed?: { round: number; at: string };
  /**
   * Until when hosts whose turn has come but are offline are not yet skipped,
   * queued or waited for (ISO time): set when a hub takes the rollout over
   * from a driver that is gone, whose agents are reconnecting. In the record,
   * not in the hub that took over, so a second change of driver within the
   * grace (`rollout resume` at a third hub) keeps it.
   */
  holdOfflineUntil?: string;
}

export interface Driver { hub: string; run: string; epoch: number }

/** A host that had its turn ('pending' is the absence of a record). */
export interface MemberRecord {
  kind: 'member';
  rollout: string;
  host: string;
  /** 0-based. */
  wave: number;
  state: Exclude<MemberState, 'pending'>;
  /**
   * The job that carries its turn. null with state running or queued: the
   * record was written just before the trigger (so a hub that dies in between
   * finds the job by host and time instead of starting a second one).
   */
  jobId: string | null;
  since: string;
  reason: string | null;
  health: 'passed' | 'failed' | null;
  /** A failure the admin saw and resumed past: it no longer counts against the wave's threshold. */
  acknowledged?: boolean;
  /** The driver epoch it was written under (absent: before drivers). */
  epoch?: number;
}

export type RolloutEntry = RolloutRecord | MemberRecord;

export const ROLLOUTS_STORE = 'rollouts';

/**
 * A host's claim by the rollout that has it (claims.ts), in its own keyed
 * store ("rollout-claims", key: the host name), so the rollouts store's index
 * (ID, ID/HOST) and hubs from before claims never see one. HUB and RUN: the
 * hub that started the rollout; AT: when it claimed the host; LAPSEMS: how
 * long after AT the claim holds while the rollout has no record.
 */
export interface HostClaim { rollout: string; hub: string; run: string; at: string; lapseMs: number }

export const ROLLOUT_CLAIMS_STORE = 'rollout-claims';

export function isHostClaim(key: string, v: unknown): v is HostClaim {
  const c = v as Partial<HostClaim> | null;
  return typeof c === 'object' && c !== null && isHostName(key) && typeof c.rollout === 'string' && isRolloutId(c.rollout)
    && isHostName(c.hub) && typeof c.run === 'string' && c.run.length > 0 && c.run.length <= 64
    && typeof c.at === 'string' && !Number.isNaN(Date.parse(c.at)) && Number.isSafeInteger(c.lapseMs) && (c.lapseMs as number) > 0;
}

export const memberKey = (id: string, host: string): string => `${id}/${host}`;

/**
 * The job id of HOST's turn in rollout R (in its current round): the same at
 * every hub, so a trigger sent by a driver that lost the rollout meanwhile and
 * the new driver's trigger for the same turn name one job, and the scheduler
 * starts it once (hub/jobs/scheduler.ts). "r-k3m9x2ab-0-" and 16 characters
 * of the host name's hash: a job id (common/protocol/names.ts) for any host.
 */
export function turnJobId(r: Pick<RolloutRecord, 'id' | 'round'>, host: string): string {
  return `${r.id}-${r.round ?? 0}-${createHash('sha256').update(host).digest('base64url').slice(0, 16)}`;
}

/** The round of rollout ID that turn job JOBID names (turnJobId's shape), or null. */
export function turnRound(jobId: string, id: string): number | null {
  if (!jobId.startsWith(`${id}-`)) return null;
  const rest = jobId.slice(id.length + 1);
  const dash = rest.indexOf('-');
  const round = dash > 0 && dash <= 9 && /^[0-9]+$/.test(rest.slice(0, dash)) ? Number(rest.slice(0, dash)) : NaN;
  return Number.isSafeInteger(round) ? round : null;
}

/** The rollout whose turn job JOBID would be (turnJobId's shape), or null: a job id of another kind. */
export function turnRolloutId(jobId: string): string | null {
  const dash = jobId.indexOf('-', 2);
  const id = dash === -1 ? '' : jobId.slice(0, dash);
  return isRolloutId(id) ? id : null;
}

export function isRolloutEntry(key: string, v: unknown): v is RolloutEntry {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Partial<Omit<RolloutRecord, 'kind' | 'state'> & Omit<MemberRecord, 'kind' | 'state'>> & { kind?: unknown; state?: string };
  if (r.kind === 'rollout') {
    return r.id === key && isRolloutId(key) && (ACTIONS as readonly string[]).includes(r.action as string)
      && (ROLLOUT_STATES as readonly string[]).includes(r.state as string) && Number.isInteger(r.wave)
      && Array.isArray(r.waves) && r.waves.every((w) => Array.isArray(w) && w.every(isHostName))
      && typeof r.opts === 'object' && r.opts !== null && (OFFLINE_POLICIES as readonly string[]).includes(r.opts.offline) && Number.isInteger(r.opts.maxInFlight)
      && (r.driver === undefined || isDriver(r.driver)) && (r.round === undefined || (Number.isSafeInteger(r.round) && r.round >= 0))
      && (r.holdOfflineUntil === undefined || (typeof r.holdOfflineUntil === 'string' && !Number.isNaN(Date.parse(r.holdOfflineUntil))))
      && (r.resumed === undefined || isResumed(r.resumed));
  }
  if (r.kind === 'member') {
    return typeof r.rollout === 'string' && isHostName(r.host) && key === memberKey(r.rollout, r.host)
      && (MEMBER_STATES as readonly string[]).includes(r.state as string) && r.state !== 'pending' && Number.isInteger(r.wave)
      && (r.epoch === undefined || (Number.isSafeInteger(r.epoch) && r.epoch >= 0));
  }
  return false;
}

function isResumed(v: unknown): boolean {
  const x = v as Partial<NonNullable<RolloutRecord['resumed']>> | null;
  return typeof x === 'object' && x !== null && Number.isSafeInteger(x.round) && typeof x.at === 'string' && !Number.isNaN(Date.parse(x.at));
}

function isDriver(v: unknown): v is Driver {
  const d = v as Partial<Driver> | null;
  return typeof d === 'object' && d !== null && isHostName(d.hub) && typeof d.run === 'string' && d.run.length > 0 && d.run.length <= 64
    && Number.isSafeInteger(d.epoch) && (d.epoch as number) >= 1;
}
