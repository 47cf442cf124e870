// What an admin's registry edit costs at the fleet's size: `bento-hub
// add-host` and `remove-host` at a cluster hub are CLI processes that load
// the whole registry (every host's record and every key's claim) before they
// write one record (hub/cluster/registry-kv.ts). docs/cluster.md listed this as
// not measured; here it is measured against the bench's registry of N hosts.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { HUB_BIN } from './hub.js';

const execFileP = promisify(execFile);

export interface RegistryEditTimes { addMs: number; removeMs: number }

/** One add-host and one remove-host of a new host at the hub of FLEETDIR, each a CLI process timed from spawn to exit. */
export async function registryEditTimes(fleetDir: string): Promise<RegistryEditTimes> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'bento-bench-cli-'));
  try {
    const keyPath = path.join(tmp, 'probe_ed25519');
    await execFileP('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bench-cli-probe', '-f', keyPath]);
    const key = (await readFile(`${keyPath}.pub`, 'utf8')).trim();
    const cli = async (args: string[]): Promise<number> => {
      const t0 = performance.now();
      await execFileP(process.execPath, [HUB_BIN, ...args, '--dir', fleetDir], { timeout: 300_000, maxBuffer: 16 * 1024 * 1024 });
      return performance.now() - t0;
    };
    const addMs = await cli(['add-host', 'bench-cli-probe', '--key', key]);
    const removeMs = await cli(['remove-host', 'bench-cli-probe']);
    return { addMs, removeMs };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
