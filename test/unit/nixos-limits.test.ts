// services.bento.hub.settings.limits (issue 13): the module's typed limits
// against the hub's own defaults and ranges, their rendering (nulls dropped,
// Tor's address exempted by onion.enable) and the mistakes refused at
// evaluation, on the real module system like nixos-eval.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateHubConfig } from '../../hub/fleet/hub-config.js';
import { DEFAULT_HUB_LIMITS } from '../../hub/fleet/limits.js';
import { ADMISSION_RANGES } from '../../hub/server/admission-limits.js';
import { SESSION_RANGES } from '../../hub/server/inbound-gate.js';
import { CONN_RANGES } from '../../hub/server/conn-limits.js';
import { ADOPT_RANGES } from '../../hub/jobs/adopt-limits.js';
import { OUTPUT_RANGES } from '../../hub/store/output-cap.js';
import { FOLLOWER_RANGES } from '../../hub/events/follower.js';
import { evalExpr, evalModules, nixError, nixEval, type Obj } from './nixos-nix.js';

const LIMIT_RANGES = { ...ADMISSION_RANGES, ...SESSION_RANGES, ...CONN_RANGES, ...ADOPT_RANGES, ...OUTPUT_RANGES, ...FOLLOWER_RANGES };
interface View { failedAssertions: string[]; warnings: string[] | null; hub: { rendered: { json: string | null } } | null }
const view = (modules: string): View => evalModules<View>(`[ ${modules} ]`);
const buildError = (modules: string): string =>
  nixError(`let v = ${evalExpr(`[ ${modules} ]`)}; in builtins.deepSeq v.system (builtins.deepSeq v true)`);

test('settings.limits: typed like the hub\'s own limits, rendered without nulls, onion.enable exempts Tor\'s address next to the admin\'s', () => {
  const v = view(`{ services.bento.hub = { enable = true; settings = { listen = "[::]:2222"; limits = { perSourceUnauthenticated = 64; jobOutputBytes = 33554432; exempt = [ "10.1.0.0/16" ]; }; }; onion.enable = true; }; }`);
  assert.deepEqual(v.failedAssertions, []);
  const hubJson = JSON.parse(v.hub!.rendered.json!) as Obj;
  // Definitions of a list merge in module order: compare the exempt sources as a set.
  const { exempt, ...rest } = hubJson['limits'] as { exempt: string[] };
  assert.deepEqual(rest, { perSourceUnauthenticated: 64, jobOutputBytes: 33554432 });
  assert.deepEqual([...exempt].sort(), ['10.1.0.0/16', '::1']);
  const limits = validateHubConfig(hubJson).limits!;
  assert.equal(limits.perSourceUnauthenticated, 64);
  assert.deepEqual([...limits.exempt].sort(), ['10.1.0.0/16', '::1']);
  // Nothing set, no onion: no section at all (the hub's defaults).
  assert.equal(JSON.parse(view(`{ services.bento.hub.enable = true; }`).hub!.rendered.json!)['limits'], undefined);
  // A listen address by name: Tor's source cannot be named for it, so the module says what to do.
  const named = view(`{ services.bento.hub = { enable = true; settings.listen = "hub.internal:2222"; onion.enable = true; }; }`);
  assert.equal(JSON.parse(named.hub!.rendered.json!)['limits'], undefined);
  assert.ok(named.warnings!.some((w) => /add it to services\.bento\.hub\.settings\.limits\.exempt/.test(w)), String(named.warnings));
});

test('settings.limits: every default and range is the hub\'s own (nixos/modules/hub/limits.nix against hub/fleet/limits.ts)', () => {
  const nix = nixEval<Record<string, { default: number; min: number; max: number }>>('import ./nixos/modules/hub/limits.nix');
  const { exempt: _e, ...defaults } = DEFAULT_HUB_LIMITS;
  assert.deepEqual(Object.keys(nix).sort(), Object.keys(defaults).sort(), 'limits.nix has one entry per hub limit');
  for (const [k, l] of Object.entries(nix)) {
    assert.equal(l.default, (defaults as Record<string, number>)[k], `${k}: default`);
    assert.deepEqual([l.min, l.max], (LIMIT_RANGES as Record<string, [number, number]>)[k], `${k}: range`);
  }
});

const WRONG: Array<[string, string, RegExp]> = [
  ['hub: a limit out of its range', 'services.bento.hub.settings.limits.maxHandshakes = 0;', /option `services\.bento\.hub\.settings\.limits\.maxHandshakes' is not of type `null or integer between 1 and 4096/],
  ['hub: a misspelled limit', 'services.bento.hub.settings.limits.maxHandshake = 8;', /services\.bento\.hub\.settings\.limits\.maxHandshake' does not exist/],
  ['hub: output tail over half', 'services.bento.hub.settings.limits.jobOutputTailBytes = 16777216;', /limits\.jobOutputTailBytes \(16777216\) must be at most half of jobOutputBytes/],
  ['hub: exempt not an address', 'services.bento.hub.settings.limits.exempt = [ "tor" ];', /services\.bento\.hub\.settings\.limits\.exempt must list addresses or CIDRs/],
];

test('settings.limits: each wrong setting fails evaluation, naming the option and the fix', () => {
  for (const [what, setting, msg] of WRONG) assert.match(buildError(`{ services.bento.hub.enable = true; ${setting} }`), msg, what);
});
