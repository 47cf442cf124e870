// What the NATS servers carried between two moments, from their monitoring
// endpoints (fixture option `monitor`): messages and bytes per client
// connection (summed by connection name, so "bento-hub hub1" covers both of
// its connections on every server) and over the routes between servers. The
// bench divides a fan-out's traffic by its jobs to see what one job costs the
// servers, which their CPU alone does not say. Also: Go CPU profiles of the
// servers (fixture option `profile`), for pprof-summary.ts.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { NatsCluster } from '../fixtures/nats.js';

export interface Traffic {
  /** By client connection name: messages and bytes the clients sent (in) and were sent (out). */
  clients: Record<string, Counts>;
  /** All route connections of all servers together. */
  routes: Counts;
}

export interface Counts { inMsgs: number; outMsgs: number; inBytes: number; outBytes: number }

interface Conn { name?: string; in_msgs: number; out_msgs: number; in_bytes: number; out_bytes: number }

const zero = (): Counts => ({ inMsgs: 0, outMsgs: 0, inBytes: 0, outBytes: 0 });

function add(c: Counts, x: Conn): void {
  c.inMsgs += x.in_msgs;
  c.outMsgs += x.out_msgs;
  c.inBytes += x.in_bytes;
  c.outBytes += x.out_bytes;
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

/** The running servers' counters now (a server that restarted in between counts from its restart). */
export async function natsTraffic(nats: NatsCluster): Promise<Traffic> {
  const out: Traffic = { clients: {}, routes: zero() };
  for (const n of nats.nodes) {
    if (!n.daemon || !n.monitorUrl) continue;
    const connz = await getJson<{ connections?: Conn[] }>(`${n.monitorUrl}/connz?limit=10000`);
    for (const c of connz.connections ?? []) add((out.clients[c.name ?? '(unnamed)'] ??= zero()), c);
    const routez = await getJson<{ routes?: Conn[] }>(`${n.monitorUrl}/routez`);
    for (const r of routez.routes ?? []) add(out.routes, r);
  }
  return out;
}

function minus(a: Counts, b: Counts | undefined): Counts {
  const z = b ?? zero();
  return { inMsgs: a.inMsgs - z.inMsgs, outMsgs: a.outMsgs - z.outMsgs, inBytes: a.inBytes - z.inBytes, outBytes: a.outBytes - z.outBytes };
}

/** AFTER - BEFORE, each figure divided by PER (e.g. the jobs in between). */
export function trafficPer(before: Traffic, after: Traffic, per: number): Traffic {
  const div = (c: Counts): Counts => ({ inMsgs: c.inMsgs / per, outMsgs: c.outMsgs / per, inBytes: c.inBytes / per, outBytes: c.outBytes / per });
  const clients: Record<string, Counts> = {};
  for (const [name, c] of Object.entries(after.clients)) clients[name] = div(minus(c, before.clients[name]));
  return { clients, routes: div(minus(after.routes, before.routes)) };
}

/** One line per connection name and the routes: "name: in 3.1 msgs / 812 B, out 5.0 msgs / 1.2 KiB". */
export function formatTraffic(t: Traffic): string {
  const f = (c: Counts): string => `in ${c.inMsgs.toFixed(2)} msgs / ${c.inBytes.toFixed(0)} B, out ${c.outMsgs.toFixed(2)} msgs / ${c.outBytes.toFixed(0)} B`;
  const lines = Object.entries(t.clients).sort(([a], [b]) => a.localeCompare(b)).map(([name, c]) => `  ${name}: ${f(c)}`);
  lines.push(`  routes: ${f(t.routes)}`);
  return lines.join('\n');
}

/** Go CPU profiles of every running server over the next SECONDS, saved as DIR/<node>.pb.gz (fixture option `profile`). */
export async function natsCpuProfiles(nats: NatsCluster, dir: string, seconds: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  await Promise.all(nats.nodes.map(async (n) => {
    if (!n.daemon || !n.profUrl) return;
    const res = await fetch(`${n.profUrl}/debug/pprof/profile?seconds=${seconds}`, { signal: AbortSignal.timeout((seconds + 30) * 1000) });
    if (!res.ok) throw new Error(`${n.name} pprof: HTTP ${res.status}`);
    await writeFile(path.join(dir, `${n.name}.pb.gz`), Buffer.from(await res.arrayBuffer()));
  }));
}
