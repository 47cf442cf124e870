// What a rollout keeps in its keyed store ("rollouts", opened through
// StateBackend.openKeyed, so a cluster backend holds it like the jobs):
//
//   ID         the rollout: its plan (hosts per wave), options, state, wave
//   ID/HOST    one host that has had its turn: state, job id, reason
//
// Hosts whose turn has not come have no record: a 10,000-host rollout writes
// one small record per host as it goes, never a 10,000-host document per
// change. A host's outcome is also in its job record; after a hub restart the
// engine re-reads those (recover.ts) for results that arrived while it was down.
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
}

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
}

export type RolloutEntry = RolloutRecord | MemberRecord;

export const ROLLOUTS_STORE = 'rollouts';

export const memberKey = (id: string, host: string): string => `${id}/${host}`;

export function isRolloutEntry(key: string, v: unknown): v is RolloutEntry {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Partial<Omit<RolloutRecord, 'kind' | 'state'> & Omit<MemberRecord, 'kind' | 'state'>> & { kind?: unknown; state?: string };
  if (r.kind === 'rollout') {
    return r.id === key && isRolloutId(key) && (ACTIONS as readonly string[]).includes(r.action as string)
      && (ROLLOUT_STATES as readonly string[]).includes(r.state as string) && Number.isInteger(r.wave)
      && Array.isArray(r.waves) && r.waves.every((w) => Array.isArray(w) && w.every(isHostName))
      && typeof r.opts === 'object' && r.opts !== null && (OFFLINE_POLICIES as readonly string[]).includes(r.opts.offline) && Number.isInteger(r.opts.maxInFlight);
  }
  if (r.kind === 'member') {
    return typeof r.rollout === 'string' && isHostName(r.host) && key === memberKey(r.rollout, r.host)
      && (MEMBER_STATES as readonly string[]).includes(r.state as string) && r.state !== 'pending' && Number.isInteger(r.wave);
  }
  return false;
}
