// Where everything lives inside a fleet directory. One place, so the layout
// documented in docs/operations.md and the code cannot drift apart.
import path from 'node:path';
import { isHostName } from '../../common/protocol/names.js';
import { BentoError } from '../../common/protocol/errors.js';

export interface FleetPaths {
  root: string;
  hubConfig: string;
  hostKey: string;
  hostKeyPub: string;
  registry: string;
  registryLock: string;
  adminSocket: string;
  stateDir: string;
  hostsDir: string;
}

export function fleetPaths(root: string): FleetPaths {
  const r = path.resolve(root);
  return {
    root: r,
    hubConfig: path.join(r, 'hub.json'),
    hostKey: path.join(r, 'hub_ed25519_key'),
    hostKeyPub: path.join(r, 'hub_ed25519_key.pub'),
    registry: path.join(r, 'registry.json'),
    registryLock: path.join(r, 'registry.lock'),
    adminSocket: path.join(r, 'hub.sock'),
    stateDir: path.join(r, 'state'),
    hostsDir: path.join(r, 'hosts'),
  };
}

/** Per-host file under a directory; the name is re-checked so it can never escape. */
export function hostFile(dir: string, name: string, suffix: string): string {
  if (!isHostName(name)) throw new BentoError('INVALID_HOST_NAME', `refusing path for invalid host name`);
  return path.join(dir, `${name}${suffix}`);
}

/** --dir, else $BENTO_DIR, else /var/lib/bento. */
export function resolveFleetDir(flag: string | undefined): string {
  return path.resolve(flag ?? process.env['BENTO_DIR'] ?? '/var/lib/bento');
}
