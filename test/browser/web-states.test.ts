// The states, the job log, the confirmation and the narrow layout in a real
// browser (Debian's Chromium via playwright-core) against a real hub and real
// agents: every host state that means something different looks different,
// the hosts that need attention come first, the table filters; a switch from
// the web asks first; a job log has line numbers, times, Bento's notes set
// apart, the first error linked, follow and copy; at 400 px nothing runs off
// sideways and no word is broken; job ids are links wherever they show.
// Screenshots: .test-artifacts/screenshots/webstates/ (and a copy in
// $BENTO_SCREENSHOT_COPY when set).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { TestFleet } from '../helpers/fleet.js';
import { freePort, waitFor } from '../helpers/proc.js';
import { makeProfile, request } from '../integration/web-helpers.js';
import { brokenWords, jobIdsNotLinked, overflow } from './page-checks.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install chromium)`;
const here = path.dirname(fileURLToPath(import.meta.url));
const SHOTS = path.resolve(here, '../../../.test-artifacts/screenshots/webstates');
const COPY = process.env['BENTO_SCREENSHOT_COPY'] ?? null;

let fleet: TestFleet;
let ctx: BrowserContext;
let userDataDir = '';
let dash = '';
let local = '';
let auth: Record<string, string> = {};
let stopFile = '';
const pageErrors: string[] = [];

async function shot(page: Page, name: string): Promise<void> {
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  if (COPY) await copyFile(file, path.join(COPY, `${name}.png`));
}

async function newPage(viewport?: { width: number; height: number }): Promise<Page> {
  const page = await ctx.newPage();
  if (viewport) await page.setViewportSize(viewport);
  page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  return page;
}

interface ApiHost { name: string; state: string; lastJob: { id: string; state: string } | null; queuedJob: { id: string } | null }
async function hosts(): Promise<Map<string, ApiHost>> {
  const r = await request(`${dash}/api/hosts`, { headers: auth });
  return new Map((JSON.parse(r.body) as { hosts: ApiHost[] }).hosts.map((h) => [h.name, h]));
}

async function apiTrigger(host: string, action: string, queue = false): Promise<string> {
  const r = await request(`${dash}/hosts/${host}/trigger`, { headers: { ...auth, Accept: 'application/json' }, body: { action, confirmed: 'yes', ...(queue ? { queue: 'true' } : {}) } });
  assert.equal(r.status, 202, r.body);
  return (JSON.parse(r.body) as { jobId: string }).jobId;
}

async function settled(host: string, jobId: string): Promise<void> {
  await waitFor(`${host} job ${jobId} ended`, async () => (await hosts()).get(host)?.lastJob?.id === jobId, 20_000, 100);
}

before(async () => {
  if (skip) return;
  await mkdir(SHOTS, { recursive: true });
  if (COPY) await mkdir(COPY, { recursive: true });
  const dport = await freePort();
  const lport = await freePort();
  fleet = await TestFleet.create({ hubSettings: { dashboard: { listen: `127.0.0.1:${dport}` } } });
  dash = `http://127.0.0.1:${dport}`;
  local = `http://127.0.0.1:${lport}`;
  await fleet.addHost('web1', ['--tag', 'edge']);
  await fleet.addHost('bad1', ['--tag', 'edge']);
  await fleet.addHost('gone', ['--tag', 'db']);
  await fleet.addHost('fresh', ['--tag', 'db']);
  await fleet.addHost('idle');
  await fleet.startHub();
  const token = (await readFile(path.join(fleet.fleetDir, 'dashboard.token'), 'utf8')).trim();
  auth = { Authorization: `Bearer ${token}` };
  // web1's build prints a line every 50 ms until the test says enough (STOP_FILE), at most 2400 (2 min).
  stopFile = path.join(fleet.dir, 'web1-build-enough');
  const web1 = await makeProfile(path.join(fleet.dir, 'profile-web1'), { FAIL_ACTION: 'test', CHATTY_ACTION: 'build', LINES: '2400', PAUSE: '0.05', STOP_FILE: stopFile });
  fleet.startAgent('web1', await fleet.agentConfig('web1', { ...web1, rollback: false, localPage: { listen: `127.0.0.1:${lport}`, socket: null } }));
  fleet.startAgent('bad1', await fleet.agentConfig('bad1', { ...await makeProfile(path.join(fleet.dir, 'profile-bad1'), { FAIL_ACTION: 'switch' }), rollback: false }));
  fleet.startAgent('gone', await fleet.agentConfig('gone', { ...await makeProfile(path.join(fleet.dir, 'profile-gone')), rollback: false }));
  fleet.startAgent('idle', await fleet.agentConfig('idle', { ...await makeProfile(path.join(fleet.dir, 'profile-idle')), rollback: false }));
  await fleet.waitConnected(['web1', 'bad1', 'gone', 'idle']);
  // bad1 fails its switch; gone came once and left; fresh never came, a switch waits for it.
  await settled('bad1', await apiTrigger('bad1', 'switch'));
  await fleet.agents.get('gone')!.stop();
  await apiTrigger('fresh', 'switch', true);
  await waitFor('gone offline', async () => (await hosts()).get('gone')?.state === 'offline', 10_000, 100);

  userDataDir = await mkdtemp(path.join(os.tmpdir(), 'bento-chromium-'));
  const { chromium } = await import('playwright-core');
  ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    httpCredentials: { username: 'admin', password: token, origin: dash },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'],
  });
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: dash });
});

