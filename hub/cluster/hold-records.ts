// The records of the cluster's "holds" bucket (one KV bucket, two kinds of
// key): per host, which hub holds it under which epoch, and what `list`
// shows of it; per hub ("hub:NAME", never a host name), its heartbeat.
// Validated at the edge: a record that fails reads as absent (kv-view.ts).
import { isHostName } from '../../common/protocol/names.js';
import type { RecordProgress } from '../store/types.js';

/** Which hub holds a host. Changed only by compare-and-swap; `epoch` grows by one with every claim. */
export interface HostHold {
  t: 'host';
  host: string;
  /** The holding hub, or null once its session ended (the epoch stays). */
  hub: string | null;
  /** The holding hub's run (a fresh id per process start): a hub restarted under the same name holds nothing of its past. */
  run: string;
  epoch: number;
  since: string;
  carrier: string;
  remoteAddress: string;
  endpoint: string;
  via: string | null;
  agentVersion: string;
  system: string | null;
  generation: number | null;
  configHash: string | null;
  capabilities: string[];
}

/** A hub's heartbeat: rewritten every livenessMs; a hub whose beat stops for long is dead. */
export interface HubBeat {
  t: 'hub';
  name: string;
  run: string;
  startedAt: string;
  beat: number;
  /** Wall-clock time of this beat (judging a record found at start only; beats are timed as they arrive). */
  at: string;
  version: string;
  pid: number;
  /** How agents reach this hub (cluster.agentUrl), if it was told. */
  url?: string;
}

export type HoldEntry = HostHold | HubBeat;

export const HUB_KEY_PREFIX = 'hub:';

export function hubKey(name: string): string {
  return `${HUB_KEY_PREFIX}${name}`;
}

const str = (v: unknown): v is string => typeof v === 'string';
const strOrNull = (v: unknown): boolean => v === null || typeof v === 'string';
const int = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

export function isHoldEntry(key: string, v: unknown): v is HoldEntry {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  if (o['t'] === 'hub') {
    return key === hubKey(String(o['name'])) && isHostName(o['name']) && str(o['run']) && str(o['startedAt']) && int(o['beat']) && str(o['at']) && str(o['version']) && int(o['pid']) && (o['url'] === undefined || str(o['url']));
  }
  if (o['t'] !== 'host') return false;
  return o['host'] === key && isHostName(key) && (o['hub'] === null || isHostName(o['hub'])) && str(o['run']) && int(o['epoch'])
    && str(o['since']) && str(o['carrier']) && str(o['remoteAddress']) && str(o['endpoint']) && strOrNull(o['via'])
    && str(o['agentVersion']) && strOrNull(o['system']) && (o['generation'] === null || int(o['generation'])) && strOrNull(o['configHash'])
    && Array.isArray(o['capabilities']) && (o['capabilities'] as unknown[]).every(str);
}

/**
 * Which of two states of a holds record is the later one (store/types.ts
 * RecordProgress; why: kv-verify.ts). A host's hold: every claim raises the
 * epoch, and within one epoch the only change is the holder's release (hub
 * null); what `list` shows of a session (carrier, system...) may change
 * within an epoch too but is not ordered, so a view behind only there is not
 * corrected. A hub's beat: the same run counts its beats up; a new run of a
 * hub (restarted) is later when its wall-clock `at` is. Nothing is settled:
 * every record can change again.
 */
export const HOLD_PROGRESS: RecordProgress<HoldEntry> = {
  settled: () => false,
  // A lost claim comes back as an older epoch; the next claim takes an epoch above it (holds.ts floorEpochs).
  irreversible: () => false,
  ahead: (leader, view) => {
    if (leader.t === 'host' && view.t === 'host') {
      return leader.epoch > view.epoch || (leader.epoch === view.epoch && leader.hub === null && view.hub !== null);
    }
    if (leader.t === 'hub' && view.t === 'hub') {
      if (leader.run === view.run) return leader.beat > view.beat;
      const l = Date.parse(leader.at);
      const v = Date.parse(view.at);
      return Number.isFinite(l) && Number.isFinite(v) && l > v;
    }
    return false;
  },
};
