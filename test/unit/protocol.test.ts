import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineDecoder, encodeLine } from '../../common/protocol/codec.js';
import { forHub, HUB_CAPABILITIES, NOTE_CAPABILITY, parseMessage, type AgentMessage } from '../../common/protocol/messages.js';
import { parseAdminRequest } from '../../common/protocol/admin.js';
import { isHostName, isJobId, JOB_ID_ALPHABET, newJobIdBody } from '../../common/protocol/names.js';
import { newJob } from '../../hub/jobs/job-ids.js';
import { isStorePath } from '../../common/protocol/store-path.js';
import { fingerprintOfKeyLine, isFingerprint } from '../../common/protocol/fingerprint.js';
import type { BentoError } from '../../common/protocol/errors.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateEd25519 } from '../../common/platform/ed25519.js';

function decodeAll(chunks: Buffer[], max?: number): { values: unknown[]; errors: BentoError[] } {
  const values: unknown[] = [];
  const errors: BentoError[] = [];
  const d = new LineDecoder((v) => values.push(v), (e) => errors.push(e), max);
  for (const c of chunks) d.push(c);
  return { values, errors };
}

test('decoder reassembles lines split across chunks, in order', () => {
  const text = encodeLine({ a: 1 }) + encodeLine({ b: 'ü' }) + encodeLine({ c: [1, 2] });
  const buf = Buffer.from(text);
  for (let cut = 1; cut < buf.length; cut++) {
    const { values, errors } = decodeAll([buf.subarray(0, cut), buf.subarray(cut)]);
    assert.deepEqual(values, [{ a: 1 }, { b: 'ü' }, { c: [1, 2] }], `cut at ${cut}`);
    assert.equal(errors.length, 0);
  }
});

test('decoder refuses a line over the limit before buffering all of it, and stops', () => {
  const { values, errors } = decodeAll([Buffer.alloc(600, 0x61), Buffer.alloc(600, 0x61), Buffer.from('\n{"ok":1}\n')], 1000);
  assert.equal(errors.length, 1);
  assert.equal(errors[0]!.code, 'PROTOCOL_OVERSIZED');
  assert.deepEqual(values, [], 'nothing after the failure is delivered');
});

test('decoder reports invalid JSON once and ignores blank lines', () => {
  const { values, errors } = decodeAll([Buffer.from('\n\r\n{"x":1}\n{nope\n{"y":2}\n')]);
  assert.deepEqual(values, [{ x: 1 }]);
  assert.equal(errors.length, 1);
  assert.equal(errors[0]!.code, 'PROTOCOL_MALFORMED');
});

test('messages are validated per side and per field', () => {
  const hello = { type: 'hello', protocol: 1, name: 'web1', agentVersion: '1', system: null, generation: 3, configHash: null, capabilities: ['jobs'] };
  assert.equal(parseMessage(hello, 'agent').type, 'hello');
  assert.throws(() => parseMessage(hello, 'hub'), /unknown message type/);
  assert.throws(() => parseMessage({ ...hello, generation: -1 }, 'agent'), /generation/);
  assert.throws(() => parseMessage({ ...hello, capabilities: 'jobs' }, 'agent'), /capabilities/);
  const { name: _n, ...noName } = hello;
  assert.throws(() => parseMessage(noName, 'agent'), /"name" is missing/);
  assert.equal(parseMessage({ ...hello, extra: 'future field' }, 'agent').type, 'hello', 'unknown fields are ignored');
  assert.throws(() => parseMessage({ type: 'job.start', jobId: 'short', action: 'switch' }, 'hub'), /jobId/);
  assert.throws(() => parseMessage({ type: 'job.start', jobId: 'abcdefgh12', action: 'reboot' }, 'hub'), /action/);
  assert.throws(() => parseMessage(null, 'agent'), /not a JSON object/);
  assert.throws(() => parseMessage({ type: 'job.output', jobId: 'abcdefgh12', stream: 'stdout', data: 'x'.repeat(40_000) }, 'agent'), /longer than/);
});

