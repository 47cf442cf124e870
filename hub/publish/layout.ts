// Where published configurations live: one jail per host under FLEET/jails/.
//
//   jails/NAME/version.json       {"hash","publishedAt",...}: THE commit point of a
//                                 publish (replaced by an atomic rename)
//   jails/NAME/versions/HASH/     immutable trees, one per published content hash
//   jails/NAME/config -> versions/HASH   convenience symlink (stock sshd, humans);
//                                 updated right after version.json
//   jails/NAME/last_change_date   upstream Bento's change marker (rewritten per publish)
//   jails/NAME/logs/              logs uploaded by the host (create + write only)
//   jails/NAME/.staging-*         a publish in progress; never visible through the jail
//
// The SFTP jail (hub/sftp) never serves this directory as is: it maps a small
// virtual namespace (/config, /logs, /version.json, /last_change_date) onto it.
import path from 'node:path';
import { isHostName } from '../../common/protocol/names.js';
import { BentoError } from '../../common/protocol/errors.js';

export interface JailPaths {
  root: string;
  versionFile: string;
  lastChange: string;
  configLink: string;
  versionsDir: string;
  logsDir: string;
}

export const HASH_RE = /^[0-9a-f]{64}$/;

export function jailsDir(fleetDir: string): string {
  return path.join(path.resolve(fleetDir), 'jails');
}

export function jailPaths(fleetDir: string, host: string): JailPaths {
  if (!isHostName(host)) throw new BentoError('INVALID_HOST_NAME', 'refusing a jail path for an invalid host name');
  const root = path.join(jailsDir(fleetDir), host);
  return {
    root,
    versionFile: path.join(root, 'version.json'),
    lastChange: path.join(root, 'last_change_date'),
    configLink: path.join(root, 'config'),
    versionsDir: path.join(root, 'versions'),
    logsDir: path.join(root, 'logs'),
  };
}

export function versionDir(j: JailPaths, hash: string): string {
  if (!HASH_RE.test(hash)) throw new BentoError('INTERNAL', `not a content hash: ${hash.slice(0, 80)}`);
  return path.join(j.versionsDir, hash);
}
