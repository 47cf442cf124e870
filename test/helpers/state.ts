// What a fleet's hub has made durable, read the way `bento-hub diff` reads
// it: through the state seam (hub/store/types.ts), opened read-only, never by
// parsing journal files here. Tests check the durable truth, not what a
// running hub says.
import { readFleetState } from '../../hub/store/open.js';
import { readJobRecords, type JobRecord } from '../../hub/store/jobs.js';
import { readHostState, type HostState } from '../../hub/store/host-state.js';

export async function durableJobs(fleetDir: string): Promise<JobRecord[]> {
  const state = readFleetState(fleetDir);
  try {
    return await readJobRecords(state);
  } finally {
    await state.close();
  }
}

export async function durableHostState(fleetDir: string, name: string): Promise<HostState | null> {
  const state = readFleetState(fleetDir);
  try {
    return await readHostState(state, name);
  } finally {
    await state.close();
  }
}
