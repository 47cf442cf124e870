// The web pages in a real browser: Debian's Chromium driven by playwright-core,
// against real hub and agent processes. The host page's "Upgrade now" runs a
// real rebuild (the nixos-rebuild stand-in on real Nix when nix is there) and
// streams it; the dashboard follows agents connecting and disconnecting and
// triggers a job; another site's page (attacker.test) and a DNS-rebound name
// (rebind.test, both mapped to 127.0.0.1 inside Chromium) are refused.
// Screenshots are kept in .test-artifacts/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { TestFleet } from '../helpers/fleet.js';
import { freePort, waitFor } from '../helpers/proc.js';
import { makeNixEnv, nixAvailable, writeFixtureConfig, currentSystemPath, type NixEnv } from '../fixtures/nix.js';
import { parsePrometheusText } from '../../common/platform/prometheus.js';
import { request, SCRIPTED_REBUILD } from '../integration/web-helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install chromium)`;
const here = path.dirname(fileURLToPath(import.meta.url));
const SHOTS = path.resolve(here, '../../../.test-artifacts/screenshots');

let fleet: TestFleet;
let ctx: BrowserContext;
let userDataDir = '';
let dash = '';
let local = '';
let localPort = 0;
let token = '';
let nix: NixEnv | null = null;
const pageErrors: string[] = [];

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

async function newPage(): Promise<Page> {
  const page = await ctx.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  return page;
}

before(async () => {
  if (skip) return;
  await mkdir(SHOTS, { recursive: true });
  const dport = await freePort();
  localPort = await freePort();
  fleet = await TestFleet.create({ hubSettings: { dashboard: { listen: `127.0.0.1:${dport}` } } });
  dash = `http://127.0.0.1:${dport}`;
  local = `http://127.0.0.1:${localPort}`;
  await fleet.addHost('web1');
  await fleet.addHost('web2');
  await fleet.startHub();
  token = (await readFile(path.join(fleet.fleetDir, 'dashboard.token'), 'utf8')).trim();

  // web1: the host whose own page we open. With nix, its rebuild is the real-Nix stand-in.
  let web1: Record<string, unknown> = { rebuildCommand: SCRIPTED_REBUILD, rollback: false, rebuildEnv: { LINES: '6', PAUSE: '0.3' } };
  if (nixAvailable()) {
    nix = await makeNixEnv(path.join(fleet.dir, 'nix-web1'));
    const conf = path.join(fleet.dir, 'web1-configuration.nix');
    await writeFixtureConfig(conf, { host: 'web1', label: 'v1', outputLines: 6, outputIntervalSeconds: 0.3 });
    web1 = { configuration: conf, rebuildEnv: nix.env, currentSystem: nix.currentSystem, systemProfile: nix.profile };
  }
  fleet.startAgent('web1', await fleet.agentConfig('web1', { ...web1, localPage: { listen: `127.0.0.1:${localPort}`, socket: null } }));
  await fleet.waitConnected(['web1']);

  userDataDir = await mkdtemp(path.join(os.tmpdir(), 'bento-chromium-'));
  const { chromium } = await import('playwright-core');
  ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 860 },
    // The dashboard's token, for its origin only: the browser's own Basic login.
    httpCredentials: { username: 'admin', password: token, origin: dash },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic',
      '--host-resolver-rules=MAP attacker.test 127.0.0.1, MAP rebind.test 127.0.0.1',
    ],
  });
});

after(async () => {
  await ctx?.close();
  await fleet?.close();
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
});

test('host page: "Upgrade now" streams the job live and shows the final state', { skip }, async () => {
  const page = await newPage();
  await page.goto(`${local}/`);
  await page.waitForSelector('#live:text("Live")');
  const system0 = await page.locator('#state dd.mono').first().textContent();
  await shot(page, '01-host-page-before');

  const t0 = Date.now();
  await page.getByRole('button', { name: 'Upgrade now' }).click();
  // A switch from the web asks first.
  await page.getByRole('button', { name: 'Yes, switch now' }).click();
  await page.waitForFunction(() => /Started local-/.test(document.getElementById('upgrade-status')?.textContent ?? ''));
  // Live: the first build line is on the page while the job still runs.
  const firstLine = nix ? 'build step 1/6' : 'step 1/6';
  await page.waitForFunction((l) => (document.getElementById('output')?.textContent ?? '').includes(l), firstLine, { timeout: 60_000 });
  const tFirst = Date.now();
  assert.equal(await page.locator('#output-end').textContent(), '', 'no final line yet while the output streams');
  assert.match(await page.locator('#state').textContent() ?? '', /running\s+switch\s+local-/);
  await shot(page, '02-host-page-running');

  await page.waitForFunction(() => /success/.test(document.getElementById('output-end')?.textContent ?? ''), null, { timeout: 90_000 });
  const tEnd = Date.now();
  assert.ok(tEnd - tFirst >= 1000, `output arrived ${tEnd - tFirst} ms before the end: not live`);
  const out = await page.locator('#output').textContent() ?? '';
  assert.ok(out.includes(nix ? 'build step 6/6' : 'step 6/6'), out);
  // The final state: the job table and, with real Nix, the system the host runs now.
  await page.waitForFunction(() => /idle/.test(document.querySelector('#state')?.textContent ?? ''));
  const firstRow = page.locator('#jobs tr').first();
  assert.match(await firstRow.textContent() ?? '', /local-\S+\s*switch\s*this host\s*success/);
  if (nix) {
    const running = await currentSystemPath(nix);
    assert.ok(running && running !== system0);
    await page.waitForFunction((p) => (document.querySelector('#state')?.textContent ?? '').includes(p), running);
    assert.match(await page.locator('#state').textContent() ?? '', /Generation\s*1\b/);
  }
  await shot(page, '03-host-page-done');
  process.stderr.write(`# host page: first line ${tFirst - t0} ms after the click, end after ${tEnd - t0} ms\n`);

  // The hub recorded the job the host started itself.
  const hosts = JSON.parse((await request(`${dash}/api/hosts`, { headers: { Authorization: `Bearer ${token}` } })).body) as { hosts: Array<{ name: string; lastJob: { id: string; state: string } | null }> };
  const last = hosts.hosts.find((h) => h.name === 'web1')!.lastJob;
  assert.match(last?.id ?? '', /^local-/);
  assert.equal(last?.state, 'success');
  await page.close();
});

