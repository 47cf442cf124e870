// Key generation that never hands out a broken key. ssh2's own generator
// drops a leading zero byte of about 1 in 256 ed25519 public keys; a test
// that used it directly failed CI once in a while. So: every key comes from
// common/platform/ed25519.ts, and this file checks both halves of that.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ssh2 from 'ssh2';
import { generateEd25519 } from '../../common/platform/ed25519.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

test('generateEd25519: 2,000 pairs in a row all parse, are 32-byte keys and sign/verify', () => {
  // At 1 in 256, 2,000 raw draws hold a broken key with probability 1 - (255/256)^2000 > 99.9 %.
  for (let i = 0; i < 2000; i++) {
    const keys = generateEd25519();
    const pub = ssh2.utils.parseKey(keys.public);
    assert.ok(!(pub instanceof Error) && !Array.isArray(pub), `key ${i}: ${keys.public}`);
    assert.equal(pub.getPublicSSH().length, 51, `key ${i}: 4+11 name, 4+32 key`);
  }
});

test('no source file but common/platform/ed25519.ts calls ssh2\'s generateKeyPairSync', () => {
  const r = spawnSync('git', ['ls-files', '-z', '*.ts', '*.mjs', '*.js'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, `git ls-files failed (this check needs the git checkout): ${r.stderr}`);
  const files = r.stdout.split('\0').filter(Boolean);
  assert.ok(files.includes('common/platform/ed25519.ts'), 'the checkout is listed');
  const self = 'test/unit/ed25519.test.ts';
  const hits = files.filter((f) => f !== 'common/platform/ed25519.ts' && f !== self
    && /generateKeyPairSync\s*\(\s*['"]ed25519/.test(readFileSync(path.join(ROOT, f), 'utf8')));
  assert.deepEqual(hits, [], 'use generateEd25519() from common/platform/ed25519.ts');
});
