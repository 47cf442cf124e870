// Magic rollback on real Nix: real store paths, a real system profile
// (`nix-env -p PROFILE --set`), and each path's own switch-to-configuration.
// The agent sits behind a NAT router in its own network namespace; a fixture
// system can delete the client's default route when it is activated, so the
// hub becomes unreachable exactly as after a bad network configuration.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { waitFor } from '../helpers/proc.js';
import { netnsUnsupportedReason } from '../fixtures/netns.js';
import { currentSystemPath, listGenerations, nixAvailable, nixUnavailableReason, profilePath, readActivations } from '../fixtures/nix.js';
import { guardedHost, jobRecords, natFleet, trigger, type NatFleet } from './rollback-helpers.js';

const skip = !nixAvailable() ? nixUnavailableReason() : (await netnsUnsupportedReason()) ?? false;
let nf: NatFleet;

before(async () => { if (!skip) nf = await natFleet(); });
after(async () => { await nf?.close(); });

const guardFile = (name: string): string => path.join(nf.fleet.dir, `state-${name}`, 'rollback-guard.json');

test('a healthy switch is confirmed over a fresh connection and kept', { skip }, async () => {
  const h = await guardedHost(nf, 'ok1');
  const installed = await currentSystemPath(h.nix);
  const agent = h.start();
  await nf.fleet.waitConnected(['ok1']);
  await h.setConfig({ label: 'v2' });
  const t0 = Date.now();
  const r = await trigger(nf.fleet, 'ok1');
  const took = Date.now() - t0;
  assert.equal(r.code, 0, JSON.stringify(r.events, null, 1) + r.stderr);
  // The watching admin sees the real verdict, not "interrupted" when the agent reconnects on purpose.
  assert.equal(r.end?.['outcome'], 'success');
  const out = r.events.filter((e) => e['ev'] === 'output').map((e) => String(e['data'])).join('\n');
  assert.match(out, /rollback guard: recorded \/nix\/store\/\S+-nixos-system-ok1-installed/);
  assert.match(out, /a fresh connection to the hub succeeded .* keeping \/nix\/store\/\S+-nixos-system-ok1-v2/);
  const now = await currentSystemPath(h.nix);
  assert.match(now ?? '', /-nixos-system-ok1-v2$/);
  assert.notEqual(now, installed);
  assert.deepEqual(await listGenerations(h.nix), [1, 2]);
  assert.equal(existsSync(guardFile('ok1')), false, 'the guard record is gone once confirmed');
  const job = (await jobRecords(nf.fleet)).find((j) => j.host === 'ok1')!;
  assert.equal(job.state, 'success');
  assert.ok(agent.output().includes('reconnecting to prove the hub is reachable') || out.includes('reconnecting to prove'), 'a new connection was made');
  console.log(`# healthy switch incl. fresh-connection proof: ${took} ms end to end`);
  await agent.stop();
});

test('the hub unreachable after a switch: the exact recorded path is re-activated and the reason reaches the hub', { skip }, async () => {
  const h = await guardedHost(nf, 'cut1');
  const agent = h.start();
  await nf.fleet.waitConnected(['cut1']);
  // First a healthy switch, so "previous generation" and "what was running" differ below.
  await h.setConfig({ label: 'good' });
  assert.equal((await trigger(nf.fleet, 'cut1')).code, 0);
  const good = await currentSystemPath(h.nix);
  // Make the profile's previous generation something else than what runs: a `boot` of another system.
  await h.setConfig({ label: 'bootonly' });
  assert.equal((await trigger(nf.fleet, 'cut1', 'boot')).code, 0);
  assert.match((await profilePath(h.nix)) ?? '', /-bootonly$/);
  assert.equal(await currentSystemPath(h.nix), good);

  await h.setConfig({ label: 'cutnet' });
  const t0 = Date.now();
  const r = await trigger(nf.fleet, 'cut1');
  const took = Date.now() - t0;
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.end?.['outcome'], 'rolled-back', JSON.stringify(r.end));
  assert.match(String(r.end?.['reason']), /^rolled back: hub unreachable 3 s after switch; re-activated \/nix\/store\/\S+-nixos-system-cut1-good/);
  // Exactly the recorded path runs again (not the profile's previous generation, "bootonly").
  assert.equal(await currentSystemPath(h.nix), good);
  assert.equal(await profilePath(h.nix), good);
  const gens = await listGenerations(h.nix);
  assert.deepEqual(gens, [1, 2, 3, 4, 5], 'installed, good, bootonly, cutnet, and a new generation pointing back');
  const acts = await readActivations(h.nix);
  assert.match(acts.at(-2) ?? '', /^switch \/nix\/store\/\S+-cutnet$/);
  assert.equal(acts.at(-1), `switch ${good}`);
  const job = (await jobRecords(nf.fleet)).find((j) => j.host === 'cut1' && j.state === 'rolled-back')!;
  assert.match(job.reason ?? '', /hub unreachable 3 s after switch/);
  assert.equal(existsSync(guardFile('cut1')), false);
  console.log(`# unreachable after switch -> rolled back and reported: ${took} ms end to end (window 3 s)`);
  await agent.stop();
});

