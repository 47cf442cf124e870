// `bento-hub trigger --prebuilt`: the host switches to the exact system the
// hub built for it (its build record, written by `bento-hub build` or `deploy`:
// state/builds/HOST.json, or in a cluster the shared record of a build at any
// hub; hub/publish/build-records.ts) instead of evaluating and building its configuration itself
// (upstream Bento issue #13: small boards that run out of memory evaluating).
// The agent substitutes the path from the hub's cache through its tunnel
// (client/jobs/prebuilt.ts); here we only pick the path and refuse clearly
// when there is nothing sound to pick.
import { BentoError } from '../../common/protocol/errors.js';
import type { JobStart } from '../../common/protocol/messages.js';
import { isStorePath } from '../../common/protocol/store-path.js';
import type { BuildRecords } from '../publish/build-records.js';
import type { JobRecord } from '../store/jobs.js';

export interface Prebuilt {
  storePath: string;
  /** The content hash of the tree that was built (the same hash `deploy` publishes). */
  configHash?: string;
}

/** The hello capability of agents that understand job.start storePath. */
const PREBUILT_CAPABILITY = 'prebuilt';

/**
 * UNSUPPORTED when an agent with these hello capabilities would ignore
 * storePath (it would run nixos-rebuild instead, which is not what was
 * asked); null when it understands it.
 */
export function prebuiltUnsupported(host: string, capabilities: readonly string[]): BentoError | null {
  return capabilities.includes(PREBUILT_CAPABILITY) ? null
    : new BentoError('UNSUPPORTED', `the agent on ${host} does not support prebuilt switches (upgrade bento-client there)`);
}

/**
 * The store path to send for HOST. Throws NO_PREBUILT when there is no
 * successful, non-dry build with a store path (or the copy into the hub's cache
 * failed), and UNSUPPORTED when the connected agent would ignore storePath
 * (null capabilities: not connected; checked again at dispatch).
 */
export async function resolvePrebuilt(builds: Pick<BuildRecords, 'read'>, host: string, capabilities: readonly string[] | null): Promise<Prebuilt> {
  const unsupported = capabilities && prebuiltUnsupported(host, capabilities);
  if (unsupported) throw unsupported;
  const rec = await builds.read(host);
  const hint = `run \`bento-hub build ${host}\` first`;
  if (!rec) throw new BentoError('NO_PREBUILT', `no build recorded for ${host}; ${hint}`);
  if (rec.dry || !rec.ok || !rec.storePath) {
    throw new BentoError('NO_PREBUILT', `the last build of ${host} (${rec.at}) ${rec.dry ? 'was a dry run' : 'did not succeed'}; ${hint}`);
  }
  if (rec.cache && !rec.cache.ok) {
    throw new BentoError('NO_PREBUILT', `${rec.storePath} was built but not copied into the hub's cache (${rec.cache.error ?? 'copy failed'}); fix publish.copyTo and ${hint}`);
  }
  if (!isStorePath(rec.storePath)) throw new BentoError('NO_PREBUILT', `the recorded build of ${host} names no valid store path`);
  return { storePath: rec.storePath, ...(/^[A-Za-z0-9_-]{1,128}$/.test(rec.hash) ? { configHash: rec.hash } : {}) };
}

/** Set (or, without one, clear) the prebuilt fields of a job record: a coalesced trigger's choice wins. */
export function withPrebuilt(rec: JobRecord, p: Prebuilt | undefined): JobRecord {
  const { storePath: _s, configHash: _c, ...plain } = rec;
  return p ? { ...plain, storePath: p.storePath, ...(p.configHash ? { configHash: p.configHash } : {}) } : plain;
}

/** The job.start fields for a record. */
export function prebuiltFields(rec: JobRecord): Pick<JobStart, 'storePath' | 'configHash'> {
  return rec.storePath ? { storePath: rec.storePath, ...(rec.configHash ? { configHash: rec.configHash } : {}) } : {};
}
