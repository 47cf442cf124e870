// The order hosts are listed in, in the status table and on the dashboard:
// the ones that need someone first (failing, rolled back, offline, never
// connected), then work in progress and pending changes, then the settled
// ones; by name within a state. `status --json` and GET /api/hosts keep
// their order by name: scripts may rely on it.
import type { HostStateName } from '../../common/protocol/admin.js';

const RANK: Record<HostStateName, number> = {
  failing: 0, 'rolled back': 1, offline: 2, 'never connected': 3,
  running: 4, 'rebuild pending': 5, 'sync pending': 6,
  'new machine': 7, 'nothing published': 8, 'auto updated': 9, 'up to date': 10,
};

/** States that need someone: the dashboard's "needs attention" filter. */
export const ATTENTION: ReadonlySet<HostStateName> = new Set(['failing', 'rolled back', 'offline', 'never connected']);

/** A key that sorts as the hosts should be listed ("00 web1" < "02 db1" < "10 app1"); unknown states last. */
export function sortKey(state: string, name: string): string {
  const rank = Object.prototype.hasOwnProperty.call(RANK, state) ? RANK[state as HostStateName] : 99;
  return `${String(rank).padStart(2, '0')} ${name}`;
}

export function byAttention<T>(items: T[], of: (t: T) => { state: string; name: string }): T[] {
  const keyed = items.map((t) => ({ t, k: sortKey(of(t).state, of(t).name) }));
  keyed.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  return keyed.map((x) => x.t);
}
