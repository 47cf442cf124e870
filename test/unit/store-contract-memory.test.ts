// The memory backend (hub/store/memory-backend.ts), which the scheduler's
// unit tests run on, passes the same contract suites as the real backends:
// a unit test on it means what it would mean on files.
import { keyedStoreContract, type Harness } from '../contract/keyed-store.js';
import { jobOutputContract } from '../contract/job-output.js';
import { MemoryBackend, MemoryState } from '../../hub/store/memory-backend.js';

const harness: Harness = {
  name: 'memory',
  shared: false,
  async fresh() {
    const state = new MemoryState();
    return { open: async () => new MemoryBackend(state), cleanup: async () => undefined };
  },
};

keyedStoreContract(harness);
jobOutputContract(harness);
