import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderCliDoc, committedCliDoc } from '../tools/cli-docs.js';
import { hubProgram } from '../../hub/cli/program.js';

test('docs/cli.md matches the CLI definitions (run `npm run docs` after changing a command)', () => {
  assert.equal(committedCliDoc(), renderCliDoc());
});

test('every hub command documents --dir and has a usage line starting with its name', () => {
  const doc = committedCliDoc();
  for (const c of hubProgram.commands) {
    assert.ok(c.usage.startsWith(c.name), c.name);
    assert.ok(doc.includes(`### bento-hub ${c.name}`), c.name);
  }
});
