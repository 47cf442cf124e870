// The hub's Prometheus metrics. Counters follow this hub's own events on the
// bus (connections to it, jobs whose end it recorded): in a cluster each hub
// counts what happened at it, so a sum over the hubs counts everything once
// (subscribing to every hub's events would count each event at every hub, and
// would bring every other hub's traffic here for it). Gauges are computed at scrape time from the read model's host
// views (hub/status/read-model.ts), the same ones `status` and the dashboard
// show, so a scrape costs one pass over the fleet and nothing between scrapes.
import { MetricsRegistry, JOB_DURATION_BUCKETS, type Labels } from '../../common/platform/prometheus.js';
import { BENTO_VERSION } from '../../common/protocol/version.js';
import type { EventBus } from '../events/types.js';
import { hostViews, proxyKind, type HostView, type ReadSources } from '../status/read-model.js';

export interface MetricsDeps {
  sources: ReadSources;
  bus: EventBus;
}

export class HubMetrics {
  readonly registry = new MetricsRegistry();
  private readonly startedAt = Date.now();
  private rows: HostView[] | null = null;

  constructor({ sources: src, bus }: MetricsDeps) {
    const r = this.registry;
    const { holders, registry: hostRegistry } = src;
    r.gauge('bento_hub_info', 'The hub version (value is always 1).', () => [[{ version: BENTO_VERSION }, 1]]);
    r.gauge('bento_hub_start_time_seconds', 'When this hub process started (Unix time).', () => [[{}, Math.floor(this.startedAt / 1000)]]);
    r.gauge('bento_hosts_registered', 'Hosts in the registry.', () => [[{}, Object.keys(hostRegistry.snapshot.hosts).length]]);
    r.gauge('bento_hosts_connected', 'Hosts with a live session, by carrier (ssh, ws), the proxy the agent came through, and the hub holding it (a cluster: every hub\'s).', () => {
      const counts = new Map<string, { labels: Labels; n: number }>();
      for (const h of holders.all()) {
        const labels = { carrier: h.carrier, proxy: proxyKind(h.via), hub: h.hub };
        const k = `${labels.carrier}/${labels.proxy}/${labels.hub}`;
        const c = counts.get(k);
        if (c) c.n++;
        else counts.set(k, { labels, n: 1 });
      }
      // Always expose the two carriers, so a dashboard shows 0 instead of "no data".
      for (const carrier of ['ssh', 'ws']) if (![...counts.values()].some((c) => c.labels['carrier'] === carrier)) counts.set(`${carrier}/direct`, { labels: { carrier, proxy: 'direct', hub: holders.hubName }, n: 0 });
      return [...counts.values()].map((c) => [c.labels, c.n]);
    });
    // One pass over the fleet per scrape, shared by the gauges below.
    const rows = (): HostView[] => (this.rows ??= hostViews(src));
    r.gauge('bento_hosts_by_state', 'Registered hosts by state (as `bento-hub status` shows them).', () => {
      const counts = new Map<string, number>();
      for (const row of rows()) if (row.registered) counts.set(row.state, (counts.get(row.state) ?? 0) + 1);
      return [...counts.entries()].sort().map(([state, n]) => [{ state }, n]);
    });
    r.gauge('bento_jobs_active', 'Jobs dispatched to or running on an agent.', () => [[{}, rows().filter((x) => x.active).length]]);

    const connections = r.counter('bento_agent_connections_total', 'Agent sessions established (valid hello), by carrier.');
    const reconnects = r.counter('bento_agent_reconnects_total', 'Sessions from hosts that had been connected before (to this hub or an earlier run of it).');
    const disconnects = r.counter('bento_agent_disconnects_total', 'Agent sessions that ended, by carrier.');
    const jobs = r.counter('bento_jobs_total', 'Finished jobs by outcome (success, failure, interrupted, rolled-back) and action.');
    const rollbacks = r.counter('bento_rollbacks_total', 'Jobs whose switch was rolled back by the agent\'s guard.');
    const durations = r.histogram('bento_job_duration_seconds', 'How long finished jobs ran, by action.', JOB_DURATION_BUCKETS);
    for (const outcome of ['success', 'failure', 'interrupted', 'rolled-back']) jobs.inc({ outcome, action: 'switch' }, 0);
    rollbacks.inc({}, 0);
    reconnects.inc({}, 0);

    bus.subscribe({ local: true }, (e) => {
      if (e.kind === 'connected') {
        connections.inc({ carrier: e.carrier });
        if (e.reconnect) reconnects.inc();
      } else if (e.kind === 'disconnected') {
        disconnects.inc({ carrier: e.carrier });
      } else if (e.kind === 'job') {
        const ev = e.event;
        if (ev.ev === 'end') {
          const action = src.jobs.get(ev.jobId)?.action ?? 'unknown';
          jobs.inc({ outcome: ev.outcome, action });
          if (ev.outcome === 'rolled-back') rollbacks.inc();
          durations.observe({ action }, Math.max(0, ev.durationMs) / 1000);
        }
      }
    });

    r.gauge('process_resident_memory_bytes', 'Resident memory of the hub process.', () => [[{}, process.memoryUsage.rss()]]);
  }

  render(): string {
    this.rows = null;
    try {
      return this.registry.render();
    } finally {
      this.rows = null;
    }
  }
}
