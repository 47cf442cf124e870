// States that tell the truth, and job logs that can be read, against a real
// hub and real agents: the agent's own notes arrive as a stream of their own
// (and old-style stderr "bento:" lines from older agents stay stderr), every
// stored line has its number and time, the job record keeps the generation
// and system before and after, a switch posted by a plain form asks first,
// queued jobs show in `status`, `list` and the dashboard, never-connected
// hosts have their own state, and the dashboard filters and orders the hosts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TestFleet } from '../helpers/fleet.js';
import { freePort, waitFor } from '../helpers/proc.js';
import { rawAgent, helloFor } from '../helpers/raw-agent.js';
import { durableJobs } from '../helpers/state.js';
import type { ClientInfo, HostStatus } from '../../common/protocol/admin.js';
import { request, collectSse, makeProfile } from './web-helpers.js';
import { adminStatus } from '../helpers/admin-query.js';

let fleet: TestFleet;
let dash = '';
let auth: Record<string, string> = {};
let profileDir = '';
let gateFile = '';

/** Every host's status, over the admin socket (polled; the dashboard is this file's subject). */
async function status(): Promise<Map<string, HostStatus>> {
  return new Map((await adminStatus(fleet.fleetDir)).map((h) => [h.name, h]));
}

async function trigger(host: string, action: string): Promise<{ ev: string; jobId: string; disposition: string }> {
  const r = await request(`${dash}/hosts/${host}/trigger`, { headers: { ...auth, Accept: 'application/json' }, body: { action, confirmed: 'yes' } });
  assert.equal(r.status, 202, r.body);
  return JSON.parse(r.body) as { ev: string; jobId: string; disposition: string };
}

interface Line { seq: number; ts: number; stream: string; data: string }

before(async () => {
  const dport = await freePort();
  fleet = await TestFleet.create({ hubSettings: { dashboard: { listen: `127.0.0.1:${dport}` } } });
  dash = `http://127.0.0.1:${dport}`;
  await fleet.addHost('web1', ['--tag', 'edge']);
  await fleet.addHost('fresh', ['--tag', 'db']);
  await fleet.addHost('old1');
  await fleet.startHub();
  auth = { Authorization: `Bearer ${(await readFile(path.join(fleet.fleetDir, 'dashboard.token'), 'utf8')).trim()}` };
  // web1's system profile starts at generation 1, the system it runs.
  profileDir = path.join(fleet.dir, 'profile-web1');
  // web1's boot runs until the test writes gateFile: what runs meanwhile is checked without a race.
  gateFile = path.join(fleet.dir, 'web1-boot-may-end');
  fleet.startAgent('web1', await fleet.agentConfig('web1', { ...await makeProfile(profileDir, { FAIL_ACTION: 'test', SLOW_ACTION: 'boot', GATE_FILE: gateFile }), rollback: false }));
  await fleet.waitConnected(['web1']);
});
after(async () => { await fleet?.close(); });

