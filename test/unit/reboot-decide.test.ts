// Reboot on kernel change (issue 9), decided from REAL store paths: fixture
// systems built by nix-build whose kernel/initrd/kernel-modules are symlinks
// into separate store paths that depend on the kernel version alone.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, symlink, rm, writeFile, chmod, mkdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { tmpDir } from '../helpers/proc.js';
import { buildFixture, makeNixEnv, nixAvailable, nixUnavailableReason, writeFixtureConfig, type NixEnv } from '../fixtures/nix.js';
import { decideReboot } from '../../client/reboot/decide.js';
import { RebootHooks } from '../../client/reboot/hooks.js';
import { kexecArgv, readKexecInputs } from '../../client/reboot/kexec.js';
import { pino, destination } from 'pino';
import type { JobEnd, JobStart } from '../../common/protocol/messages.js';

const skip = !nixAvailable() && nixUnavailableReason();
let dir = '';
let cleanup: () => Promise<void> = async () => {};
let env: NixEnv;
const sys: Record<'a' | 'b' | 'c', string> = { a: '', b: '', c: '' };

before(async () => {
  if (skip) return;
  ({ dir, cleanup } = await tmpDir('bento-reboot-'));
  env = await makeNixEnv(dir);
  const specs = { a: '6.1.0-bento', b: '6.1.0-bento', c: '6.6.0-bento' } as const;
  for (const [label, kernelVersion] of Object.entries(specs) as Array<['a' | 'b' | 'c', string]>) {
    const f = path.join(dir, `${label}.nix`);
    await writeFixtureConfig(f, { host: 'web1', label: `reboot-${label}`, kernelVersion });
    sys[label] = await buildFixture(f, env);
  }
});
after(async () => { await cleanup(); });

test('same kernel derivation, different system: no reboot', { skip }, async () => {
  assert.notEqual(sys.a, sys.b);
  const d = await decideReboot(sys.a, sys.b);
  assert.equal(d.reboot, false);
  assert.deepEqual(d.changed, []);
  assert.match(d.from.kernel ?? '', /^\/nix\/store\/[a-z0-9]{32}-linux-6\.1\.0-bento\/bzImage$/);
  assert.equal(d.from.kernel, d.to.kernel);
});

test('changed kernel version: kernel, initrd and modules all differ, reboot', { skip }, async () => {
  const d = await decideReboot(sys.a, sys.c);
  assert.equal(d.reboot, true);
  assert.deepEqual(d.changed, ['kernel', 'initrd', 'kernel-modules']);
  assert.match(d.to.kernel ?? '', /linux-6\.6\.0-bento\/bzImage$/);
  assert.match(d.to.initrd ?? '', /initrd-linux-6\.6\.0-bento\/initrd$/);
});

test('a system without boot artifacts vs one with them counts as changed; none on both sides does not', { skip }, async () => {
  const noKernel = '/nix/store'; // any existing dir without kernel/initrd
  assert.equal((await decideReboot(noKernel, noKernel)).reboot, false);
  assert.equal((await decideReboot(noKernel, sys.a)).reboot, true);
});

async function hooksFixture(name: string, enabled = true, extra: { method?: 'reboot' | 'kexec'; env?: Record<string, string> } = {}) {
  const stateDir = path.join(dir, `state-${name}`);
  await rm(stateDir, { recursive: true, force: true });
  await import('node:fs/promises').then((m) => m.mkdir(stateDir, { recursive: true }));
  const current = path.join(stateDir, 'current-system');
  const rec = path.join(stateDir, 'reboot-requests');
  const script = path.join(stateDir, 'fake-reboot');
  await writeFile(script, `#!/bin/sh\necho "reboot $*" >> "${rec}"\n`);
  await chmod(script, 0o755);
  const lines: string[] = [];
  const logFile = path.join(stateDir, 'agent.log');
  const log = pino({ level: 'info' }, destination({ dest: logFile, sync: true }));
  const hooks = new RebootHooks({ enabled, command: [script, '--now'], currentSystem: current, systemProfile: current, stateDir, log, unreported: async () => [], ackWaitMs: 10, ...extra });
  const point = async (p: string): Promise<void> => { await rm(current, { force: true }); await symlink(p, current); };
  const runJob = async (jobId: string, from: string, to: string, outcome: 'success' | 'failure' = 'success'): Promise<void> => {
    const job: JobStart = { type: 'job.start', jobId, action: 'switch' };
    await point(from);
    await hooks.prepare(job);
    await point(to);
    const res = await hooks.settle(job, { outcome, exitCode: outcome === 'success' ? 0 : 1 }, (l) => lines.push(l));
    assert.equal(res.outcome, outcome, 'the reboot hook never changes the verdict');
    const end: JobEnd = { type: 'job.end', jobId, action: 'switch', outcome, exitCode: 0, startedAt: new Date().toISOString(), durationMs: 1 };
    await hooks.ended(job, end);
  };
  return { hooks, rec, lines, runJob, stateDir, logFile };
}

