// hub.json "publish": how `build` and `deploy` run Nix, and the jail's limits.
// Every field has a default; hub.json may set any subset.
import os from 'node:os';
import { BentoError } from '../../common/protocol/errors.js';
import { LOG_NAME_MAX } from '../sftp/vpath.js';

export interface PublishSettings {
  /** argv the action (build / dry-build) and the config flags are appended to. */
  buildCommand: string[];
  /** Extra environment for the build command. */
  buildEnv: Record<string, string>;
  /** Hosts built at once. */
  buildJobs: number;
  buildTimeoutMs: number;
  /** Lists the hosts a flake defines; "{dir}" is replaced by the flake directory.
   *  Output: `nix flake show --json` format, or a JSON array of names. */
  flakeHostsCommand: string[];
  /** Published versions kept per host (the current one included). */
  keepVersions: number;
  /** Bytes of logs a host may hold in its jail; older logs are pruned first. */
  logQuotaBytes: number;
  /** Log files a host may hold. */
  logMaxFiles: number;
  /**
   * Nix store URL every successful build's closure is copied to (`nix copy --to`),
   * e.g. "file:///var/cache/bento?secret-key=/etc/bento/cache.sk": the hub's binary
   * cache for `trigger --prebuilt` (docs/cache-secrets-reboot.md). null: no copy.
   */
  copyTo: string | null;
}

export const DEFAULT_PUBLISH_SETTINGS: PublishSettings = {
  buildCommand: ['nixos-rebuild'],
  buildEnv: {},
  buildJobs: Math.max(1, Math.min(8, os.availableParallelism?.() ?? os.cpus().length)),
  buildTimeoutMs: 3_600_000,
  flakeHostsCommand: ['nix', '--extra-experimental-features', 'nix-command flakes', 'flake', 'show', '--json', 'path:{dir}'],
  keepVersions: 3,
  logQuotaBytes: 64 * 1024 * 1024,
  logMaxFiles: 500,
  copyTo: null,
};

/**
 * In a cluster each host's list of logs is one NATS record (hub/cluster/logs-kv.ts), which
 * must fit NATS' default max_payload, 1 MiB, less kv-direct.ts's 1 KiB margin. A record too
 * large is never written, and that host's logs could no longer move into the archive (found
 * by review: ~4,100 names of 200 characters passed it), so logMaxFiles is bounded by what
 * fits when every entry is the largest a host can make: a longest name, a size up to the
 * quota's maximum, an ISO time, a 63-character hub name.
 */
export const LOG_MANIFEST_ENTRY_MAX = JSON.stringify({ ['a'.repeat(LOG_NAME_MAX)]: { size: 2 ** 40, at: new Date(0).toISOString(), hub: 'h'.repeat(63) } }).length - 1;
export const CLUSTER_LOG_MAX_FILES = Math.floor((1024 * 1024 - 1024 - '{"logs":{}}'.length) / LOG_MANIFEST_ENTRY_MAX);

/** With a cluster (hub.json "cluster"), logMaxFiles must let every host's log list fit one NATS record. */
export function checkClusterLogLimits(s: PublishSettings, source = 'hub.json'): void {
  if (s.logMaxFiles > CLUSTER_LOG_MAX_FILES) {
    throw new BentoError('CONFIG_INVALID', `${source}: "publish": "logMaxFiles" must be at most ${CLUSTER_LOG_MAX_FILES} with a "cluster": each host's list of logs is one NATS record (max_payload 1 MiB) and each entry may take ${LOG_MANIFEST_ENTRY_MAX} bytes`);
  }
}

export function validatePublishSettings(raw: unknown, source = 'hub.json'): PublishSettings {
  if (raw === undefined || raw === null) return { ...DEFAULT_PUBLISH_SETTINGS };
  const bad = (msg: string): never => { throw new BentoError('CONFIG_INVALID', `${source}: "publish": ${msg}`); };
  if (typeof raw !== 'object' || Array.isArray(raw)) return bad('expected an object');
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!(k in DEFAULT_PUBLISH_SETTINGS)) bad(`unknown setting "${k}" (known: ${Object.keys(DEFAULT_PUBLISH_SETTINGS).join(', ')})`);
  }
  const s: PublishSettings = { ...DEFAULT_PUBLISH_SETTINGS, ...(o as Partial<PublishSettings>) };
  const argv = (k: 'buildCommand' | 'flakeHostsCommand'): void => {
    const v = s[k];
    if (!Array.isArray(v) || v.length === 0 || !v.every((a) => typeof a === 'string' && a !== '')) bad(`"${k}" must be a non-empty argv array`);
  };
  argv('buildCommand');
  argv('flakeHostsCommand');
  if (typeof s.buildEnv !== 'object' || s.buildEnv === null || Object.values(s.buildEnv).some((v) => typeof v !== 'string')) bad('"buildEnv" must be an object of strings');
  const int = (k: keyof PublishSettings, min: number, max: number): void => {
    const v = s[k];
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) bad(`"${k}" must be an integer in ${min}..${max}`);
  };
  int('buildJobs', 1, 256);
  int('buildTimeoutMs', 1000, 7 * 24 * 3600_000);
  int('keepVersions', 1, 1000);
  int('logQuotaBytes', 1024, 2 ** 40);
  int('logMaxFiles', 1, 1_000_000);
  if (s.copyTo !== null && (typeof s.copyTo !== 'string' || !/^[a-z][a-z0-9+.-]*:\/\/\S+$/.test(s.copyTo))) {
    bad('"copyTo" must be a Nix store URL such as "file:///var/cache/bento?secret-key=/etc/bento/cache.sk", or null');
  }
  return s;
}
