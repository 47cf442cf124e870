// The records of the registry's two buckets (registry-kv.ts), as every hub
// validates them on the way in: a host record, a key claim, and the marker
// that the cluster's registry was seeded.
//
// The marker (SEEDED_KEY, in the keys bucket) says that a hub's
// registry.json has been brought into the cluster once (content-adopt.ts):
// from then on no file adds hosts, even to an empty registry, so a host
// removed in the cluster cannot come back from a hub's stale file (found by
// review: seeding ran at every start whenever the registry was empty). It is
// kept in the keys bucket, not the hosts bucket, because a key there is a host
// name (`seeded` could be one) and every hub lists them all; claims are only
// ever looked up by fingerprint (`SHA256:...`), which never equals it.
// A hub of an older version drops it with a "fails validation" warning.
import { isHostName } from '../../common/protocol/names.js';
import type { HostEntry } from '../fleet/registry.js';

export interface KeyClaim {
  host: string;
  /** When the claim was made (the claiming hub's clock). */
  at: string;
}

/** The marker's key in the keys bucket: not `SHA256:...`, so never a claim. */
export const SEEDED_KEY = 'seeded';

/** The cluster's registry has been seeded (by hub `by`, or found with hosts): registry.json is not used again. */
export interface SeededMarker {
  seeded: true;
  by: string;
  at: string;
}

const KEY_LINE = /^[a-z0-9@.-]{3,64} [A-Za-z0-9+/]{16,8192}={0,3}$/;

export function isHostEntry(key: string, v: unknown): v is HostEntry {
  if (!isHostName(key) || typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return Array.isArray(e['keys']) && e['keys'].length > 0 && e['keys'].every((k) => typeof k === 'string' && KEY_LINE.test(k))
    && Array.isArray(e['tags']) && e['tags'].every(isHostName)
    && typeof e['ssh'] === 'object' && e['ssh'] !== null && !Array.isArray(e['ssh'])
    && typeof e['addedAt'] === 'string';
}

export function isKeyClaim(key: string, v: unknown): v is KeyClaim {
  const c = v as KeyClaim | null;
  return key.startsWith('SHA256:') && typeof c === 'object' && c !== null && isHostName(c.host) && typeof c.at === 'string';
}

export function isSeededMarker(key: string, v: unknown): v is SeededMarker {
  const m = v as SeededMarker | null;
  return key === SEEDED_KEY && typeof m === 'object' && m !== null && m.seeded === true && typeof m.by === 'string' && typeof m.at === 'string';
}

/** What the keys bucket holds: a claim per key, and the seeded marker (accepted, so it is not dropped as invalid). */
export function isKeysRecord(key: string, v: unknown): v is KeyClaim | SeededMarker {
  return isKeyClaim(key, v) || isSeededMarker(key, v);
}

