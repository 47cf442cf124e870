// The NixOS VM tests (nixos/tests/vm.nix, reboot.nix) cannot run here (no
// KVM, no nixpkgs). This evaluates them as far as the vendored lib allows
// (nixos/tests/vm-eval.nix): every node and every specialisation through the
// real module system with Bento's modules from the flake, the addresses the
// test framework would assign, and the rendered Python test script, which
// python3 must parse. docs/nixos.md says what this does and does not prove.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { nixEval } from './nixos-nix.js';

interface NodeSummary {
  failedAssertions: string[]; warnings: string[]; etc: Record<string, string>; firewallTCP: number[]; defaultGateway: string | null; units: string[];
  hub: { package: string; hostKeyFile: string | null; openFirewall: boolean } | null;
  client: { package: string; json: Record<string, unknown> } | null;
  specialisations: Record<string, Omit<NodeSummary, 'specialisations'>>;
}
interface VmEval { name: string; nodes: Record<string, NodeSummary>; testScript: string }

const FLAKE_PACKAGE = /-bento-fleet-flake-x86_64-linux$/;
const STORE_KEY_WARNING = /^services\.bento\.hub\.hostKeyFile is in the Nix store/;

function vmEval(name: 'vm' | 'reboot'): VmEval {
  return nixEval<VmEval>(`import ./nixos/tests/vm-eval.nix { inherit libDir; test = "${name}"; }`);
}

function assertPythonParses(script: string, what: string): void {
  const r = spawnSync('python3', ['-c', 'import ast, sys; ast.parse(sys.stdin.read(), "testScript")'], { input: script, encoding: 'utf8' });
  assert.ok(!r.error, `python3 is needed to check the VM test scripts (Debian: apt-get install python3): ${r.error?.message}`);
  assert.equal(r.status, 0, `${what}: the test script is not valid Python:\n${r.stderr}`);
}

test('vm.nix: hub, router and client evaluate with the flake\'s modules; NAT addresses; specialisations; the script parses', () => {
  const v = vmEval('vm');
  assert.equal(v.name, 'bento');
  assert.deepEqual(Object.keys(v.nodes).sort(), ['client', 'hub', 'router']);
  for (const [n, node] of Object.entries(v.nodes)) {
    assert.deepEqual(node.failedAssertions, [], n);
    for (const [s, spec] of Object.entries(node.specialisations)) assert.deepEqual(spec.failedAssertions, [], `${n}/${s}`);
  }
  const { hub, client, router } = v.nodes as Record<'hub' | 'client' | 'router', NodeSummary>;
  assert.match(hub.hub!.package, FLAKE_PACKAGE, 'the module from the flake uses the flake\'s package');
  assert.deepEqual(hub.firewallTCP, [2222]);
  assert.ok(hub.units.includes('bento-hub'));
  assert.deepEqual(hub.warnings.map((w) => STORE_KEY_WARNING.test(w)), [true], 'only the expected warning: the test-only hub key is in the store');
  assert.equal(client.client!.json['name'], 'client', 'the agent registers under the node name the script enrols');
  assert.equal(client.client!.json['hubFingerprint'], 'SHA256:OxPHtnrxIMdAdRkKVMDCEo4jEeaBh11EabG2yQVXn30');
  assert.match(String((client.client!.json['rebuildCommand'] as string[])[0]), /-nixos-rebuild-standin$/);
  assert.equal(client.defaultGateway, '192.168.2.3', 'the router\'s address on the private vlan');
  assert.deepEqual(Object.keys(client.specialisations).sort(), ['broken', 'v2']);
  assert.equal(client.specialisations['v2']!.etc['bento-test-version'], '2');
  assert.equal(client.specialisations['broken']!.etc['bento-test-version'], 'broken');
  assert.equal(client.etc['bento-test-version'], '1');
  assert.equal(router.hub, null);
  assert.ok(v.testScript.includes('router_public = "192.168.1.3"') && v.testScript.includes('client_ip = "192.168.2.1"'), 'addresses rendered into the script');
  assertPythonParses(v.testScript, 'vm.nix');
});

test('reboot.nix: hub and client (boot loader, kernel specialisations) evaluate; the script parses', () => {
  const v = vmEval('reboot');
  assert.equal(v.name, 'bento-reboot');
  const { hub, client } = v.nodes as Record<'hub' | 'client', NodeSummary>;
  for (const node of [hub, client]) assert.deepEqual(node.failedAssertions, []);
  assert.match(hub.hub!.package, FLAKE_PACKAGE);
  assert.equal(client.client!.json['rebootOnKernelChange'], true);
  assert.equal(client.client!.json['rollbackTimeoutMs'], 120000);
  assert.deepEqual(Object.keys(client.specialisations).sort(), ['newkernel', 'samekernel']);
  for (const [s, spec] of Object.entries(client.specialisations)) {
    assert.deepEqual(spec.failedAssertions, [], s);
    assert.equal(spec.etc['bento-test-version'], s);
  }
  assertPythonParses(v.testScript, 'reboot.nix');
});

test('the script check can fail: broken Python is refused', () => {
  assert.throws(() => assertPythonParses('with subtest("x"):\nclient.succeed(', 'broken'), /not valid Python/);
});
