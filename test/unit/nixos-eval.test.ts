// Bento's NixOS modules evaluated by the REAL module system (lib.evalModules
// from the vendored nixpkgs lib), with typed declarations of the NixOS options
// they touch (nixos/tests/nixos-options-stub.nix, no catch-all) and a stand-in
// pkgs: what a typical hub and a typical host would get (units, hardening,
// restart behaviour, timers, users, /etc, firewall, Tor, nix.settings), the
// three defects of issue 14, and wrong settings failing with a message that
// names the option and the fix. Needs nix-instantiate and the nixpkgs lib
// (see nixos/tests/nixpkgs-lib.mjs); fails, never skips, without them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateClientConfig } from '../../client/config.js';
import { validateHubConfig } from '../../hub/fleet/hub-config.js';
import { CLUSTER_LOG_MAX_FILES } from '../../hub/publish/settings.js';
import { evalExpr, evalModules, nixError, type Obj } from './nixos-nix.js';

const FP = 'SHA256:OxPHtnrxIMdAdRkKVMDCEo4jEeaBh11EabG2yQVXn30';

interface Drv { path: string; name: string | null; json: string | null; text: string | null; buildCommand: string | null }
interface Unit { description: string; wantedBy: string[]; wants: string[]; after: string[]; path: string[]; environment: Record<string, string>; restartIfChanged: boolean; stopIfChanged: boolean; serviceConfig: Record<string, unknown> }
interface View {
  failedAssertions: string[]; warnings: string[] | null;
  units: Record<string, Unit>; timers: Record<string, { description: string; wantedBy: string[]; timerConfig: Record<string, string> }>;
  tmpfiles: string[]; users: Record<string, Obj>; groups: Record<string, Obj>;
  etc: Record<string, { text: string | null; source: Drv | null; target: string }>;
  systemPackages: string[]; variables: Record<string, string>; firewallTCP: number[];
  tor: { enable: boolean; clientEnable: boolean; onionServices: Record<string, { map: Array<{ port: number; target: { addr: string; port: number } | null }> }> };
  nixSettings: { substituters: string[]; 'trusted-public-keys': string[] };
  hub: { package: string; configFile: Drv; rendered: Drv } | null;
  client: { package: string; configFile: Drv; rendered: Drv } | null;
}

const view = (modules: string): View => evalModules<View>(`[ ${modules} ]`);
/** What nixos-rebuild would say: assertions first (NixOS's "Failed assertions:"), then everything the system holds. */
const buildError = (modules: string): string =>
  nixError(`let v = ${evalExpr(`[ ${modules} ]`)}; in builtins.deepSeq v.system (builtins.deepSeq v true)`);

const TYPICAL_HUB = `{
  services.bento.hub = {
    enable = true;
    openFirewall = true;
    settings = { listen = "0.0.0.0:2222"; wsListen = "127.0.0.1:8022"; adminGroup = "wheel"; };
    onion.enable = true;
  };
}`;

const TYPICAL_CLIENT = `({ pkgs, ... }: {
  networking.hostName = "web1";
  services.openssh.enable = true;
  services.tor = { enable = true; client.enable = true; };
  services.bento.client = {
    enable = true;
    hub = "ssh://hub.example.org:2222";
    hubFingerprint = "${FP}";
    endpoints = [ { url = "ssh://bentohubxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion:2222"; proxy = "socks5h://127.0.0.1:9050"; } ];
    flake = "/var/lib/bento-client/config#web1";
  };
})`;

