// `list` and `rollout status` asked over the hub's real admin socket from the
// test process, as the CLI asks them, without starting a CLI process. Why:
// the fixtures poll who is connected (and rollouts) every 100 ms, and a
// `bento-hub list` process
// costs 0.35-0.65 s of CPU (node's start and the CLI's modules): polling through
// it kept a core busy for the length of every wait. The CLI's own `list` is
// tested where it is the subject (cli-fleet, cluster-hubs; rollout's CLI in
// rollout.test.ts).
import { adminCall } from '../../hub/admin/client.js';
import { fleetPaths } from '../../hub/fleet/paths.js';
import type { ClientInfo, HostStatus } from '../../common/protocol/admin.js';
import type { RolloutDetail } from '../../common/protocol/rollout.js';

/** The agents connected as the hub of FLEETDIR lists them (its cluster's, with a cluster), sorted by name like the CLI. */
export async function adminList(fleetDir: string): Promise<ClientInfo[]> {
  const { clients } = await adminCall(fleetPaths(fleetDir).adminSocket, { op: 'list' }, 'list');
  return clients.sort((a, b) => a.name.localeCompare(b.name));
}

/** `rollout status ID` at the hub of FLEETDIR. */
export async function adminRolloutStatus(fleetDir: string, id: string): Promise<RolloutDetail> {
  return (await adminCall(fleetPaths(fleetDir).adminSocket, { op: 'rollout.status', id }, 'rollout')).rollout;
}

/** `status` at the hub of FLEETDIR: every host's status row. */
export async function adminStatus(fleetDir: string): Promise<HostStatus[]> {
  return (await adminCall(fleetPaths(fleetDir).adminSocket, { op: 'status' }, 'status')).hosts;
}