test('dashboard: hosts appear and disappear live as agents connect and disconnect', { skip }, async () => {
  const page = await newPage();
  await page.goto(`${dash}/`);
  await page.waitForSelector('#live:text("Live")');
  assert.equal(await page.locator('#client-web1').count(), 1);
  assert.equal(await page.locator('#client-web2').count(), 0);
  await shot(page, '04-dashboard-one-agent');

  const t0 = Date.now();
  fleet.startAgent('web2', await fleet.agentConfig('web2', { rebuildCommand: SCRIPTED_REBUILD, rollback: false, rebuildEnv: { LINES: '5', PAUSE: '0.3' } }));
  await page.locator('#client-web2').waitFor({ timeout: 15_000 });
  const tUp = Date.now() - t0;
  assert.match(await page.locator('#host-web2').textContent() ?? '', /connected via ssh/);
  assert.match(await page.locator('#summary').textContent() ?? '', /2\s*connected/);
  await shot(page, '05-dashboard-two-agents');

  const t1 = Date.now();
  await fleet.agents.get('web2')!.stop();
  await page.locator('#client-web2').waitFor({ state: 'detached', timeout: 10_000 });
  const tDown = Date.now() - t1;
  assert.match(await page.locator('#host-web2').textContent() ?? '', /last seen/);
  assert.match(await page.locator('#host-web2 .badge').first().textContent() ?? '', /offline/);
  await shot(page, '06-dashboard-agent-left');
  process.stderr.write(`# dashboard: row appeared ${tUp} ms after the agent process started, left ${tDown} ms after it was stopped\n`);
  await page.close();
});

test('dashboard: a trigger button runs the job and streams its output into the page', { skip }, async () => {
  fleet.startAgent('web2', await fleet.agentConfig('web2', { rebuildCommand: SCRIPTED_REBUILD, rollback: false, rebuildEnv: { LINES: '5', PAUSE: '0.3' } }));
  await fleet.waitConnected(['web2']);
  const page = await newPage();
  await page.goto(`${dash}/`);
  await page.waitForSelector('#live:text("Live")');
  await page.locator('#client-web2').waitFor();
  await page.selectOption('#act-web2', 'test');
  await page.getByRole('button', { name: 'Run on web2' }).click();
  await page.getByRole('button', { name: 'Yes, test web2' }).click();
  const panel = page.locator('#outputs .panel').first();
  await panel.waitFor();
  await page.waitForFunction(() => (document.querySelector('#outputs .panel .log')?.textContent ?? '').includes('step 1/5'));
  assert.doesNotMatch(await panel.locator('.job-status').textContent() ?? '', /success/, 'still running while the first lines show');
  await shot(page, '07-dashboard-trigger-running');
  await page.waitForFunction(() => /success/.test(document.querySelector('#outputs .panel .job-status')?.textContent ?? ''), null, { timeout: 20_000 });
  const text = await panel.locator('.log').textContent() ?? '';
  assert.match(text, /rebuild test[\s\S]*step 5\/5[\s\S]*done, warnings: none/);
  assert.match(await panel.locator('h3').textContent() ?? '', /web2 · test · /);
  // The row shows the finished job too (live update, no reload).
  await page.waitForFunction(() => /test\s*success/.test(document.querySelector('#host-web2')?.textContent ?? ''));
  await shot(page, '08-dashboard-trigger-done');

  // The host page has the history; the job page has the output.
  await page.getByRole('link', { name: 'web2' }).first().click();
  await page.waitForSelector('#history tr');
  assert.match(await page.locator('#history').textContent() ?? '', /test\s*hub\s*success/);
  await shot(page, '09-host-page-history');
  await page.locator('#history a').first().click();
  await page.waitForSelector('#job-output');
  assert.match(await page.locator('#job-output').textContent() ?? '', /step 5\/5/);
  await shot(page, '10-job-page');
  await page.close();
});