test('a typical hub: hardened unit, first-start init, user and group, hub.json checked at build time, firewall, onion service', () => {
  const v = view(TYPICAL_HUB);
  assert.deepEqual(v.failedAssertions, []);
  assert.deepEqual(v.warnings, []);
  const pkg = v.hub!.package;
  const u = v.units['bento-hub']!;
  const sc = u.serviceConfig;
  assert.equal(sc['ExecStart'], `${pkg}/bin/bento-hub serve --dir /var/lib/bento --log-level info`);
  assert.deepEqual([sc['User'], sc['Group'], sc['Restart'], sc['RestartSec'], sc['UMask']], ['bento', 'bento', 'on-failure', '2s', '0027']);
  assert.deepEqual(u.wantedBy, ['multi-user.target']);
  assert.deepEqual(u.after, ['network.target']);
  assert.equal(u.restartIfChanged, true, 'the hub restarts with a new package or hub.json');
  for (const [k, val] of Object.entries({
    NoNewPrivileges: true, ProtectSystem: 'strict', ProtectHome: true, PrivateTmp: true, PrivateDevices: true,
    ProtectKernelTunables: true, ProtectKernelModules: true, ProtectKernelLogs: true, ProtectControlGroups: true,
    ProtectClock: true, ProtectHostname: true, ProtectProc: 'invisible', ProcSubset: 'pid', RestrictNamespaces: true,
    RestrictRealtime: true, RestrictSUIDSGID: true, LockPersonality: true, RemoveIPC: true, SystemCallArchitectures: 'native',
  })) assert.equal(sc[k], val, `hardening ${k}`);
  assert.deepEqual(sc['RestrictAddressFamilies'], ['AF_UNIX', 'AF_INET', 'AF_INET6']);
  assert.deepEqual(sc['SystemCallFilter'], ['@system-service', '~@privileged']);
  assert.deepEqual(sc['CapabilityBoundingSet'], [''], 'no capability without a port below 1024');
  assert.deepEqual(sc['AmbientCapabilities'], []);
  assert.equal(sc['MemoryDenyWriteExecute'], undefined, 'V8 needs W+X pages');
  assert.deepEqual(sc['ReadWritePaths'], ['/var/lib/bento']);
  // wheel may use the admin socket: the hub joins wheel, the directory becomes traversable.
  assert.deepEqual([sc['StateDirectory'], sc['StateDirectoryMode'], sc['SupplementaryGroups']], ['bento', '0751', ['wheel']]);
  assert.deepEqual(v.tmpfiles, [], 'a StateDirectory under /var/lib needs no tmpfiles rule');
  assert.equal(u.environment['BENTO_DIR'], '/var/lib/bento');
  assert.equal(v.variables['BENTO_DIR'], '/var/lib/bento', 'the admin CLI finds the fleet without --dir');
  assert.ok(v.systemPackages.includes(pkg));

  assert.deepEqual(v.users['bento'], { name: 'bento', isSystemUser: true, isNormalUser: false, group: 'bento', extraGroups: [], home: '/var/lib/bento', description: 'Bento hub' });
  assert.deepEqual(Object.keys(v.groups), ['bento']);

  // hub.json: rendered from settings, validated by the hub's own loader in the build, installed at every start.
  const { configFile, rendered } = v.hub!;
  const hubJson = JSON.parse(rendered.json!) as Obj;
  // onion.enable: every onion agent comes from Tor's 127.0.0.1, exempted from the per-source limits.
  assert.deepEqual(hubJson, { listen: '0.0.0.0:2222', wsListen: '127.0.0.1:8022', wsPath: '/bento', heartbeatMs: 25000, adminGroup: 'wheel', jobHistory: 50, limits: { exempt: ['127.0.0.1'] } });
  validateHubConfig(hubJson);
  assert.match(configFile.buildCommand!, /validateHubConfig/);
  assert.ok(configFile.buildCommand!.includes(`${pkg}/lib/node_modules/bento-fleet/dist/hub/fleet/hub-config.js ${rendered.path}`));
  const prestart = String(sc['ExecStartPre']);
  assert.match(prestart, /-bento-hub-prestart$/);

  // Only the public SSH port: wsListen is on loopback (nginx in front).
  assert.deepEqual(v.firewallTCP, [2222]);
  assert.deepEqual(v.tor.onionServices['bento']!.map, [{ port: 2222, target: { addr: '127.0.0.1', port: 2222 } }]);
  assert.equal(v.tor.enable, true);
});

test('hub: a listen port below 1024 gets CAP_NET_BIND_SERVICE only; a dataDir outside /var/lib gets a tmpfiles rule; no admin group keeps 0750', () => {
  const v = view(`{ services.bento.hub = { enable = true; dataDir = "/srv/fleet"; openFirewall = true;
    settings = { listen = "[::]:2222"; wsListen = "0.0.0.0:443"; tls = { cert = "/var/lib/acme/h/fullchain.pem"; key = "/var/lib/acme/h/key.pem"; }; }; }; }`);
  assert.deepEqual(v.failedAssertions, []);
  const sc = v.units['bento-hub']!.serviceConfig;
  assert.deepEqual([sc['CapabilityBoundingSet'], sc['AmbientCapabilities']], [['CAP_NET_BIND_SERVICE'], ['CAP_NET_BIND_SERVICE']]);
  assert.equal(sc['StateDirectory'], undefined);
  assert.deepEqual(v.tmpfiles, ['d /srv/fleet 0750 bento bento -']);
  assert.deepEqual(sc['ReadWritePaths'], ['/srv/fleet']);
  assert.equal(sc['ExecStart'], `${v.hub!.package}/bin/bento-hub serve --dir /srv/fleet --log-level info`);
  assert.deepEqual(v.firewallTCP, [2222, 443]);
  assert.equal(v.users['bento']!['home'], '/srv/fleet');
});

