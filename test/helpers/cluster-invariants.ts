// The invariant after every cluster scenario: every accepted job ends exactly
// once in one final state, visible identically from every hub.
//   - in NATS (read through a fresh connection), each accepted job has one
//     record, in a final state;
//   - every running hub's `status` shows, for each host with accepted jobs,
//     the same last job (id and state) and nothing still running.
import assert from 'node:assert/strict';
import { waitFor } from './proc.js';
import type { TestCluster } from './cluster.js';

const FINAL = new Set(['success', 'failure', 'interrupted', 'rolled-back']);

interface HostStatus { name: string; runningJob: { id: string } | null; lastJob: { id: string; state: string } | null }

export async function checkJobs(c: TestCluster, accepted: string[], o: { timeoutMs?: number; expect?: Record<string, string> } = {}): Promise<void> {
  const ids = [...new Set(accepted)];
  assert.equal(ids.length, accepted.length, 'no job id was accepted twice');
  let records = await c.jobRecords();
  await waitFor('every accepted job final', async () => {
    records = await c.jobRecords();
    return ids.every((id) => FINAL.has(records.find((r) => r.id === id)?.state ?? ''));
  }, o.timeoutMs ?? 30_000, 250).catch((err: Error) => {
    const open = ids.map((id) => records.find((r) => r.id === id)).filter((r) => !r || !FINAL.has(r.state));
    throw new Error(`${err.message}\nnot final: ${JSON.stringify(open)}`);
  });
  for (const [id, state] of Object.entries(o.expect ?? {})) assert.equal(records.find((r) => r.id === id)?.state, state, `job ${id}`);
  const hosts = new Set(ids.map((id) => records.find((r) => r.id === id)!.host));
  const running = c.hubs.map((h, i) => ({ h, i })).filter((x) => x.h.daemon);
  // Every hub's view converges on the same last job per host (views follow NATS within moments).
  await waitFor('every hub shows the same jobs', async () => {
    const views = await Promise.all(running.map(async ({ i }) => {
      const r = await c.hubCli(i, ['status', '--json']);
      return new Map((JSON.parse(r.stdout) as { hosts: HostStatus[] }).hosts.map((h) => [h.name, h]));
    }));
    for (const host of hosts) {
      const seen = views.map((v) => v.get(host));
      if (seen.some((s) => !s || s.runningJob !== null)) return false;
      const last = seen.map((s) => `${s!.lastJob?.id}:${s!.lastJob?.state}`);
      if (new Set(last).size !== 1) return false;
    }
    return true;
  }, 15_000, 250);
}