test('job.start storePath (trigger --prebuilt): Nix store paths only, hostile values refused', () => {
  const start = { type: 'job.start', jobId: 'abcdefgh12', action: 'switch' };
  const good = [
    '/nix/store/0kfpajxh390kdswdbhn9f5pikjq93376-nixos-system-web1-24.05.20240101.abcdef',
    `/nix/store/${'a'.repeat(32)}-x`,
    `/nix/store/${'9'.repeat(32)}-${'n'.repeat(211)}`,
    '/nix/store/0kfpajxh390kdswdbhn9f5pikjq93376-a+b_c?d=e-f.g',
  ];
  for (const p of good) {
    assert.ok(isStorePath(p), p);
    assert.equal((parseMessage({ ...start, storePath: p, configHash: 'ab12' }, 'hub') as { storePath?: string }).storePath, p);
  }
  const hash = '0kfpajxh390kdswdbhn9f5pikjq93376';
  const hostile = [
    '', '/nix/store', '/nix/store/', `/nix/store/${hash}`, `/nix/store/${hash}-`,
    `/nix/store/${hash}-sys/bin/switch-to-configuration`, `/nix/store/${hash}-sys/`, `/nix/store/../../etc/shadow`,
    `/nix/store/${hash}-..`, `/nix/store/${hash}-a..b`, `/nix/store/${hash}-.hidden`, `/nix/store/${hash}-a b`,
    `/nix/store/${hash}-a\nb`, `/nix/store/${hash}-sys\n`, `/nix/store/${hash}-a;rm -rf /`, `/nix/store/${hash}-$(id)`,
    `/nix/store/${hash.toUpperCase()}-sys`, `/nix/store/${hash.slice(0, 31)}e-sys`, `/nix/store/${hash.slice(0, 31)}-sys`,
    `/nix/store//${hash}-sys`, `//nix/store/${hash}-sys`, `/nix/store/${hash}-sys\0`, `nix/store/${hash}-sys`,
    `/nix/storex/${hash}-sys`, `/gnu/store/${hash}-sys`, ` /nix/store/${hash}-sys`, `--option=/nix/store/${hash}-sys`,
    `/nix/store/${hash}-${'n'.repeat(212)}`, `/nix/store/${hash}-é`,
  ];
  for (const p of hostile) {
    assert.equal(isStorePath(p), false, JSON.stringify(p));
    assert.throws(() => parseMessage({ ...start, storePath: p }, 'hub'), /storePath/, JSON.stringify(p));
  }
  for (const v of [42, null, ['/nix/store/x'], { p: 1 }]) assert.throws(() => parseMessage({ ...start, storePath: v }, 'hub'), /storePath/);
  assert.throws(() => parseMessage({ ...start, configHash: '../x' }, 'hub'), /configHash/);
  assert.equal(parseMessage(start, 'hub').type, 'job.start', 'storePath stays optional');
});

test('hello reboot report fields are optional and validated', () => {
  const hello = { type: 'hello', protocol: 1, name: 'web1', agentVersion: '1', system: null, generation: 3, configHash: null, capabilities: ['jobs', 'prebuilt'] };
  const r = { rebootJobId: 'abcdefgh12', rebootRequestedAt: new Date().toISOString(), rebootMethod: 'kexec', rebootExpected: `/nix/store/${'a'.repeat(32)}-sys` };
  assert.equal(parseMessage({ ...hello, ...r }, 'agent').type, 'hello');
  assert.throws(() => parseMessage({ ...hello, ...r, rebootMethod: 'poweroff' }, 'agent'), /rebootMethod/);
  assert.throws(() => parseMessage({ ...hello, ...r, rebootJobId: 'x' }, 'agent'), /rebootJobId/);
});

test('admin requests are validated', () => {
  assert.deepEqual(parseAdminRequest({ op: 'list' }), { op: 'list' });
  assert.throws(() => parseAdminRequest({ op: 'shutdown' }), /unknown admin op/);
  assert.throws(() => parseAdminRequest({ op: 'proxy', host: 'web1', port: 70000 }), /port/);
  const trig = { op: 'trigger', hosts: ['web1'], all: false, tags: [], action: 'switch', queue: false, follow: true };
  assert.equal((parseAdminRequest({ ...trig, prebuilt: true }) as { prebuilt?: boolean }).prebuilt, true);
  assert.equal(parseAdminRequest(trig).op, 'trigger', 'prebuilt is optional');
  assert.throws(() => parseAdminRequest({ ...trig, prebuilt: 'yes' }), /prebuilt/);
});

test('host names are DNS labels only', () => {
  for (const ok of ['web1', 'a', 'db-2', 'x'.repeat(63), '0day']) assert.ok(isHostName(ok), ok);
  for (const bad of ['', '-a', 'a-', 'A', 'a.b', 'a/b', '..', 'x'.repeat(64), 'a_b', 'é', 'a b', 'a\n']) assert.ok(!isHostName(bad), JSON.stringify(bad));
});

