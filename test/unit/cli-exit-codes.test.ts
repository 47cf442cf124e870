// `bento-client --help` lists the exit codes the agent can return, not the
// hub's (HUB_NOT_RUNNING, FLEET_NOT_INITIALIZED, ...). The list is checked
// against the sources: every error code the client's code (or the common code
// it runs) names must be in it, and every code in it must come from there or
// from the hub's side of the agent connection, which closes sessions with one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERRORS, isErrorCode } from '../../common/protocol/errors.js';
import { exitCodeTable, programHelp } from '../../common/platform/cli.js';
import { CLIENT_ERROR_CODES, clientProgram } from '../../client/cli/program.js';
import { hubProgram } from '../../hub/cli/program.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? tsFiles(p) : n.endsWith('.ts') ? [p] : [];
  });
}

function codesIn(files: string[]): Set<string> {
  const out = new Set<string>();
  for (const f of files) {
    // The list itself does not count as a use.
    const text = readFileSync(f, 'utf8').replace(/CLIENT_ERROR_CODES[^=]*=\s*\[[^\]]*\]/, '');
    for (const m of text.matchAll(/'([A-Z][A-Z_]+)'|ERRORS\.([A-Z][A-Z_]+)/g)) {
      const code = m[1] ?? m[2];
      if (isErrorCode(code)) out.add(code);
    }
  }
  return out;
}

test('bento-client lists exactly the codes its code and the hub\'s session errors can produce', () => {
  const client = codesIn([
    ...tsFiles(path.join(ROOT, 'client')),
    // Common code the agent runs; errors.ts (the registry) and admin.ts (the hub's admin API) are not.
    ...tsFiles(path.join(ROOT, 'common')).filter((f) => !/(errors|admin)\.ts$/.test(f)),
  ]);
  for (const c of client) assert.ok(CLIENT_ERROR_CODES.includes(c as never), `${c} is raised on the client side but missing from CLIENT_ERROR_CODES`);
  // The hub closes an agent's session with the code of what went wrong (hub/server): the agent exits with it.
  const hubSide = codesIn(tsFiles(path.join(ROOT, 'hub', 'server')));
  for (const c of CLIENT_ERROR_CODES) {
    assert.ok(client.has(c) || hubSide.has(c), `${c} is listed for bento-client but nothing on its side or the hub's session side raises it`);
  }
});

test('--help of each program lists only its codes; the hub lists every code', () => {
  const clientHelp = programHelp(clientProgram);
  for (const hubOnly of ['HUB_NOT_RUNNING', 'FLEET_NOT_INITIALIZED', 'UNKNOWN_HOST', 'NO_TARGETS', 'ADDRESS_IN_USE']) {
    assert.ok(!clientHelp.includes(hubOnly), `bento-client --help lists ${hubOnly}`);
  }
  for (const c of CLIENT_ERROR_CODES) assert.ok(clientHelp.includes(c), c);
  const hubHelp = programHelp(hubProgram);
  for (const c of Object.keys(ERRORS)) assert.ok(hubHelp.includes(c), c);
  assert.deepEqual(exitCodeTable(CLIENT_ERROR_CODES).at(-1), exitCodeTable().at(-1), 'the Ctrl-C row stays');
});
