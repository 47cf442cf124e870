// Job output when a host moves to another hub mid-job (real 3-node cluster):
// the new hub's lines continue the job's seq with no gap and no repeat,
// whether it resumes the job first (its seqs are right at once), skips that
// (its lines are renumbered when the store finds the job's output), or writes
// while the old hub is still flushing its last lines.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { silentLogger } from '../../common/platform/log.js';
import type { NatsJobOutputStore } from '../../hub/cluster/job-output.js';
import { NatsStateBackend } from '../../hub/cluster/nats-backend.js';
import { parseClusterOptions } from '../../hub/cluster/options.js';
import type { OutputLine } from '../../hub/store/types.js';
import { startNatsCluster } from '../fixtures/nats.js';
import { waitFor } from '../helpers/proc.js';

const cluster = await startNatsCluster();
const opened: NatsStateBackend[] = [];
after(async () => {
  for (const b of opened) await b.close();
  await cluster.stop();
});

async function hub(name: string): Promise<NatsJobOutputStore> {
  const b = await NatsStateBackend.open(parseClusterOptions({ servers: cluster.urls, hubName: name, prefix: 'output', outputMaxBytes: 16 * 1024 * 1024 }), silentLogger());
  opened.push(b);
  return b.openOutput();
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const seqs = (lines: OutputLine[]): number[] => lines.map((l) => l.seq);

async function storedBy(reader: NatsJobOutputStore, job: string, n: number): Promise<OutputLine[]> {
  return waitFor(`${n} lines of ${job} stored`, async () => {
    const lines = await reader.read(job);
    return lines.length >= n ? lines : null;
  }, 20_000);
}

test('the new hub resumes the job: its appends continue at the next seq', async () => {
  const [a, b, reader] = [await hub('hub-a'), await hub('hub-b'), await hub('hub-r')];
  const job = 'job-resume00';
  for (const i of range(1, 50)) assert.equal(a.append(job, 'stdout', `a ${i}`).seq, i);
  await storedBy(reader, job, 50); // hub-a's lines are in; hub-a now loses the host (no end())
  await b.resume(job);
  for (const i of range(51, 60)) assert.equal(b.append(job, 'stderr', `b ${i}`).seq, i);
  await b.end(job);
  const lines = await reader.read(job);
  assert.deepEqual(seqs(lines), range(1, 60));
  assert.deepEqual(lines.map((l) => l.data), [...range(1, 50).map((i) => `a ${i}`), ...range(51, 60).map((i) => `b ${i}`)]);
  assert.equal(lines[55]!.stream, 'stderr');
});

test('the new hub appends without resuming: its lines are stored after the old hub\'s, renumbered', async () => {
  const [a, b, reader] = [await hub('hub-a'), await hub('hub-b'), await hub('hub-r')];
  const job = 'job-noresume';
  for (const i of range(1, 30)) a.append(job, 'stdout', `a ${i}`);
  await storedBy(reader, job, 30);
  const given = range(1, 10).map((i) => b.append(job, 'stdout', `b ${i}`).seq);
  assert.deepEqual(given, range(1, 10), 'without resume() the new writer cannot know where the job stands');
  const lines = await storedBy(reader, job, 40);
  assert.deepEqual(seqs(lines), range(1, 40), 'stored with no gap and no repeat');
  assert.deepEqual(lines.map((l) => l.data), [...range(1, 30).map((i) => `a ${i}`), ...range(1, 10).map((i) => `b ${i}`)]);
  // Its next line follows the renumbered ones.
  assert.equal(b.append(job, 'stdout', 'b next').seq, 41);
  await b.end(job);
  assert.deepEqual(seqs(await reader.read(job, { afterSeq: 40 })), [41]);
});

test('two hubs append to one job at the same time: every line is stored once, seqs 1..N with no gap', async () => {
  const [a, b, reader] = [await hub('hub-a'), await hub('hub-b'), await hub('hub-r')];
  const job = 'job-racing00';
  a.append(job, 'stdout', 'a first');
  await storedBy(reader, job, 1);
  await b.resume(job);
  // Interleaved bursts from both writers, each flushed in its own batches.
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 10; i++) {
      a.append(job, 'stdout', `a ${round}.${i}`);
      b.append(job, 'stdout', `b ${round}.${i}`);
    }
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all([a.end(job), b.end(job)]);
  const lines = await reader.read(job);
  assert.deepEqual(seqs(lines), range(1, 401));
  const data = lines.map((l) => l.data);
  assert.equal(new Set(data).size, 401, 'no line stored twice');
  const order = (w: string): string[] => data.filter((d) => d.startsWith(w));
  assert.deepEqual(order('b '), range(0, 19).flatMap((r) => range(0, 9).map((i) => `b ${r}.${i}`)), 'hub-b\'s lines in its order');
  assert.deepEqual(order('a '), ['a first', ...range(0, 19).flatMap((r) => range(0, 9).map((i) => `a ${r}.${i}`))], 'hub-a\'s lines in its order');
});
