// The hub's dashboard and Prometheus endpoint, against a real hub process:
// off by default, token auth, Host / Origin refusals, triggers through the
// admin handler with their output as server-sent events, live fleet rows,
// jobs an agent started itself recorded on the hub, and the metrics.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { TestFleet } from '../helpers/fleet.js';
import { freePort, waitFor } from '../helpers/proc.js';
import { rawAgent, helloFor, type RawAgent } from '../helpers/raw-agent.js';
import { validateHubConfig } from '../../hub/fleet/hub-config.js';
import { parsePrometheusText } from '../../common/platform/prometheus.js';
import { request, request as requestRaw, collectSse, basic, SCRIPTED_REBUILD } from './web-helpers.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { durableJobs } from '../helpers/state.js';

const execFileP = promisify(execFile);

let fleet: TestFleet;
let dash = '';
let metricsUrl = '';
let token = '';

before(async () => {
  const [dport, mport] = [await freePort(), await freePort()];
  fleet = await TestFleet.create({
    hubSettings: { dashboard: { listen: `127.0.0.1:${dport}` }, metrics: { listen: `127.0.0.1:${mport}` } },
  });
  dash = `http://127.0.0.1:${dport}`;
  metricsUrl = `http://127.0.0.1:${mport}/metrics`;
  await fleet.addHost('web1');
  await fleet.addHost('web2');
  await fleet.startHub();
  token = (await readFile(path.join(fleet.fleetDir, 'dashboard.token'), 'utf8')).trim();
  fleet.startAgent('web1', await fleet.agentConfig('web1', { rebuildCommand: SCRIPTED_REBUILD, rollback: false, rebuildEnv: { LINES: '4', PAUSE: '0.25' } }));
  await fleet.waitConnected(['web1']);
});
after(async () => { await fleet?.close(); });

async function metrics(): Promise<Map<string, number>> {
  const r = await request(metricsUrl);
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(r.body);
}

async function connectRaw(name: string): Promise<RawAgent> {
  const a = await rawAgent({ port: fleet.sshPort, name, keyPath: fleet.keys.get(name)!.keyPath });
  a.channel.write(helloFor(name));
  await waitFor(`${name} welcomed`, () => a.received().includes('"welcome"'), 5000);
  return a;
}

test('settings: off by default; a non-loopback dashboard or metrics endpoint needs a token', () => {
  const d = validateHubConfig({});
  assert.equal(d.dashboard, undefined);
  assert.equal(d.metrics, undefined);
  assert.throws(() => validateHubConfig({ dashboard: { listen: '0.0.0.0:8080', tokenFile: null } }), /not loopback, needs authentication/);
  assert.throws(() => validateHubConfig({ metrics: { listen: '10.0.0.5:9180' } }), /needs a bearer token/);
  assert.equal(validateHubConfig({ dashboard: { listen: '0.0.0.0:8080' } }).dashboard?.tokenFile, 'dashboard.token', 'the token is on by default');
  assert.equal(validateHubConfig({ dashboard: { listen: '127.0.0.1:8080', tokenFile: null } }).dashboard?.tokenFile, null);
  assert.throws(() => validateHubConfig({ dashboard: { listen: '127.0.0.1:8080', bogus: 1 } }), /unknown setting "bogus"/);
});

