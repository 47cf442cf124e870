// The dashboard's rows: the read model's views (hub/status/read-model.ts, the
// same ones `bento-hub status` and the metrics use) in the shape the pages
// and GET /api/hosts have always had (docs/web.md).
import type { ClientInfo, StatusJob } from '../../common/protocol/admin.js';
import type { HostState } from '../store/host-state.js';
import { hostViews, type HostView, type ReadSources } from '../status/read-model.js';

/** A job as the dashboard shows it (the status module's StatusJob). */
export type JobSummary = StatusJob;

export interface HostRow {
  name: string;
  tags: string[];
  registered: boolean;
  /** The live connection, as `bento-hub list` reports it; null when offline. */
  client: ClientInfo | null;
  /** Last known facts (survive a hub restart). */
  facts: HostState | null;
  /** One of the status module's states (up to date, running, offline, ...). */
  state: string;
  /** Short explanation of the state, if any. */
  stateDetail: string | null;
  activeJob: JobSummary | null;
  /** A job waiting for the host (queued while it was offline, or behind the running one). */
  queuedJob: JobSummary | null;
  lastJob: JobSummary | null;
}

export function hostRow(v: HostView): HostRow {
  return {
    name: v.name, tags: v.tags, registered: v.registered, client: v.client, facts: v.facts,
    state: v.state, stateDetail: v.detail, activeJob: v.active, queuedJob: v.queued, lastJob: v.last,
  };
}

/** Rows for all registered hosts plus any connected host that is not (it was just removed). Sorted by name (the pages sort by attention: status/order.ts). */
export function fleetRows(src: ReadSources, only?: ReadonlySet<string>): HostRow[] {
  return hostViews(src, { only }).map(hostRow);
}