test('switch to a new kernel runs the reboot command once and leaves a marker reported at the next start', { skip }, async () => {
  const f = await hooksFixture('changed');
  await f.runJob('job00001', sys.a, sys.c);
  assert.equal(await readFile(f.rec, 'utf8'), 'reboot --now\n');
  assert.ok(f.lines.some((l) => /kernel, initrd, kernel-modules changed: rebooting/.test(l)), f.lines.join('\n'));
  const marker = await f.hooks.atStart();
  assert.equal(marker?.jobId, 'job00001');
  assert.equal(marker?.from, sys.a);
  assert.equal(marker?.to, sys.c);
  assert.equal(marker?.method, 'reboot');
  // Reported in every hello until a hub welcomes one; only then is the marker gone.
  await f.hooks.onConnected();
  assert.ok(existsSync(path.join(f.stateDir, 'reboot.json')), 'no hello carried it yet: kept');
  assert.deepEqual(await f.hooks.helloFields(), { rebootJobId: 'job00001', rebootRequestedAt: marker!.requestedAt, rebootMethod: 'reboot', rebootExpected: sys.c });
  await f.hooks.onConnected();
  assert.equal(existsSync(path.join(f.stateDir, 'reboot.json')), false, 'marker cleared once reported');
  assert.deepEqual(await f.hooks.helloFields(), {});
  assert.equal(await f.hooks.atStart(), null);
  // A marker the hub would refuse in hello (a foreign or damaged file) is dropped, never sent.
  await writeFile(path.join(f.stateDir, 'reboot.json'), JSON.stringify({ jobId: 'x y', requestedAt: 'now', to: sys.c }));
  assert.equal(await f.hooks.atStart(), null);
  assert.equal(existsSync(path.join(f.stateDir, 'reboot.json')), false);
  assert.deepEqual(await f.hooks.helloFields(), {});
});

test('switch with the same kernel, a failed switch, or the option off: no reboot command', { skip }, async () => {
  const f = await hooksFixture('unchanged');
  await f.runJob('j2', sys.a, sys.b);
  await f.runJob('j3', sys.a, sys.c, 'failure');
  assert.equal(existsSync(f.rec), false);
  assert.ok(f.lines.some((l) => /no reboot needed/.test(l)));
  const off = await hooksFixture('off', false);
  await off.runJob('j4', sys.a, sys.c);
  assert.equal(existsSync(off.rec), false);
  assert.deepEqual(off.hooks.decisions, []);
});

test('kexec argv is built from the new system\'s real store paths (kernel, initrd, init, kernel-params)', { skip }, async () => {
  const inputs = await readKexecInputs(sys.c);
  assert.equal(typeof inputs, 'object', String(inputs));
  const plan = kexecArgv(inputs as Exclude<typeof inputs, string>);
  const params = (await readFile(path.join(sys.c, 'kernel-params'), 'utf8')).trim();
  assert.equal(params, 'loglevel=4 bento.fixture=reboot-c');
  assert.deepEqual(plan.load, ['kexec', '--load', `${sys.c}/kernel`, `--initrd=${sys.c}/initrd`, `--append=${params} init=${sys.c}/init`]);
  assert.deepEqual(plan.exec, ['systemctl', 'kexec']);
  assert.match(await realpath(`${sys.c}/kernel`), /^\/nix\/store\/[a-z0-9]{32}-linux-6\.6\.0-bento\/bzImage$/);
  assert.ok(existsSync(`${sys.c}/init`));
  assert.match(String(await readKexecInputs('/nix/store')), /kernel does not exist/, 'no kernel: a reason, not a plan');
});

test('kexec not installed, or its load failing: the reboot command runs instead, with the reason logged', { skip }, async () => {
  // PATH without kexec (kexec-tools is not installed on these machines; it must never really run here).
  const bin = path.join(dir, 'no-kexec-bin');
  await mkdir(bin, { recursive: true });
  const missing = await hooksFixture('kexec-missing', true, { method: 'kexec', env: { PATH: bin } });
  await missing.runJob('kexec0001', sys.a, sys.c);
  assert.equal(await readFile(missing.rec, 'utf8'), 'reboot --now\n');
  assert.match(await waitLog(missing.logFile, /kexec not possible; rebooting instead/), /kexec is not installed \(kexec-tools\)/);
  assert.equal((await missing.hooks.atStart())?.method, 'reboot', 'the marker says how the host really went down');
  assert.ok(missing.lines.some((l) => /rebooting after this job \(rebootOnKernelChange, by kexec when possible\)/.test(l)));
  // A kexec whose load the kernel refuses (stand-in: exits 1 like kexec-tools without CAP_SYS_BOOT).
  const failing = path.join(dir, 'failing-kexec-bin');
  await mkdir(failing, { recursive: true });
  await writeFile(path.join(failing, 'kexec'), '#!/bin/sh\necho "kexec_load failed: Operation not permitted" >&2\nexit 1\n');
  await chmod(path.join(failing, 'kexec'), 0o755);
  const refused = await hooksFixture('kexec-refused', true, { method: 'kexec', env: { PATH: `${failing}:/usr/bin:/bin` } });
  await refused.runJob('kexec0002', sys.a, sys.c);
  assert.equal(await readFile(refused.rec, 'utf8'), 'reboot --now\n');
  assert.match(await waitLog(refused.logFile, /kexec not possible/), /kexec --load exited with status 1: kexec_load failed: Operation not permitted/);
});

async function waitLog(file: string, re: RegExp): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const text = await readFile(file, 'utf8').catch(() => '');
    const line = text.split('\n').find((l) => re.test(l));
    if (line) return line;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no log line matching ${re} in ${file}`);
}
