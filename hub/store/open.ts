// Which StateBackend a fleet's hub uses. One place, so the cluster backend
// (hub/cluster/, NATS JetStream) is chosen here and nowhere else; today every
// fleet keeps its state in files under FLEET/state.
import type { Logger } from '../../common/platform/log.js';
import { fleetPaths } from '../fleet/paths.js';
import { openFileBackend } from './file-backend.js';
import type { StateBackend } from './types.js';

/** The hub's own state (read-write: only the serving hub). */
export function openFleetState(fleetDir: string, log: Logger): StateBackend {
  return openFileBackend({ stateDir: fleetPaths(fleetDir).stateDir, log });
}

/** The same state, read-only, for offline tools (`bento-hub diff`) and tests: what the hub would load. */
export function readFleetState(fleetDir: string): StateBackend {
  return openFileBackend({ stateDir: fleetPaths(fleetDir).stateDir, readOnly: true });
}