after(async () => {
  await ctx?.close();
  await fleet?.close();
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
});

test('fleet: each state its own colour, the hosts that need attention first, queued jobs shown, filters by state and tag', { skip }, async () => {
  const page = await newPage();
  await page.goto(`${dash}/`);
  await page.waitForSelector('#live:text("Live")');
  const order = await page.locator('#hosts-body tr').evaluateAll((rows) => rows.map((r) => r.id.replace('host-', '')));
  assert.deepEqual(order, ['bad1', 'gone', 'fresh', 'idle', 'web1'], 'failing, offline, never connected, then the rest');
  const badge = (host: string) => page.locator(`#host-${host} .badge`).first();
  assert.deepEqual(await Promise.all(['bad1', 'gone', 'fresh', 'idle', 'web1'].map(async (h) => badge(h).textContent())),
    ['failing', 'offline', 'never connected', 'new machine', 'new machine']);
  // Offline, never connected and new machine each look different (colour and border), and not like "failing".
  const look = async (host: string): Promise<string> => badge(host).evaluate((el) => { const s = getComputedStyle(el); return `${s.color} ${s.borderTopStyle}`; });
  const looks = await Promise.all(['bad1', 'gone', 'fresh', 'idle'].map(look));
  assert.equal(new Set(looks).size, 4, `four states, four looks: ${looks.join(' | ')}`);
  // The queued switch shows on the row of the host it waits for.
  assert.match((await page.locator('#host-fresh td[data-label="Job"]').textContent() ?? '').trim(), /^switch\s*queued\s*requested .*\(runs when it connects\)$/);
  assert.match(await page.locator('#summary').textContent() ?? '', /1\s*queued/);
  await shot(page, '01-fleet-states');

  // Filter: needs attention, then a tag; the address keeps the choice; a reload renders the same rows.
  await page.selectOption('#filter-state', 'attention');
  const visible = async (): Promise<string[]> => page.locator('#hosts-body tr:visible').evaluateAll((rows) => rows.map((r) => r.id.replace('host-', '')));
  assert.deepEqual(await visible(), ['bad1', 'gone', 'fresh']);
  assert.equal(await page.locator('#filter-count').textContent(), '3 of 5 hosts shown');
  await page.selectOption('#filter-tag', 'db');
  assert.deepEqual(await visible(), ['gone', 'fresh']);
  assert.match(page.url(), /\?state=attention&tag=db$/);
  await shot(page, '02-fleet-filtered');
  await page.reload();
  await page.waitForSelector('#live:text("Live")');
  assert.deepEqual(await visible(), ['gone', 'fresh'], 'the filter works from the address alone');
  // Live rows are filtered too: idle gets a job; it stays hidden (new machine is not "needs attention").
  await page.selectOption('#filter-tag', '');
  await settled('idle', await apiTrigger('idle', 'switch'));
  await page.waitForFunction(() => document.querySelector('#host-idle .badge')?.textContent === 'nothing published');
  assert.deepEqual(await visible(), ['bad1', 'gone', 'fresh']);
  await page.selectOption('#filter-state', '');
  assert.deepEqual(await visible(), ['bad1', 'gone', 'fresh', 'web1', 'idle'], 'idle moved down: new machine before nothing published');
  // A host that starts failing moves up, live, to its place among the failing ones.
  await settled('web1', await apiTrigger('web1', 'test'));
  await page.waitForFunction(() => document.querySelector('#host-web1 .badge')?.textContent === 'failing');
  assert.deepEqual(await visible(), ['bad1', 'web1', 'gone', 'fresh', 'idle']);
  assert.deepEqual(await jobIdsNotLinked(page), [], 'every job id on the page is a link to its job');
  await page.close();
});

