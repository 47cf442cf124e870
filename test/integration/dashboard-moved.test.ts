// A dashboard job page (/jobs/ID/events over real HTTP) of a job whose host
// moved to another hub mid-job (test/helpers/moved-job.ts: real output stores
// on a real nats-server; the old holder A's last batch held so it is stored
// after the new holder C's lines; B, the dashboard's hub, gets what of A's and
// C's events its bus brings). Before the fix (found by review), the page
// showed the bus's lines as they came: a line the bus brought twice was shown
// twice (the buffer a page opened mid-way gets kept both), lines of A the bus
// lost were never shown, and both writers' lines under the same seqs got the
// same line numbers (the page's anchors).
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { silentLogger } from '../../common/platform/log.js';
import type { SseEvent } from '../../common/platform/web-sse.js';
import type { JobBusEvent } from '../../hub/events/types.js';
import { HubMetrics } from '../../hub/metrics/hub-metrics.js';
import type { ReadSources } from '../../hub/status/read-model.js';
import { Dashboard, type DashboardDeps } from '../../hub/web/dashboard.js';
import { waitFor } from '../helpers/proc.js';
import { aLines, cLines, movedJobs, range, sameLines, type MovedWorld } from '../helpers/moved-job.js';
import { collectSse } from './web-helpers.js';

const log = silentLogger();
const { world, moveMidJob } = await movedJobs('dashmoved');
const closers: Array<() => void> = [];
after(() => { for (const c of closers) c(); });

/** B's dashboard, served over loopback HTTP: its job pages read W's records and B's output store, and follow W's bus. */
async function dashboardAt(w: MovedWorld): Promise<string> {
  const sources = {} as ReadSources; // fleet and host pages: not opened here
  const deps: DashboardDeps = {
    sources, bus: w.bus, log, fillWaitMs: 3000, fleetDir: '/nonexistent',
    jobs: { get: w.bJobs.get, readOutput: w.bJobs.readOutput, forHost: () => [] },
    admin: async () => undefined,
    logs: { list: async () => [], read: async () => null },
    rollouts: { active: () => [], onChange: () => () => undefined },
  };
  const dash = new Dashboard(deps, new HubMetrics({ sources, bus: w.bus }));
  const server = http.createServer((req, res) => { void dash.handle(req, res, new URL(req.url ?? '/', 'http://127.0.0.1')); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => { dash.close(); server.closeAllConnections(); server.close(); });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A page opened on W's job: its stream's events as they come, and the whole once it ends. */
function openPage(url: string, w: MovedWorld): { events: SseEvent[]; done: Promise<unknown> } {
  const events: SseEvent[] = [];
  const done = collectSse(`${url}/jobs/${w.id}/events`, (e) => { events.push(e); return e.event === 'end'; }, { timeoutMs: 20_000 });
  return { events, done };
}

const lineOf = (e: SseEvent): { seq: number; data: string } => JSON.parse(e.data) as { seq: number; data: string };
/** What the page shows: each line's text, or the event's name. */
const shown = (events: SseEvent[]): string[] => events.map((e) => (e.event === 'line' ? lineOf(e).data : e.event));
const lines = (events: SseEvent[]): string[] => events.filter((e) => e.event === 'line').map((e) => lineOf(e).data);

/** Lines A's 3rd and C's 2nd reach B twice (a hub's events replayed at another hub). */
function twice(w: MovedWorld): void {
  const reach = w.reach;
  w.reach = (e: JobBusEvent) => {
    reach(e);
    if (e.ev === 'output' && (e.data === 'a 3' || e.data === 'c 2')) reach(e);
  };
}

/** Each line has a number of its own, the anchors 1..15. */
function numbered(events: SseEvent[]): void {
  const seqs = events.filter((e) => e.event === 'line').map((e) => lineOf(e).seq);
  assert.deepEqual([...seqs].sort((x, y) => x - y), range(1, 15), 'each line numbered once');
}

test('a page open before the move: each line once, the old holder\'s lines the bus lost filled from the store before the end', async () => {
  const w = world();
  twice(w);
  const url = await dashboardAt(w);
  let page: ReturnType<typeof openPage> | null = null;
  const stored = await moveMidJob(w, {
    aReach: false,
    between: async () => { // opened mid-way: A's first lines come from the buffer
      page = openPage(url, w);
      await waitFor('the buffered lines', () => lines(page!.events).length >= 7, 5000);
    },
  });
  await page!.done;
  const events = page!.events;
  assert.deepEqual(shown(events), ['reset', ...aLines.slice(0, 7), 'started', ...cLines, ...aLines.slice(7), 'end']);
  sameLines(stored, lines(events));
  numbered(events);
  // A page opened after the end: the same lines from the buffer and the store, once.
  const late = openPage(url, w);
  await late.done;
  assert.deepEqual(shown(late.events), ['reset', ...aLines.slice(0, 7), ...cLines, ...aLines.slice(7), 'end']);
  numbered(late.events);
});

test('a page opened after the move, before the end: the buffer\'s lines of both holders once each, then the end', async () => {
  const w = world();
  twice(w);
  const url = await dashboardAt(w);
  let page: ReturnType<typeof openPage> | null = null;
  let html = '';
  const stored = await moveMidJob(w, {
    aReach: true,
    beforeEnd: async () => {
      page = openPage(url, w);
      await waitFor('the buffered lines', () => lines(page!.events).length >= 15, 5000);
      html = await (await fetch(`${url}/jobs/${w.id}`)).text();
    },
  });
  await page!.done;
  const events = page!.events;
  assert.deepEqual(shown(events), ['reset', ...aLines, ...cLines, 'started', 'end']);
  sameLines(stored, lines(events));
  numbered(events);
  // The server-rendered page (before its stream replaces the lines) lists the same 15, each under an anchor of its own.
  const anchors = [...html.matchAll(/ id="L(\d+)"/g)].map((m) => Number(m[1]));
  assert.deepEqual([...anchors].sort((x, y) => x - y), range(1, 15), 'each listed line numbered once');
  assert.deepEqual([...html.matchAll(/<span class="x">([^<]*)<\/span>/g)].map((m) => m[1]), [...aLines, ...cLines]);
});

test('a page with no backlog (the dashboard started after the job\'s lines): the stored log, then the old holder\'s lines stored late, before the end', async () => {
  const w = world();
  let page: ReturnType<typeof openPage> | null = null;
  const stored = await moveMidJob(w, {
    aReach: true,
    held: async () => { // every line but A's last batch is stored; the dashboard has seen none of them
      page = openPage(await dashboardAt(w), w);
      await waitFor('the stored lines', () => lines(page!.events).length >= 12, 5000);
    },
  });
  await page!.done;
  const events = page!.events;
  assert.deepEqual(shown(events), ['reset', ...aLines.slice(0, 7), ...cLines, 'started', ...aLines.slice(7), 'end']);
  sameLines(stored, lines(events));
  numbered(events);
});
