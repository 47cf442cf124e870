// A hub's verdict on a job (interrupted: the agent came back without it, a
// restart's recovery, a dead hub's orphans) is a decision about a job it saw
// open. It must never replace the job's result that reached NATS first: the
// soak (docs/cluster.md "Soak", issue 16) had a hub restarted on a nats-server
// 2.9.10 replica holding stale "running" records interrupt 13 jobs that had
// ended in success. The hub's write was refused (the leader had the result),
// and the fenced writer tried it again on the record that won: the verdict
// landed over the result.
//
// Here, on a real 3-node NATS cluster, the staleness is the ordinary kind: hub
// b read the job while it ran, hub a then recorded its result (acknowledged),
// and b, which took the host over (a newer claim), settles the job with the
// record it read. Whether or not b's view has caught up by then, the result
// must stay, and b's verdict still resolve (the job has ended).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { silentLogger } from '../../common/platform/log.js';
import { newJobIdBody } from '../../common/protocol/names.js';
import { readJobRecords, type JobRecord, type JobStore } from '../../hub/store/jobs.js';
import { JobEnds } from '../../hub/jobs/job-end.js';
import { LocalEventBus } from '../../hub/events/bus.js';
import { fencedJobHubs } from '../helpers/fenced-job-hubs.js';
import { waitFor } from '../helpers/proc.js';

const log = silentLogger();
const hubs = await fencedJobHubs('verdict');
after(() => hubs.close());
const hub = hubs.hub;

/** The scheduler's way of ending a job with the hub's own verdict (scheduler.ts, arrivals.ts). */
function ends(store: JobStore): JobEnds {
  return new JobEnds({
    store, bus: new LocalEventBus(log), log, active: new Map(), settled: () => undefined, dispatchPending: async () => undefined, later: () => undefined,
    adopter: { adopt: async () => undefined },
  });
}

test('a verdict decided on a job seen running does not replace the result recorded meanwhile', async () => {
  const a = await hub('a', 1, 0);
  const b = await hub('b', 2, 1);
  const bEnds = ends(b);
  // What NATS holds, read through a connection of its own (a fresh bucket watch each time).
  const reader = await hubs.backend('reader', 2);
  const ROUNDS = 12;
  const ids: string[] = [];
  const bad: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const id = newJobIdBody();
    ids.push(id);
    const base: JobRecord = {
      id, host: `web${round}`, action: 'switch', state: 'dispatched', requestedAt: new Date().toISOString(),
      startedAt: null, endedAt: null, exitCode: null, durationMs: null, reason: null,
    };
    await a.save(base);
    await a.save({ ...base, state: 'running', startedAt: new Date().toISOString() });
    const seenByB = await waitFor('b sees the job running', () => (b.get(id)?.state === 'running' ? b.get(id) : null), 10_000, 2);
    // The result, acknowledged by NATS: the agent deletes its copy on the ack that follows.
    await a.save({ ...a.get(id)!, state: 'success', endedAt: new Date().toISOString(), exitCode: 0 });
    // Every other round b's view has caught up first (the verdict is then moot before any write is sent).
    if (round % 2 === 1) await waitFor('b sees the result', () => (b.get(id)?.state === 'success' ? true : null), 10_000, 2);
    const verdict = await bEnds.finish(seenByB, { outcome: 'interrupted', reason: 'the agent reconnected without it' }).then(() => 'resolved', (err: Error) => `rejected: ${err.message}`);
    await Promise.all([a.settled(), b.settled()]);
    const stored = (await readJobRecords(reader)).find((r) => r.id === id);
    if (stored?.state !== 'success' || verdict !== 'resolved') bad.push(`round ${round}: record ${stored?.state} (hub ${stored?.hub}, epoch ${stored?.epoch}), b's verdict ${verdict}`);
  }
  assert.deepEqual(bad, [], `${bad.length} of ${ROUNDS} rounds lost the acknowledged result`);
  // Both views end on the result too.
  for (const id of ids) {
    await waitFor(`both views show ${id} as success`, () => (a.get(id)?.state === 'success' && b.get(id)?.state === 'success' ? true : null), 10_000, 20);
  }
});
