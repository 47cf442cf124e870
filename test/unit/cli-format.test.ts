// The CLI's small text helpers: the nearest known name for a typo, tables
// padded on visible width (colour codes take no columns), and the fan-out
// summary sentence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closest } from '../../common/platform/cli.js';
import { formatTable, visibleWidth } from '../../hub/cli/util.js';
import { summaryLine, type HostPhase } from '../../hub/cli/fanout-progress.js';

test('closest: a swap, a missing or extra letter, a prefix; nothing for a stranger', () => {
  const opts = ['dir', 'json', 'tag', 'queue', 'wait', 'all', 'action', 'prebuilt'];
  assert.equal(closest('dri', opts), 'dir');
  assert.equal(closest('jsno', opts), 'json');
  assert.equal(closest('tags', opts), 'tag');
  assert.equal(closest('queu', opts), 'queue');
  assert.equal(closest('prebuild', opts), 'prebuilt');
  assert.equal(closest('actoin', opts), 'action');
  assert.equal(closest('frobnicate', opts), null);
  assert.equal(closest('x', opts), null);
  assert.equal(closest('stauts', ['status', 'list', 'trigger']), 'status');
});

test('formatTable pads coloured cells on their visible width', () => {
  const green = (s: string): string => `\x1b[32m${s}\x1b[0m`;
  const out = formatTable(['HOST', 'OUTCOME', 'EXIT'], [['web1', green('success'), '0'], ['db10', '\x1b[31mfailure\x1b[0m', '1']]);
  const lines = out.trimEnd().split('\n').map((l) => l.replace(/\x1b\[[0-9;]*m/g, ''));
  assert.deepEqual(lines, ['HOST  OUTCOME  EXIT', 'web1  success  0', 'db10  failure  1']);
  assert.equal(visibleWidth(green('abc')), 3);
});

test('summaryLine counts hosts by phase and names the few still running or awaited', () => {
  const p = new Map<string, HostPhase>([['a', 'success'], ['b', 'failed'], ['c', 'running'], ['d', 'success'], ['e', 'waiting'], ['f', 'queued']]);
  assert.equal(summaryLine(p, 12_300), '3/6 done, 1 failed, 1 running (c), 1 queued, waiting for e to connect · 12s');
  const many = new Map<string, HostPhase>(['h1', 'h2', 'h3', 'h4', 'h5'].map((h) => [h, 'running']));
  assert.equal(summaryLine(many, 0), '0/5 done, 0 failed, 5 running (h1, h2, h3, +2) · 0s');
});
