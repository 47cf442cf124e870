# services.bento.hub: rendered hub.json, user, firewall, onion service,
# assertions and the admin CLI's environment.
{ config, lib, pkgs, ... }:
let
  cfg = config.services.bento.hub;
  pure = import ../../lib/pure.nix;
  rendered = (pkgs.formats.json { }).generate "hub.json" (import ./render.nix cfg);
  # The hub has no check-config command; its loader is a plain ES module in
  # the package, so run it at build time: a hub.json it would refuse fails
  # the system build rather than the unit.
  node = cfg.package.passthru.nodejs or pkgs.nodejs;
  checked = pkgs.runCommand "hub.json" { } ''
    ${node}/bin/node --input-type=module -e '
      const { readFileSync } = await import("node:fs");
      const { validateHubConfig } = await import(process.argv[1]);
      validateHubConfig(JSON.parse(readFileSync(process.argv[2], "utf8")), "services.bento.hub.settings");
    ' ${cfg.package}/lib/node_modules/bento-fleet/dist/hub/fleet/hub-config.js ${rendered}
    cp ${rendered} $out
  '';
  # checks.nix reports a bad address with the fix; these throws only guard
  # against the firewall or Tor being evaluated before the assertions.
  hostPort = a: let p = pure.parseHostPort a; in
    if p == null then throw ''services.bento.hub.settings: "${toString a}" is not HOST:PORT'' else p;
  listen = hostPort cfg.settings.listen;
  ws = if cfg.settings.wsListen == null then null else hostPort cfg.settings.wsListen;
  # A loopback listener is reachable from this machine only (nginx, Tor):
  # opening its port in the firewall would expose nothing but a wrong intent.
  reachable = l: l != null && !pure.isLoopback l.host;
  firewallPorts = lib.unique (map (l: l.port) (lib.filter reachable [ listen ws ]));
  # Tor connects to the hub locally: a wildcard listen address is reached on loopback.
  onionTarget =
    if listen.host == "0.0.0.0" then "127.0.0.1"
    else if listen.host == "::" then "[::1]"
    else if listen.bracketed then "[${listen.host}]"
    else listen.host;
  # The address Tor connects to the hub from: every onion agent shares it, so
  # it must not count as one source (16 unauthenticated connections,
  # penalties for failures); a name, not an address, cannot be exempted.
  onionSource = lib.removePrefix "[" (lib.removeSuffix "]" onionTarget);
  onionSourceIsAddress = builtins.match "[0-9.]+|[0-9a-fA-F:.]*:[0-9a-fA-F:.]*" onionSource != null;
in
{
  config = lib.mkIf cfg.enable {
    services.bento.hub.settings.limits.exempt = lib.mkIf (cfg.onion.enable && onionSourceIsAddress) [ onionSource ];

    services.bento.hub.configFile = if cfg.checkConfig then checked else rendered;

    assertions = import ./checks.nix cfg;
    warnings =
      lib.optional (cfg.openFirewall && firewallPorts == [ ])
        "services.bento.hub.openFirewall is set, but settings.listen and settings.wsListen are both on loopback, so no port is opened; remove openFirewall or listen on a public address."
      ++
      lib.optional (cfg.settings.tls != null && cfg.settings.wsListen == null)
        "services.bento.hub.settings.tls is set but settings.wsListen is null: TLS only applies to the WebSocket listener."
      ++ lib.optional (cfg.onion.enable && !onionSourceIsAddress)
        "services.bento.hub.onion.enable: settings.listen names a host (${listen.host}), so Tor's source address cannot be exempted from the per-source limits; add it to services.bento.hub.settings.limits.exempt."
      ++ lib.optional (cfg.hostKeyFile != null && lib.hasPrefix builtins.storeDir cfg.hostKeyFile)
        "services.bento.hub.hostKeyFile is in the Nix store, which is world-readable; keep the hub key in a secret (agenix, sops-nix, /run/secrets).";

    # The unit runs as cfg.user in cfg.group: both exist whatever their names
    # (checks.nix refuses root, which NixOS defines itself).
    users.users.${cfg.user} = {
      isSystemUser = true;
      inherit (cfg) group;
      home = cfg.dataDir;
      description = "Bento hub";
    };
    users.groups.${cfg.group} = { };

    networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall firewallPorts;

    services.tor = lib.mkIf cfg.onion.enable {
      enable = true;
      relay.onionServices.bento.map = [{
        port = if cfg.onion.port == null then listen.port else cfg.onion.port;
        target = { addr = onionTarget; port = listen.port; };
      }];
    };

    # The admin CLI on this machine finds the fleet without --dir.
    environment.systemPackages = [ cfg.package ];
    environment.variables.BENTO_DIR = cfg.dataDir;
  };
}
