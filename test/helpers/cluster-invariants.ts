// The invariant after every cluster scenario: every accepted job ends exactly
// once in one final state, visible identically from every hub.
//   - in NATS (read through a fresh connection), each accepted job has one
//     record, in a final state;
//   - every running hub's `status` shows, for each host with accepted jobs,
//     the same last job (id and state) and nothing still running.
// The logic (jobProblems) is shared with the cluster bench and the soak
// (test/bench/cluster-check.ts), which read the records and the views
// their own way; checkJobs runs it on a TestCluster and waits for it.
import assert from 'node:assert/strict';
import { waitFor } from './proc.js';
import type { TestCluster } from './cluster.js';
import { adminStatus } from './admin-query.js';

export const FINAL = new Set(['success', 'failure', 'interrupted', 'rolled-back']);

export interface HostStatus { name: string; runningJob: { id: string } | null; lastJob: { id: string; state: string } | null }
export interface RecordLike { id: string; host: string; state: string }

/** Accepted jobs without one final record (sorted ids); an id accepted twice is a problem too. */
export function unfinishedJobs(accepted: readonly string[], records: readonly RecordLike[]): { duplicates: string[]; open: Array<{ id: string; state: string | null }> } {
  const byId = new Map(records.map((r) => [r.id, r]));
  const seen = new Set<string>();
  const duplicates: string[] = [];
  for (const id of accepted) {
    if (seen.has(id)) duplicates.push(id);
    seen.add(id);
  }
  const open = [...seen].filter((id) => !FINAL.has(byId.get(id)?.state ?? '')).map((id) => ({ id, state: byId.get(id)?.state ?? null }));
  return { duplicates, open };
}

/** Hosts (of the accepted jobs) on which the hubs' views disagree, or still show a job running. */
export function viewDisagreements(hosts: Iterable<string>, views: ReadonlyArray<ReadonlyMap<string, HostStatus>>): string[] {
  const out: string[] = [];
  for (const host of hosts) {
    const seen = views.map((v) => v.get(host));
    if (seen.some((s) => !s || s.runningJob !== null)) { out.push(host); continue; }
    if (new Set(seen.map((s) => `${s!.lastJob?.id}:${s!.lastJob?.state}`)).size !== 1) out.push(host);
  }
  return out;
}

export async function checkJobs(c: TestCluster, accepted: string[], o: { timeoutMs?: number; expect?: Record<string, string> } = {}): Promise<void> {
  const { duplicates } = unfinishedJobs(accepted, []);
  assert.deepEqual(duplicates, [], 'no job id was accepted twice');
  let records = await c.jobRecords();
  await waitFor('every accepted job final', async () => {
    records = await c.jobRecords();
    return unfinishedJobs(accepted, records).open.length === 0;
  }, o.timeoutMs ?? 30_000, 250).catch((err: Error) => {
    throw new Error(`${err.message}\nnot final: ${JSON.stringify(unfinishedJobs(accepted, records).open)}`);
  });
  for (const [id, state] of Object.entries(o.expect ?? {})) assert.equal(records.find((r) => r.id === id)?.state, state, `job ${id}`);
  const hosts = new Set(accepted.map((id) => records.find((r) => r.id === id)!.host));
  const running = c.hubs.map((h, i) => ({ h, i })).filter((x) => x.h.daemon);
  // Every hub's view converges on the same last job per host (views follow NATS within moments).
  await waitFor('every hub shows the same jobs', async () => {
    const views = await Promise.all(running.map(async ({ i }) => {
      // Over the admin socket (admin-query.ts): polled every 250 ms at every hub.
      return new Map((await adminStatus(c.hubs[i]!.fleetDir)).map((h) => [h.name, h]));
    }));
    return viewDisagreements(hosts, views).length === 0;
  }, 15_000, 250);
}
