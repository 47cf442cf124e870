# Test-only: the VM tests (vm.nix, reboot.nix) evaluated as far as a machine
# without nixpkgs and KVM allows. Each node's configuration goes through the
# real module system with Bento's modules (from the flake, flake-stub.nix),
# the NixOS option declarations of nixos-options-stub.nix plus the few the
# VM tests themselves set (declared below, nixpkgs' names and types), and
# the addresses nixpkgs' test framework would give (eth<i> =
# 192.168.<vlan>.<node number>, nodes numbered in name order, vlans default
# [ 1 ]). Every specialisation is evaluated on top of its node, as NixOS
# does. The test script is rendered with those node configurations, so
# test/unit/nixos-vm.test.ts can compile it with python3.
# Not covered: NixOS's own modules, building anything, booting, the test
# driver (only the script's syntax is checked).
{ libDir, test }:
let
  lib = import libDir;
  inherit (lib) mkOption types;
  flake = import ./flake-stub.nix { inherit lib; };
  base = import ./pkgs-stub.nix { inherit lib; withBento = false; };
  pkgs = base // {
    testers.runNixOSTest = args: args;
    writeText = name: text: { type = "derivation"; inherit name text; outPath = "${builtins.storeDir}/${builtins.substring 0 32 (builtins.hashString "sha256" text)}-${name}"; };
    linuxPackages_latest = { kernel.version = "latest"; };
  };
  def = import (./. + "/${test}.nix") { inherit pkgs; self = flake; };

  # The options the VM tests set beyond what Bento's modules touch.
  vmOptions = {
    options = {
      virtualisation.vlans = mkOption { type = types.listOf types.ints.unsigned; default = [ 1 ]; description = "VLANs of the VM."; };
      virtualisation.useBootLoader = mkOption { type = types.bool; default = false; description = "Boot through a boot loader."; };
      virtualisation.useEFIBoot = mkOption { type = types.bool; default = false; description = "EFI firmware."; };
      networking.nat.enable = mkOption { type = types.bool; default = false; description = "NAT."; };
      networking.nat.internalInterfaces = mkOption { type = types.listOf types.str; default = [ ]; description = "Inside interfaces."; };
      networking.nat.externalInterface = mkOption { type = types.nullOr types.str; default = null; description = "Outside interface."; };
      networking.firewall.extraCommands = mkOption { type = types.lines; default = ""; description = "Extra iptables commands."; };
      networking.defaultGateway = mkOption { type = types.nullOr types.str; default = null; description = "Default gateway (nixpkgs also takes a submodule)."; };
      networking.primaryIPAddress = mkOption { type = types.str; default = ""; description = "Set by the test framework."; };
      networking.interfaces = mkOption {
        type = types.attrsOf (types.submodule {
          options.ipv4.addresses = mkOption {
            type = types.listOf (types.submodule {
              options.address = mkOption { type = types.str; description = "Address."; };
              options.prefixLength = mkOption { type = types.addCheck types.int (n: n >= 0 && n <= 32); description = "Prefix."; };
            });
            default = [ ];
            description = "IPv4 addresses.";
          };
        });
        default = { };
        description = "Interfaces.";
      };
      boot.loader.systemd-boot.enable = mkOption { type = types.bool; default = false; description = "systemd-boot."; };
      boot.loader.efi.canTouchEfiVariables = mkOption { type = types.bool; default = false; description = "EFI variables."; };
      boot.kernelPackages = mkOption { type = types.raw; default = { kernel.version = "default"; }; description = "Kernel package set."; };
      specialisation = mkOption {
        type = types.attrsOf (types.submodule { options.configuration = mkOption { type = types.deferredModule; default = { }; description = "The specialisation's configuration."; }; });
        default = { };
        description = "Specialisations.";
      };
    };
  };

  names = lib.attrNames def.nodes;
  number = name: 1 + lib.lists.findFirstIndex (n: n == name) null names;
  # nixpkgs' test framework (nixos/lib/testing/network.nix and nodes.nix), the part these tests read.
  network = name: { config, ... }: {
    networking.hostName = lib.mkDefault name;
    networking.interfaces = lib.listToAttrs (lib.imap1 (i: vlan: {
      name = "eth${toString i}";
      value.ipv4.addresses = [ { address = "192.168.${toString vlan}.${toString (number name)}"; prefixLength = 24; } ];
    }) config.virtualisation.vlans);
    networking.primaryIPAddress = "192.168.${toString (lib.head config.virtualisation.vlans)}.${toString (number name)}";
  };
  evalNode = name: node: lib.evalModules {
    modules = [ ./nixos-options-stub.nix vmOptions (network name) node { _module.args = { inherit pkgs; nodes = configs; }; } ];
  };
  evals = lib.mapAttrs evalNode def.nodes;
  configs = lib.mapAttrs (_: e: e.config) evals;

  failed = config: map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
  summary = config: {
    failedAssertions = failed config;
    warnings = config.warnings;
    etc = lib.mapAttrs (_: e: e.text) (lib.filterAttrs (_: e: e.text != null) config.environment.etc);
    firewallTCP = config.networking.firewall.allowedTCPPorts;
    defaultGateway = config.networking.defaultGateway;
    units = lib.attrNames config.systemd.services;
    hub = if config.services.bento.hub.enable or false then {
      package = "${config.services.bento.hub.package}";
      inherit (config.services.bento.hub) hostKeyFile openFirewall;
    } else null;
    client = if config.services.bento.client.enable or false then {
      package = "${config.services.bento.client.package}";
      json = builtins.fromJSON (builtins.toJSON (import ../modules/client/render.nix config.services.bento.client));
    } else null;
  };
  # A specialisation is its node plus its configuration (NixOS: extendModules, without specialisations of its own).
  specialise = e: lib.mapAttrs (_: s: summary (e.extendModules {
    modules = [ s.configuration { specialisation = lib.mkOverride 0 { }; } ];
  }).config) e.config.specialisation;
in
{
  inherit (def) name;
  nodes = lib.mapAttrs (_: e: summary e.config // { specialisations = specialise e; }) evals;
  testScript = def.testScript { nodes = configs; };
}