test('defect 1: services.bento.hub.user = "fleet" creates that user and group, and the unit runs as them', () => {
  const v = view('{ services.bento.hub = { enable = true; user = "fleet"; group = "fleet"; }; }');
  assert.deepEqual(v.failedAssertions, []);
  assert.deepEqual(v.users['fleet'], { name: 'fleet', isSystemUser: true, isNormalUser: false, group: 'fleet', extraGroups: [], home: '/var/lib/bento', description: 'Bento hub' });
  assert.ok('fleet' in v.groups, 'group fleet exists');
  assert.equal(v.users['bento'], undefined, 'no unused bento user');
  const sc = v.units['bento-hub']!.serviceConfig;
  assert.deepEqual([sc['User'], sc['Group']], ['fleet', 'fleet']);
  // Only the user renamed: it joins the (created) default group.
  const w = view('{ services.bento.hub = { enable = true; user = "fleet"; }; }');
  assert.equal(w.users['fleet']!['group'], 'bento');
  assert.ok('bento' in w.groups);
  assert.match(buildError('{ services.bento.hub = { enable = true; user = "root"; }; }'),
    /Failed assertions: - services\.bento\.hub\.user and services\.bento\.hub\.group must not be root: .*keep the default "bento"/);
});

test('defect 2: openFirewall opens no port of a loopback listener (wsListen on 127.0.0.1, listen on ::1), and warns when that leaves nothing', () => {
  const v = view('{ services.bento.hub = { enable = true; openFirewall = true; settings = { listen = "0.0.0.0:2222"; wsListen = "127.0.0.1:8022"; }; }; }');
  assert.deepEqual(v.firewallTCP, [2222]);
  const local = view('{ services.bento.hub = { enable = true; openFirewall = true; settings = { listen = "[::1]:2222"; wsListen = "localhost:8022"; }; }; }');
  assert.deepEqual(local.firewallTCP, []);
  assert.equal(local.warnings?.length, 1);
  assert.match(local.warnings![0]!, /services\.bento\.hub\.openFirewall is set, but settings\.listen and settings\.wsListen are both on loopback/);
  const shut = view('{ services.bento.hub = { enable = true; settings.wsListen = "0.0.0.0:8022"; }; }');
  assert.deepEqual(shut.firewallTCP, [], 'openFirewall off opens nothing');
});