test('a switch from the web: asked first without JavaScript; its lines numbered and timed, the agent\'s notes apart; the generation before and after', async () => {
  const jobsBefore = (await durableJobs(fleet.fleetDir)).length;
  // A plain form (no script, no JSON) does not switch: it gets a page that asks.
  const form = { ...auth, 'Content-Type': 'application/x-www-form-urlencoded', Origin: dash };
  const ask = await request(`${dash}/hosts/web1/trigger`, { headers: form, body: 'action=switch' });
  assert.equal(ask.status, 200);
  assert.match(ask.body, /Run <code>switch<\/code> on <a href="\/hosts\/web1">web1<\/a>\?/);
  assert.match(ask.body, /name="confirmed" value="yes"/);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await durableJobs(fleet.fleetDir)).length, jobsBefore, 'nothing was started by the unconfirmed post');
  // A job that changes nothing (dry-activate) needs no confirmation.
  const dry = await request(`${dash}/hosts/web1/trigger`, { headers: form, body: 'action=dry-activate' });
  assert.equal(dry.status, 303);
  await collectSse(`${dash}${dry.headers.location}/events`, (e) => e.event === 'end', { headers: auth });

  const t0 = Date.now();
  const confirmed = await request(`${dash}/hosts/web1/trigger`, { headers: form, body: 'action=switch&confirmed=yes' });
  assert.equal(confirmed.status, 303, confirmed.body);
  const jobId = String(confirmed.headers.location).replace('/jobs/', '');
  const { events } = await collectSse(`${dash}/jobs/${jobId}/events`, (e) => e.event === 'end', { headers: auth });
  const t1 = Date.now();
  const lines = events.filter((e) => e.event === 'line').map((e) => JSON.parse(e.data) as Line);
  assert.deepEqual(lines.map((l) => l.seq), lines.map((_l, i) => i + 1), 'numbered 1, 2, 3 ...');
  for (const l of lines) assert.ok(l.ts >= t0 && l.ts <= t1, `line ${l.seq} stamped ${l.ts - t0} ms after the trigger`);
  const byStream = (s: string): string[] => lines.filter((l) => l.stream === s).map((l) => l.data);
  assert.ok(byStream('note').length > 0 && byStream('note').every((d) => d.startsWith('bento: ')), `the agent's own lines are notes: ${JSON.stringify(lines)}`);
  assert.deepEqual(byStream('stderr'), ['building the system configuration...'], 'stderr is the rebuild\'s only');
  assert.deepEqual(byStream('stdout'), ['activating the configuration... (switch)']);

  // Stored the same way: the job page renders each line with its number and time, notes and stderr marked.
  const page = (await request(`${dash}/jobs/${jobId}`, { headers: auth })).body;
  const note = lines.find((l) => l.stream === 'note')!;
  assert.match(page, new RegExp(`<div class="ln o-note" id="L${note.seq}" data-seq="${note.seq}"><a class="num" href="#L${note.seq}" aria-label="line ${note.seq}">${note.seq}</a><time class="t" datetime="${new Date(note.ts).toISOString()}"`));
  assert.match(page, /<div class="ln o-err" id="L\d+"[^>]*>.*<span class="x">building the system configuration\.\.\.<\/span>/);
  assert.doesNotMatch(page, /class="ln [^"]*(error|first-error)/, 'a green job has no error line');
  assert.match(page, /class="first-error-link" hidden/);
  // What the switch did: generation 1 -> 2, the system before and after.
  assert.match(page, /<dt>Generation<\/dt><dd id="job-generation"><span class="nowrap">1 → 2<\/span><\/dd>/);
  assert.match(page, new RegExp(`before <span class="mono">${profileDir}/system-1-link|before <span class="mono">${profileDir}/sys-1`));
  const rec = (await durableJobs(fleet.fleetDir)).find((j) => j.id === jobId)!;
  assert.deepEqual([rec.generationBefore, rec.generationAfter, rec.systemBefore, rec.systemAfter], [1, 2, path.join(profileDir, 'sys-1'), path.join(profileDir, 'sys-2')]);
  // The hub knows the new generation at once (job.end), not only after a reconnect.
  const w = (await status()).get('web1')!;
  assert.deepEqual([w.generation, w.system], [2, path.join(profileDir, 'sys-2')]);

  // The download marks every physical line with its stream: "# " for the agent's notes.
  const text = (await request(`${dash}/jobs/${jobId}/log`, { headers: auth })).body;
  assert.match(text, /^# bento: /m);
  assert.match(text, /^! building the system configuration\.\.\.$/m);
  assert.match(text, /^ {2}activating the configuration\.\.\. \(switch\)$/m);
  assert.doesNotMatch(text, /^! bento: /m);
});

