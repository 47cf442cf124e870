// The file backend (hub/store/file-backend.ts: journals and job logs under
// FLEET/state) passes the same contract suites as every other backend, on the
// real file system.
import { keyedStoreContract, type Harness } from '../contract/keyed-store.js';
import { jobOutputContract } from '../contract/job-output.js';
import { openFileBackend } from '../../hub/store/file-backend.js';
import { tmpDir } from '../helpers/proc.js';

const harness: Harness = {
  name: 'file',
  shared: false,
  async fresh() {
    const { dir, cleanup } = await tmpDir('bento-store-');
    return {
      open: async () => openFileBackend({ stateDir: dir }),
      cleanup,
    };
  },
};

keyedStoreContract(harness);
jobOutputContract(harness);
