// A host that moves to another hub mid-job while the old holder's last batch
// of output is published on the bus but not stored yet (docs/cluster.md "A
// host that moves mid-job"). The new holder resumes the job's output where
// the stored lines end, so both hubs publish different lines under the same
// seqs. The stores and the move: test/helpers/moved-job.ts (B: where the
// admin follows and reads), with the real JobFollower and jobOp. Before the fix
// (found by review), a follower that showed A's lines 8..10 dropped C's lines
// 8..10 as repeats, and lines of A the bus lost were stored at places past
// the end's count and never filled: lines missing from the admin's view, and
// nothing said so.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { test } from 'node:test';
import { silentLogger } from '../../common/platform/log.js';
import { JobFollower } from '../../hub/admin/follow.js';
import { jobOp } from '../../hub/admin/job-op.js';
import { waitFor } from '../helpers/proc.js';
import { aLines, cLines, HOST, movedJobs, sameLines, type MovedWorld } from '../helpers/moved-job.js';

const log = silentLogger();
const { world, moveMidJob } = await movedJobs('moved');

/** trigger --wait at B: a follower of W's job from its first event, as the trigger's answer starts it. */
function following(w: MovedWorld): JobFollower {
  const follower = new JobFollower({ bus: w.bus, jobs: w.bJobs, reply: (e) => w.got.push(e), log, ended: (j) => w.ended.push(j), checkMs: 100, fillWaitMs: 3000 }, new Set([HOST]));
  follower.start();
  follower.expect(HOST);
  follower.follow(HOST, w.id);
  return follower;
}

test('trigger --wait: the old holder\'s unstored lines and the new holder\'s lines under the same seqs are all shown, once', async () => {
  const w = world();
  const follower = following(w);
  w.reach({ ev: 'started', host: HOST, jobId: w.id });
  const stored = await moveMidJob(w, { aReach: true });
  await waitFor('the end', () => w.ended.length > 0, 10_000);
  follower.close();
  assert.deepEqual(w.shown(), ['started', ...aLines, ...cLines, 'end']);
  sameLines(stored, w.shown());
});

test('trigger --wait: the old holder\'s lines the bus lost, stored after the new holder\'s, are shown before the end', async () => {
  const w = world();
  const follower = following(w);
  const stored = await moveMidJob(w, { aReach: false });
  await waitFor('the end', () => w.ended.length > 0, 10_000);
  follower.close();
  assert.deepEqual(w.shown(), [...aLines.slice(0, 7), ...cLines, ...aLines.slice(7), 'end']);
  sameLines(stored, w.shown());
});

/** job --follow at B, started once A's first lines are stored (moveMidJob's BETWEEN); OUTCOME: 'done', or 'still following' after 5 s. */
function jobFollowing(w: MovedWorld): { between: () => Promise<void>; outcome: () => Promise<unknown> } {
  const sock = new EventEmitter() as unknown as net.Socket;
  let op: Promise<void> | null = null;
  return {
    between: async () => {
      op = jobOp({ jobs: w.bJobs, bus: w.bus, log, checkMs: 100 }, { op: 'job', jobId: w.id, follow: true }, (e) => w.got.push(e), sock);
      await waitFor('the stored lines', () => w.got.length >= 8, 5000);
    },
    outcome: async () => {
      const done = await Promise.race([op!.then(() => 'done'), new Promise((r) => setTimeout(() => r('still following'), 5000))]);
      sock.emit('close');
      return done;
    },
  };
}

test('job --follow: the log, then both holders\' live lines under the same seqs, each once', async () => {
  const w = world();
  const f = jobFollowing(w);
  const stored = await moveMidJob(w, { aReach: true, between: f.between });
  assert.equal(await f.outcome(), 'done');
  assert.deepEqual(w.shown(), ['job', ...aLines, ...cLines, 'end', 'done']);
  sameLines(stored, w.shown());
});

test('job --follow: the old holder\'s lines the bus lost, stored after the new holder\'s, are shown before the end', async () => {
  const w = world();
  const f = jobFollowing(w);
  const stored = await moveMidJob(w, { aReach: false, between: f.between });
  assert.equal(await f.outcome(), 'done');
  assert.deepEqual(w.shown(), ['job', ...aLines.slice(0, 7), ...cLines, ...aLines.slice(7), 'end', 'done']);
  sameLines(stored, w.shown());
});