test('a failed job: the first error line is highlighted and linked', async () => {
  const acc = await trigger('web1', 'test');
  const { events } = await collectSse(`${dash}/jobs/${acc.jobId}/events`, (e) => e.event === 'end', { headers: auth });
  assert.equal((JSON.parse(events.at(-1)!.data) as { outcome: string }).outcome, 'failure');
  const err = events.filter((e) => e.event === 'line').map((e) => JSON.parse(e.data) as Line).find((l) => l.data.startsWith('error: builder'))!;
  const page = (await request(`${dash}/jobs/${acc.jobId}`, { headers: auth })).body;
  assert.match(page, new RegExp(`<a class="first-error-link" href="#L${err.seq}">First error: line <span class="first-error-n">${err.seq}</span></a>`));
  assert.match(page, new RegExp(`<div class="ln o-err error first-error" id="L${err.seq}"`));
  assert.equal((page.match(/first-error"/g) ?? []).length, 1, 'only the first error is the first error');
  assert.match(page, /<div class="ln o-err error" id="L\d+"[^>]*>.*1 dependencies of derivation failed/, 'later errors are marked too');
  const rec = (await durableJobs(fleet.fleetDir)).find((j) => j.id === acc.jobId)!;
  assert.deepEqual([rec.generationBefore, rec.generationAfter], [2, 2], 'a failed test leaves the profile as it was');
});

test('queued jobs show in status, list and the dashboard; never-connected hosts have their own state; failing and offline first; filters', async () => {
  // A boot runs (until the test lets it end); a switch asked meanwhile waits behind it.
  const running = await trigger('web1', 'boot');
  await waitFor('boot running', async () => (await status()).get('web1')!.runningJob?.id === running.jobId, 10_000, 100);
  const queued = await trigger('web1', 'switch');
  assert.equal(queued.disposition, 'queued');
  // fresh never connected; a job queued for it waits.
  const q2 = await request(`${dash}/hosts/fresh/trigger`, { headers: { ...auth, Accept: 'application/json' }, body: { action: 'switch', queue: 'true', confirmed: 'yes' } });
  assert.equal(q2.status, 202, q2.body);

  const st = await status();
  assert.equal(st.get('fresh')!.state, 'never connected');
  assert.equal(st.get('fresh')!.queuedJob?.action, 'switch');
  assert.deepEqual([st.get('web1')!.runningJob?.id, st.get('web1')!.queuedJob?.id], [running.jobId, queued.jobId]);
  const table = (await fleet.hubCli(['status'])).stdout;
  assert.match(table, /^fresh\s+never\s.*never connected\s+switch queued\s+queued \d+s ago/m);
  assert.match(table, /^web1\s.*running\s+boot running, switch queued\s+started \d+s ago/m);

  const list = JSON.parse((await fleet.hubCli(['list', '--json'])).stdout) as { clients: ClientInfo[] };
  const c = list.clients.find((x) => x.name === 'web1')!;
  assert.deepEqual([c.runningJob?.jobId, c.queuedJob?.jobId], [running.jobId, queued.jobId]);
  assert.match((await fleet.hubCli(['list'])).stdout, new RegExp(`boot ${running.jobId} running; switch ${queued.jobId} queued`));

  // The dashboard: the row says it, and the host page.
  const fleetPage = (await request(`${dash}/`, { headers: auth })).body;
  const row = (name: string): string => new RegExp(`<tr id="host-${name}"[\\s\\S]*?</tr>`).exec(fleetPage)?.[0] ?? '';
  assert.match(row('web1'), new RegExp(`<div class="queued"><a href="/jobs/${queued.jobId}"[^>]*>switch</a> <span class="badge s-run">queued</span>`));
  assert.match(row('fresh'), /data-state="never connected"/);
  assert.match(row('fresh'), /<span class="badge s-never">never connected<\/span>/);
  assert.match(row('fresh'), /\(runs when it connects\)/);
  assert.match((await request(`${dash}/hosts/web1`, { headers: auth })).body, new RegExp(`<dd id="queued-job"><a href="/jobs/${queued.jobId}"`));

  // An old agent (old1, raw): it connected once and left: offline, listed before running hosts.
  const old = await rawAgent({ port: fleet.sshPort, name: 'old1', keyPath: fleet.keys.get('old1')!.keyPath });
  old.channel.write(helloFor('old1'));
  await waitFor('old1 welcomed', () => old.received().includes('"welcome"'), 5000);
  old.end();
  await waitFor('old1 offline', async () => (await status()).get('old1')!.state === 'offline', 5000, 100);
  const order = [...(await request(`${dash}/`, { headers: auth })).body.matchAll(/<tr id="host-([a-z0-9-]+)"/g)].map((m) => m[1]);
  assert.deepEqual(order, ['old1', 'fresh', 'web1'], 'offline, never connected, then running');
  assert.match((await fleet.hubCli(['status'])).stdout.split('\n').slice(1, 4).join('\n'), /^old1[\s\S]*\nfresh[\s\S]*\nweb1/);

  // Filters: by state (and "needs attention"), by tag; rows that do not match are rendered hidden.
  const hidden = async (q: string): Promise<string[]> => {
    const body = (await request(`${dash}/?${q}`, { headers: auth })).body;
    return [...body.matchAll(/<tr id="host-([a-z0-9-]+)"[^>]*?( hidden)?>/g)].filter((m) => m[2]).map((m) => m[1]!).sort();
  };
  assert.deepEqual(await hidden('state=never%20connected'), ['old1', 'web1']);
  assert.deepEqual(await hidden('state=attention'), ['web1']);
  assert.deepEqual(await hidden('tag=edge'), ['fresh', 'old1']);
  assert.deepEqual(await hidden(''), []);
  assert.match((await request(`${dash}/?tag=db`, { headers: auth })).body, /1 of 3 hosts shown/);

  await writeFile(gateFile, '');
  await waitFor('both web1 jobs done', async () => {
    const w = (await status()).get('web1')!;
    return w.runningJob === null && w.queuedJob === null && w.lastJob?.id === queued.jobId;
  }, 20_000, 200);
});

test('agents and hubs of other versions: the welcome announces notes; an old agent\'s "bento:" stderr stays stderr; a note is stored as one', async () => {
  const a = await rawAgent({ port: fleet.sshPort, name: 'old1', keyPath: fleet.keys.get('old1')!.keyPath });
  a.channel.write(helloFor('old1'));
  await waitFor('welcomed', () => a.received().includes('"welcome"'), 5000);
  const welcome = JSON.parse(a.received().split('\n').find((l) => l.includes('"welcome"'))!) as { capabilities?: string[] };
  assert.deepEqual(welcome.capabilities, ['output-notes']);
  const send = (o: object): void => { a.channel.write(`${JSON.stringify(o)}\n`); };
  const id = 'local-oldagent0000001';
  send({ type: 'job.started', jobId: id, action: 'build' });
  send({ type: 'job.output', jobId: id, stream: 'stderr', data: 'bento: an old agent says this on stderr' });
  send({ type: 'job.output', jobId: id, stream: 'note', data: 'bento: a new agent says this as a note' });
  send({ type: 'job.end', jobId: id, action: 'build', outcome: 'success', exitCode: 0, startedAt: new Date().toISOString(), durationMs: 10 });
  await waitFor('ack', () => a.received().includes(`"job.ack","jobId":"${id}"`), 5000);
  const log = (await readFile(path.join(fleet.fleetDir, 'state', 'jobs', `${id}.log`), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as unknown[]);
  assert.deepEqual(log.map((l) => l.slice(0, 3)), [[1, 'e', 'bento: an old agent says this on stderr'], [2, 'n', 'bento: a new agent says this as a note']]);
  assert.ok(log.every((l) => typeof l[3] === 'number'), 'each with its time');
  assert.ok(!a.received().includes('"error"'), 'the connection was not refused');
  a.end();
});
