// Live updates for open dashboard pages. Every hub event marks its host
// dirty; a short debounce later the host's row is re-rendered and, only if
// its HTML changed, sent to the open pages as one "row" event. A periodic
// full pass catches what has no event (registry edits, jobs queued from the
// CLI). Nothing is computed while no page is open.
import type { SseStream } from '../../common/platform/web-sse.js';
import type { EventBus } from '../events/types.js';
import { fleetRows, type HostRow } from './model.js';
import type { ReadSources } from '../status/read-model.js';
import type { JobStore } from '../store/jobs.js';
import { clientRowHtml, hostRowHtml, summaryHtml, hostsBody, clientsBody } from './pages.js';
import { hostDetailHtml, historyHtml } from './host-pages.js';
import { sortKey } from '../status/order.js';

interface Subscriber { sse: SseStream; host: string | null; detail: string; history: string }

export class FleetView {
  private readonly subs = new Set<Subscriber>();
  private readonly hostHtml = new Map<string, string>();
  /** The last rendered row of every host: the summary line is counted from these. */
  private readonly lastRows = new Map<string, HostRow>();
  private readonly clientHtml = new Map<string, string>();
  private summary = '';
  private dirty = new Set<string>();
  private debounce: NodeJS.Timeout | null = null;
  private periodic: NodeJS.Timeout | null = null;
  private readonly unsubscribe: () => void;

  constructor(private readonly src: { sources: ReadSources; jobs: Pick<JobStore, 'forHost'> }, bus: EventBus, private readonly opts = { debounceMs: 100, fullEveryMs: 5000 }) {
    const sub = bus.subscribe({ all: true }, (e) => this.markDirty(e.host));
    this.unsubscribe = () => sub.unsubscribe();
  }

  get subscribers(): number {
    return this.subs.size;
  }

  /** A fleet page (host null) or one host's page opened its event stream. */
  subscribe(sse: SseStream, host: string | null): void {
    if (this.subs.size === 0) this.baseline();
    const sub: Subscriber = { sse, host, detail: '', history: '' };
    this.subs.add(sub);
    sse.onClose(() => {
      this.subs.delete(sub);
      if (this.subs.size === 0) this.idle();
    });
    // The page may be a moment old: start from the current truth.
    if (host === null) {
      const rows = fleetRows(this.src.sources);
      sse.send('replace', { id: 'summary', html: summaryHtml(rows).value });
      sse.send('replace', { id: 'hosts-body', html: hostsBody(rows).value });
      sse.send('replace', { id: 'clients-body', html: clientsBody(rows).value });
    } else {
      this.sendHost(sub, fleetRows(this.src.sources, new Set([host]))[0] ?? null);
    }
    if (!this.periodic) {
      this.periodic = setInterval(() => this.refresh(null), this.opts.fullEveryMs);
      this.periodic.unref();
    }
  }

  markDirty(host: string): void {
    if (this.subs.size === 0) return;
    this.dirty.add(host);
    if (!this.debounce) {
      this.debounce = setTimeout(() => {
        this.debounce = null;
        const hosts = this.dirty;
        this.dirty = new Set();
        this.refresh(hosts);
      }, this.opts.debounceMs);
      this.debounce.unref();
    }
  }

  private baseline(): void {
    this.hostHtml.clear();
    this.clientHtml.clear();
    this.lastRows.clear();
    const rows = fleetRows(this.src.sources);
    for (const r of rows) {
      this.lastRows.set(r.name, r);
      this.hostHtml.set(r.name, hostRowHtml(r).value);
      const c = clientRowHtml(r);
      if (c) this.clientHtml.set(r.name, c.value);
    }
    this.summary = summaryHtml(rows).value;
  }

  /** Re-render some hosts (or all, null) and send what changed. */
  refresh(only: ReadonlySet<string> | null): void {
    if (this.subs.size === 0) return;
    const rows = fleetRows(this.src.sources, only ?? undefined);
    const events: Array<[string, unknown]> = [];
    const seen = new Set<string>();
    for (const r of rows) {
      seen.add(r.name);
      this.lastRows.set(r.name, r);
      const h = hostRowHtml(r).value;
      if (this.hostHtml.get(r.name) !== h) {
        this.hostHtml.set(r.name, h);
        // The key places the row (order.ts): a host whose state changed moves to its new place.
        events.push(['row', { tbody: 'hosts-body', id: `host-${r.name}`, key: sortKey(r.state, r.name), html: h }]);
      }
      const c = clientRowHtml(r)?.value ?? null;
      if ((this.clientHtml.get(r.name) ?? null) !== c) {
        if (c === null) this.clientHtml.delete(r.name);
        else this.clientHtml.set(r.name, c);
        events.push(['row', { tbody: 'clients-body', id: `client-${r.name}`, key: r.name, html: c }]);
      }
    }
    // Hosts that are gone (removed from the registry and not connected).
    for (const name of only ?? [...this.lastRows.keys()]) {
      if (seen.has(name) || !this.lastRows.has(name)) continue;
      this.lastRows.delete(name);
      this.hostHtml.delete(name);
      events.push(['row', { tbody: 'hosts-body', id: `host-${name}`, key: name, html: null }]);
      if (this.clientHtml.delete(name)) events.push(['row', { tbody: 'clients-body', id: `client-${name}`, key: name, html: null }]);
    }
    const summary = summaryHtml([...this.lastRows.values()]).value;
    if (summary !== this.summary) {
      this.summary = summary;
      events.push(['replace', { id: 'summary', html: summary }]);
    }
    for (const s of this.subs) {
      if (s.host === null) for (const [ev, data] of events) s.sse.send(ev, data);
      else if (seen.has(s.host)) this.sendHost(s, this.lastRows.get(s.host) ?? null);
    }
  }

  private sendHost(s: Subscriber, row: HostRow | null): void {
    if (!row || !s.host) return;
    const detail = hostDetailHtml(row).value;
    if (detail !== s.detail) {
      s.detail = detail;
      s.sse.send('replace', { id: 'host-detail', html: detail });
    }
    const history = historyHtml(this.src.jobs.forHost(s.host).reverse()).value;
    if (history !== s.history) {
      s.history = history;
      s.sse.send('replace', { id: 'history', html: history });
    }
  }

  private idle(): void {
    if (this.periodic) clearInterval(this.periodic);
    if (this.debounce) clearTimeout(this.debounce);
    this.periodic = null;
    this.debounce = null;
    this.dirty.clear();
  }

  close(): void {
    this.unsubscribe();
    for (const s of this.subs) s.sse.close();
    this.subs.clear();
    this.idle();
  }
}