test('dashboard: a token is created (0600) and required; Basic and Bearer both work', async () => {
  const st = await stat(path.join(fleet.fleetDir, 'dashboard.token'));
  assert.equal(st.mode & 0o777, 0o600);
  assert.ok(token.length >= 40);
  const none = await request(`${dash}/`);
  assert.equal(none.status, 401);
  assert.match(String(none.headers['www-authenticate']), /^Basic realm="Bento hub"/);
  assert.equal((await request(`${dash}/`, { headers: basic('wrong-token-wrong-token') })).status, 401);
  const page = await request(`${dash}/`, { headers: basic(token) });
  assert.equal(page.status, 200);
  assert.match(page.body, /<h1>Fleet<\/h1>/);
  assert.match(page.body, /id="host-web1"/);
  assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
  assert.equal(page.headers['x-frame-options'], 'DENY');
  const api = await request(`${dash}/api/hosts`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(api.status, 200);
  const hosts = (JSON.parse(api.body) as { hosts: Array<{ name: string; client: unknown }> }).hosts;
  assert.deepEqual(hosts.map((h) => h.name), ['web1', 'web2']);
  assert.ok(hosts[0]!.client, 'web1 is connected');
  assert.equal(hosts[1]!.client, null);
});

test('dashboard: a trigger goes through the admin handler and its output streams live as server-sent events', async () => {
  const auth = { Authorization: `Bearer ${token}` };
  const r = await request(`${dash}/hosts/web1/trigger`, { headers: { ...auth, Accept: 'application/json' }, body: { action: 'switch' } });
  assert.equal(r.status, 202, r.body);
  const acc = JSON.parse(r.body) as { ev: string; jobId: string; disposition: string };
  assert.equal(acc.ev, 'accepted');
  assert.equal(acc.disposition, 'dispatched');
  const t0 = Date.now();
  const stamps: number[] = [];
  const { events } = await collectSse(`${dash}/jobs/${acc.jobId}/events`, (e) => { stamps.push(Date.now()); return e.event === 'end'; }, { headers: auth });
  const lines = events.filter((e) => e.event === 'line').map((e) => (JSON.parse(e.data) as { data: string }).data);
  assert.ok(lines.includes('step 1/4') && lines.includes('step 4/4'), lines.join('\n'));
  assert.ok(lines.includes('done, warnings: none'), 'stderr lines come too');
  const end = JSON.parse(events.at(-1)!.data) as { outcome: string; exitCode: number };
  assert.deepEqual([end.outcome, end.exitCode], ['success', 0]);
  // Live: the first line arrived well before the end (4 lines x 250 ms).
  const firstLine = stamps[events.findIndex((e) => e.event === 'line')]!;
  assert.ok(stamps.at(-1)! - firstLine >= 500, `first line ${firstLine - t0} ms, end ${stamps.at(-1)! - t0} ms: not live`);

  // The job page and the host history show it; a late reader gets the whole output.
  const jobPage = await request(`${dash}/jobs/${acc.jobId}`, { headers: auth });
  assert.match(jobPage.body, /step 4\/4/);
  assert.match(jobPage.body, /badge s-ok">success/);
  const late = await collectSse(`${dash}/jobs/${acc.jobId}/events`, (e) => e.event === 'end', { headers: auth });
  assert.equal(late.events.filter((e) => e.event === 'line').length, lines.length, 'a late reader gets every line once');
  const host = await request(`${dash}/hosts/web1`, { headers: auth });
  assert.match(host.body, new RegExp(`href="/jobs/${acc.jobId}"`));
  const log = await request(`${dash}/jobs/${acc.jobId}/log`, { headers: auth });
  assert.match(log.body, /step 2\/4/);

  // A form post without JavaScript is redirected to the job page.
  const form = await request(`${dash}/hosts/web1/trigger`, { headers: { ...auth, 'Content-Type': 'application/x-www-form-urlencoded', Origin: dash }, body: 'action=dry-activate' });
  assert.equal(form.status, 303);
  assert.match(String(form.headers.location), /^\/jobs\/[A-Za-z0-9_-]{8,64}$/);
  await collectSse(`${dash}${form.headers.location}/events`, (e) => e.event === 'end', { headers: auth });

  // Refusals come back as the admin API's own codes.
  const off = await request(`${dash}/hosts/web2/trigger`, { headers: { ...auth, Accept: 'application/json' }, body: { action: 'switch' } });
  assert.equal(off.status, 409);
  assert.equal((JSON.parse(off.body) as { code: string }).code, 'HOST_OFFLINE');
});

test('dashboard: foreign Origin is refused before anything runs', async () => {
  const auth = { Authorization: `Bearer ${token}` };
  const before = (await metrics()).get('bento_jobs_total{outcome="success",action="switch"}') ?? 0;
  const evil = await request(`${dash}/hosts/web1/trigger`, { headers: { ...auth, Origin: 'http://evil.example' , 'Content-Type': 'text/plain' }, body: 'action=switch' });
  assert.equal(evil.status, 403);
  const evilRead = await request(`${dash}/api/hosts`, { headers: { ...basic(token), Origin: 'http://evil.example' } });
  assert.equal(evilRead.status, 403, 'a cross-origin script cannot read either');
  const browserish = await request(`${dash}/hosts/web1/trigger`, { headers: { ...basic(token), 'Sec-Fetch-Site': 'cross-site', 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'action=switch' });
  assert.equal(browserish.status, 403, 'a cross-site browser request without Origin is refused too');
  const m = await metrics();
  assert.equal(m.get('bento_web_refused_total{reason="origin"}'), 3);
  await new Promise((r) => setTimeout(r, 300));
  const hosts = JSON.parse((await request(`${dash}/api/hosts`, { headers: auth })).body) as { hosts: Array<{ name: string; activeJob: unknown }> };
  assert.equal(hosts.hosts.find((h) => h.name === 'web1')!.activeJob, null, 'no job was started');
  assert.equal((await metrics()).get('bento_jobs_total{outcome="success",action="switch"}') ?? 0, before);
});

test('dashboard: the fleet stream adds and removes a client row as an agent connects and disconnects', async () => {
  const auth = { Authorization: `Bearer ${token}` };
  let raw: RawAgent | null = null;
  const seen = collectSse(`${dash}/events`, (e, all) => {
    if (e.event === 'replace' && (JSON.parse(e.data) as { id: string }).id === 'clients-body' && !raw) {
      void connectRaw('web2').then((a) => { raw = a; setTimeout(() => a.end(), 300); });
    }
    const rows = all.filter((x) => x.event === 'row').map((x) => JSON.parse(x.data) as { id: string; html: string | null });
    return rows.some((r) => r.id === 'client-web2' && r.html !== null) && rows.some((r) => r.id === 'client-web2' && r.html === null);
  }, { headers: auth, timeoutMs: 10_000 });
  const { events } = await seen;
  const rows = events.filter((x) => x.event === 'row').map((x) => JSON.parse(x.data) as { tbody: string; id: string; html: string | null });
  const added = rows.find((r) => r.id === 'client-web2' && r.html !== null);
  assert.ok(added, `no row for web2 appeared: ${JSON.stringify(rows)}`);
  assert.equal(added.tbody, 'clients-body');
  assert.match(added.html!, /<td data-label="Carrier">ssh<\/td>/);
  assert.ok(rows.some((r) => r.id === 'client-web2' && r.html === null), 'the row left when the agent disconnected');
  assert.ok(rows.some((r) => r.id === 'host-web2' && r.html && /last seen/.test(r.html)), 'the host row says "last seen"');
});

test('hub: a job the agent started itself (local-…) is recorded, shown and counted, even a replayed one', async () => {
  const auth = { Authorization: `Bearer ${token}` };
  const m0 = await metrics();
  const a = await connectRaw('web2');
  const send = (o: object): void => { a.channel.write(`${JSON.stringify(o)}\n`); };
  const id = 'local-AbCdEfGh12345678';
  const startedAt = new Date().toISOString();
  send({ type: 'job.started', jobId: id, action: 'switch' });
  send({ type: 'job.output', jobId: id, stream: 'stdout', data: 'activating the new generation' });
  send({ type: 'job.end', jobId: id, action: 'switch', outcome: 'rolled-back', exitCode: 0, startedAt, durationMs: 2500, reason: 'rolled back: hub unreachable 90 s after switch' });
  await waitFor('ack', () => a.received().includes(`"job.ack","jobId":"${id}"`), 5000);
  assert.equal((await metrics()).get('bento_hosts_by_state{state="rolled back"}'), 1);
  // A result replayed from the outbox, never announced by job.started.
  const replayed = 'local-Replayed00000001';
  send({ type: 'job.end', jobId: replayed, action: 'boot', outcome: 'success', exitCode: 0, startedAt, durationMs: 1200, replayed: true });
  await waitFor('ack 2', () => a.received().includes(`"job.ack","jobId":"${replayed}"`), 5000);

  const onDisk = new Map((await durableJobs(fleet.fleetDir)).map((j) => [j.id, j]));
  const rec = onDisk.get(id)!;
  assert.deepEqual([rec.host, rec.state], ['web2', 'rolled-back']);
  assert.match(rec.reason ?? '', /hub unreachable/);
  assert.match(await readFile(path.join(fleet.fleetDir, 'state', 'jobs', `${id}.log`), 'utf8'), /activating the new generation/);
  const rep = onDisk.get(replayed)!;
  assert.deepEqual([rep.state, rep.action], ['success', 'boot']);
  const page = await request(`${dash}/hosts/web2`, { headers: auth });
  assert.match(page.body, new RegExp(`${id}</a></th><td data-label="Action">switch</td><td data-label="Started by">host</td>`));

  const m = await metrics();
  assert.equal(m.get('bento_rollbacks_total'), (m0.get('bento_rollbacks_total') ?? 0) + 1);
  assert.equal(m.get('bento_jobs_total{outcome="rolled-back",action="switch"}'), (m0.get('bento_jobs_total{outcome="rolled-back",action="switch"}') ?? 0) + 1);
  assert.equal(m.get('bento_jobs_total{outcome="success",action="boot"}'), 1);
  assert.equal(m.get('bento_hosts_connected{carrier="ssh",proxy="direct",hub="local"}'), 2);
  assert.ok((m.get('bento_agent_reconnects_total') ?? 0) >= 1, 'web2 came back: a reconnect');
  assert.equal(m.get('bento_hosts_registered'), 2);
  assert.ok((m.get('bento_job_duration_seconds_count{action="switch"}') ?? 0) >= 2);
  assert.equal(m.get('bento_job_duration_seconds_bucket{action="boot",le="1"}'), 0);
  assert.equal(m.get('bento_job_duration_seconds_bucket{action="boot",le="5"}'), 1);
  a.end();
  await waitFor('web2 gone', async () => (await metrics()).get('bento_hosts_connected{carrier="ssh",proxy="direct",hub="local"}') === 1, 5000);
  assert.ok(((await metrics()).get('bento_agent_disconnects_total{carrier="ssh"}') ?? 0) >= 2);
  // The same numbers are on the dashboard, behind its token.
  assert.equal((await request(`${dash}/metrics`)).status, 401);
  assert.match((await request(`${dash}/metrics`, { headers: auth })).body, /^bento_rollbacks_total 1$/m);
});

test('dashboard without a token (loopback only), over TLS: foreign Host names are refused (DNS rebinding)', async () => {
  const port = await freePort();
  const f = await TestFleet.create({ hubSettings: { dashboard: { listen: `127.0.0.1:${port}`, tokenFile: null, tls: { cert: 'web-cert.pem', key: 'web-key.pem' } } } });
  try {
    await execFileP('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', path.join(f.fleetDir, 'web-key.pem'), '-out', path.join(f.fleetDir, 'web-cert.pem')]);
    const ca = await readFile(path.join(f.fleetDir, 'web-cert.pem'));
    await f.startHub();
    const url = `https://127.0.0.1:${port}/`;
    const request = (u: string, o: Parameters<typeof requestRaw>[1] = {}) => requestRaw(u, { ...o, ca });
    assert.equal((await request(url)).status, 200);
    await assert.rejects(requestRaw(url), /self-signed|certificate/, 'it is really TLS, with the configured certificate');
    assert.equal((await request(url, { headers: { Host: `localhost:${port}` } })).status, 200);
    assert.equal((await request(url, { headers: { Host: 'localhost:9999' } })).status, 200, 'ssh -L forwards from any local port');
    const evil = await request(url, { headers: { Host: `rebind.evil.example:${port}` } });
    assert.equal(evil.status, 403);
    assert.match(evil.body, /DNS rebinding/);
    assert.equal((await request(`${url}api/hosts`, { headers: { Host: `127.0.0.1.nip.io:${port}` } })).status, 403);
  } finally {
    await f.close();
  }
});
