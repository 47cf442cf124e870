// The configuration archive a cluster moves trees in (hub/publish/tree-archive.ts):
// a round trip gives a tree with the same content hash, and an archive that is
// not exactly what packTree writes (path tricks, duplicates, a file before its
// directory, a cut-off or oversized stream) is refused without writing outside
// the destination.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { hashTree } from '../../common/platform/tree-hash.js';
import { packTree, unpackTree } from '../../hub/publish/tree-archive.js';
import { tmpDir } from '../helpers/proc.js';

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

/** BUF in chunks of N bytes (headers and file data split anywhere). */
async function* chunks(buf: Buffer, n: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < buf.length; i += n) yield buf.subarray(i, i + n);
}

const MAGIC = 'bento-tree-archive-v1\n';
const data = (t: string): Buffer => Buffer.from(t);
const arc = (...lines: Array<string | Buffer>): Buffer => Buffer.concat([Buffer.from(MAGIC), ...lines.map((l) => (typeof l === 'string' ? Buffer.from(`${l}\n`) : l))]);

test('pack then unpack: the same tree (paths, contents, exec bits), whatever the chunking', async () => {
  const t = await tmpDir('bento-arc-');
  try {
    const src = path.join(t.dir, 'src');
    await mkdir(path.join(src, 'modules', 'empty'), { recursive: true });
    await writeFile(path.join(src, 'configuration.nix'), '{ ... }: { }\n');
    await writeFile(path.join(src, 'modules', 'zero'), '');
    await writeFile(path.join(src, 'run.sh'), '#!/bin/sh\necho "a \\"quoted\\" name"\n');
    await writeFile(path.join(src, 'we"ird\nname'), 'x');
    await chmod(path.join(src, 'run.sh'), 0o755);
    const check = async (tag: string, sizes: number[]): Promise<void> => {
      const want = await hashTree(src);
      const archive = await collect(packTree(src));
      for (const n of sizes) {
        const dest = path.join(t.dir, `out-${tag}-${n}`);
        const r = await unpackTree(chunks(archive, n), dest);
        assert.deepEqual(r, { files: want.files, bytes: want.bytes });
        assert.equal((await hashTree(dest)).hash, want.hash, `${tag}: chunks of ${n}`);
      }
    };
    // Byte by byte (every header and file split everywhere) on the small tree, bigger chunks once the big file is in.
    await check('small', [1, 7]);
    await writeFile(path.join(src, 'modules', 'big.bin'), Buffer.alloc(700_000, 0xab));
    await check('big', [4093, 1 << 20]);
    // A symlink in the source is not archived silently.
    await symlink('/etc/passwd', path.join(src, 'evil'));
    await assert.rejects(collect(packTree(src)), { code: 'PUBLISH_REFUSED' });
  } finally {
    await t.cleanup();
  }
});

test('archives that are not what packTree writes are refused, and nothing lands outside the destination', async () => {
  const t = await tmpDir('bento-arc-');
  try {
    const cases: Array<[string, Buffer, RegExp]> = [
      ['bad magic', Buffer.from('tar\n{"end":0}\n'), /not a Bento configuration archive/],
      ['dot-dot', arc('{"f":"../escape","n":1,"x":false}', data('x'), '{"end":1}'), /refused path/],
      ['dot-dot inside', arc('{"d":"a"}', '{"f":"a/../../escape","n":1,"x":false}', data('x'), '{"end":1}'), /refused path/],
      ['absolute', arc('{"f":"/tmp/escape","n":1,"x":false}', data('x'), '{"end":1}'), /refused path/],
      ['dot', arc('{"d":"."}', '{"end":0}'), /refused path/],
      ['empty component', arc('{"d":"a"}', '{"f":"a//b","n":1,"x":false}', data('x'), '{"end":1}'), /refused path/],
      ['NUL', arc('{"f":"a\\u0000b","n":1,"x":false}', data('x'), '{"end":1}'), /refused path/],
      ['file before its directory', arc('{"f":"sub/f","n":1,"x":false}', data('x'), '{"end":1}'), /before its directory/],
      ['duplicate file', arc('{"f":"a","n":1,"x":false}', data('x'), '{"f":"a","n":1,"x":false}', data('y'), '{"end":2}'), /appears twice/],
      ['duplicate directory', arc('{"d":"a"}', '{"d":"a"}', '{"end":0}'), /appears twice/],
      ['file then directory of the same name', arc('{"f":"a","n":1,"x":false}', data('x'), '{"d":"a"}', '{"end":1}'), /appears twice/],
      ['negative size', arc('{"f":"a","n":-1,"x":false}', '{"end":1}'), /no valid size/],
      ['no exec flag', arc('{"f":"a","n":1}', data('x'), '{"end":1}'), /no exec flag/],
      ['cut off in a file', Buffer.concat([Buffer.from(MAGIC), Buffer.from('{"f":"a","n":10,"x":false}\nabc')]), /cut off/],
      ['no end', arc('{"d":"a"}'), /cut off/],
      ['wrong count at the end', arc('{"f":"a","n":1,"x":false}', data('x'), '{"end":2}'), /the end says 2/],
      ['bytes after the end', arc('{"end":0}', 'more'), /after the end/],
      ['not JSON', arc('{"d":'), /not JSON/],
      ['a header too long', Buffer.concat([Buffer.from(MAGIC), Buffer.alloc(10_000, 0x61)]), /too long/],
    ];
    for (const [i, [name, buf, re]] of cases.entries()) {
      const dest = path.join(t.dir, 'case', String(i));
      await mkdir(path.dirname(dest), { recursive: true });
      await assert.rejects(unpackTree(chunks(buf, 5), dest), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'PROTOCOL_MALFORMED', name);
        assert.match(err.message, re, name);
        return true;
      });
    }
    // Nothing escaped: the temp dir holds only the case directories.
    assert.deepEqual(await readdir(t.dir), ['case']);
    // Limits: more files or bytes than allowed.
    await assert.rejects(unpackTree(chunks(arc('{"f":"a","n":1,"x":false}', data('x'), '{"f":"b","n":1,"x":false}', data('y'), '{"end":2}'), 64), path.join(t.dir, 'lim1'), { maxFiles: 1, maxBytes: 100 }), /more than 1 files/);
    await assert.rejects(unpackTree(chunks(arc('{"f":"a","n":200,"x":false}', Buffer.alloc(200), '{"end":1}'), 64), path.join(t.dir, 'lim2'), { maxFiles: 10, maxBytes: 100 }), /more than 100 bytes/);
  } finally {
    await t.cleanup();
  }
});