test('fingerprints match OpenSSH (ssh-keygen -lf)', () => {
  const line = generateEd25519().public;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fp-'));
  writeFileSync(path.join(dir, 'k.pub'), `${line}\n`);
  const openssh = execFileSync('ssh-keygen', ['-lf', path.join(dir, 'k.pub')], { encoding: 'utf8' }).split(' ')[1];
  rmSync(dir, { recursive: true });
  const fp = fingerprintOfKeyLine(line);
  assert.ok(isFingerprint(fp));
  assert.equal(fp, openssh);
});

test('job ids: one rule (isJobId) for the wire, store keys, log file names and URLs', () => {
  for (const ok of ['V1StGXR8_Z5jdHi6', 'local-abcdefghijklmnop', 'pull-12345678', 'a'.repeat(64)]) assert.ok(isJobId(ok), ok);
  for (const bad of ['short', 'a'.repeat(65), '../etc/x', 'job id', 'job.12345678', '', 42, null]) assert.ok(!isJobId(bad), String(bad));
  assert.throws(() => parseMessage({ type: 'job.output', jobId: '../../x123456', stream: 'stdout', data: 'x' }, 'agent'));
});

test('agent notes: a third output stream, sent only to hubs that announce it; older hubs get the same text on stderr', () => {
  const note: AgentMessage = { type: 'job.output', jobId: 'abcdefgh12345678', stream: 'note', data: 'bento: rollback guard: recorded /nix/store/x' };
  assert.deepEqual(parseMessage(note, 'agent'), note, 'this hub accepts a note');
  assert.ok(HUB_CAPABILITIES.includes(NOTE_CAPABILITY), 'and says so in its welcome');
  assert.throws(() => parseMessage({ ...note, stream: 'debug' }, 'agent'), /stream/);
  // A welcome from an older hub has no capabilities: the note goes out as the stderr line it always was.
  const old = parseMessage({ type: 'welcome', protocol: 1, hubVersion: '0.0.9', heartbeatMs: 1000 }, 'hub');
  assert.deepEqual(forHub(note, old as { capabilities?: string[] }), { ...note, stream: 'stderr' });
  assert.deepEqual(forHub(note, null), { ...note, stream: 'stderr' }, 'no welcome yet: nothing the hub may refuse');
  const current = parseMessage({ type: 'welcome', protocol: 1, hubVersion: '0.1.0', heartbeatMs: 1000, capabilities: [NOTE_CAPABILITY] }, 'hub');
  assert.equal(forHub(note, current as { capabilities?: string[] }), note);
  const line: AgentMessage = { type: 'job.output', jobId: 'abcdefgh12345678', stream: 'stderr', data: 'x' };
  assert.equal(forHub(line, null), line, 'other messages pass unchanged');
  // job.end may say the generation after the job (older hubs ignore the field).
  const end = { type: 'job.end', jobId: 'abcdefgh12345678', action: 'switch', outcome: 'success', exitCode: 0, startedAt: 'x', durationMs: 1, generation: 42 };
  assert.equal((parseMessage(end, 'agent') as { generation?: number }).generation, 42);
  assert.throws(() => parseMessage({ ...end, generation: -1 }, 'agent'), /generation/);
});

test('new job ids use an alphabet without look-alike characters; ids made before stay valid', () => {
  assert.equal(JOB_ID_ALPHABET.length, 32);
  for (const c of 'ilouILOU_-ABCXYZ') assert.ok(!JOB_ID_ALPHABET.includes(c), `no ${c}`);
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i += 1) {
    const id = newJob('web1', 'switch').id;
    assert.match(id, /^[0-9a-hjkmnp-tv-z]{16}$/, id);
    assert.ok(isJobId(id) && isJobId(`local-${newJobIdBody()}`));
    seen.add(id);
  }
  assert.equal(seen.size, 2000, 'no repeats');
  // Every character of the alphabet turns up (it is the alphabet in use, not a subset).
  assert.equal(new Set([...seen].join('')).size, 32);
  for (const old of ['V1StGXR8_Z5jdHi6', 'hqUaj3u470ggvEwv', 'local-8otq9umJ7ix0WRNu', 'pull-lx2k9c1q-0a1b2c3d']) assert.ok(isJobId(old), old);
});