test('another site\'s page cannot start a job, and a DNS-rebound name gets nothing', { skip }, async () => {
  const agentMetrics = async (): Promise<Map<string, number>> => parsePrometheusText((await request(`${local}/metrics`)).body);
  const hubMetric = async (k: string): Promise<number> => parsePrometheusText((await request(`${dash}/metrics`, { headers: { Authorization: `Bearer ${token}` } })).body).get(k) ?? 0;
  const m0 = await agentMetrics();
  const hubRefused0 = await hubMetric('bento_web_refused_total{reason="origin"}');
  const hubJobs0 = JSON.parse((await request(`${dash}/api/hosts`, { headers: { Authorization: `Bearer ${token}` } })).body) as { hosts: Array<{ name: string; lastJob: { id: string } | null }> };

  // attacker.test: a page that tries every cross-site trick a browser allows without CORS.
  const evilPage = `<!doctype html><html><body><h1>totally harmless</h1>
<iframe name="sink1" title="sink1"></iframe><iframe name="sink2" title="sink2"></iframe>
<form id="f1" method="post" action="${local}/upgrade" target="sink1"><input name="action" value="switch"></form>
<form id="f2" method="post" action="${dash}/hosts/web2/trigger" target="sink2"><input name="action" value="switch"></form>
<script>
  var tries = [
    fetch('${local}/api/upgrade', { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body: '{"action":"switch"}' }).catch(function () {}),
    fetch('${dash}/hosts/web2/trigger', { method: 'POST', mode: 'no-cors', credentials: 'include', body: 'action=switch' }).catch(function () {}),
    fetch('${local}/api/state').then(function (r) { return r.text(); }).then(function (t) { window.leak = t; }, function () { window.leak = null; }),
  ];
  document.getElementById('f1').submit();
  setTimeout(function () { document.getElementById('f2').submit(); }, 300);
  Promise.all(tries).then(function () { document.title = 'done'; });
</script></body></html>`;
  const srv = http.createServer((_req, res) => { res.writeHead(200, { 'Content-Type': 'text/html' }); res.end(evilPage); });
  const evilPort = await freePort();
  await new Promise<void>((r) => srv.listen(evilPort, '127.0.0.1', r));
  let m = m0;
  try {
    const page = await newPage();
    await page.goto(`http://attacker.test:${evilPort}/`);
    await page.waitForFunction(() => document.title === 'done', null, { timeout: 15_000 });
    assert.equal(await page.evaluate(() => (window as unknown as { leak?: string | null }).leak ?? null), null, 'the state could not be read cross-origin');
    // The form posts land on their own schedule (the page does not wait for
    // them): keep the page open until the servers have counted them.
    const refusedByAgent = (m: Map<string, number>): number => (m.get('bento_agent_local_refused_total{reason="origin"}') ?? 0) - (m0.get('bento_agent_local_refused_total{reason="origin"}') ?? 0);
    m = await agentMetrics();
    await waitFor('fetch, form and read refused by the agent', async () => refusedByAgent(m = await agentMetrics()) >= 3, 10_000, 100)
      .catch(() => assert.fail(`fetch, form and read were refused by the agent: ${refusedByAgent(m)} of 3 refusals counted`));
    await waitFor('the dashboard refused the cross-site trigger', async () => await hubMetric('bento_web_refused_total{reason="origin"}') - hubRefused0 >= 1, 10_000, 100)
      .catch(() => assert.fail('the dashboard refused the cross-site trigger'));
    await shot(page, '11-attacker-page');
    await page.close();
  } finally {
    srv.close();
  }
  assert.equal(m.get('bento_agent_local_upgrades_total') ?? 0, m0.get('bento_agent_local_upgrades_total') ?? 0, 'no upgrade was started');
  await new Promise((r) => setTimeout(r, 300));
  const hubJobs = JSON.parse((await request(`${dash}/api/hosts`, { headers: { Authorization: `Bearer ${token}` } })).body) as { hosts: Array<{ name: string; lastJob: { id: string } | null; activeJob: unknown }> };
  for (const h of hubJobs.hosts) {
    assert.equal(h.lastJob?.id, hubJobs0.hosts.find((x) => x.name === h.name)!.lastJob?.id, `no new job on ${h.name}`);
    assert.equal(h.activeJob, null);
  }

  // DNS rebinding: rebind.test resolves to 127.0.0.1, but the page refuses the name.
  const page = await newPage();
  const res = await page.goto(`http://rebind.test:${localPort}/`);
  assert.equal(res?.status(), 403);
  assert.match(await page.locator('body').textContent() ?? '', /foreign Host/);
  await shot(page, '12-rebinding-refused');
  await page.close();
  assert.deepEqual(pageErrors, [], 'no script errors on any page');
});
