// A minimal Prometheus text-format (0.0.4) registry: counters, gauges and
// histograms with labels, plus gauges computed at scrape time. Shared by the
// hub's /metrics and the agent's local page; no dependency, no I/O.

export type Labels = Record<string, string>;
type Sample = [labels: Labels, value: number];

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  samples(): Array<[suffix: string, labels: Labels, value: number]>;
}

/**
 * The series a label set names, the same whatever the order of its fields.
 * Computed at every inc/observe (each job end counts twice): names sorted by
 * code unit, not localeCompare (ICU, an entries array and a sort work area
 * per call were most of a job end's metrics cost); each part JSON-quoted, so no two label
 * sets share a key.
 */
function key(labels: Labels): string {
  const names = Object.keys(labels);
  // Insertion sort: label sets have a handful of names, and Array#sort allocates a work area per call.
  for (let i = 1; i < names.length; i++) {
    const n = names[i]!;
    let j = i - 1;
    for (; j >= 0 && names[j]! > n; j--) names[j + 1] = names[j]!;
    names[j + 1] = n;
  }
  let k = '';
  for (const n of names) k += `${JSON.stringify(n)}:${JSON.stringify(labels[n])},`;
  return k;
}

export class Counter implements Metric {
  readonly type = 'counter' as const;
  private readonly values = new Map<string, Sample>();
  constructor(readonly name: string, readonly help: string) {}

  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    const cur = this.values.get(k);
    if (cur) cur[1] += by;
    else this.values.set(k, [{ ...labels }, by]);
  }

  get(labels: Labels = {}): number {
    return this.values.get(key(labels))?.[1] ?? 0;
  }

  samples(): Array<[string, Labels, number]> {
    return [...this.values.values()].map(([l, v]) => ['', l, v]);
  }
}

/** A gauge whose samples are computed when scraped (or a counter whose totals another part keeps). */
export class Gauge implements Metric {
  constructor(readonly name: string, readonly help: string, private readonly collect: () => Sample[], readonly type: 'gauge' | 'counter' = 'gauge') {}

  samples(): Array<[string, Labels, number]> {
    return this.collect().map(([l, v]) => ['', l, v]);
  }
}

export class Histogram implements Metric {
  readonly type = 'histogram' as const;
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string, readonly buckets: number[]) {
    this.buckets = [...buckets].sort((a, b) => a - b);
  }

  observe(labels: Labels, value: number): void {
    const k = key(labels);
    let s = this.series.get(k);
    if (!s) this.series.set(k, (s = { labels: { ...labels }, counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  samples(): Array<[string, Labels, number]> {
    const out: Array<[string, Labels, number]> = [];
    for (const s of this.series.values()) {
      this.buckets.forEach((b, i) => out.push(['_bucket', { ...s.labels, le: formatNumber(b) }, s.counts[i]!]));
      out.push(['_bucket', { ...s.labels, le: '+Inf' }, s.count]);
      out.push(['_sum', s.labels, s.sum]);
      out.push(['_count', s.labels, s.count]);
    }
    return out;
  }
}

export class MetricsRegistry {
  private readonly metrics: Metric[] = [];

  private add<M extends Metric>(m: M): M {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(m.name)) throw new Error(`invalid metric name ${m.name}`);
    if (this.metrics.some((x) => x.name === m.name)) throw new Error(`metric ${m.name} registered twice`);
    this.metrics.push(m);
    return m;
  }

  counter(name: string, help: string): Counter {
    return this.add(new Counter(name, help));
  }

  gauge(name: string, help: string, collect: () => Sample[]): Gauge {
    return this.add(new Gauge(name, help, collect));
  }

  /** A counter read at scrape time from totals another part keeps. */
  counterFrom(name: string, help: string, collect: () => Sample[]): Gauge {
    return this.add(new Gauge(name, help, collect, 'counter'));
  }

  histogram(name: string, help: string, buckets: number[]): Histogram {
    return this.add(new Histogram(name, help, buckets));
  }

  /** The exposition text. A collector that throws is reported as a comment, not a failed scrape. */
  render(): string {
    const lines: string[] = [];
    for (const m of this.metrics) {
      lines.push(`# HELP ${m.name} ${m.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
      lines.push(`# TYPE ${m.name} ${m.type}`);
      let samples: Array<[string, Labels, number]>;
      try {
        samples = m.samples();
      } catch (err) {
        lines.push(`# collecting ${m.name} failed: ${String((err as Error).message).replace(/\n/g, ' ')}`);
        continue;
      }
      for (const [suffix, labels, value] of samples) lines.push(`${m.name}${suffix}${formatLabels(labels)} ${formatNumber(value)}`);
    }
    return `${lines.join('\n')}\n`;
  }
}

function formatLabels(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return `{${entries.map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`).join(',')}}`;
}

function formatNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

/** Job durations: from a quick dry-activate to a long first build. */
export const JOB_DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200];

/** Parse exposition text into name{labels} -> value (tests, and anyone checking a scrape). */
export function parsePrometheusText(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2] === '+Inf' ? Infinity : m[2]));
  }
  return out;
}
