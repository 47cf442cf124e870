// Issue 13 part 2: a compromised host (a valid key) must not exhaust the
// hub's memory. A real hub; a real agent ("good") the admin triggers during
// the attack; and "evil", an ssh2 client with evil's registered key that
// says hello and then sends job.started, 256 KiB of job.output and job.end
// for 2,000 jobs it invents (512 MB), as fast as its channel takes them, for
// at most 40 s. Before these limits the hub read it all within seconds and
// queued it behind its durable writes: 69 MB -> 663 MB RSS. Now the hub stops
// reading evil's channel while its messages wait or it is over its byte rate
// (SSH flow control: evil's writes block), records at most
// limits.adoptPerWindow of its invented jobs (100 here, so that the test sees
// refusals within its 40 s; the rest are refused and not acknowledged), and
// stays under its baseline + 64 MiB; the good host's trigger still runs. The
// log says so (rate-limited) and /metrics counts it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestFleet } from '../helpers/fleet.js';
import { freePort, sleep, waitFor } from '../helpers/proc.js';
import { rawAgent, helloFor, type RawAgent } from '../helpers/raw-agent.js';
import { MiB, rssBytes, watchRss } from '../helpers/rss.js';
import { scrape } from './hostile-helpers.js';

const JOBS = 2000;
const OUTPUT_LINES = 8;
const DATA = 'o'.repeat(32 * 1024);
/** The whole attack is bounded in time; what the hub did by then is what is measured. */
const ATTACK_LIMIT_MS = 40_000;
const ADOPT_PER_WINDOW = 100;

let fleet: TestFleet;
let metricsUrl = '';

before(async () => {
  const metricsPort = await freePort();
  metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  fleet = await TestFleet.create({ hubSettings: { metrics: { listen: `127.0.0.1:${metricsPort}` }, limits: { adoptPerWindow: ADOPT_PER_WINDOW } } });
  await fleet.addHost('evil');
  await fleet.addHost('good');
  await fleet.startHub();
  fleet.startAgent('good', await fleet.agentConfig('good', { rebuildCommand: ['/bin/echo', 'rebuilt'] }));
  await fleet.waitConnected(['good']);
});
after(async () => { await fleet?.close(); });

/** Write `text`, waiting for the channel when it reports backpressure (as an agent does). */
async function write(a: RawAgent, text: string, deadline: number): Promise<boolean> {
  if (a.channel.write(text)) return true;
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, Math.max(0, deadline - Date.now()));
    a.channel.once('drain', () => { clearTimeout(t); resolve(); });
  });
  return Date.now() < deadline;
}

test('invented jobs x 256 KiB for 40 s from a host with a valid key: the hub stays under baseline + 64 MiB, throttles and refuses, and other hosts are served', async (t) => {
  const hub = fleet.hub!;
  const pid = hub.child.pid!;
  await sleep(1000);
  const baseline = rssBytes(pid);
  const evil = await rawAgent({ port: fleet.sshPort, name: 'evil', keyPath: fleet.keys.get('evil')!.keyPath });
  evil.channel.write(helloFor('evil'));
  await waitFor('welcome', () => evil.received().includes('"welcome"'), 10_000);
  const rss = watchRss(pid);
  const deadline = Date.now() + ATTACK_LIMIT_MS;
  let sent = 0;
  const attack = (async () => {
    for (let i = 0; i < JOBS && Date.now() < deadline; i++) {
      const jobId = `evil-${String(i).padStart(6, '0')}`;
      const frames = [
        `${JSON.stringify({ type: 'job.started', jobId, action: 'switch' })}\n`,
        ...Array.from({ length: OUTPUT_LINES }, () => `${JSON.stringify({ type: 'job.output', jobId, stream: 'stdout', data: DATA })}\n`),
        `${JSON.stringify({ type: 'job.end', jobId, action: 'switch', outcome: 'success', exitCode: 0, startedAt: new Date().toISOString(), durationMs: 1 })}\n`,
      ];
      for (const f of frames) if (!(await write(evil, f, deadline))) return;
      sent = i + 1;
    }
  })();
  // Mid-attack, the admin triggers another host: it runs.
  await sleep(3000);
  const trig = await fleet.hubCli(['trigger', 'good'], 120_000);
  await attack;
  await sleep(1000);
  const peak = rss.stop();
  t.diagnostic(`hub RSS baseline ${(baseline / MiB).toFixed(0)} MiB, peak ${(peak / MiB).toFixed(0)} MiB; evil sent ${sent} of ${JOBS} jobs (${((sent * OUTPUT_LINES * DATA.length) / MiB).toFixed(0)} MiB of output)`);
  assert.equal(trig.code, 0, `trigger good during the attack: ${trig.stderr}`);
  assert.match(trig.stdout, /^good\s+success/m);
  assert.ok(peak < baseline + 64 * MiB, `peak RSS ${(peak / MiB).toFixed(0)} MiB, baseline ${(baseline / MiB).toFixed(0)} MiB`);

  // What the hub did about it, on /metrics and in its log (rate-limited).
  const m = await scrape(metricsUrl);
  assert.ok((m.get('bento_sessions_throttled_total{reason="rate"}') ?? 0) + (m.get('bento_sessions_throttled_total{reason="queue"}') ?? 0) >= 1, 'evil\'s channel was paused');
  assert.ok((m.get('bento_jobs_adoption_refused_total{reason="window"}') ?? 0) >= 1, 'invented jobs past limits.adoptPerWindow were refused');
  const out = hub.output();
  assert.match(out, /"host":"evil".*stopped reading its control channel \(SSH flow control\)/);
  assert.match(out, /"host":"evil".*refused to record a job the agent reports but the hub has no record of: it had 100 jobs recorded on its word/);
  // At most 5 lines and a summary per kind every 10 s, however many refusals.
  const refusedLines = out.split('\n').filter((l) => l.includes('refused to record a job')).length;
  const refused = m.get('bento_jobs_adoption_refused_total{reason="window"}') ?? 0;
  assert.ok(refusedLines <= 6 * (ATTACK_LIMIT_MS / 10_000 + 2), `the refusals are rate-limited in the log (${refusedLines} lines for ${refused} refusals)`);
  assert.ok(refused >= 5 * refusedLines, `${refused} refusals, ${refusedLines} lines`);
  // Refused results are not acknowledged: the agent keeps them for later.
  const acks = (evil.received().match(/"type":"job\.ack"/g) ?? []).length;
  assert.ok(acks <= ADOPT_PER_WINDOW, `${acks} results acknowledged`);
  evil.end();
});