test('a failing switch rolls back at once; a failed build changes nothing and is not rolled back', { skip }, async () => {
  const h = await guardedHost(nf, 'fail1');
  const installed = await currentSystemPath(h.nix);
  const agent = h.start();
  await nf.fleet.waitConnected(['fail1']);
  // Units fail after activation: NixOS's switch-to-configuration exits 4 with the new system active.
  await h.setConfig({ label: 'unitsfail', switchFails: 'after-activation' });
  const r = await trigger(nf.fleet, 'fail1');
  assert.equal(r.end?.['outcome'], 'rolled-back', JSON.stringify(r.end));
  assert.match(String(r.end?.['reason']), /^rolled back: nixos-rebuild exited with status 4; re-activated \/nix\/store\/\S+-nixos-system-fail1-installed/);
  assert.equal(r.end?.['exitCode'], 4);
  assert.equal(await currentSystemPath(h.nix), installed);
  assert.equal(await profilePath(h.nix), installed);
  // Activation fails before repointing the system: only the profile changed, and it is set back too.
  await h.setConfig({ label: 'early', switchFails: true });
  const e = await trigger(nf.fleet, 'fail1');
  assert.equal(e.end?.['outcome'], 'rolled-back', JSON.stringify(e.end));
  assert.equal(await profilePath(h.nix), installed);
  assert.equal(await currentSystemPath(h.nix), installed);
  const gens = (await listGenerations(h.nix)).length;
  // A build failure never touched the system: a plain failure, no new generation.
  await h.setConfig({ label: 'nobuild', buildFails: true });
  const b = await trigger(nf.fleet, 'fail1');
  assert.equal(b.end?.['outcome'], 'failure');
  assert.equal((await listGenerations(h.nix)).length, gens);
  const out = b.events.filter((x) => x['ev'] === 'output').map((x) => String(x['data'])).join('\n');
  assert.match(out, /failed before changing the system or the profile; nothing to roll back/);
  await agent.stop();
});

test('`test` is guarded too, without touching the profile', { skip }, async () => {
  const h = await guardedHost(nf, 'tst1');
  const installed = await currentSystemPath(h.nix);
  const agent = h.start();
  await nf.fleet.waitConnected(['tst1']);
  await h.setConfig({ label: 'cutnet' });
  const r = await trigger(nf.fleet, 'tst1', 'test');
  assert.equal(r.end?.['outcome'], 'rolled-back', `${JSON.stringify(r.end)}\n${r.events.map((e) => JSON.stringify(e)).join('\n')}`);
  assert.match(String(r.end?.['reason']), /hub unreachable 3 s after test/);
  assert.equal(await currentSystemPath(h.nix), installed);
  assert.deepEqual(await listGenerations(h.nix), [1]);
  assert.equal((await readActivations(h.nix)).at(-1), `test ${installed}`);
  await agent.stop();
});