test('defect 3: a key of services.bento.hub.settings the hub does not know (lisen) fails evaluation, naming the option', () => {
  const err = buildError('{ services.bento.hub = { enable = true; settings.lisen = "0.0.0.0:2222"; }; }');
  assert.match(err, /The option `services\.bento\.hub\.settings\.lisen' does not exist/);
  const nested = buildError('{ services.bento.hub = { enable = true; settings.publish.keepVersion = 3; }; }');
  assert.match(nested, /The option `services\.bento\.hub\.settings\.publish\.keepVersion' does not exist/);
  // The client's free-form escape hatch is refused by the agent's loader, as before.
  const v = view(`{ services.bento.client = { enable = true; hub = "ssh://h:2222"; hubFingerprint = "${FP}"; settings.autoApplly = true; }; }`);
  assert.throws(() => validateClientConfig(JSON.parse(v.client!.rendered.json!)), /unknown setting "autoApplly"/);
});

test('no catch-all: a misspelled option, Bento\'s or NixOS\'s, is an evaluation error', () => {
  assert.match(buildError(`{ services.bento.client = { enable = true; hub = "ssh://h:2222"; hubFingerprnt = "${FP}"; }; }`),
    /The option `services\.bento\.client\.hubFingerprnt' does not exist/);
  assert.match(buildError('{ networking.firewal.allowedTCPPorts = [ 22 ]; }'), /The option `networking\.firewal' does not exist/);
  assert.match(buildError('{ services.bento.hub.enable = true; systemd.service.extra = { }; }'), /The option `systemd\.service' does not exist/);
  // A module that sets an option NixOS does not have fails the same way.
  assert.match(buildError('{ imports = [ ({ ... }: { services.tor.relay.onionService.x = { }; }) ]; }'), /The option `services\.tor\.relay\.onionService' does not exist/);
});

test('a typical host: agent unit never restarted by a switch, pull timer, /etc files checked at build time, tools on PATH', () => {
  const v = view(TYPICAL_CLIENT);
  assert.deepEqual(v.failedAssertions, []);
  assert.deepEqual(v.warnings, [], 'openssh makes the host key, Tor has its SOCKS port');
  const pkg = v.client!.package;
  const u = v.units['bento-client']!;
  assert.equal(u.serviceConfig['ExecStart'], `${pkg}/bin/bento-client run --config /etc/bento/client.json --log-level info`);
  assert.deepEqual([u.serviceConfig['Restart'], u.serviceConfig['RestartSec'], u.serviceConfig['UMask']], ['always', '5s', '0077']);
  assert.deepEqual([u.restartIfChanged, u.stopIfChanged], [false, false], 'a switch run by the agent must not kill the agent');
  assert.deepEqual([u.wants, u.after, u.wantedBy], [['network-online.target'], ['network-online.target'], ['multi-user.target']]);
  assert.deepEqual([u.serviceConfig['StateDirectory'], u.serviceConfig['StateDirectoryMode'], u.serviceConfig['RuntimeDirectory'], u.serviceConfig['RuntimeDirectoryMode']],
    ['bento-client', '0700', 'bento-client', '0700']);
  assert.equal(u.serviceConfig['User'], undefined, 'root: it switches the system');
  for (const tool of ['-nix', '-git', '-openssh', '-systemd', '-coreutils']) assert.ok(u.path.some((p) => p.endsWith(tool)), `${tool} on PATH`);
  assert.equal(u.environment['HOME'], '/root');

  const pull = v.units['bento-client-pull']!;
  assert.equal(pull.serviceConfig['Type'], 'oneshot');
  assert.equal(pull.serviceConfig['ExecStart'], `${pkg}/bin/bento-client pull --config /etc/bento/client.json`);
  assert.deepEqual([pull.restartIfChanged, pull.stopIfChanged], [false, false]);
  assert.deepEqual(v.timers['bento-client-pull'], {
    description: 'Periodic Bento fallback pull', wantedBy: ['timers.target'],
    timerConfig: { OnBootSec: '5min', OnUnitActiveSec: '15min', RandomizedDelaySec: '5min' },
  });

  // /etc/bento/client.json is the rendered config as checked by `bento-client check-config` at build time.
  const { configFile, rendered } = v.client!;
  assert.equal(v.etc['bento/client.json']!.source!.path, configFile.path);
  // --skip-identity: the host key is not readable inside a Nix build; the agent checks it at start.
  assert.equal(configFile.buildCommand, `${pkg}/bin/bento-client check-config --skip-identity --config ${rendered.path}\ncp ${rendered.path} $out\n`);
  assert.equal(v.etc['bento/package']!.source!.path, pkg, 'the link the agent watches to restart itself on a new package');
  const cfg = validateClientConfig(JSON.parse(rendered.json!));
  assert.equal(cfg.name, 'web1', 'name defaults to networking.hostName');
  assert.deepEqual(cfg.endpoints.map((e) => e.proxy?.kind ?? 'direct'), ['direct', 'socks5h']);
  assert.equal(cfg.flake, '/var/lib/bento-client/config#web1');
  assert.match(cfg.rebuildCommand[0]!, /-nixos-rebuild\/bin\/nixos-rebuild$/, 'system.build.nixos-rebuild');
  assert.deepEqual(cfg.restartOnChange, ['/etc/bento/client.json', '/etc/bento/package']);
  assert.equal(v.etc['bento/machine-id'], undefined, 'no pin unless machineId is set');
  assert.deepEqual(v.firewallTCP, [], 'the agent only connects out');
});

test('host options: cache key to nix.settings, machineId pinned in the system, post-switch command, kexec, no timer, no build-time check', () => {
  const v = view(`${TYPICAL_CLIENT} ({ pkgs, ... }: {
    services.bento.client = {
      cache = { localPort = 5001; publicKey = "hub.example.org-1:OxPHtnrxIMdAdRkKVMDCEo4jEeaBh11EabG2yQVXn30="; };
      machineId = "4c1f0a2b9d8e7f6a5b4c3d2e1f0a9b8c";
      postSwitchCommand = pkgs.writeShellScript "notify" "echo $BENTO_OUTCOME";
      postSwitchTimeoutMs = 5000;
      rebootOnKernelChange = true; rebootMethod = "kexec";
      pullInterval = null;
      checkConfig = false;
      localPage.socketGroup = "wheel";
    };
  })`);
  assert.deepEqual(v.failedAssertions, []);
  assert.deepEqual(v.nixSettings, { substituters: ['http://127.0.0.1:5001'], 'trusted-public-keys': ['hub.example.org-1:OxPHtnrxIMdAdRkKVMDCEo4jEeaBh11EabG2yQVXn30='] });
  assert.deepEqual(v.etc['bento/machine-id'], { enable: true, target: 'bento/machine-id', text: '4c1f0a2b9d8e7f6a5b4c3d2e1f0a9b8c', mode: 'symlink', source: null });
  const json = JSON.parse(v.client!.rendered.json!) as Obj;
  assert.equal(json['machineId'], '4c1f0a2b9d8e7f6a5b4c3d2e1f0a9b8c');
  assert.match(String((json['postSwitchCommand'] as string[])[0]), /^\/nix\/store\/\w+-notify$/);
  assert.equal((json['postSwitchCommand'] as string[]).length, 1);
  assert.equal(json['cache'] && (json['cache'] as Obj)['publicKey'], undefined, 'the key is for nix.settings, not the agent');
  const cfg = validateClientConfig(json);
  assert.equal(cfg.machineId, '4c1f0a2b9d8e7f6a5b4c3d2e1f0a9b8c');
  assert.deepEqual(cfg.postSwitch, { command: json['postSwitchCommand'], timeoutMs: 5000 });
  assert.ok(v.units['bento-client']!.path.some((p) => p.endsWith('-kexec-tools')));
  assert.equal(v.units['bento-client']!.serviceConfig['RuntimeDirectoryMode'], '0711', 'the socket group can reach /run/bento-client');
  assert.equal(v.timers['bento-client-pull'], undefined);
  assert.equal(v.units['bento-client-pull'], undefined);
  assert.equal(v.etc['bento/client.json']!.source!.path, v.client!.rendered.path, 'checkConfig off: the rendered file itself');
  assert.deepEqual(v.warnings, [
    'services.bento.client.pullInterval is null: with the tunnel down this host will not converge\nuntil it reconnects (no fallback pull).',
  ]);
  const argv = view(`${TYPICAL_CLIENT} { services.bento.client.postSwitchCommand = [ "/run/current-system/sw/bin/logger" "-t" "bento" ]; }`);
  assert.deepEqual(JSON.parse(argv.client!.rendered.json!)['postSwitchCommand'], ['/run/current-system/sw/bin/logger', '-t', 'bento']);
});

test('host health check (docs/rollouts.md): an executable or an argv, with its timing, reaches the agent as its own setting', () => {
  const v = view(`${TYPICAL_CLIENT} ({ pkgs, ... }: {
    services.bento.client = { healthCommand = pkgs.writeShellScript "healthy" "exit 0"; healthTimeoutMs = 120000; healthIntervalMs = 500; };
  })`);
  assert.deepEqual(v.failedAssertions, []);
  const json = JSON.parse(v.client!.rendered.json!) as Obj;
  assert.match(String((json['healthCommand'] as string[])[0]), /^\/nix\/store\/\w+-healthy$/);
  assert.deepEqual(validateClientConfig(json).health, { command: json['healthCommand'], timeoutMs: 120000, intervalMs: 500 });
  const none = JSON.parse(view(TYPICAL_CLIENT).client!.rendered.json!) as Obj;
  assert.equal(validateClientConfig(none).health, null, 'no check unless the host declares one');
  const argv = view(`${TYPICAL_CLIENT} { services.bento.client.healthCommand = [ "/run/current-system/sw/bin/systemctl" "is-system-running" "--wait" ]; }`);
  assert.deepEqual(JSON.parse(argv.client!.rendered.json!)['healthCommand'], ['/run/current-system/sw/bin/systemctl', 'is-system-running', '--wait']);
});

test('host warnings name what to enable: no openssh for the default identityFile, Tor SOCKS without the Tor client, a cache without its key', () => {
  const v = view(`{ services.bento.client = { enable = true; hubFingerprint = "${FP}";
    endpoints = [ { url = "ssh://x.onion:2222"; proxy = "socks5h://127.0.0.1:9050"; } ]; cache.localPort = 5001; }; }`);
  assert.deepEqual(v.failedAssertions, []);
  assert.equal(v.warnings!.length, 3, v.warnings!.join('\n---\n'));
  assert.match(v.warnings![0]!, /services\.openssh is disabled.*Enable services\.openssh/s);
  assert.match(v.warnings![1]!, /set services\.tor\.enable = true; services\.tor\.client\.enable = true;/);
  assert.match(v.warnings![2]!, /set cache\.publicKey/);
  assert.deepEqual(v.nixSettings.substituters, []);
});

// Each wrong setting, through the real module system as nixos-rebuild would
// evaluate it: an assertion (NixOS's "Failed assertions:") or a type error,
// and either way the message names the option and says what to write.
test('a cluster of hubs: settings.cluster renders without nulls and passes the hub\'s loader; a host pins every hub key and spreads over them', () => {
  const v = view(`{ services.bento.hub = { enable = true; settings.cluster = {
    servers = [ "nats://nats1.example:4222" "nats://nats2.example:4222" "nats://nats3.example:4222" ];
    hubName = "hub1"; user = "bento"; passwordFile = "/run/secrets/nats"; tls.caFile = "/etc/nats/ca.pem"; }; }; }`);
  assert.deepEqual(v.failedAssertions, []);
  const hubJson = JSON.parse(v.hub!.rendered.json!) as Obj;
  assert.deepEqual(hubJson['cluster'], { servers: ['nats://nats1.example:4222', 'nats://nats2.example:4222', 'nats://nats3.example:4222'], hubName: 'hub1', user: 'bento', passwordFile: '/run/secrets/nats', tls: { caFile: '/etc/nats/ca.pem' } });
  assert.equal(validateHubConfig(hubJson).cluster?.hubName, 'hub1');
  const FP2 = 'SHA256:AxPHtnrxIMdAdRkKVMDCEo4jEeaBh11EabG2yQVXn30';
  const c = view(`${TYPICAL_CLIENT} ({ lib, ... }: { services.bento.client = { hubFingerprint = lib.mkForce null; hubFingerprints = [ "${FP}" "${FP2}" ]; endpointOrder = "spread"; }; })`);
  assert.deepEqual(c.failedAssertions, []);
  const cfg = validateClientConfig(JSON.parse(c.client!.rendered.json!));
  assert.deepEqual(cfg.hubFingerprints, [FP, FP2]);
  assert.equal(cfg.endpointOrder, 'spread');
  assert.match(buildError(`{ services.bento.hub = { enable = true; settings.cluster = { servers = [ ]; hubName = "Hub 1"; }; }; }`),
    /services\.bento\.hub\.settings\.cluster\.servers must list the NATS servers[\s\S]*cluster\.hubName = "Hub 1" must be a DNS label/);
  assert.match(buildError(`{ services.bento.hub = { enable = true; settings.cluster = { servers = [ "nats://10.0.0.1:4222" ]; hubName = "hub1"; }; settings.publish.logMaxFiles = 5000; }; }`),
    /services\.bento\.hub\.settings\.publish\.logMaxFiles = 5000 is more than a cluster allows \(3174/);
  assert.equal(CLUSTER_LOG_MAX_FILES, 3174, 'checks.nix states the hub loader\'s bound');
});

const WRONG: Array<[string, string, RegExp]> = [
  ['hub: listen not HOST:PORT', 'services.bento.hub.settings.listen = "2222";', /Failed assertions: - services\.bento\.hub\.settings\.listen = "2222" must be HOST:PORT, e\.g\. "0\.0\.0\.0:2222"/],
  ['hub: wsListen not HOST:PORT', 'services.bento.hub.settings.wsListen = "localhost";', /services\.bento\.hub\.settings\.wsListen = "localhost" must be HOST:PORT \(e\.g\. "127\.0\.0\.1:8022"/],
  ['hub: heartbeat out of range', 'services.bento.hub.settings.heartbeatMs = 5;', /option `services\.bento\.hub\.settings\.heartbeatMs' is not of type `integer between 100 and 3600000/],
  ['hub: relative dataDir', 'services.bento.hub.dataDir = "bento";', /services\.bento\.hub\.dataDir = "bento" must be an absolute directory/],
  ['hub: key file relative', 'services.bento.hub.hostKeyFile = "key";', /services\.bento\.hub\.hostKeyFile must be an absolute path string/],
  ['hub: public dashboard without token', 'services.bento.hub.settings.dashboard = { listen = "0.0.0.0:8080"; tokenFile = null; };', /is not loopback, so it needs authentication: set services\.bento\.hub\.settings\.dashboard\.tokenFile/],
  ['hub: bad log level', 'services.bento.hub.logLevel = "verbose";', /option `services\.bento\.hub\.logLevel' is not of type `one of "trace", "debug", "info", "warn", "error"'/],
  ['hub: two limits at odds', 'services.bento.hub.settings.limits = { earlyDropQueued = 2048; };', /services\.bento\.hub\.settings\.limits\.earlyDropQueued \(2048\) must not exceed maxQueued \(1024\)/],
  ['hub: onion port out of range', 'services.bento.hub.onion = { enable = true; port = 70000; };', /option `services\.bento\.hub\.onion\.port' is not of type `null or 16 bit unsigned integer/],
];
// [what, option, Nix value (forced over the typical host's), expected message]
const WRONG_CLIENT: Array<[string, string, string, RegExp]> = [
  ['client: no hubFingerprint', 'services.bento.client.hubFingerprint', '"abc"', /services\.bento\.client\.hubFingerprint must be the hub key's "SHA256:\.\.\." fingerprint .*run `bento-hub fingerprint` on the hub/],
  ['client: flake without #', 'services.bento.client.flake', '"/etc/nixos"', /services\.bento\.client\.flake = "\/etc\/nixos" must be "PATH#ATTRIBUTE", e\.g\. "\/etc\/nixos#web1"/],
  ['client: onion without socks5h', 'services.bento.client.hub', '"ssh://abc.onion:2222"', /services\.bento\.client\.hub: ssh:\/\/abc\.onion:2222 is a Tor onion address; set proxy = "socks5h:\/\/127\.0\.0\.1:9050"/],
  ['client: name not a DNS label', 'services.bento.client.name', '"Web_1"', /services\.bento\.client\.name = "Web_1" is not a DNS label .*set services\.bento\.client\.name explicitly/],
  ['client: machineId not hex', 'services.bento.client.machineId', '"web1"', /services\.bento\.client\.machineId = "web1" must be this host's machine id, 32 lower-case hex digits: run `cat \/etc\/machine-id`/],
  ['client: empty post-switch argv', 'services.bento.client.postSwitchCommand', '[ "" ]', /services\.bento\.client\.postSwitchCommand must be an executable .* or a non-empty argv list/],
  ['client: post-switch timeout', 'services.bento.client.postSwitchTimeoutMs', '10', /option `services\.bento\.client\.postSwitchTimeoutMs' is not of type `integer between 1000 and 3600000/],
  ['client: empty health argv', 'services.bento.client.healthCommand', '[ "" ]', /services\.bento\.client\.healthCommand must be an executable .* or a non-empty argv list/],
  ['client: auto-apply action', 'services.bento.client.autoApplyAction', '"reboot"', /option `services\.bento\.client\.autoApplyAction' is not of type `one of "switch", "boot", "test", "build", "dry-activate"'/],
  ['client: local page on a public address', 'services.bento.client.localPage.listen', '"0.0.0.0:51337"', /services\.bento\.client\.localPage\.listen = "0\.0\.0\.0:51337" must be a loopback address like "127\.0\.0\.1:51337"/],
];

test('each wrong setting fails the build with a message naming the option and the fix', () => {
  for (const [what, setting, msg] of WRONG) {
    const err = buildError(`{ services.bento.hub.enable = true; ${setting} }`);
    assert.match(err, msg, what);
  }
  for (const [what, option, value, msg] of WRONG_CLIENT) {
    const err = buildError(`${TYPICAL_CLIENT} ({ lib, ... }: { ${option} = lib.mkForce (${value}); })`);
    assert.match(err, msg, what);
  }
});