test('a switch from the dashboard asks first: Cancel starts nothing; Yes streams a log with numbers, times, notes apart; generation before and after', { skip }, async () => {
  const page = await newPage();
  await page.goto(`${dash}/`);
  await page.waitForSelector('#live:text("Live")');
  const last0 = (await hosts()).get('web1')!.lastJob?.id ?? null;
  await page.getByRole('button', { name: 'Run on web1' }).click();
  const dialog = page.getByRole('dialog', { name: 'Run switch on web1?' });
  await dialog.waitFor();
  assert.match(await dialog.textContent() ?? '', /nixos-rebuild switch on web1: the new system is activated at once/);
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Cancel', 'the safe answer has the focus');
  await shot(page, '03-confirm-switch');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'detached' });
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'run-web1', 'the focus is back on the button');
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await hosts()).get('web1')!.lastJob?.id ?? null, last0, 'Cancel started nothing');
  assert.equal(await page.locator('#outputs .panel').count(), 0);

  await page.getByRole('button', { name: 'Run on web1' }).click();
  await page.getByRole('button', { name: 'Yes, switch web1' }).click();
  const panel = page.locator('#outputs .panel').first();
  await page.waitForFunction(() => /success/.test(document.querySelector('#outputs .panel .job-status')?.textContent ?? ''), null, { timeout: 20_000 });
  const rows = panel.locator('.log .ln');
  const first = await rows.first().evaluate((el) => ({ cls: el.className, n: el.querySelector('.num')?.textContent, t: el.querySelector('.t')?.textContent, x: el.querySelector('.x')?.textContent }));
  assert.equal(first.n, '1');
  assert.match(first.t ?? '', /^\d\d:\d\d:\d\d$/, 'each line has the time it arrived');
  const classes = await rows.evaluateAll((els) => els.map((e) => `${e.className}|${e.querySelector('.x')?.textContent}`));
  assert.ok(classes.some((c) => /o-note/.test(c) && /\|bento: /.test(c)), `notes are marked: ${classes.join('\n')}`);
  assert.ok(classes.every((c) => !/\|bento: /.test(c) || /o-note/.test(c)), 'every "bento:" line of this agent is a note');
  assert.ok(classes.some((c) => /o-err/.test(c) && /building the system/.test(c)));
  assert.equal(await panel.locator('.ln.error').count(), 0, 'a green job shows no error line');
  const noteColour = await panel.locator('.ln.o-note .x').first().evaluate((el) => getComputedStyle(el).color);
  const errColour = await panel.locator('.ln.o-err .x').first().evaluate((el) => getComputedStyle(el).color);
  assert.notEqual(noteColour, errColour, 'notes do not look like the rebuild\'s stderr');
  const jobId = await panel.locator('.job-title a').textContent() ?? '';
  assert.equal(await panel.locator('.job-title a').getAttribute('href'), `/jobs/${jobId}`, 'the job id is a link');
  await shot(page, '04-dashboard-switch-done');

  // The job page: what the switch did.
  await panel.locator('.job-title a').click();
  await page.waitForSelector('#job-output .ln');
  assert.equal(await page.locator('#job-generation').textContent(), '1 → 2');
  assert.match(await page.locator('#job-system').textContent() ?? '', /before .*sys-1\s*after .*sys-2/);
  // Copy puts exactly the output text on the clipboard: no numbers, no times.
  await page.getByRole('button', { name: 'Copy' }).click();
  await page.waitForFunction(() => /Copied \d+ lines/.test(document.querySelector('.copy-status')?.textContent ?? ''));
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  const texts = await page.locator('#job-output .ln .x').allTextContents();
  assert.equal(copied, `${texts.join('\n')}\n`);
  assert.match(copied, /^bento: /);
  await shot(page, '05-job-page');
  assert.deepEqual(await jobIdsNotLinked(page), []);
  await page.close();
});