test('agent killed by its own switch and restarted inside the window: keeps the switch when the hub answers', { skip }, async () => {
  const h = await guardedHost(nf, 'kill1');
  let agent = h.start();
  await nf.fleet.waitConnected(['kill1']);
  await h.setConfig({ label: 'killagent' });
  const pending = trigger(nf.fleet, 'kill1');
  await agent.exited; // killed by the hook inside its own switch-to-configuration
  const g = JSON.parse(await readFile(guardFile('kill1'), 'utf8')) as { phase: string; jobId: string };
  assert.equal(g.phase, 'switching');
  agent = h.start();
  // The hub kept the guarded job open, so the watching admin gets the restarted agent's verdict.
  const r = await pending;
  assert.equal(r.end?.['outcome'], 'success', JSON.stringify(r.events.slice(-3)));
  assert.equal(r.end?.['jobId'], g.jobId);
  const job = (await jobRecords(nf.fleet)).find((j) => j.id === g.jobId)!;
  assert.equal(job.state, 'success');
  assert.match(await currentSystemPath(h.nix) ?? '', /-killagent$/);
  assert.equal(existsSync(guardFile('kill1')), false);
  assert.ok(!agent.output().includes('found a job interrupted by an agent restart'), 'the guard took the job over');
  await agent.stop();
});

test('agent killed and restarted inside the window with the hub unreachable: rolls back and reports it', { skip }, async () => {
  // A wider window: restarting node must fit inside it even on a loaded machine.
  const h = await guardedHost(nf, 'kill2', { rollbackTimeoutMs: 8000 });
  const installed = await currentSystemPath(h.nix);
  let agent = h.start();
  await nf.fleet.waitConnected(['kill2']);
  await h.setConfig({ label: 'cutnet' });
  const pending = trigger(nf.fleet, 'kill2');
  // Kill it while it waits for the fresh connection (phase confirming), then restart it.
  const g = await waitFor('guard record in phase confirming', async () => {
    const rec = JSON.parse(await readFile(guardFile('kill2'), 'utf8')) as { phase: string; jobId: string; deadline: string };
    return rec.phase === 'confirming' ? rec : null;
  }, 30_000, 25);
  agent.child.kill('SIGKILL');
  await agent.exited;
  agent = h.start();
  const r = await pending;
  const job = await waitFor('rolled-back verdict of the restarted agent', async () =>
    (await jobRecords(nf.fleet)).find((j) => j.id === g.jobId && j.state === 'rolled-back'), 20_000, 100);
  assert.match(job.reason ?? '', /^rolled back: hub unreachable 8 s after switch; re-activated \/nix\/store\/\S+-installed \(decided by the restarted agent\)/);
  assert.equal(await currentSystemPath(h.nix), installed);
  assert.equal(await profilePath(h.nix), installed);
  // The hub kept the guarded job open for the restarted agent's verdict.
  assert.equal(r.end?.['outcome'], 'rolled-back', JSON.stringify(r.end));
  await agent.stop();
});

test('agent down until after the deadline (a slow reboot): it rolls back at start without waiting', { skip }, async () => {
  const h = await guardedHost(nf, 'boot1');
  const installed = await currentSystemPath(h.nix);
  let agent = h.start();
  await nf.fleet.waitConnected(['boot1']);
  await h.setConfig({ label: 'cutnet' });
  void trigger(nf.fleet, 'boot1');
  const g = await waitFor('guard record in phase confirming', async () => {
    const rec = JSON.parse(await readFile(guardFile('boot1'), 'utf8').catch(() => '{}')) as { phase?: string; jobId: string; deadline: string };
    return rec.phase === 'confirming' ? rec : null;
  }, 30_000, 25);
  agent.child.kill('SIGKILL');
  await agent.exited;
  // Stay down past the deadline.
  await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(g.deadline) - Date.now()) + 300));
  const t0 = Date.now();
  agent = h.start();
  const job = await waitFor('rolled-back verdict', async () =>
    (await jobRecords(nf.fleet)).find((j) => j.id === g.jobId && j.state === 'rolled-back'), 20_000, 100);
  assert.match(job.reason ?? '', /^rolled back: hub not reached within 3 s after switch \(the agent was down when the window ended\)/);
  assert.equal(await currentSystemPath(h.nix), installed);
  console.log(`# restart after the deadline -> rolled back and reported ${Date.now() - t0} ms after the agent started`);
  await agent.stop();
});
