# Test-only: what NixOS would build from Bento's modules under the real
# module system (modules-eval.nix, same arguments), as plain data for
# test/unit/nixos-*.test.ts: units, timers, users, /etc, firewall, Tor,
# nix.settings, and the JSON files the modules render.
#
# Like NixOS, failed assertions abort `system` (with NixOS's own message) and
# warnings are only computed once the assertions hold.
{ libDir, modules ? [ ], entry ? "module", withBento ? true }:
let
  inherit (import ./modules-eval.nix { inherit libDir modules entry withBento; }) lib pkgs eval;
  inherit (eval) config;

  failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
  # A stand-in derivation as data: its store path and what it was made from.
  drv = d: {
    path = "${d}";
    name = d.name or null;
    json = d.json or null;
    text = d.text or null;
    buildCommand = d.buildCommand or null;
  };
  unit = s: {
    inherit (s) description wantedBy wants after environment restartIfChanged stopIfChanged;
    path = map toString s.path;
    serviceConfig = lib.mapAttrs (_: v: if lib.isList v then map toString v else if lib.isDerivation v then "${v}" else v) s.serviceConfig;
  };
  # The JSON files the modules render, found through the module's own
  # render.nix; the test checks that the installed file is (or checks) it.
  rendered = name: renderFile: cfg: drv ((pkgs.formats.json { }).generate name (import renderFile cfg));
  hub = config.services.bento.hub or null;
  client = config.services.bento.client or null;
in
{
  inherit failedAssertions;
  warnings = if failedAssertions == [ ] then config.warnings else null;
  system = lib.asserts.checkAssertWarn config.assertions config.warnings "system";

  units = lib.mapAttrs (_: unit) config.systemd.services;
  timers = lib.mapAttrs (_: t: { inherit (t) description wantedBy timerConfig; }) config.systemd.timers;
  tmpfiles = config.systemd.tmpfiles.rules;
  users = config.users.users;
  groups = lib.mapAttrs (_: g: { inherit (g) name gid members; }) config.users.groups;
  etc = lib.mapAttrs (_: e: { inherit (e) enable target text mode; source = if e.text == null then drv e.source else null; }) config.environment.etc;
  systemPackages = map toString config.environment.systemPackages;
  variables = config.environment.variables;
  firewallTCP = config.networking.firewall.allowedTCPPorts;
  tor = {
    inherit (config.services.tor) enable;
    clientEnable = config.services.tor.client.enable;
    onionServices = config.services.tor.relay.onionServices;
  };
  nixSettings = config.nix.settings;

  hub = if hub == null || !hub.enable then null else {
    package = "${hub.package}";
    configFile = drv hub.configFile;
    rendered = rendered "hub.json" ../modules/hub/render.nix hub;
  };
  client = if client == null || !client.enable then null else {
    package = "${client.package}";
    configFile = drv client.configFile;
    rendered = rendered "bento-client.json" ../modules/client/render.nix client;
  };
}