test('a failed job: the first error is highlighted and one click away; follow keeps up and pauses when you scroll back', { skip }, async () => {
  const failed = await apiTrigger('web1', 'test');
  await settled('web1', failed);
  const page = await newPage();
  await page.goto(`${dash}/jobs/${failed}`);
  const link = page.locator('.first-error-link');
  await link.waitFor();
  assert.match(await link.textContent() ?? '', /^First error: line \d+$/);
  await link.click();
  const target = page.locator('.ln:target');
  assert.match(await target.textContent() ?? '', /error: builder for '\/nix\/store\/aaaa-etc\.drv' failed/);
  assert.match(await target.getAttribute('class') ?? '', /first-error/);
  assert.ok(await target.isVisible());
  assert.notEqual(await target.evaluate((el) => getComputedStyle(el).backgroundColor), 'rgba(0, 0, 0, 0)', 'highlighted');
  await shot(page, '06-first-error');
  await page.close();

  // A long job (it runs until the test writes stopFile), followed live from its page.
  const chatty = await apiTrigger('web1', 'build');
  const live = await newPage({ width: 1000, height: 700 });
  // Stopped whatever happens here: the next test's job would wait behind it.
  try {
    await live.goto(`${dash}/jobs/${chatty}`);
    const log = live.locator('#job-output');
    await live.waitForFunction(() => document.querySelectorAll('#job-output .ln').length > 30);
    const atEnd = (): Promise<boolean> => log.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight < 40);
    assert.ok(await log.evaluate((el) => el.scrollHeight > el.clientHeight), 'the log scrolls');
    assert.ok(await atEnd(), 'following: the newest line is in view');
    assert.equal(await live.locator('input.follow').isChecked(), true);
    // Scrolled up, and a line arrives before the scroll event does (lines come faster than frames under
    // load): that is a pause too. Before, the line pulled the view back down and follow stayed on (CI).
    const raced = await log.evaluate((el) => {
      el.scrollTop = 0;
      (globalThis as unknown as { bento: { appendLine(e: Element, d: unknown): void } }).bento.appendLine(el, { ts: Date.now(), stream: 'note', data: 'a line in the same frame as the scroll' });
      return { top: el.scrollTop, following: (document.querySelector('input.follow') as HTMLInputElement).checked };
    });
    assert.deepEqual(raced, { top: 0, following: false }, 'a scroll up is not undone by the next line');
    await live.waitForFunction(() => !(document.querySelector('input.follow') as HTMLInputElement).checked);
    const n0 = await live.locator('#job-output .ln').count();
    await live.waitForFunction((n) => document.querySelectorAll('#job-output .ln').length > n + 10, n0);
    assert.equal(await log.evaluate((el) => el.scrollTop), 0, 'paused: new lines do not pull the view down');
    await shot(live, '07-follow-paused');
    await live.locator('input.follow').check();
    assert.ok(await atEnd(), 'follow again jumps to the end');
    const n1 = await live.locator('#job-output .ln').count();
    await live.waitForFunction((n) => document.querySelectorAll('#job-output .ln').length > n + 5, n1);
    assert.ok(await atEnd(), 'and keeps up with new lines');
  } finally {
    await writeFile(stopFile, '');
  }
  await settled('web1', chatty);
  await live.close();
});

test('the host\'s local page asks before "Upgrade now", numbers its lines, and links its job ids', { skip }, async () => {
  const page = await newPage();
  await page.goto(`${local}/`);
  await page.waitForSelector('#live:text("Live")');
  await page.getByRole('button', { name: 'Upgrade now' }).click();
  const dialog = page.getByRole('dialog', { name: 'Run switch on this host now?' });
  await dialog.waitFor();
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  assert.equal(await page.locator('#upgrade-status').textContent(), 'Not started.');
  await page.getByRole('button', { name: 'Upgrade now' }).click();
  await page.getByRole('button', { name: 'Yes, switch now' }).click();
  const status = page.locator('#upgrade-status a');
  const id = await status.textContent() ?? '';
  assert.match(id, /^local-[0-9a-hjkmnp-tv-z]{16}$/, 'a new id, in the alphabet without look-alikes');
  // The page showed the hub's last job until this one began: wait for this one's end.
  await page.waitForFunction((jobId) => (document.getElementById('output-job')?.textContent ?? '').includes(jobId)
    && /success/.test(document.getElementById('output-end')?.textContent ?? ''), id, { timeout: 20_000 });
  assert.equal(await page.locator('#output .ln .num').first().textContent(), '1');
  assert.ok(await page.locator('#output .ln.o-note').count() > 0);
  await shot(page, '08-local-page');
  assert.deepEqual(await jobIdsNotLinked(page), []);
  await status.click();
  await page.waitForSelector('#job-output .ln');
  assert.match(await page.locator('h1').textContent() ?? '', /switch on web1/);
  await page.close();
});

test('at 400 px wide nothing runs off sideways and no word is broken in the middle', { skip }, async () => {
  const h = await hosts();
  const job = h.get('web1')!.lastJob!.id;
  for (const [name, url] of [['fleet', `${dash}/`], ['host', `${dash}/hosts/web1`], ['job', `${dash}/jobs/${job}`], ['local', `${local}/`]] as const) {
    const page = await newPage({ width: 400, height: 900 });
    await page.goto(url);
    await page.waitForLoadState('networkidle').catch(() => undefined);
    const o = await overflow(page);
    assert.ok(o.scrollWidth <= o.clientWidth, `${name}: the page is ${o.scrollWidth} px wide in a ${o.clientWidth} px window (${o.culprits.join(', ')})`);
    assert.deepEqual(await brokenWords(page), [], `${name}: words broken across lines`);
    await shot(page, `09-narrow-${name}`);
    await page.close();
  }
  assert.deepEqual(pageErrors, [], 'no script errors on any page');
});
