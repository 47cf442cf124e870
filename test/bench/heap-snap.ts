// `--heap-snapshots DIR`: the server under test (hub or floor) runs with
// --heapsnapshot-signal, and the bench asks it for a V8 heap snapshot with no
// agent connected and again with all N connected (after the memory
// measurement, which a snapshot would disturb: it runs a full GC). The files
// land in DIR as hub-0 / hub-N / floor-0 / floor-N .heapsnapshot;
// heap-diff.ts turns a pair into bytes per session by type.
import { readdirSync, renameSync, statSync } from 'node:fs';
import path from 'node:path';
import { ping } from './hub.js';
import { sleep } from './state.js';

const SIGNAL = 'SIGUSR2';

/** Node flags that make a server write a snapshot into `dir` on SIGNAL. */
export function heapSnapshotArgs(dir: string): string[] {
  return [`--heapsnapshot-signal=${SIGNAL}`, `--diagnostic-dir=${dir}`];
}

/**
 * Signal `pid`, wait for its snapshot to be complete, and rename it to
 * DIR/LABEL.heapsnapshot. Node writes it on the main thread, so once the
 * admin socket answers and the size stops growing, the file is whole.
 */
export async function takeHeapSnapshot(o: { pid: number; socket: string; dir: string; label: string; timeoutMs?: number }): Promise<string> {
  const before = new Set(readdirSync(o.dir));
  process.kill(o.pid, SIGNAL);
  const t0 = performance.now();
  const limit = o.timeoutMs ?? 300_000;
  let file = '';
  let size = -1;
  for (;;) {
    if (performance.now() - t0 > limit) throw new Error(`no heap snapshot from ${o.pid} within ${limit} ms`);
    await sleep(250);
    if (!file) {
      file = readdirSync(o.dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f)) ?? '';
      continue;
    }
    if (!(await ping(o.socket))) continue;
    const now = statSync(path.join(o.dir, file)).size;
    if (now > 0 && now === size) break;
    size = now;
  }
  const to = path.join(o.dir, `${o.label}.heapsnapshot`);
  renameSync(path.join(o.dir, file), to);
  return to;
}
