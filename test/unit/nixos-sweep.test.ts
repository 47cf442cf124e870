// services.bento.hub.clusterSweep (nixos/modules/hub/sweep.nix) evaluated by
// the real module system (vendored nixpkgs lib, nixos/tests/eval.nix): a
// cluster hub gets a hardened oneshot running `bento-hub cluster sweep` and
// its timer; a single hub asking for it fails with a message naming the
// option; off by default. The sweep itself runs against real NATS in
// test/integration/cluster-content-sweep.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evalModules, evalExpr, nixError } from './nixos-nix.js';

interface Unit { description: string; after: string[]; wants: string[]; environment: Record<string, string>; restartIfChanged: boolean; serviceConfig: Record<string, unknown> }
interface View {
  failedAssertions: string[];
  units: Record<string, Unit>;
  timers: Record<string, { description: string; wantedBy: string[]; timerConfig: Record<string, unknown> }>;
  hub: { package: string } | null;
}

const CLUSTER_HUB = `{
  services.bento.hub = {
    enable = true;
    settings.cluster = { servers = [ "nats://10.0.0.1:4222" "nats://10.0.0.2:4222" "nats://10.0.0.3:4222" ]; hubName = "hub1"; };
  };
}`;

test('a cluster hub with clusterSweep: a hardened oneshot running bento-hub cluster sweep as the hub user, and its timer', () => {
  const v = evalModules<View>(`[ ${CLUSTER_HUB} { services.bento.hub.clusterSweep = { enable = true; onCalendar = "Sun 03:00"; minAge = "6h"; }; } ]`);
  assert.deepEqual(v.failedAssertions, []);
  const u = v.units['bento-hub-sweep']!;
  const sc = u.serviceConfig;
  assert.equal(sc['ExecStart'], `${v.hub!.package}/bin/bento-hub cluster sweep --dir /var/lib/bento --min-age 6h`);
  assert.deepEqual([sc['Type'], sc['User'], sc['Group'], sc['NoNewPrivileges'], sc['ProtectSystem'], sc['CapabilityBoundingSet']], ['oneshot', 'bento', 'bento', true, 'strict', ['']]);
  assert.equal(u.environment['BENTO_DIR'], '/var/lib/bento');
  assert.equal(u.restartIfChanged, false, 'a switch does not run it');
  assert.ok(u.after.includes('bento-hub.service'));
  assert.deepEqual(v.timers['bento-hub-sweep'], {
    description: 'Periodic Bento cluster sweep', wantedBy: ['timers.target'],
    timerConfig: { OnCalendar: 'Sun 03:00', Persistent: true, RandomizedDelaySec: '30min' },
  });
  // The defaults: daily, objects older than an hour.
  const d = evalModules<View>(`[ ${CLUSTER_HUB} { services.bento.hub.clusterSweep.enable = true; } ]`);
  assert.match(String(d.units['bento-hub-sweep']!.serviceConfig['ExecStart']), / --min-age 1h$/);
  assert.equal(d.timers['bento-hub-sweep']!.timerConfig['OnCalendar'], 'daily');
});

test('clusterSweep is off by default, refused on a single hub with the option named, and minAge must be a duration', () => {
  const off = evalModules<View>(`[ ${CLUSTER_HUB} ]`);
  assert.equal(off.units['bento-hub-sweep'], undefined);
  assert.equal(off.timers['bento-hub-sweep'], undefined);
  // What nixos-rebuild would say.
  const single = nixError(`let v = ${evalExpr('[ { services.bento.hub = { enable = true; clusterSweep.enable = true; }; } ]')}; in builtins.deepSeq v.system true`);
  assert.match(single, /Failed assertions: - services\.bento\.hub\.clusterSweep\.enable needs services\.bento\.hub\.settings\.cluster: a single hub keeps its configurations as files/);
  const bad = nixError(`builtins.deepSeq (${evalExpr(`[ ${CLUSTER_HUB} { services.bento.hub.clusterSweep = { enable = true; minAge = "an hour"; }; } ]`)}).units true`);
  assert.match(bad, /services\.bento\.hub\.clusterSweep\.minAge/);
});
